"""TinyNAS stage 2: evolutionary search over one :class:`~tinyjax.search.tinynas.space.SearchSpace`, every
candidate checked by the real memory plan before it is scored (MCUNet's co-design loop:
``for arch: if can_fit_memory(arch): acc = eval(arch)``).

The algorithm is OFA's (docs/papers.md): a population of ``population`` fitting archs; each
generation keeps the best ``parent_ratio`` of it as parents and fills the rest with children, a
``mutation_ratio`` share by mutation of one random parent and the others by crossover of two
different ones.
Mutation resamples each block's (kernel, expansion) with probability ``mutate_prob`` (one coin per
block, as OFA) and each stage's depth with the same probability; crossover takes every gene from
either parent at random. Blocks a parent's depth skips carry no gene (``SearchSpace.canonical``
sets them to the largest choice), so a child takes a block's gene from a parent in which that
block runs, and a block that no parent runs but the child's depth turns on gets a random gene (as
OFA's hidden, never-evaluated genes are random). Resolution is fixed by stage 1 (the space's
``resolution``), so OFA's resolution mutation does not apply here.

Constraint first, then score: a child that does not fit the budget (:class:`MemoryCheck`, the
codegen plan the C arena uses) is redrawn, up to ``max_tries`` times; a try is also redrawn when
it is already in the new population (duplicates narrow the search). When no try is new and
fitting, the child is the first fitting try, else a copy of its (first) parent (which fits).
Differences from OFA's code, deliberately: OFA makes ``population`` children and keeps only the
first ``population - parents`` (so about 2/3 of them are mutants); here exactly
``population - parents`` children are made and ``mutation_ratio`` of them are mutants. OFA loops
forever on a child that never fits; here the tries are bounded. OFA may cross a parent with
itself (which only copies it); here the two parents differ.

``score(archs) -> list[float]`` is batched (the caller evaluates many supernet sub-networks at
once) and is called once per generation with the archs never scored before: an arch is scored at
most once in a run (:class:`EvolutionState` keeps every score). The run is deterministic for a
seed: generation ``g`` draws only from ``random.Random(f"{seed}-{g}")``, parents are chosen by
(score, arch key), so a run resumed from a saved state equals an uninterrupted one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

from tinyjax.devices import DEFAULT_TARGET
from tinyjax.errors import EvolutionError
from tinyjax.search.tinynas.space import Arch, SearchSpace
from tinyjax.units import format_kb

__all__ = ["Best", "EvolutionConfig", "EvolutionError", "EvolutionState", "Fit", "MemoryCheck",
           "Record", "crossover", "evolve", "mutate"]



class FitMismatchError(RuntimeError):
    """:meth:`MemoryCheck.verify` found that a reported fit does not hold (a bug, not a user
    mistake)."""


# -- the constraint ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Fit:
    """What the memory check found for one arch: ``fits`` the budget, its planned arena
    ``peak_sram_bytes`` (input image, activations, scratch, alignment), int8 constant
    ``flash_bytes`` (weights, biases, requantisation, tables; no code), ``macs`` and ``params``."""

    fits: bool
    peak_sram_bytes: int
    flash_bytes: int
    macs: int
    params: int


class MemoryCheck:
    """Does an arch of ``space`` fit ``sram_bytes`` of arena (and ``flash_bytes`` of constants,
    unless None) on ``target``? The plan is codegen's (``memory.plan_graph`` of
    ``graph_from_spec``, the peak ``memory.peak_sram_bytes`` reports and the arena the generated C
    uses), so search and firmware agree; results are cached per arch."""

    def __init__(self, space: SearchSpace, sram_bytes: int, flash_bytes: int | None = None,
                 target: str = DEFAULT_TARGET, in_place: bool = True, patch: bool = False,
                 max_mac_overhead: float = 0.15) -> None:
        from tinyjax.codegen.targets import get_target

        get_target(target)
        if int(sram_bytes) <= 0 or (flash_bytes is not None and int(flash_bytes) <= 0):
            raise EvolutionError(f"memory budgets must be positive byte counts, got SRAM {sram_bytes!r}"
                                 f" and flash {flash_bytes!r}")
        self.space, self.target = space, target
        self.in_place = bool(in_place)   # False: the layer-by-layer baseline of the co-design benchmark
        # patch: a network whose layer-by-layer plan does not fit may use a patch schedule (the
        # least recomputation whose plan fits, at most max_mac_overhead more MACs)
        self.patch, self.max_mac_overhead = bool(patch), float(max_mac_overhead)
        self.sram_bytes = int(sram_bytes)
        self.flash_bytes = None if flash_bytes is None else int(flash_bytes)
        self._cache: dict[Arch, Fit] = {}

    def __repr__(self) -> str:
        flash = "unbounded" if self.flash_bytes is None else format_kb(self.flash_bytes)
        return (f"MemoryCheck({self.space.name}, SRAM {format_kb(self.sram_bytes)}, flash {flash}, "
                f"{self.target})")

    def budget(self) -> str:
        """The budget in words, for messages."""
        flash = "" if self.flash_bytes is None else f" and {format_kb(self.flash_bytes)} flash"
        return f"{format_kb(self.sram_bytes)} SRAM{flash} on {self.target}"

    def _peak(self, graph, layer_peak: int, verify: bool) -> int:
        """The peak the budget is checked against: the layer-by-layer plan's, or with ``patch`` the
        patch plan's where that one fits and the layer-by-layer one does not."""
        if not self.patch or layer_peak <= self.sram_bytes:
            return layer_peak
        from tinyjax.codegen.plan.patch import choose_patch_plan

        pp = choose_patch_plan(graph, self.target, max_mac_overhead=self.max_mac_overhead,
                               budget=self.sram_bytes, verify=verify, layer_peak_bytes=layer_peak)
        return layer_peak if pp is None else min(layer_peak, pp.peak_bytes)

    def _fits(self, peak: int, flash: int) -> bool:
        return peak <= self.sram_bytes and (self.flash_bytes is None or flash <= self.flash_bytes)

    def __call__(self, arch: Arch) -> Fit:
        arch = self.space.canonical(arch)
        fit = self._cache.get(arch)
        if fit is None:
            from tinyjax.codegen.graph import graph_from_spec
            from tinyjax.codegen.plan.graph_plan import plan_graph
            from tinyjax.codegen.targets import flash_bytes
            from tinyjax.counting import count

            # what memory.peak_sram_bytes(spec) plans, on one graph shared with flash_bytes
            spec = self.space.spec(arch)
            graph = graph_from_spec(spec)
            peak = self._peak(graph, plan_graph(graph, self.target, verify=False,
                                                in_place=self.in_place).peak_bytes, False)
            flash = flash_bytes(graph)
            stats = count(spec)
            fit = Fit(self._fits(peak, flash), peak, flash, stats.macs, stats.params)
            self._cache[arch] = fit
        return fit

    def verify(self, arch: Arch) -> Fit:
        """Plan ``arch`` again with the planner's verifier on (``plan_graph(..., verify=True)``:
        no live bytes overlap, every buffer inside the peak) and re-check the budget. Returns the
        verified Fit; raises :class:`FitMismatchError` when it disagrees with :meth:`__call__`."""
        from tinyjax.codegen.graph import graph_from_spec
        from tinyjax.codegen.plan.graph_plan import plan_graph
        from tinyjax.codegen.targets import flash_bytes

        reported = self(arch)
        graph = graph_from_spec(self.space.spec(arch))
        peak = self._peak(graph, plan_graph(graph, self.target, verify=True,
                                            in_place=self.in_place).peak_bytes, True)
        flash = flash_bytes(graph)
        fit = Fit(self._fits(peak, flash), peak, flash, reported.macs, reported.params)
        if fit != reported:
            raise FitMismatchError(f"{self.space.canonical(arch).key()}: the check reported {reported} "
                                   f"but the verified plan gives {fit} (budget {self.budget()})")
        return fit

    def sample(self, rng: random.Random, max_tries: int = 1000) -> Arch:
        """A random arch that fits, by rejection sampling (``space.sample`` until one fits, at
        most ``max_tries`` draws). Raises :class:`EvolutionError` naming the smallest peak found
        when none does."""
        smallest: tuple[int, Arch] | None = None
        for _ in range(max_tries):
            arch = self.space.sample(rng)
            fit = self(arch)
            if fit.fits:
                return arch
            if smallest is None or fit.peak_sram_bytes < smallest[0]:
                smallest = (fit.peak_sram_bytes, arch)
        tiny = self.space.smallest()
        fit = self(tiny)
        if smallest is None or fit.peak_sram_bytes <= smallest[0]:
            smallest = (fit.peak_sram_bytes, tiny)
        hint = ("even its smallest sub-network does not fit" if not fit.fits
                else "only rare sub-networks fit")
        raise EvolutionError(
            f"no sub-network of {self.space.name} fits {self.budget()} in {max_tries} random draws "
            f"({hint}); the smallest peak found is {format_kb(smallest[0])} ({smallest[1].key()}, flash "
            f"{format_kb(self(smallest[1]).flash_bytes)}): raise the budget or choose a smaller width or "
            f"resolution in stage 1")

    def to_dict(self) -> dict:
        return {"sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes, "target": self.target}


# -- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvolutionConfig:
    """OFA's evolution settings (docs/papers.md) as defaults: ``population`` archs, ``generations``
    iterations after the random first population, the best ``parent_ratio`` kept as parents,
    ``mutation_ratio`` of the children by mutation (the rest by crossover), ``mutate_prob`` per
    gene, ``max_tries`` draws per child (and per random arch × 10) before giving up."""

    population: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.1
    max_tries: int = 100

    def __post_init__(self):
        for name, low in (("population", 2), ("generations", 0), ("max_tries", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise EvolutionError(f"evolution {name} must be an integer ≥ {low}, got {v!r}")
        for name in ("parent_ratio", "mutation_ratio", "mutate_prob"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise EvolutionError(f"evolution {name} must be a number in [0, 1], got {v!r}")

    @property
    def num_parents(self) -> int:
        return min(self.population - 1, max(1, round(self.parent_ratio * self.population)))

    @property
    def num_mutations(self) -> int:
        return round(self.mutation_ratio * (self.population - self.num_parents))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> EvolutionConfig:
        """From a mapping or an ``ml_collections.ConfigDict`` of (some of) the fields."""
        d = dict(d.to_dict() if hasattr(d, "to_dict") else d)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise EvolutionError(f"unknown evolution setting(s) {', '.join(unknown)}; valid: "
                                 f"{', '.join(sorted(names))}")
        return cls(**d)


# -- the state ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One scored candidate: its (canonical) ``arch``, ``score``, the memory check's figures and
    the ``generation`` it was first scored in."""

    arch: Arch
    score: float
    macs: int
    params: int
    peak_sram_bytes: int
    flash_bytes: int
    generation: int

    @property
    def fit(self) -> Fit:
        return Fit(True, self.peak_sram_bytes, self.flash_bytes, self.macs, self.params)

    def to_dict(self) -> dict:
        return {"arch": self.arch.to_dict(), "key": self.arch.key(), "score": self.score,
                "macs": self.macs, "params": self.params, "peak_sram_bytes": self.peak_sram_bytes,
                "flash_bytes": self.flash_bytes, "generation": self.generation}

    @classmethod
    def from_dict(cls, d: Mapping) -> Record:
        return cls(Arch.from_dict(d["arch"]), float(d["score"]), int(d["macs"]), int(d["params"]),
                   int(d["peak_sram_bytes"]), int(d["flash_bytes"]), int(d["generation"]))


@dataclass(frozen=True)
class Best:
    """The best scored arch of a run, its score and its memory :class:`Fit`."""

    arch: Arch
    score: float
    fit: Fit


@dataclass
class EvolutionState:
    """Where a search stands after ``generation`` (-1: nothing finished; 0: the random first
    population). ``records`` holds every scored candidate in scoring order, ``population`` the
    current generation (best first; saved as indices into ``records``), ``history`` one summary
    per finished generation: ``best`` and ``mean`` score of the population, ``scored`` (new archs
    scored), ``rejected`` (tries that did not fit) and ``evaluated`` (archs scored so far). JSON
    round-trip with :meth:`to_dict` / :meth:`from_dict`."""

    space: dict
    config: dict
    seed: int
    constraint: dict
    generation: int = -1
    population: list[Record] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    @property
    def best(self) -> Best:
        if not self.records:
            raise EvolutionError("the search has scored no arch yet")
        r = max(self.records, key=lambda r: (r.score, -r.peak_sram_bytes))
        return Best(r.arch, r.score, r.fit)

    @property
    def best_scores(self) -> list[float]:
        """Best score of the population per finished generation."""
        return [h["best"] for h in self.history]

    @property
    def mean_scores(self) -> list[float]:
        """Mean score of the population per finished generation."""
        return [h["mean"] for h in self.history]

    def to_dict(self) -> dict:
        index = {r.arch: i for i, r in enumerate(self.records)}
        return {"space": dict(self.space), "config": dict(self.config), "seed": self.seed,
                "constraint": dict(self.constraint), "generation": self.generation,
                "population": [index[r.arch] for r in self.population],
                "records": [r.to_dict() for r in self.records],
                "history": [dict(h) for h in self.history]}

    @classmethod
    def from_dict(cls, d: Mapping) -> EvolutionState:
        try:
            records = [Record.from_dict(r) for r in d["records"]]
            population = [records[i] for i in d["population"]]
            return cls(dict(d["space"]), dict(d["config"]), int(d["seed"]), dict(d["constraint"]),
                       int(d["generation"]), population, records, [dict(h) for h in d["history"]])
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise EvolutionError(f"not a saved evolution state ({type(e).__name__}: {e}); start the "
                                 f"search afresh or pass the file the search wrote") from None


# -- genetic operators --------------------------------------------------------------------------
def _active(space: SearchSpace, arch: Arch) -> list[bool]:
    """Whether each block of the supernet runs in ``arch`` (the last block always does)."""
    return [s == space.num_stages or j < arch.depths[s] for s, j in space.block_slots()]


def _fill(space: SearchSpace, ks: list, es: list, depths: Sequence[int], known: Sequence[bool],
          rng: random.Random) -> Arch:
    """The canonical arch of these genes, with random genes for running blocks not ``known``."""
    for i, (s, j) in enumerate(space.block_slots()):
        if not known[i] and (s == space.num_stages or j < depths[s]):
            ks[i], es[i] = rng.choice(space.kernels), rng.choice(space.expands)
    return space.canonical(Arch(tuple(ks), tuple(es), tuple(depths)))


def mutate(space: SearchSpace, arch: Arch, prob: float, rng: random.Random) -> Arch:
    """OFA's mutation: each block's (kernel, expansion) resampled with probability ``prob``, then
    each stage's depth; blocks a deeper stage turns on get random genes."""
    arch = space.canonical(arch)
    ks, es = list(arch.kernels), list(arch.expands)
    known = _active(space, arch)
    for i in range(space.num_blocks):
        if rng.random() < prob:
            ks[i], es[i] = rng.choice(space.kernels), rng.choice(space.expands)
    depths = [rng.choice(space.depths) if rng.random() < prob else d for d in arch.depths]
    return _fill(space, ks, es, depths, known, rng)


def crossover(space: SearchSpace, a: Arch, b: Arch, rng: random.Random) -> Arch:
    """OFA's crossover: every gene (kernel, expansion, depth) from either parent at random; a
    block's genes come from a parent in which that block runs (random genes if neither does)."""
    a, b = space.canonical(a), space.canonical(b)
    run_a, run_b = _active(space, a), _active(space, b)
    ks, es = [], []
    for i in range(space.num_blocks):
        for genes, pa, pb in ((ks, a.kernels, b.kernels), (es, a.expands, b.expands)):
            if run_a[i] and run_b[i]:
                genes.append(rng.choice((pa[i], pb[i])))
            else:
                genes.append(pa[i] if run_a[i] else pb[i])
    depths = [rng.choice(pair) for pair in zip(a.depths, b.depths)]
    known = [x or y for x, y in zip(run_a, run_b)]
    return _fill(space, ks, es, depths, known, rng)


# -- the search ---------------------------------------------------------------------------------
def _draw(check: MemoryCheck, make: Callable[[], Arch], taken: set, tries: int) -> tuple[Arch | None, int]:
    """Up to ``tries`` archs from ``make``: the first that fits and is not in ``taken``, else the
    first that fits, else None; with the number of tries that did not fit."""
    first, rejected = None, 0
    for _ in range(tries):
        arch = check.space.canonical(make())
        if not check(arch).fits:
            rejected += 1
        elif arch not in taken:
            return arch, rejected
        elif first is None:
            first = arch
    return first, rejected


def _first_population(check: MemoryCheck, cfg: EvolutionConfig, rng: random.Random) -> tuple[list, int]:
    archs: list[Arch] = []
    rejected = 0
    for _ in range(cfg.population):
        arch, r = _draw(check, lambda: check.space.sample(rng), set(archs), cfg.max_tries)
        rejected += r
        archs.append(arch if arch is not None else check.sample(rng, 10 * cfg.max_tries))
    return archs, rejected


def _children(check: MemoryCheck, cfg: EvolutionConfig, parents: Sequence[Arch],
              rng: random.Random) -> tuple[list, int]:
    space, n = check.space, len(parents)
    taken, children, rejected = set(parents), [], 0
    for i in range(cfg.population - n):
        if i < cfg.num_mutations:
            p = parents[rng.randrange(n)]
            arch, r = _draw(check, lambda p=p: mutate(space, p, cfg.mutate_prob, rng), taken, cfg.max_tries)
        else:
            i_p, i_q = rng.sample(range(n), 2) if n > 1 else (0, 0)   # two different parents
            p, q = parents[i_p], parents[i_q]
            arch, r = _draw(check, lambda p=p, q=q: crossover(space, p, q, rng), taken, cfg.max_tries)
        rejected += r
        arch = p if arch is None else arch
        children.append(arch)
        taken.add(arch)
    return children, rejected


def _resume(state, space: SearchSpace, check: MemoryCheck, cfg: EvolutionConfig, seed: int) -> EvolutionState:
    state = EvolutionState.from_dict(state if isinstance(state, Mapping) else state.to_dict())
    old_cfg = {k: v for k, v in state.config.items() if k != "generations"}
    new_cfg = {k: v for k, v in cfg.to_dict().items() if k != "generations"}
    for what, old, new in (("space", state.space, space.to_dict()), ("settings", old_cfg, new_cfg),
                           ("seed", state.seed, seed), ("budget", state.constraint, check.to_dict())):
        if old != new:
            raise EvolutionError(f"the saved search has another {what} (saved {old}, now {new}); resume it "
                                 f"with its own {what} or start afresh in a new work directory")
    state.config = cfg.to_dict()
    return state


def evolve(space: SearchSpace, score: Callable[[list[Arch]], Sequence[float]], check: MemoryCheck,
           cfg: EvolutionConfig | None = None, seed: int = 0,
           state: EvolutionState | Mapping | None = None,
           on_generation: Callable[[EvolutionState], None] | None = None) -> EvolutionState:
    """Run (or continue) the evolutionary search of ``space`` under ``check``'s budget.

    Args:
        space: the space stage 1 chose (its resolution is fixed).
        score: ``score(archs) -> scores`` (higher is better, e.g. supernet top-1 on held-out
            data), called once per generation with the new archs only; all fit the budget.
        check: the :class:`MemoryCheck` of ``space``.
        cfg: settings (OFA's by default).
        seed: the run's seed; generation ``g`` draws from ``random.Random(f"{seed}-{g}")``.
        state: a saved state (an :class:`EvolutionState` or its ``to_dict()``) of the same space,
            seed, settings (``generations`` may differ) and budget: the search continues after
            its last finished generation and ends as an uninterrupted run would.
        on_generation: called with the state after each generation (to save it, show progress).

    Returns the final :class:`EvolutionState` (``.best``, ``.records``, ``.history``).
    Raises :class:`EvolutionError` when nothing fits, on a mismatched state or bad scores.
    """
    cfg = cfg or EvolutionConfig()
    if check.space != space:
        raise EvolutionError(f"the memory check is for {check.space.name}, the search for {space.name}; "
                             f"build MemoryCheck(space, ...) with the searched space")
    if state is None:
        state = EvolutionState(space.to_dict(), cfg.to_dict(), int(seed), check.to_dict())
    else:
        state = _resume(state, space, check, cfg, int(seed))
    scored = {r.arch: r for r in state.records}
    while state.generation < cfg.generations:
        g = state.generation + 1
        rng = random.Random(f"{seed}-{g}")
        if g == 0:
            parents: list[Arch] = []
            children, rejected = _first_population(check, cfg, rng)
        else:
            parents = [r.arch for r in state.population[:cfg.num_parents]]
            children, rejected = _children(check, cfg, parents, rng)
        new = list(dict.fromkeys(a for a in children if a not in scored))
        if new:
            values = list(score(list(new)))
            if len(values) != len(new):
                raise EvolutionError(f"score returned {len(values)} values for {len(new)} archs; it "
                                     f"must return one score per arch, in order")
            for arch, v in zip(new, values):
                v = float(v)
                if not math.isfinite(v):
                    raise EvolutionError(f"score of {arch.key()} is {v}; scores must be finite numbers")
                fit = check(arch)
                scored[arch] = Record(arch, v, fit.macs, fit.params, fit.peak_sram_bytes,
                                      fit.flash_bytes, g)
                state.records.append(scored[arch])
        state.population = sorted((scored[a] for a in parents + children),
                                  key=lambda r: (-r.score, r.arch.key()))
        values = [r.score for r in state.population]
        state.history.append({"generation": g, "best": values[0], "mean": sum(values) / len(values),
                              "scored": len(new), "rejected": rejected, "evaluated": len(state.records)})
        state.generation = g
        if on_generation is not None:
            on_generation(state)
    return state
