"""Static memory planning for int8 inference on microcontrollers: the interface and the verifier.

Every run-time byte of a compiled network (activations, per-op scratch) is a
:class:`Buffer`: a size in bytes and an inclusive lifetime ``first_use ..
last_use`` over the execution order (op indices).  A *planner* gives each
buffer a byte offset into a single arena such that no two buffers whose
lifetimes overlap share a byte; the arena size (the *peak*) is
``max(offset + aligned_size)``.  This is the TinyEngine / TFLite-Micro style of
memory management: everything is decided at compile time, and the generated C
code indexes one static ``uint8_t arena[PEAK]``.

The interface is deliberately tiny (compare TFLite Micro's ``MemoryPlanner``
and TVM's USMP):

* a planning algorithm is a pure function
  ``(buffers, alignment) -> offsets`` registered by name in :data:`PLANNERS`;
  the algorithms themselves (linear, greedy by size, portfolio, branch and
  bound) live in :mod:`tinyjax.codegen.plan.algorithms`;
* :func:`plan` runs one of them, builds a frozen :class:`MemoryPlan` and always
  checks it with :func:`verify`, an independent O(n * live) safety net;
* :func:`lower_bound` is the largest total of simultaneously live (aligned)
  sizes, a bound no plan can beat, reported next to every peak.

Units: sizes, offsets, peaks and alignments are bytes; lifetimes are op
indices.  All algorithms are deterministic (ties are broken by name).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tinyjax.codegen.plan.algorithms import (
    plan_branch_and_bound,
    plan_greedy_by_size,
    plan_linear,
    plan_portfolio,
)
from tinyjax.errors import PlanError

__all__ = [
    "DEFAULT_ALIGNMENT",
    "Buffer",
    "MemoryPlan",
    "PlanError",
    "PLANNERS",
    "lower_bound",
    "plan",
    "verify",
    # re-exported from plan_algorithms
    "plan_linear",
    "plan_greedy_by_size",
    "plan_portfolio",
    "plan_branch_and_bound",
]

#: Default offset alignment in bytes: 16 keeps every buffer start suitable for
#: CMSIS-NN / CMSIS-DSP SIMD loads (and for 128-bit MVE on Cortex-M55).
DEFAULT_ALIGNMENT = 16


# --------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Buffer:
    """One run-time buffer.

    Attributes:
        name: unique identifier (tensor or scratch name) used in reports/errors.
        size: size in bytes (>= 0; a zero-size buffer gets offset 0 and never
            collides with anything).
        first_use: index of the first op that touches the buffer (inclusive).
        last_use: index of the last op that touches the buffer (inclusive);
            ``first_use <= last_use``.
    """

    name: str
    size: int
    first_use: int
    last_use: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Buffer name must be a non-empty string, got {self.name!r}")
        for field in ("size", "first_use", "last_use"):
            value = getattr(self, field)
            if isinstance(value, bool):
                raise ValueError(f"buffer {self.name!r}: {field} must be an integer, got {value!r}")
            try:
                value = operator.index(value)
            except TypeError:
                raise ValueError(
                    f"buffer {self.name!r}: {field} must be an integer, got {value!r}"
                ) from None
            object.__setattr__(self, field, int(value))  # normalise e.g. numpy ints
        if self.size < 0:
            raise ValueError(f"buffer {self.name!r}: size must be >= 0 bytes, got {self.size}")
        if self.first_use > self.last_use:
            raise ValueError(
                f"buffer {self.name!r}: first_use ({self.first_use}) must be <= "
                f"last_use ({self.last_use})"
            )

    @property
    def lifetime(self) -> int:
        """Number of ops during which the buffer is live."""
        return self.last_use - self.first_use + 1

    def lives_with(self, other: Buffer) -> bool:
        """True if the two (inclusive) lifetimes share at least one op."""
        return self.first_use <= other.last_use and other.first_use <= self.last_use


@dataclass(frozen=True)
class MemoryPlan:
    """The result of planning: one arena offset per buffer.

    Attributes:
        buffers: the planned buffers, in the caller's order.
        offsets: byte offset of each buffer in the arena (same order).
        peak_bytes: arena size in bytes, ``max(offset + aligned size)``
            (includes alignment padding; 0 for an empty plan).
        lower_bound_bytes: :func:`lower_bound` of the buffers (bytes).
        algorithm: name of the planner that produced the offsets.
        alignment: offset alignment in bytes (a power of two).
    """

    buffers: tuple[Buffer, ...]
    offsets: tuple[int, ...]
    peak_bytes: int
    lower_bound_bytes: int
    algorithm: str
    alignment: int = DEFAULT_ALIGNMENT

    def __post_init__(self) -> None:
        object.__setattr__(self, "buffers", tuple(self.buffers))
        object.__setattr__(self, "offsets", tuple(self.offsets))

    def offset_of(self, name: str) -> int:
        """Byte offset of the buffer called ``name`` (KeyError if absent)."""
        for buf, off in zip(self.buffers, self.offsets):
            if buf.name == name:
                return off
        raise KeyError(f"no buffer named {name!r} in this plan")

    @property
    def overhead_bytes(self) -> int:
        """Bytes above the lower bound (0 means the plan is provably optimal)."""
        return self.peak_bytes - self.lower_bound_bytes

    def as_table(self) -> list[dict[str, object]]:
        """Rows ``{name, offset, end, size, first_use, last_use}`` sorted by offset.

        ``end = offset + size`` (bytes, exclusive, unaligned).  Meant for
        reports and for emitting ``#define`` tables in generated C.
        """
        rows = [
            {
                "name": b.name,
                "offset": o,
                "end": o + b.size,
                "size": b.size,
                "first_use": b.first_use,
                "last_use": b.last_use,
            }
            for b, o in zip(self.buffers, self.offsets)
        ]
        rows.sort(key=lambda r: (r["offset"], r["first_use"], r["name"]))
        return rows


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _check_alignment(alignment: int) -> int:
    if isinstance(alignment, bool):
        raise ValueError(f"alignment must be a positive power of two, got {alignment!r}")
    try:
        alignment = operator.index(alignment)
    except TypeError:
        raise ValueError(f"alignment must be a positive power of two, got {alignment!r}") from None
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a positive power of two, got {alignment}")
    return int(alignment)


def _check_buffers(buffers: Sequence[Buffer]) -> tuple[Buffer, ...]:
    buffers = tuple(buffers)
    seen = set()
    for b in buffers:
        if not isinstance(b, Buffer):
            raise ValueError(f"expected Buffer instances, got {type(b).__name__}: {b!r}")
        if b.name in seen:
            raise ValueError(f"duplicate buffer name {b.name!r}")
        seen.add(b.name)
    return buffers


def lower_bound(buffers: Sequence[Buffer], alignment: int = 1) -> int:
    """Largest total of simultaneously live sizes over all ops (bytes).

    Sizes are rounded up to ``alignment`` first.  No plan can have a smaller
    peak, so ``peak - lower_bound`` measures a planner's waste.  Sweep over
    sorted starts and ends, O(n log n).
    """
    alignment = _check_alignment(alignment)
    mask = -alignment
    starts, ends = [], []
    for b in buffers:
        s = (b.size + alignment - 1) & mask
        if s:
            starts.append((b.first_use, s))
            ends.append((b.last_use, s))
    starts.sort()
    ends.sort()
    live = best = j = 0
    for t, s in starts:
        while ends[j][0] < t:  # freed before op t; stops at latest at t's own end
            live -= ends[j][1]
            j += 1
        live += s
        if live > best:
            best = live
    return best


def _peak_of(offsets: Sequence[int], sizes: Sequence[int]) -> int:
    return max((o + s for o, s in zip(offsets, sizes)), default=0)


#: Registry of planning algorithms: name -> ``(buffers, alignment) -> offsets``.
PLANNERS: Mapping[str, Callable[[Sequence[Buffer], int], tuple[int, ...]]] = {
    "linear": plan_linear,
    "greedy_by_size": plan_greedy_by_size,
    "portfolio": plan_portfolio,
    "branch_and_bound": plan_branch_and_bound,
    "default": plan_portfolio,
}


# --------------------------------------------------------------------------
# Entry point and safety net
# --------------------------------------------------------------------------


def plan(
    buffers: Sequence[Buffer],
    algorithm: str = "default",
    alignment: int = DEFAULT_ALIGNMENT,
    check: bool = True,
) -> MemoryPlan:
    """Plan ``buffers`` into one arena with the named algorithm.

    Args:
        buffers: buffers with unique names (bytes / op indices).
        algorithm: a key of :data:`PLANNERS`.
        alignment: offset alignment in bytes (power of two, default 16).
        check: validate the buffers and :func:`verify` the plan (default). ``False`` is for
            callers that build the buffers themselves and only need the peak thousands of times
            (the search's fit check); every plan that is emitted is checked.

    Returns:
        A :class:`MemoryPlan` that has passed :func:`verify` (when ``check``).

    Raises:
        ValueError: unknown algorithm, bad alignment, duplicate names.
        PlanError: the algorithm produced an invalid plan (a bug).
    """
    if algorithm not in PLANNERS:
        raise ValueError(
            f"unknown memory planning algorithm {algorithm!r}; "
            f"valid choices: {', '.join(sorted(PLANNERS))}"
        )
    alignment = _check_alignment(alignment)
    buffers = _check_buffers(buffers) if check else tuple(buffers)
    offsets = tuple(int(o) for o in PLANNERS[algorithm](buffers, alignment))
    mask = -alignment
    sizes = [(b.size + alignment - 1) & mask for b in buffers]
    result = MemoryPlan(
        buffers=buffers,
        offsets=offsets,
        peak_bytes=_peak_of(offsets, sizes),
        lower_bound_bytes=lower_bound(buffers, alignment),
        algorithm=algorithm,
        alignment=alignment,
    )
    if check:
        verify(result)
    return result


def verify(plan: MemoryPlan) -> None:
    """Check a plan; raise :class:`PlanError` naming the culprit(s) if wrong.

    Checks: one offset per buffer, unique names, power-of-two alignment, every
    offset a non-negative multiple of the alignment, ``peak_bytes >= offset +
    size`` for every buffer, and no two non-empty buffers with overlapping
    lifetimes overlapping in ``[offset, offset + size)``.  Written independently
    of the planners (own sweep over lifetimes, no shared helpers).
    """
    bufs, offs = plan.buffers, plan.offsets
    if len(bufs) != len(offs):
        raise PlanError(f"plan has {len(bufs)} buffers but {len(offs)} offsets")
    a = plan.alignment
    if not isinstance(a, int) or a <= 0 or a & (a - 1):
        raise PlanError(f"plan alignment must be a positive power of two, got {a!r}")
    names = set()
    for b, o in zip(bufs, offs):
        if b.name in names:
            raise PlanError(f"buffer name {b.name!r} appears twice in the plan")
        names.add(b.name)
        if not isinstance(o, int) or isinstance(o, bool):
            raise PlanError(f"buffer {b.name!r}: offset {o!r} is not an integer")
        if o < 0:
            raise PlanError(f"buffer {b.name!r}: negative offset {o}")
        if o % a:
            raise PlanError(f"buffer {b.name!r}: offset {o} is not a multiple of the alignment {a}")
        if o + b.size > plan.peak_bytes:
            raise PlanError(
                f"buffer {b.name!r} ends at byte {o + b.size} but peak_bytes is {plan.peak_bytes}"
            )
    # Sweep in order of first use; `live` holds earlier-starting buffers that
    # are still live, as (last_use, lo, hi, index) tuples.
    spans = sorted(
        (b.first_use, b.last_use, o, o + b.size, k)
        for k, (b, o) in enumerate(zip(bufs, offs))
        if b.size > 0
    )
    live: list[tuple[int, int, int, int]] = []
    for first, last, lo, hi, k in spans:
        live = [t for t in live if t[0] >= first]
        for c_last, clo, chi, m in live:
            if lo < chi and clo < hi:
                raise PlanError(
                    f"buffers {bufs[m].name!r} [{clo}, {chi}) and {bufs[k].name!r} [{lo}, {hi}) "
                    f"overlap in memory while both live during ops {first}..{min(last, c_last)}"
                )
        live.append((last, lo, hi, k))
