"""TinyNAS stage 1: the fast per-space evaluation gives exactly the planner's verdicts, peaks and
MACs; runs are deterministic across worker counts and resumable; the chooser's criterion; the
report's table and CDF figure."""

from __future__ import annotations

import json
import math
import random

import pytest

from tinyjax.codegen.graph import Graph, Op, Tensor, graph_from_spec
from tinyjax.codegen.plan.buffers import lower_bound
from tinyjax.codegen.plan.graph_plan import chain_buffers, fits, peak_sram_bytes, peak_within, plan_graph
from tinyjax.codegen.targets import flash_bytes
from tinyjax.counting import count
from tinyjax.errors import TinyJaxError
from tinyjax.search.tinynas.space import SearchSpace, grid
from tinyjax.search.tinynas.stage1 import (
    SpaceStats,
    _BlockTables,
    choose_space,
    evaluate_space,
    run_stage1,
    smallest_peak,
    space_seed,
)
from tinyjax.search.tinynas.stage1_report import cdf_figure, table_markdown
from tinyjax.units import format_bytes

KB, MB = 1024, 1024 ** 2


def brute_force(space: SearchSpace, sram: int, flash: int, target: str, samples: int, seed: int = 0):
    """What evaluate_space must find, from the public planner one sample at a time."""
    rng = random.Random(space_seed(seed, space))
    specs = [space.spec(space.sample(rng)) for _ in range(samples)]
    macs = sorted(count(s).macs for s in specs if fits(s, sram, flash, target))
    peaks = [peak_sram_bytes(s, target) for s in specs]
    flashes = [flash_bytes(graph_from_spec(s)) for s in specs]
    return macs, min(peaks), min(flashes)


# (space, SRAM budget, flash budget, target): budgets straddle the spaces' peaks and flash so
# that both verdicts occur, and every rejection path (flash, lower bound, full plan) is taken
CASES = [
    (SearchSpace(0.5, 144, 10), 150 * KB, 1 * MB, "cortex-m7"),
    (SearchSpace(0.3, 96, 1000), 60 * KB, 600 * KB, "cortex-m7"),
    (SearchSpace(0.7, 176, 1000), 320 * KB, 1 * MB, "cortex-m55"),
    (SearchSpace(0.4, 64, 100), 40 * KB, 300 * KB, "host"),
]


@pytest.mark.parametrize("space,sram,flash,target", CASES, ids=lambda c: getattr(c, "name", None))
def test_evaluate_space_equals_the_planner(space, sram, flash, target):
    stats = evaluate_space(space, sram, flash, target, samples=60, seed=3)
    macs, min_peak, min_flash = brute_force(space, sram, flash, target, 60, seed=3)
    assert stats.macs == tuple(macs)
    assert stats.fitting == len(macs)
    assert stats.min_peak == min_peak
    assert stats.min_flash == min_flash
    small = space.spec(space.smallest())
    assert stats.smallest_peak == peak_sram_bytes(small, target)
    assert stats.smallest_flash == flash_bytes(graph_from_spec(small))


def test_the_cases_cover_both_verdicts():
    """The exactness test above would pass vacuously if every sample fit or none did."""
    fractions = [evaluate_space(sp, s, f, t, samples=60, seed=3).fraction for sp, s, f, t in CASES]
    assert any(0 < x < 1 for x in fractions), fractions


@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m55", "host"])
def test_block_tables_equal_count_flash_and_lower_bound(target):
    """MACs, flash and the arena's lower bound summed from the per-block tables equal what
    counting, the flash rule and the planner give for the whole sub-network."""
    for space in (SearchSpace(0.2, 48, 10), SearchSpace(0.6, 160, 1000), SearchSpace(1.0, 112, 10)):
        tables = _BlockTables(space, target)
        rng = random.Random(7)
        for _ in range(25):
            arch = space.sample(rng)
            spec = space.spec(arch)
            graph = graph_from_spec(spec)
            gp = plan_graph(graph, target, verify=False)
            assert tables(arch) == (count(spec).macs, flash_bytes(graph), gp.lower_bound_bytes)


