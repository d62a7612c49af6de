"""TinyNAS stage 2's evolution: the constraint binds, the search improves and beats random search,
every recorded fit is confirmed by the verified plan, a resumed run equals an uninterrupted one,
no arch is scored twice; the genetic operators keep archs valid; Pareto front and pictures.

The score is synthetic (no training): log MACs plus a small hash-based noise, so bigger networks
score higher and the memory budget is what stops the search."""

from __future__ import annotations

import hashlib
import io
import json
import math
import random

import pytest

from tinyjax.counting import count
from tinyjax.errors import TinyJaxError
from tinyjax.search.tinynas.evolution import (
    EvolutionConfig,
    EvolutionError,
    EvolutionState,
    Fit,
    FitMismatchError,
    MemoryCheck,
    crossover,
    evolve,
    mutate,
)
from tinyjax.search.tinynas.evolution_plots import pareto_figure, pareto_front, progress_figure
from tinyjax.search.tinynas.space import Arch, SearchSpace

SPACE = SearchSpace(0.3, 64, num_classes=10)
CFG = EvolutionConfig(population=16, generations=10, max_tries=30)
SEED = 3


def noise(arch: Arch) -> float:
    return int(hashlib.sha256(arch.key().encode()).hexdigest()[:8], 16) / 2 ** 32


def synthetic_score(space: SearchSpace):
    def score(archs):
        return [math.log(count(space.spec(a)).macs) + 0.05 * noise(a) for a in archs]
    return score


@pytest.fixture(scope="module")
def budget() -> int:
    # just below the supernet's largest arch: the constraint binds
    return MemoryCheck(SPACE, 1 << 30)(SPACE.largest()).peak_sram_bytes - 1


@pytest.fixture(scope="module")
def run(budget):
    check = MemoryCheck(SPACE, budget)
    calls: list[list[Arch]] = []
    saved: dict[int, str] = {}
    score = synthetic_score(SPACE)

    def counting_score(archs):
        calls.append(list(archs))
        return score(archs)

    def on_generation(state):
        saved[state.generation] = json.dumps(state.to_dict())

    state = evolve(SPACE, counting_score, check, CFG, SEED, on_generation=on_generation)
    return state, check, calls, saved


def test_the_budget_binds_and_nothing_recorded_exceeds_it(run, budget):
    state, check, _, _ = run
    assert not check(SPACE.largest()).fits
    assert sum(h["rejected"] for h in state.history) > 0       # some tries did not fit
    assert len(state.records) > CFG.population
    for r in state.records:
        assert r.peak_sram_bytes <= budget and check(r.arch).fits
    assert all(r.peak_sram_bytes <= budget for r in state.population)
    assert state.best.fit.fits and state.best.fit.peak_sram_bytes <= budget


def test_verify_agrees_with_the_check_on_every_record(run):
    state, check, _, _ = run
    for r in state.records:
        fit = check.verify(r.arch)
        assert fit == check(r.arch) == r.fit


def test_the_check_is_the_codegen_plan(budget):
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes
    from tinyjax.codegen.targets import flash_bytes

    check, rng = MemoryCheck(SPACE, budget, flash_bytes=300_000), random.Random(5)
    for arch in [SPACE.largest(), SPACE.smallest()] + [SPACE.sample(rng) for _ in range(4)]:
        spec = SPACE.spec(arch)
        fit, flash = check(arch), flash_bytes(graph_from_spec(spec))
        assert fit.peak_sram_bytes == peak_sram_bytes(spec, "cortex-m7") and fit.flash_bytes == flash
        assert (fit.macs, fit.params) == (count(spec).macs, count(spec).params)
        assert fit.fits == (fit.peak_sram_bytes <= budget and flash <= 300_000)
    assert not check(SPACE.largest()).fits and check(SPACE.smallest()).fits


def test_verify_raises_when_a_reported_fit_is_wrong(budget):
    check = MemoryCheck(SPACE, budget)
    arch = SPACE.smallest()
    true = check(arch)
    check._cache[arch] = Fit(True, true.peak_sram_bytes - 8, true.flash_bytes, true.macs, true.params)
    with pytest.raises(FitMismatchError, match="verified plan"):
        check.verify(arch)


