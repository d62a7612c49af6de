"""TinyNAS stage 1: choose the (width, resolution) search space under a memory budget (MCUNet).

For every space of the grid (:func:`tinyjax.search.tinynas.space.grid`: 9 widths × 12 resolutions) ``m``
random sub-networks are sampled; those whose planned arena (``peak_sram_bytes``: the plan the C
arena uses) and constant data (``kernels.flash_bytes``) fit the budget are kept, and the space
whose fitting models have the best MACs distribution wins (MCUNet: "larger FLOPs ⇒ better
accuracy"; a space whose satisfying models average 52.0M MACs beat one at 46.9M by 2.3% top-1).

Criterion (:func:`choose_space`): the largest **mean MACs of the fitting sub-networks**, among the
spaces where at least ``min_fraction`` (default 10%) of the samples fit; ties go to the smaller
smallest-peak-seen, then to the smaller width and resolution. Why a floor on the fraction: stage 2
trains a supernet over the whole space and evolves inside it; in a space where 1% of the
sub-networks fit, almost every mutation and crossover is infeasible, the supernet spends its
training on networks that cannot be deployed, and a mean over a handful of samples is noise. 10%
of m = 1000 is still 100 models, enough for a stable mean, and it leaves the large spaces whose
small corner fits (the ones the paper's CDFs favour) in the running.

Speed, exactly: every sample's verdict equals ``codegen.memory.fits(spec, sram, flash, target)``
and every computed peak equals ``peak_sram_bytes``. Per space, the sub-networks with one
(kernel, expansion) everywhere (nine) are built and planned once; in this chain a block's MACs, flash,
planner buffers and live bytes depend only on its slot and choices (:class:`_BlockTables`), so a
sample's MACs, flash and the arena's lower bound are table sums and maxima (no spec, no graph). A
sample whose lower bound exceeds the SRAM budget (peak ≥ lower bound) or whose flash does not fit
is rejected without placing anything (unless it may have the smallest peak yet); otherwise its
buffers are assembled from the tables and placed greedy by size, which the planner keeps when it
meets the lower bound; in the rare other case the graph is built and planned in full
(``memory.peak_within``). Tests compare every piece with counting, the flash rule and the planner
on random samples of several spaces and targets.

Spaces run in parallel over processes of a ``spawn`` context (the caller may have imported JAX,
and forking after that is unsafe); each space's samples come from its own seeded generator, so
the result does not depend on the number of workers or the order they finish in. (A script
that calls :func:`run_stage1` with workers needs the ``if __name__ == "__main__":`` guard.)
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tinyjax.devices import DEFAULT_TARGET
from tinyjax.errors import TinyJaxError
from tinyjax.search.tinynas.space import SearchSpace
from tinyjax.units import format_bytes

__all__ = ["DEFAULT_MIN_FRACTION", "SpaceStats", "choose_space", "evaluate_space", "run_stage1",
           "smallest_peak", "space_seed"]

#: Fraction of a space's samples that must fit for it to be chosen (module docstring).
DEFAULT_MIN_FRACTION = 0.1


@dataclass(frozen=True)
class SpaceStats:
    """What sampling one (width, resolution) space found.

    Attributes:
        width, resolution, num_classes: the space.
        sram_bytes, flash_bytes, target, samples, seed: how it was evaluated (a resumed run reuses
            stats only when these agree).
        fitting: how many samples fit both budgets.
        macs: the fitting samples' MACs, sorted (the CDF).
        min_peak: the smallest planned peak (bytes) among all samples, fitting or not.
        min_flash: the smallest flash (bytes) among all samples.
        smallest_peak, smallest_flash: peak and flash of the space's smallest sub-network
            (``SearchSpace.smallest()``: every kernel, expansion and depth at its minimum).
    """

    width: float
    resolution: int
    num_classes: int
    sram_bytes: int
    flash_bytes: int
    target: str
    samples: int
    seed: int
    fitting: int
    macs: tuple[int, ...]
    min_peak: int
    min_flash: int
    smallest_peak: int
    smallest_flash: int

    @property
    def key(self) -> tuple[float, int]:
        return (self.width, self.resolution)

    @property
    def label(self) -> str:
        return f"w{self.width:g} r{self.resolution}"

    @property
    def fraction(self) -> float:
        """Fraction of the samples that fit."""
        return self.fitting / self.samples

    @property
    def mean_macs(self) -> float | None:
        """Mean MACs of the fitting samples (``None`` when none fits)."""
        return sum(self.macs) / len(self.macs) if self.macs else None

    def settings(self) -> tuple:
        return (self.num_classes, self.sram_bytes, self.flash_bytes, self.target, self.samples,
                self.seed)

    def to_dict(self) -> dict:
        return {"width": self.width, "resolution": self.resolution, "num_classes": self.num_classes,
                "sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes,
                "target": self.target, "samples": self.samples, "seed": self.seed,
                "fitting": self.fitting, "fraction": self.fraction, "mean_macs": self.mean_macs,
                "macs": list(self.macs), "min_peak": self.min_peak, "min_flash": self.min_flash,
                "smallest_peak": self.smallest_peak, "smallest_flash": self.smallest_flash}

    @classmethod
    def from_dict(cls, d: Mapping) -> SpaceStats:
        """The inverse of :meth:`to_dict` (``fraction`` and ``mean_macs`` are derived)."""
        try:
            return cls(float(d["width"]), int(d["resolution"]), int(d["num_classes"]),
                       int(d["sram_bytes"]), int(d["flash_bytes"]), str(d["target"]),
                       int(d["samples"]), int(d["seed"]), int(d["fitting"]),
                       tuple(int(m) for m in d["macs"]), int(d["min_peak"]), int(d["min_flash"]),
                       int(d["smallest_peak"]), int(d["smallest_flash"]))
        except (KeyError, TypeError, ValueError) as e:
            raise TinyJaxError(f"stage-1 stats are malformed ({type(e).__name__}: {e}); delete "
                               f"the file to recompute them") from None


def space_seed(seed: int, space: SearchSpace) -> str:
    """The seed of one space's generator: the run's seed, width and resolution (a string seeds
    ``random.Random`` through SHA-512, the same in every process and Python run)."""
    return f"tinynas-stage1:{seed}:w{space.width:g}:r{space.resolution}"


def _memory(space: SearchSpace, arch, target: str, in_place: bool = True) -> tuple[int, int]:
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes, plan_graph
    from tinyjax.codegen.targets import flash_bytes

    graph = graph_from_spec(space.spec(arch))
    peak = (peak_sram_bytes(graph, target) if in_place
            else plan_graph(graph, target, in_place=False, verify=False).peak_bytes)
    return peak, flash_bytes(graph)


def _evaluate_layer_by_layer(space: SearchSpace, sram_bytes: int, flash_bytes: int, target: str,
                             samples: int, seed: int) -> SpaceStats:
    """:func:`evaluate_space` under a planner without in-place ops (every op's output in a buffer
    of its own: the CMSIS-NN/TFLM baseline of MCUNet's co-design comparison); plans every sample."""
    from tinyjax.counting import count

    rng = random.Random(space_seed(seed, space))
    fitting: list[int] = []
    min_peak = min_flash = math.inf
    for _ in range(samples):
        arch = space.sample(rng)
        peak, flash = _memory(space, arch, target, in_place=False)
        min_peak, min_flash = min(min_peak, peak), min(min_flash, flash)
        if peak <= sram_bytes and flash <= flash_bytes:
            fitting.append(count(space.spec(arch)).macs)
    smallest_peak, smallest_flash = _memory(space, space.smallest(), target, in_place=False)
    return SpaceStats(space.width, space.resolution, space.num_classes, sram_bytes, flash_bytes,
                      target, samples, seed, len(fitting), tuple(sorted(fitting)), int(min_peak),
                      int(min_flash), smallest_peak, smallest_flash)


class _Buf(NamedTuple):
    """A planner buffer (the fields the placement algorithms read), cheap to make."""

    name: str
    size: int
    first_use: int
    last_use: int

    @property
    def lifetime(self) -> int:
        return self.last_use - self.first_use + 1


class _BlockTables:
    """MACs, flash, the arena's lower bound and the planner's buffers of any sub-network of
    ``space``, assembled from per-block tables instead of building its spec and graph.

    In the MCUNet chain a block's ops, their MACs and flash, and the buffers first used in it
    depend only on the block's slot, kernel and expansion; a buffer that outlives its block (the
    shortcut's group of a stage's residual chain, a stage's output) ends at a block every
    sub-network has (the first block of a later stage, or the head). So the bytes live at an
    op depend only on its block, and the lower bound is the largest of the blocks' maxima.
    The tables are read off the real graphs and buffers (``memory.chain_buffers``) of the
    sub-networks with one (kernel, expansion) everywhere at full depth. The tests compare
    every quantity with counting, the flash rule and the planner on random samples, and the
    search checks the table's bound against the planner's wherever it builds a graph.
    """

    def __init__(self, space: SearchSpace, target: str):
        from tinyjax.codegen.graph import graph_from_spec
        from tinyjax.codegen.ops import OPS
        from tinyjax.codegen.plan.graph_plan import chain_buffers
        from tinyjax.codegen.targets import op_flash_bytes
        from tinyjax.search.tinynas.space import Arch

        self.space = space
        n, d = space.num_blocks, space.max_depth
        # gene index -> spec block name (stage 0 is the fixed first block; elastic stage s is
        # spec stage s + 1; the last block is the spec's last stage)
        self.names = names = [f"blocks_{s + 1}_{j}" for s, j in space.block_slots()]
        optional = {names[i] for i, (s, j) in enumerate(space.block_slots())
                    if s < space.num_stages and j >= space.depths[0]}
        self.table: dict[tuple, tuple[int, int, int]] = {}
        self.units: dict[tuple, tuple[int, list[tuple]]] = {}   # ops, buffers first used there
        self.exact_buffers = True
        fixed = None
        for k in space.kernels:
            for e in space.expands:
                graph = graph_from_spec(space.spec(Arch((k,) * n, (e,) * n, (d,) * space.num_stages)))
                unit = [op.name.split("/")[0] for op in graph.ops]
                start: dict[str, int] = {}
                for p, u in enumerate(unit):
                    start.setdefault(u, p)
                live = [0] * len(unit)
                bufs: dict[str, list[tuple]] = {u: [] for u in start}
                for b in chain_buffers(graph, target):
                    size = (b.size + 15) & -16                           # DEFAULT_ALIGNMENT
                    for p in range(b.first_use, b.last_use + 1):
                        live[p] += size
                    u, lu = unit[b.first_use], unit[b.last_use]
                    if lu != u and lu in optional:
                        self.exact_buffers = False                      # ends in a skippable block
                    bufs[u].append((b.name, b.size, b.first_use - start[u], lu,
                                    b.last_use - start[lu]))
                shape = {t.name: t.shape for t in graph.tensors}
                acc: dict[str, list[int]] = {}
                for p, op in enumerate(graph.ops):
                    a = acc.setdefault(unit[p], [0, 0, 0])
                    a[0] += OPS[op.kind].macs(op, shape[op.outputs[0]])
                    a[1] += op_flash_bytes(op)
                    a[2] = max(a[2], live[p])
                count = {u: unit.count(u) for u in start}
                for name in names:
                    self.table[(name, k, e)] = tuple(acc.pop(name))
                    self.units[(name, k, e)] = (count[name], bufs[name])
                rest = (sum(a[0] for a in acc.values()), sum(a[1] for a in acc.values()),
                        max(a[2] for a in acc.values()))
                if fixed is not None and rest != fixed:
                    raise RuntimeError(f"stage 1: the fixed layers of {space.name} differ between "
                                       f"sub-networks ({fixed} vs {rest}); the tables do not apply")
                fixed = rest
                self.head = [(u,) for u in acc if start[u] < start[names[0]]]
                self.tail = [(u,) for u in acc if start[u] > start[names[-1]]]
                for u in acc:
                    self.units[(u,)] = (count[u], bufs[u])
        self.fixed = fixed

    def blocks(self, arch) -> list[tuple]:
        """Table keys of the blocks ``arch`` (canonical) runs, in order."""
        d, depths = self.space.max_depth, arch.depths
        return [(self.names[i], k, e) for i, (k, e) in enumerate(zip(arch.kernels, arch.expands))
                if i // d >= len(depths) or i % d < depths[i // d]]

    def __call__(self, arch) -> tuple[int, int, int]:
        """``(macs, flash bytes, arena lower bound)`` of a canonical ``arch``."""
        macs, flash, lower = self.fixed
        table = self.table
        for key in self.blocks(arch):
            m, f, lo = table[key]
            macs += m
            flash += f
            if lo > lower:
                lower = lo
        return macs, flash, lower

    def buffers(self, arch) -> list[_Buf]:
        """The buffers ``memory.chain_buffers`` gives for ``arch``'s graph (same set; the
        placement does not depend on their order). Only when ``exact_buffers``."""
        units = self.units
        seq = self.head + self.blocks(arch) + self.tail
        start, p = {}, 0
        for key in seq:
            start[key[0]] = p
            p += units[key][0]
        out = []
        for key in seq:
            b0 = start[key[0]]
            out.extend(_Buf(name, size, b0 + rf, start[lu] + rl)
                       for name, size, rf, lu, rl in units[key][1])
        return out


def _peak(tables: _BlockTables, space: SearchSpace, arch, lower: int, target: str) -> int:
    """``peak_sram_bytes(space.spec(arch), target)``: greedy by size on the tables' buffers is
    what the planner tries first and keeps when it meets the lower bound; otherwise (rare) the
    graph is built and planned in full."""
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.buffers import plan_greedy_by_size
    from tinyjax.codegen.plan.graph_plan import peak_within

    if tables.exact_buffers:
        bufs = tables.buffers(arch)
        offsets = plan_greedy_by_size(bufs, 16)                          # DEFAULT_ALIGNMENT
        peak = max(o + ((b.size + 15) & -16) for o, b in zip(offsets, bufs))
        if peak <= lower:      # lower is a lower bound of these buffers (tests): the plan is kept
            return peak
    planned_lower, peak = peak_within(graph_from_spec(space.spec(arch)), math.inf, target)
    if planned_lower != lower:
        raise RuntimeError(f"stage 1: {space.name} {arch.key()}: the block tables give a lower "
                           f"bound of {lower} B, the planner {planned_lower} B (a bug)")
    return peak


def _patch_peak(space: SearchSpace, arch, sram_bytes: int, target: str, cap: float) -> int:
    """The peak of the patch plan the search would use (the least recomputation within ``cap``
    that fits ``sram_bytes``), or the layer-by-layer peak when none fits better."""
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.plan.patch import choose_patch_plan

    graph = graph_from_spec(space.spec(arch))
    layer = plan_graph(graph, target, verify=False).peak_bytes
    if graph.tensor(graph.inputs[0]).nbytes > sram_bytes:     # the image alone does not fit
        return layer
    pp = choose_patch_plan(graph, target, max_mac_overhead=cap, budget=sram_bytes, verify=False,
                           layer_peak_bytes=layer)
    return layer if pp is None else min(layer, pp.peak_bytes)


def evaluate_space(space: SearchSpace, sram_bytes: int, flash_bytes: int,
                   target: str = DEFAULT_TARGET, samples: int = 1000, seed: int = 0,
                   in_place: bool = True, patch: float | None = None) -> SpaceStats:
    """Sample ``samples`` sub-networks of ``space`` (generator seeded by :func:`space_seed`) and
    count those whose planned peak SRAM ≤ ``sram_bytes`` and flash ≤ ``flash_bytes`` (bytes) on
    ``target``: each verdict is ``codegen.memory.fits`` exactly (module docstring).
    ``in_place=False`` plans without in-place ops (the co-design benchmark's baseline).
    ``patch`` (a MAC-overhead cap): a sample whose layer-by-layer plan does not fit still fits when
    a patch schedule within the cap does (``codegen.patch.choose_patch_plan`` under the budget)."""
    from tinyjax.codegen.targets import get_target

    get_target(target)
    if samples < 1:
        raise TinyJaxError(f"stage 1 needs at least one sample per space, got {samples}")
    if not in_place:
        return _evaluate_layer_by_layer(space, sram_bytes, flash_bytes, target, samples, seed)
    tables = _BlockTables(space, target)
    rng = random.Random(space_seed(seed, space))
    fitting: list[int] = []
    min_peak = min_flash = math.inf
    for _ in range(samples):
        arch = space.sample(rng)
        macs, flash, lower = tables(arch)
        min_flash = min(min_flash, flash)
        flash_ok = flash <= flash_bytes
        # the peak (≥ lower) is needed where it decides the verdict or may be the smallest yet
        if patch is not None and flash_ok and lower > sram_bytes:
            peak = _patch_peak(space, arch, sram_bytes, target, patch)
            min_peak = min(min_peak, peak)
            if peak <= sram_bytes:
                fitting.append(macs)
            continue
        if lower > (sram_bytes if flash_ok else -1) and lower >= min_peak:
            continue
        peak = _peak(tables, space, arch, lower, target)
        min_peak = min(min_peak, peak)
        if flash_ok and peak <= sram_bytes:
            fitting.append(macs)
    smallest_peak, smallest_flash = _memory(space, space.smallest(), target)
    return SpaceStats(space.width, space.resolution, space.num_classes, sram_bytes, flash_bytes,
                      target, samples, seed, len(fitting), tuple(sorted(fitting)), int(min_peak),
                      int(min_flash), smallest_peak, smallest_flash)


def _cost(space: SearchSpace) -> float:
    return space.width * space.resolution ** 2        # big spaces first: better load balance


def run_stage1(spaces: Iterable[SearchSpace], sram_bytes: int, flash_bytes: int,
               target: str = DEFAULT_TARGET, samples: int = 1000, seed: int = 0,
               workers: int | None = None, done: Mapping[tuple[float, int], SpaceStats] | None = None,
               on_space: Callable[[SpaceStats], None] | None = None,
               in_place: bool = True, patch: float | None = None) -> list[SpaceStats]:
    """:func:`evaluate_space` for every space, in parallel; the stats in the order of ``spaces``.

    Args:
        workers: processes (default: the CPU count, at most one per space); 1 runs in this
            process.
        done: stats already computed, keyed by ``(width, resolution)`` (resume); an entry is reused
            only when it was made with the same classes, budgets, target, samples and seed.
        on_space: called in this process with each newly computed stats as it completes (the
            caller saves progress there).
    """
    from tinyjax.codegen.targets import get_target

    get_target(target)                     # a user mistake fails here, not in a worker
    if samples < 1:
        raise TinyJaxError(f"stage 1 needs at least one sample per space, got {samples}")
    spaces = list(spaces)
    done = dict(done or {})
    args = (sram_bytes, flash_bytes, target, samples, seed)
    if not in_place:   # the co-design baseline: its stats must never be taken for in-place ones
        done = {}
        args = (*args, False)
    elif patch is not None:
        args = (*args, True, float(patch))
    out: dict[tuple[float, int], SpaceStats] = {}
    todo = []
    for sp in spaces:
        prev = done.get((sp.width, sp.resolution))
        if prev is not None and prev.settings() == (sp.num_classes, *args[:5]):
            out[prev.key] = prev
        else:
            todo.append(sp)
    todo.sort(key=_cost, reverse=True)
    n = min(workers or os.cpu_count() or 1, len(todo))

    def finished(stats: SpaceStats) -> None:
        out[stats.key] = stats
        if on_space is not None:
            on_space(stats)

    if n <= 1:
        for sp in todo:
            finished(evaluate_space(sp, *args))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(evaluate_space, sp, *args) for sp in todo]
            try:
                for f in as_completed(futures):
                    finished(f.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    return [out[(sp.width, sp.resolution)] for sp in spaces]


def rank_key(s: SpaceStats) -> tuple:
    """Sort key of the criterion: larger mean MACs, then smaller peak, width, resolution."""
    return (-(s.mean_macs or 0.0), s.min_peak, s.width, s.resolution)


def choose_space(stats: Sequence[SpaceStats], min_fraction: float = DEFAULT_MIN_FRACTION
                 ) -> tuple[SpaceStats, str]:
    """The space stage 2 searches, and one line saying why (module docstring: the largest mean
    MACs of the fitting samples among spaces where at least ``min_fraction`` of them fit).

    Raises:
        TinyJaxError: no space qualifies; the message names the smallest peak (and flash) seen
            and the best fraction, i.e. how far the budget is from anything the grid reaches.
    """
    if not stats:
        raise TinyJaxError("stage 1 evaluated no space; give at least one width and resolution")
    if not 0 < min_fraction <= 1:
        raise TinyJaxError(f"the minimum fitting fraction must be in (0, 1], got {min_fraction}")
    ok = [s for s in stats if s.fitting and s.fraction >= min_fraction]
    s0 = stats[0]
    budget = f"{format_bytes(s0.sram_bytes)} SRAM and {format_bytes(s0.flash_bytes)} flash"
    if not ok:
        low = min(stats, key=lambda s: (min(s.min_peak, s.smallest_peak), s.width, s.resolution))
        peak = min(low.min_peak, low.smallest_peak)
        flash = min(min(s.min_flash, s.smallest_flash) for s in stats)
        best = max(stats, key=lambda s: s.fraction)
        raise TinyJaxError(
            f"no search space has {min_fraction:.0%} of its sub-networks within {budget} on "
            f"{s0.target}: the smallest planned peak is {format_bytes(peak)} ({low.label}), the "
            f"smallest flash {format_bytes(flash)}, the best fraction {best.fraction:.1%} "
            f"({best.label}); raise the budget or lower the minimum fraction")
    chosen = min(ok, key=rank_key)
    runner = sorted(ok, key=rank_key)[1:2]
    reason = (f"{chosen.label}: mean {chosen.mean_macs / 1e6:.1f}M MACs over the "
              f"{chosen.fitting} of {chosen.samples} sampled sub-networks ({chosen.fraction:.0%}) "
              f"within {budget}, the largest of the {len(ok)} spaces where at least "
              f"{min_fraction:.0%} fit")
    if runner:
        r = runner[0]
        reason += f" (next: {r.label}, {r.mean_macs / 1e6:.1f}M, {r.fraction:.0%} fit)"
    return chosen, reason


def smallest_peak(spaces: Sequence[SearchSpace], target: str = DEFAULT_TARGET) -> tuple[int, float, int]:
    """``(peak bytes, width, resolution)``: the smallest planned arena of the smallest
    sub-networks of ``spaces`` (``SearchSpace.smallest()`` of each; the peak is not always
    monotone in width and resolution, so all are planned: about a millisecond each). A budget
    below it leaves stage 1 nothing to choose from."""
    peaks = [(_memory(sp, sp.smallest(), target)[0], sp.width, sp.resolution) for sp in spaces]
    if not peaks:
        raise TinyJaxError("the grid is empty; give at least one width and resolution")
    return min(peaks, key=lambda p: p[0])