@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m55"])
def test_block_buffers_equal_the_planners(target):
    """The buffers assembled from the block tables are the planner's for the whole graph, also
    in a space with other choices (depth 1, two kernels), so the placement and peak are too."""
    spaces = (SearchSpace(0.3, 128, 10), SearchSpace(0.8, 64, 1000, kernels=(3, 5), expands=(2, 6),
                                                      depths=(1, 3)))
    for space in spaces:
        tables = _BlockTables(space, target)
        assert tables.exact_buffers
        rng = random.Random(11)
        for _ in range(25):
            arch = space.sample(rng)
            graph = graph_from_spec(space.spec(arch))
            mine = sorted(tuple(b) for b in tables.buffers(arch))
            assert mine == sorted((b.name, b.size, b.first_use, b.last_use)
                                  for b in chain_buffers(graph, target))
            assert tables(arch)[2] == lower_bound(chain_buffers(graph, target), 16)


def test_peak_within_is_the_planned_peak_or_none():
    space = SearchSpace(0.5, 128, 10)
    graph = graph_from_spec(space.spec(space.sample(random.Random(1))))
    gp = plan_graph(graph, "cortex-m7")
    assert peak_within(graph, math.inf) == (gp.lower_bound_bytes, gp.peak_bytes)
    assert peak_within(graph, gp.lower_bound_bytes) == (gp.lower_bound_bytes, gp.peak_bytes)
    assert peak_within(graph, gp.lower_bound_bytes - 1) == (gp.lower_bound_bytes, None)


def test_peak_within_plans_a_branching_graph_in_full():
    t = [Tensor("input", (1, 8, 8, 8)), Tensor("a", (1, 8, 8, 16)), Tensor("b", (1, 8, 8, 16)),
         Tensor("c", (1, 8, 8, 16))]
    conv = dict(kernel=(1, 1), stride=(1, 1), padding=(0, 0), in_chs=8, out_chs=16, act="relu")
    ops = (Op.make("a", "conv", ["input"], **conv), Op.make("b", "conv", ["input"], **conv),
           Op.make("c", "add", ["a", "b"], act="none"))
    graph = Graph(tuple(t), ops, ("input",), ("c",)).validate()
    peak = plan_graph(graph).peak_bytes
    assert peak_within(graph, 1) == (peak, peak)


def test_run_is_deterministic_across_workers_and_resumes():
    spaces = [SearchSpace(w, r, 10) for w in (0.2, 0.5) for r in (48, 96)]
    args = (100 * KB, 1 * MB, "cortex-m7", 12, 5)
    seen = []
    one = run_stage1(spaces, *args, workers=1, on_space=seen.append)
    two = run_stage1(spaces, *args, workers=2)
    assert one == two
    assert any(0 < s.fraction < 1 for s in one)      # not vacuous
    assert [s.key for s in one] == [(sp.width, sp.resolution) for sp in spaces]
    assert sorted(s.key for s in seen) == sorted(s.key for s in one)
    # resume: what is done is not recomputed; stats made with other settings are
    stale = evaluate_space(spaces[1], 32 * KB, 1 * MB, "cortex-m7", 12, 5)
    again = []
    done = {one[0].key: one[0], stale.key: stale}
    assert run_stage1(spaces, *args, workers=1, done=done, on_space=again.append) == one
    assert sorted(s.key for s in again) == sorted(s.key for s in one[1:])
    # another seed samples other sub-networks
    other = run_stage1(spaces[-1:], 100 * KB, 1 * MB, "cortex-m7", 12, 6, workers=1)[0]
    assert (other.macs, other.min_flash) != (one[-1].macs, one[-1].min_flash)


def test_user_mistakes_raise_before_any_work():
    with pytest.raises(TinyJaxError, match="unknown target"):
        run_stage1([SearchSpace(0.2, 48, 10)] * 2, 64 * KB, MB, "cortex-m99", 5, workers=2)
    with pytest.raises(TinyJaxError, match="at least one sample"):
        run_stage1([SearchSpace(0.2, 48, 10)], 64 * KB, MB, "cortex-m7", 0)


def test_tiny_budget_fits_nothing_and_names_the_smallest_peak():
    spaces = [SearchSpace(w, r, 10) for w in (0.2, 0.3) for r in (48, 64)]
    stats = run_stage1(spaces, 8 * KB, 1 * MB, "cortex-m7", samples=10, workers=1)
    assert all(s.fitting == 0 and s.fraction == 0 and s.mean_macs is None for s in stats)
    peak, w, r = smallest_peak([SearchSpace(w, r, 10) for w in (0.2, 0.3) for r in (48, 64)],
                               "cortex-m7")
    assert peak > 8 * KB
    assert peak == min(peak_sram_bytes(sp.spec(sp.smallest())) for sp in spaces)
    assert (w, r) == (0.2, 48)
    with pytest.raises(TinyJaxError, match=format_bytes(peak).replace(".", r"\.")):
        choose_space(stats)


