"""Tests for tinyjax.codegen.plan.buffers (static arena memory planning).

Literal cases were worked out by hand (comments give the reasoning); property
tests check every registered algorithm against the independent ``verify`` and
the lower bound; a programmatic MCUNet-like chain checks the default planner on
a realistic workload.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyjax.codegen.plan.buffers import (
    DEFAULT_ALIGNMENT,
    PLANNERS,
    Buffer,
    MemoryPlan,
    PlanError,
    lower_bound,
    plan,
    verify,
)

ALGORITHMS = sorted(PLANNERS)


def B(name, size, first, last):
    return Buffer(name, size, first, last)


# ---------------------------------------------------------------------------
# Literal, hand-computed cases (alignment=1 unless the test is about alignment)
# ---------------------------------------------------------------------------


def test_three_buffers_answer_is_20():
    # A and C (10 B each) live together during ops 0..1, B (20 B) alone later:
    # the arena needs max(10 + 10, 20) = 20 bytes; B reuses A's and C's bytes.
    bufs = [B("A", 10, 0, 1), B("B", 20, 2, 3), B("C", 10, 0, 1)]
    for alg in ("greedy_by_size", "default", "branch_and_bound"):
        p = plan(bufs, alg, alignment=1)
        assert p.peak_bytes == 20, alg
        assert p.lower_bound_bytes == 20
    # greedy_by_size: B (largest) at 0; A before C (same size and first use,
    # name breaks the tie) at 0, then C on top of A at 10.
    p = plan(bufs, "greedy_by_size", alignment=1)
    assert p.offsets == (0, 0, 10)
    assert p.offset_of("C") == 10
    # The naive allocator sums everything.
    lin = plan(bufs, "linear", alignment=1)
    assert lin.offsets == (0, 10, 30)
    assert lin.peak_bytes == 40


def test_greedy_by_size_exact_offsets_and_default_beats_it():
    # Sizes / lifetimes:  A 40 B [2,4], B 40 B [1,2], C 50 B [1,1], D 50 B [3,3].
    # Live totals: op1 B+C=90, op2 A+B=80, op3 A+D=90, op4 A=40 -> bound 90.
    # greedy_by_size order: C, D (50; C starts earlier), B, A (40; B earlier).
    #   C -> 0.  D does not meet C in time -> 0.  B meets C [0,50) -> 50.
    #   A meets B [50,90) and D [0,50): no gap -> 90.  Peak 130.
    bufs = [B("A", 40, 2, 4), B("B", 40, 1, 2), B("C", 50, 1, 1), B("D", 50, 3, 3)]
    g = plan(bufs, "greedy_by_size", alignment=1)
    assert g.offsets == (90, 50, 0, 0)
    assert g.peak_bytes == 130
    assert g.lower_bound_bytes == 90
    # Putting the long-lived A at the bottom (A 0, D 40, C 0, B 50) reaches 90.
    for alg in ("default", "branch_and_bound"):
        p = plan(bufs, alg, alignment=1)
        assert p.peak_bytes == 90, alg
    assert plan(bufs, "linear", alignment=1).peak_bytes == 180


def test_chain_needs_max_over_adjacent_pairs():
    # op i reads buffer i and writes buffer i+1: A->B->C->D.
    # Adjacent pairs: A+B=80, B+C=70, C+D=60 -> peak 80 (linear: 140).
    bufs = [B("A", 30, 0, 0), B("B", 50, 0, 1), B("C", 20, 1, 2), B("D", 40, 2, 2)]
    assert lower_bound(bufs) == 80
    # greedy_by_size: B 0; D (no overlap with B) 0; A over B -> 50;
    # C meets B [0,50) and D [0,40) -> 50.
    g = plan(bufs, "greedy_by_size", alignment=1)
    assert g.offsets == (50, 0, 50, 0)
    assert g.peak_bytes == 80
    assert plan(bufs, "default", alignment=1).peak_bytes == 80
    assert plan(bufs, "linear", alignment=1).peak_bytes == 140


def test_residual_keeps_block_input_alive():
    # op0: Y = conv(X); op1: Z = conv(Y); op2: W = add(X, Z); op3 reads W.
    # X lives 0..2, so op1 holds X+Y+Z and op2 holds X+Z+W: 300 bytes, whereas
    # the same chain without the skip would need only 200.
    bufs = [B("X", 100, 0, 2), B("Y", 100, 0, 1), B("Z", 100, 1, 2), B("W", 100, 2, 3)]
    chain = [B("X", 100, 0, 0), B("Y", 100, 0, 1), B("Z", 100, 1, 2), B("W", 100, 2, 3)]
    assert lower_bound(chain) == 200
    assert plan(chain, alignment=1).peak_bytes == 200
    p = plan(bufs, alignment=1)
    assert p.lower_bound_bytes == 300
    assert p.peak_bytes == 300
    x = p.offset_of("X")
    for other in ("Y", "Z", "W"):  # X shares bytes with nothing
        o = p.offset_of(other)
        assert o + 100 <= x or x + 100 <= o


def test_alignment_rounding():
    # Two 1-byte buffers live together at 16-byte alignment: each takes 16.
    bufs = [B("a", 1, 0, 0), B("b", 1, 0, 0)]
    for alg in ALGORITHMS:
        p = plan(bufs, alg)  # default alignment
        assert DEFAULT_ALIGNMENT == 16
        assert p.alignment == 16
        assert sorted(p.offsets) == [0, 16], alg
        assert p.peak_bytes == 32
        assert p.lower_bound_bytes == 32
    assert plan(bufs, alignment=1).peak_bytes == 2
    assert lower_bound(bufs) == 2 and lower_bound(bufs, 16) == 32
    # A 17-byte buffer occupies 32 bytes; the next one starts at 32.
    p = plan([B("a", 17, 0, 1), B("b", 16, 1, 2)], "linear")
    assert p.offsets == (0, 32)
    assert p.peak_bytes == 48
    p = plan([B("a", 17, 0, 1), B("b", 16, 1, 2)], alignment=4)
    assert all(o % 4 == 0 for o in p.offsets)
    assert p.peak_bytes == 20 + 16


def test_zero_size_buffers():
    bufs = [B("big", 64, 0, 3), B("empty", 0, 0, 3), B("other", 32, 2, 5)]
    for alg in ALGORITHMS:
        p = plan(bufs, alg)
        assert p.offset_of("empty") == 0
        assert p.peak_bytes == 96, alg
    only_empty = [B("e0", 0, 0, 0), B("e1", 0, 0, 9)]
    for alg in ALGORITHMS:
        p = plan(only_empty, alg)
        assert p.offsets == (0, 0) and p.peak_bytes == 0 and p.lower_bound_bytes == 0
    p = plan([], "default")
    assert p.offsets == () and p.peak_bytes == 0


def test_disjoint_lifetimes_share_everything():
    bufs = [B(f"t{i}", 100 * (i + 1), i, i) for i in range(5)]
    for alg in ("greedy_by_size", "default", "branch_and_bound"):
        p = plan(bufs, alg, alignment=1)
        assert p.offsets == (0,) * 5
        assert p.peak_bytes == 500
    assert plan(bufs, "linear", alignment=1).peak_bytes == 1500


def test_unknown_algorithm_lists_choices():
    with pytest.raises(ValueError, match="nope") as e:
        plan([B("a", 1, 0, 0)], "nope")
    for name in ("linear", "greedy_by_size", "default"):
        assert name in str(e.value)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("a", -1, 0, 0), "size"),
        (("a", 4, 3, 2), "first_use"),
        (("a", 4.5, 0, 1), "size"),
        (("a", 4, "0", 1), "first_use"),
        (("a", True, 0, 1), "size"),
        (("", 4, 0, 1), "name"),
    ],
)
def test_invalid_buffer(args, fragment):
    with pytest.raises(ValueError, match=fragment) as e:
        Buffer(*args)
    if args[0]:
        assert repr(args[0]) in str(e.value)


def test_invalid_plan_arguments():
    with pytest.raises(ValueError, match="power of two"):
        plan([B("a", 1, 0, 0)], alignment=3)
    with pytest.raises(ValueError, match="power of two"):
        plan([B("a", 1, 0, 0)], alignment=0)
    with pytest.raises(ValueError, match="duplicate"):
        plan([B("a", 1, 0, 0), B("a", 2, 1, 1)])


def test_buffer_is_frozen_and_normalised():
    b = Buffer("a", 3, 1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.size = 4  # type: ignore[misc]
    assert b.lifetime == 2
    assert b.lives_with(Buffer("b", 1, 2, 5)) and not b.lives_with(Buffer("c", 1, 3, 5))


def test_as_table_rows():
    p = plan([B("A", 30, 0, 0), B("B", 50, 0, 1)], "greedy_by_size", alignment=1)
    rows = p.as_table()
    assert [r["name"] for r in rows] == ["B", "A"]  # sorted by offset
    assert rows[1] == {"name": "A", "offset": 50, "end": 80, "size": 30, "first_use": 0, "last_use": 0}
    with pytest.raises(KeyError, match="Q"):
        p.offset_of("Q")


# ---------------------------------------------------------------------------
# verify() catches bad plans
# ---------------------------------------------------------------------------


def _bad(offsets, peak, alignment=16, bufs=None):
    bufs = bufs or (B("a", 16, 0, 1), B("b", 16, 1, 2), B("c", 16, 3, 3))
    return MemoryPlan(bufs, offsets, peak, 0, "hand", alignment)


def test_verify_accepts_good_plan_with_reuse():
    verify(_bad((0, 16, 0), 32))  # c reuses a's bytes: lifetimes disjoint


def test_verify_catches_overlap_and_names_both():
    with pytest.raises(PlanError) as e:
        verify(_bad((0, 0, 32), 48))
    msg = str(e.value)
    assert "'a'" in msg and "'b'" in msg and "'c'" not in msg
    with pytest.raises(PlanError, match="'a'.*'b'"):
        verify(_bad((0, 8), 24, alignment=8, bufs=(B("a", 16, 0, 5), B("b", 16, 5, 6))))


def test_verify_catches_misaligned_negative_and_small_peak():
    with pytest.raises(PlanError, match="'b'.*multiple"):
        verify(_bad((0, 20, 0), 64))
    with pytest.raises(PlanError, match="'a'.*negative"):
        verify(_bad((-16, 16, 0), 32))
    with pytest.raises(PlanError, match="'b'.*peak"):
        verify(_bad((0, 16, 0), 20))
    with pytest.raises(PlanError, match="offsets"):
        verify(_bad((0, 16), 32))
    with pytest.raises(PlanError, match="alignment"):
        verify(_bad((0, 16, 0), 32, alignment=12))
    with pytest.raises(PlanError, match="twice"):
        verify(_bad((0, 16), 32, bufs=(B("a", 16, 0, 0), B("a", 16, 1, 1))))
    assert issubclass(PlanError, ValueError)


def test_verify_ignores_zero_size_and_touching_ranges():
    bufs = (B("a", 16, 0, 1), B("z", 0, 0, 1), B("b", 16, 0, 1))
    verify(MemoryPlan(bufs, (0, 0, 16), 32, 0, "hand", 16))


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------


@st.composite
def buffer_sets(draw, max_buffers=40):
    n = draw(st.integers(0, max_buffers))
    horizon = draw(st.integers(0, 30))
    bufs = []
    for i in range(n):
        first = draw(st.integers(0, horizon))
        last = draw(st.integers(first, min(horizon, first + draw(st.sampled_from([0, 2, 8, 30])))))
        size = draw(st.one_of(st.just(0), st.integers(1, 64), st.integers(1, 5000)))
        bufs.append(Buffer(f"b{i}", size, first, last))
    return bufs


PROPS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _independent_peak_check(p: MemoryPlan) -> None:
    """A second, brute-force O(n^2) check, independent of verify()."""
    for (x, ox), (y, oy) in itertools.combinations(zip(p.buffers, p.offsets), 2):
        if x.size and y.size and x.first_use <= y.last_use and y.first_use <= x.last_use:
            assert ox + x.size <= oy or oy + y.size <= ox, (x, y)
    assert p.peak_bytes >= max((o + b.size for b, o in zip(p.buffers, p.offsets)), default=0)


@PROPS
@given(buffer_sets(), st.sampled_from([1, 4, 16]))
def test_all_algorithms_valid_and_above_lower_bound(bufs, alignment):
    lb = lower_bound(bufs, alignment)
    peaks = {}
    for alg in ALGORITHMS:
        p = plan(bufs, alg, alignment=alignment)
        verify(p)
        _independent_peak_check(p)
        assert p.algorithm == alg
        assert p.lower_bound_bytes == lb
        assert p.peak_bytes >= lb
        assert all(o >= 0 and o % alignment == 0 for o in p.offsets)
        assert [b.name for b in p.buffers] == [b.name for b in bufs]
        peaks[alg] = p.peak_bytes
    assert peaks["linear"] == sum(-(-b.size // alignment) * alignment for b in bufs)
    assert peaks["default"] <= peaks["greedy_by_size"] <= peaks["linear"]
    assert peaks["branch_and_bound"] <= peaks["default"]


def _brute_force_optimum(bufs):
    """Min peak over all placement orders with a naive first fit (alignment 1).

    Exhaustive over orders, which reach an optimal packing: replaying any
    packing in offset order with first fit never moves a buffer up.
    """
    best = None
    for order in itertools.permutations(range(len(bufs))):
        placed = []
        peak = 0
        for i in order:
            b = bufs[i]
            clash = [(o, o + c.size) for c, o in placed if c.size and b.lives_with(c)]
            off = 0
            while b.size and any(lo < off + b.size and off < hi for lo, hi in clash):
                off = min(hi for lo, hi in clash if lo < off + b.size and off < hi)
            placed.append((b, off))
            peak = max(peak, off + b.size)
        best = peak if best is None else min(best, peak)
    return best


@settings(max_examples=40, deadline=None, database=None)
@given(buffer_sets(max_buffers=6))
def test_branch_and_bound_is_exact_on_small_instances(bufs):
    assert plan(bufs, "branch_and_bound", alignment=1).peak_bytes == _brute_force_optimum(bufs)


# ---------------------------------------------------------------------------
# Realistic workload: an MCUNet-like inverted-residual chain
# ---------------------------------------------------------------------------


def mcunet_like_chain(resolution: int = 128):
    """Int8 MobileNetV2/MCUNet-style network as buffers (bytes, op indices).

    Stem 3x3/s2 conv, 14 MBConv blocks (1x1 expand, 3x3 depthwise, 1x1
    project; an add op when stride 1 and channels match, which keeps the block
    input live until the add), a 1x1 head, pooling and a classifier.
    Activations are H*W*C bytes; each conv gets a scratch buffer (im2col-style,
    CMSIS-NN-like sizes) live only during its own op.
    """
    tensors = {}
    ops = []  # (inputs, output, scratch bytes)
    h = w = resolution
    tensors["input"] = h * w * 3
    x, c = "input", 3
    h, w = h // 2, w // 2
    tensors["stem"] = h * w * 16
    ops.append(([x], "stem", 2 * 9 * 3 * 2))
    x, c = "stem", 16
    stages = [(1, 8, 1, 1), (6, 16, 2, 2), (6, 24, 3, 2), (6, 40, 3, 2), (6, 48, 2, 1), (6, 96, 3, 2)]
    k = 0
    for expand, cout, repeats, stride0 in stages:
        for r in range(repeats):
            stride = stride0 if r == 0 else 1
            block_in = x
            k += 1
            cmid = c * expand
            if expand != 1:
                tensors[f"b{k}_expand"] = h * w * cmid
                ops.append(([x], f"b{k}_expand", 2 * c * 2))
                x = f"b{k}_expand"
            h, w = h // stride, w // stride
            tensors[f"b{k}_dw"] = h * w * cmid
            ops.append(([x], f"b{k}_dw", 2 * 9 * cmid))
            tensors[f"b{k}_proj"] = h * w * cout
            ops.append(([f"b{k}_dw"], f"b{k}_proj", 2 * cmid * 2))
            x = f"b{k}_proj"
            if stride == 1 and c == cout:
                tensors[f"b{k}_add"] = h * w * cout
                ops.append(([block_in, x], f"b{k}_add", 0))
                x = f"b{k}_add"
            c = cout
    tensors["head"] = h * w * 160
    ops.append(([x], "head", 2 * c * 2))
    tensors["pool"] = 160
    ops.append((["head"], "pool", 0))
    tensors["logits"] = 10
    ops.append((["pool"], "logits", 0))

    first, last, bufs = {"input": 0}, {}, []
    for idx, (inputs, out, scratch) in enumerate(ops):
        first.setdefault(out, idx)
        for t in [*inputs, out]:
            last[t] = max(last.get(t, idx), idx)
        if scratch:
            bufs.append(Buffer(f"scratch{idx}", scratch, idx, idx))
    bufs += [Buffer(n, s, first[n], last[n]) for n, s in tensors.items()]
    return bufs


def test_mcunet_like_chain_default_near_lower_bound():
    bufs = mcunet_like_chain()
    assert 60 <= len(bufs) <= 150
    residual = [b for b in bufs if b.name.startswith("b") and b.lifetime > 2]
    assert residual, "the chain should contain block inputs kept alive by skips"
    p = plan(bufs)
    lin = plan(bufs, "linear")
    greedy = plan(bufs, "greedy_by_size")
    assert p.peak_bytes <= 1.05 * p.lower_bound_bytes
    assert p.peak_bytes <= greedy.peak_bytes < lin.peak_bytes
    # Reuse matters: the naive allocator needs several times more SRAM.
    assert lin.peak_bytes > 4 * p.peak_bytes
    for res in (96, 160):
        q = plan(mcunet_like_chain(res))
        assert q.peak_bytes <= 1.05 * q.lower_bound_bytes