def test_search_improves_and_beats_random_search(run):
    state, check, _, _ = run
    best = state.best_scores
    assert len(best) == CFG.generations + 1
    assert all(b1 >= b0 for b0, b1 in zip(best, best[1:]))          # parents are kept
    assert best[-1] > best[0]
    assert state.mean_scores[-1] > state.mean_scores[0]
    assert state.best.score == max(r.score for r in state.records) == best[-1]
    # random search with as many scored (fitting) candidates
    rng, score = random.Random(0), synthetic_score(SPACE)
    archs = {check.sample(rng) for _ in range(len(state.records))}
    assert state.best.score > max(score(sorted(archs, key=Arch.key)))


def test_every_arch_is_scored_once(run):
    state, _, calls, _ = run
    flat = [a for c in calls for a in c]
    assert len(flat) == len(set(flat)) == len(state.records)
    assert [r.arch for r in state.records] == flat
    assert all(calls)                                       # never called with nothing to score


def test_scores_are_not_recomputed_for_known_archs():
    # 2^6 archs: children often repeat an arch scored in an earlier generation
    space = SearchSpace(0.3, 64, num_classes=10, kernels=(3,), expands=(3, 6), depths=(1,))
    check = MemoryCheck(space, 1 << 30)
    seen: list[Arch] = []
    score = synthetic_score(space)

    def counting_score(archs):
        seen.extend(archs)
        return score(archs)

    cfg = EvolutionConfig(population=8, generations=6, mutate_prob=0.5, max_tries=3)
    state = evolve(space, counting_score, check, cfg, seed=1)
    assert len(seen) == len(set(seen)) == len(state.records)
    children = cfg.generations * (cfg.population - cfg.num_parents)
    assert sum(h["scored"] for h in state.history[1:]) < children   # some children were known


def test_resume_equals_an_uninterrupted_run(run, budget):
    state, _, _, saved = run
    g = 4
    resumed_calls = []
    score = synthetic_score(SPACE)

    def counting_score(archs):
        resumed_calls.append(archs)
        return score(archs)

    saved_state = EvolutionState.from_dict(json.loads(saved[g]))
    assert saved_state.generation == g
    resumed = evolve(SPACE, counting_score, MemoryCheck(SPACE, budget), CFG, SEED, state=saved_state)
    assert resumed.to_dict() == state.to_dict()
    assert sum(len(c) for c in resumed_calls) == sum(h["scored"] for h in state.history[g + 1:])
    assert saved_state.generation == g                     # the caller's state is not changed


def test_seed_changes_the_run_and_a_mismatched_state_is_refused(run, budget):
    _, check, _, saved = run
    other = evolve(SPACE, synthetic_score(SPACE), check, EvolutionConfig(population=16, generations=0,
                                                                          max_tries=30), SEED + 1)
    first = EvolutionState.from_dict(json.loads(saved[0]))
    assert {r.arch for r in other.population} != {r.arch for r in first.population}
    with pytest.raises(EvolutionError, match="seed"):
        evolve(SPACE, synthetic_score(SPACE), check, CFG, SEED + 1, state=json.loads(saved[2]))
    with pytest.raises(EvolutionError, match="budget"):
        evolve(SPACE, synthetic_score(SPACE), MemoryCheck(SPACE, budget - 1024), CFG, SEED,
               state=json.loads(saved[2]))


def test_state_round_trips_through_json(run):
    state, _, _, _ = run
    back = EvolutionState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert back.to_dict() == state.to_dict()
    assert back.best == state.best
    with pytest.raises(TinyJaxError, match="not a saved evolution state"):
        EvolutionState.from_dict({"records": []})