def test_huge_budget_fits_everything():
    space = SearchSpace(0.3, 80, 10)
    stats = evaluate_space(space, 64 * MB, 64 * MB, samples=20, seed=1)
    rng = random.Random(space_seed(1, space))
    assert stats.fraction == 1.0
    assert stats.macs == tuple(sorted(count(space.spec(space.sample(rng))).macs for _ in range(20)))
    assert stats.mean_macs == pytest.approx(sum(stats.macs) / 20)


def fake(w, r, macs, samples=10, min_peak=100_000):
    return SpaceStats(w, r, 10, 320 * KB, MB, "cortex-m7", samples, 0, len(macs), tuple(sorted(macs)),
                      min_peak, 500_000, min_peak, 500_000)


def test_chooser_takes_the_largest_mean_among_spaces_where_enough_fit():
    stats = [fake(0.3, 96, [10, 20, 30]),                 # 30% fit, mean 20
             fake(0.5, 128, [40, 50]),                    # 20% fit, mean 45: the choice
             fake(0.8, 176, [90]),                        # 10% fit, mean 90
             fake(1.0, 224, [])]                          # nothing fits
    chosen, reason = choose_space(stats, min_fraction=0.15)
    assert chosen.key == (0.5, 128)
    assert reason.startswith("w0.5 r128: mean") and "2 of 10" in reason and "next: w0.3 r96" in reason
    assert choose_space(stats, min_fraction=0.1)[0].key == (0.8, 176)
    assert choose_space(stats, min_fraction=0.3)[0].key == (0.3, 96)
    with pytest.raises(TinyJaxError, match="best fraction 30.0%"):
        choose_space(stats, min_fraction=0.5)
    # equal means: the smaller peak wins
    tie = [fake(0.4, 96, [50, 50], min_peak=200_000), fake(0.6, 96, [40, 60], min_peak=150_000)]
    assert choose_space(tie)[0].key == (0.6, 96)


def test_stats_round_trip_through_json():
    stats = evaluate_space(SearchSpace(0.4, 112, 10), 100 * KB, 1 * MB, samples=8, seed=2)
    d = json.loads(json.dumps(stats.to_dict()))
    assert SpaceStats.from_dict(d) == stats
    assert d["fraction"] == stats.fraction and d["mean_macs"] == stats.mean_macs
    del d["macs"]
    with pytest.raises(TinyJaxError, match="malformed"):
        SpaceStats.from_dict(d)


def test_table_and_cdf_figure_render():
    stats = [fake(0.3, 96, [10_000_000, 20_000_000, 30_000_000]), fake(0.5, 128, [40_000_000, 50_000_000]),
             fake(1.0, 224, [])]
    chosen, _ = choose_space(stats)
    table = table_markdown(stats, chosen)
    rows = table.strip().splitlines()[2:]
    assert len(rows) == 3
    assert [r for r in rows if "chosen" in r] == [rows[1]]
    assert "| 30% | 20.0M |" in rows[0] and "–" in rows[2]
    fig = cdf_figure(stats, chosen, top=1)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["w0.5 r128 (20% fit, mean 45.0M) ← chosen"]
    fig = cdf_figure(stats, chosen, top=8)
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    assert set(lines) == {"w0.3 r96", "w0.5 r128"}
    x, y = lines["w0.3 r96"].get_data()
    assert list(x) == [10, 20, 30] and list(y) == pytest.approx([1 / 3, 2 / 3, 1])
    fig.canvas.draw()


def test_grid_is_the_papers():
    assert len(grid()) == 108


def test_layer_by_layer_planning_is_the_planner_without_in_place():
    """The co-design baseline: each sample's verdict is plan_graph(in_place=False)'s, and in-place
    never needs more memory than it."""
    from tinyjax.codegen.graph import graph_from_spec

    space = SearchSpace(0.4, 96, 10)
    budget = 110 * KB
    lbl = evaluate_space(space, budget, MB, samples=25, seed=3, in_place=False)
    ours = evaluate_space(space, budget, MB, samples=25, seed=3)
    rng = random.Random(space_seed(3, space))
    want = []
    for _ in range(25):
        spec = space.spec(space.sample(rng))
        if plan_graph(graph_from_spec(spec), "cortex-m7", in_place=False).peak_bytes <= budget:
            want.append(count(spec).macs)
    assert lbl.macs == tuple(sorted(want))
    assert set(lbl.macs) <= set(ours.macs) and lbl.min_peak >= ours.min_peak