def test_operators_keep_archs_valid():
    rng = random.Random(0)
    for _ in range(200):
        a, b = SPACE.sample(rng), SPACE.sample(rng)
        for child in (mutate(SPACE, a, 0.3, rng), crossover(SPACE, a, b, rng)):
            assert SPACE.canonical(child) == child
    a = SPACE.sample(rng)
    assert mutate(SPACE, a, 0.0, rng) == a
    assert crossover(SPACE, a, a, rng) == a
    # crossover takes each running block's genes from a parent that runs it
    small = SPACE.canonical(Arch((3,) * SPACE.num_blocks, (3.0,) * SPACE.num_blocks, (2,) * 5))
    big = SPACE.canonical(Arch((5,) * SPACE.num_blocks, (4.0,) * SPACE.num_blocks, (4,) * 5))
    for _ in range(50):
        c = crossover(SPACE, small, big, rng)
        for i, (s, j) in enumerate(SPACE.block_slots()):
            if s < 5 and 2 <= j < c.depths[s]:        # runs in big only: never the skipped k7/e6
                assert (c.kernels[i], c.expands[i]) == (5, 4.0)
    # a deeper stage by mutation turns blocks on with random genes, not always the largest
    grown = [mutate(SPACE, small, 1.0, rng) for _ in range(50)]
    new_genes = {(c.kernels[i], c.expands[i]) for c in grown
                 for i, (s, j) in enumerate(SPACE.block_slots()) if s < 5 and 2 <= j < c.depths[s]}
    assert len(new_genes) > 1


def test_a_budget_nothing_fits_is_a_clear_error():
    check = MemoryCheck(SPACE, 2048)
    with pytest.raises(EvolutionError, match=r"no sub-network of tinynas_w0.3_r64 fits 2.0 kB SRAM.*"
                                             r"smallest peak found is \d+\.\d kB"):
        evolve(SPACE, synthetic_score(SPACE), check, EvolutionConfig(population=4, generations=1,
                                                                      max_tries=5), 0)


def test_bad_settings_and_scores_are_refused(budget):
    with pytest.raises(EvolutionError, match="population"):
        EvolutionConfig(population=1)
    with pytest.raises(EvolutionError, match="mutate_prob"):
        EvolutionConfig(mutate_prob=1.5)
    with pytest.raises(EvolutionError, match="unknown evolution setting"):
        EvolutionConfig.from_dict({"populaton": 10})
    from ml_collections import ConfigDict

    assert EvolutionConfig.from_dict(ConfigDict({"population": 20})).population == 20
    cfg = EvolutionConfig(population=4, generations=0)
    check = MemoryCheck(SPACE, budget)
    with pytest.raises(EvolutionError, match="one score per arch"):
        evolve(SPACE, lambda archs: [1.0], check, cfg)
    with pytest.raises(EvolutionError, match="finite"):
        evolve(SPACE, lambda archs: [float("nan")] * len(archs), check, cfg)
    with pytest.raises(EvolutionError, match="memory check is for"):
        evolve(SearchSpace(0.4, 64), lambda archs: [0.0] * len(archs), check, cfg)


def test_pareto_front_on_a_hand_made_list():
    pts = [(100, 0.5), (120, 0.4), (120, 0.6), (150, 0.6), (90, 0.3), (200, 0.7), (100, 0.55), (80, 0.1)]
    records = [{"peak_sram_bytes": p, "score": s} for p, s in pts]
    front = pareto_front(records)
    assert [(r["peak_sram_bytes"], r["score"]) for r in front] == [
        (80, 0.1), (90, 0.3), (100, 0.55), (120, 0.6), (200, 0.7)]
    assert pareto_front([]) == []


def test_figures(run, budget):
    state, _, _, _ = run
    fig = progress_figure(state)
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    assert list(lines["best"].get_ydata()) == state.best_scores
    assert list(lines["mean"].get_ydata()) == state.mean_scores
    fig = pareto_figure([r.to_dict() for r in state.records], budget)
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    front = pareto_front(state.records)
    assert list(lines["front"].get_ydata()) == [r.score for r in front]
    assert lines["budget"].get_xdata()[0] == pytest.approx(budget / 1024)
    assert max(lines["front"].get_xdata()) <= budget / 1024
    assert len(ax.collections[0].get_offsets()) == len(state.records)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
