"""The stages of :func:`tinyjax.search.tinynas.run_search`, one function each (see that module)."""

from __future__ import annotations

import json
import sys
import time

from tinyjax.errors import SearchError, Stopped
from tinyjax.files import write_atomic
from tinyjax.progress import Progress
from tinyjax.search.tinynas.space import BASE_CHANNELS, STAGE_STRIDES, SearchSpace
from tinyjax.units import format_bytes, format_count


def _progress(stage: str, unit: str) -> Progress:
    return Progress(f"tinyjax.search [{stage}]", unit=unit, stream=sys.stderr)


def _spaces(cfg) -> list[SearchSpace]:
    s = cfg.space
    return [SearchSpace(float(w), int(r), int(cfg.data.num_classes), tuple(s.kernels), tuple(s.expands),
                        tuple(s.depths), stem_stride=int(s.stem_stride),
                        first_stride=int(s.get("first_stride", 1)),
                        stage_strides=tuple(s.get("stage_strides", STAGE_STRIDES)),
                        min_channels=int(s.get("min_channels", 8)),
                        base_channels=tuple(s.get("base_channels", BASE_CHANNELS)))
            for w in s.widths for r in s.resolutions]


def check_reachable(cfg, budget) -> None:
    """A budget below what the smallest network of the grid needs: one line naming that peak."""
    from tinyjax.search.tinynas.stage1 import smallest_peak

    peak, width, res = smallest_peak(_spaces(cfg), budget.target)
    if peak > budget.sram_bytes:
        raise SearchError(f"nothing in the search space fits {format_bytes(budget.sram_bytes)} of SRAM: "
                          f"its smallest network (width {width:g}, {res} px) needs a peak of "
                          f"{format_bytes(peak)} ({peak:,} B); give a budget of at least that")


# -- stage 1 --------------------------------------------------------------------------------------------

def stage1(cfg, budget, wd, log) -> SearchSpace:
    from tinyjax.search.tinynas import stage1 as s1

    if wd.done("stage1"):
        return SearchSpace.from_dict(wd.read_json("stage1.json")["chosen"])
    spaces = _spaces(cfg)
    saved = wd.read_json("stage1.json") if (wd.path / "stage1.json").is_file() else {"spaces": []}
    done = {(d["width"], d["resolution"]): s1.SpaceStats.from_dict(d) for d in saved["spaces"]}
    samples = int(cfg.stage1.samples)
    if budget.patch:     # a patch check plans up to tens of schedules: fewer samples per space
        samples = min(samples, int(cfg.stage1.get("patch_samples", samples)))
    log(f"stage 1: {len(spaces)} spaces x {samples} sub-networks, each planned for "
        f"{budget.target}{' (patch schedules allowed)' if budget.patch else ''} "
        f"({len(done)} already done)")
    results = dict(done)
    with _progress("stage 1", "space") as progress:
        progress.start(len(spaces), len(done))

        def on_space(stats) -> None:
            results[(stats.width, stats.resolution)] = stats
            wd.write_json("stage1.json", {"spaces": [x.to_dict() for x in results.values()]})
            progress.update(len(results), f"w{stats.width:g} r{stats.resolution}: "
                                          f"{100 * stats.fraction:.0f}% fit")

        stats = s1.run_stage1(spaces, budget.sram_bytes, budget.flash_bytes, budget.target,
                              samples=samples, seed=int(cfg.stage1.seed),
                              workers=int(cfg.stage1.get("workers", 0)) or None, done=done,
                              on_space=on_space, in_place=budget.in_place,
                              patch=budget.max_mac_overhead if budget.patch else None)
    chosen, reason = s1.choose_space(stats, float(cfg.stage1.min_fraction))
    space = next(s for s in spaces if (s.width, s.resolution) == (chosen.width, chosen.resolution))
    from tinyjax.search.tinynas.stage1_report import cdf_figure, table_markdown

    write_atomic(wd.path / "stage1.md", table_markdown(stats, chosen) + "\n")
    fig = cdf_figure(stats, chosen)
    fig.savefig(wd.path / "stage1_cdf.png", dpi=110)
    wd.write_json("stage1.json", {"spaces": [x.to_dict() for x in stats], "chosen": space.to_dict(),
                                  "reason": reason})
    log(f"stage 1: chose width {space.width:g} at {space.resolution} px: {reason}")
    wd.finish("stage1")
    return space


# -- data -----------------------------------------------------------------------------------------------

def search_resolution(cfg, space: SearchSpace) -> int:
    """The resolution the supernet trains and the evolution scores at: ``supernet.resolution``
    (a proxy, cheaper than the space's on 2 CPU cores) or the space's own when that is 0 or
    smaller. Memory is always planned at the space's resolution."""
    proxy = int(cfg.supernet.resolution)
    return space.resolution if proxy <= 0 else min(proxy, space.resolution)


def load_data(cfg, space: SearchSpace, log) -> dict:
    """uint8 image arrays at :func:`search_resolution`: ``train`` (the supernet's) and ``holdout``
    (the last ``data.holdout`` training images, which the evolution scores on)."""
    from tinyjax.search.tinynas.data import load_arrays

    t0 = time.time()
    res = search_resolution(cfg, space)
    train_x, train_y = load_arrays(cfg.data, "train", res)
    h = int(cfg.data.holdout)
    if not 0 < h < len(train_x):

        raise SearchError(f"data.holdout must be between 1 and {len(train_x) - 1}, got {h}")
    log(f"data: {len(train_x):,} training images at {res} px for the supernet ({h:,} held out for "
        f"the evolution; the space's resolution is {space.resolution} px) in {time.time() - t0:.0f} s")
    return {"train": (train_x[:-h], train_y[:-h]), "holdout": (train_x[-h:], train_y[-h:])}


# -- stage 2: supernet and evolution --------------------------------------------------------------------

def supernet(cfg, space: SearchSpace, data: dict, wd, log):
    """The supernet's weights: with ``supernet.largest_steps``, first the largest sub-network
    trained alone (``supernet_largest/``), then the sandwich from its weights (``supernet/``);
    each phase resumes from its own checkpoints."""
    from tinyjax.search.tinynas.supernet_train import train_supernet

    s = cfg.supernet
    init = None
    with _progress("supernet", "step") as progress:
        if int(s.largest_steps) > 0:
            first = s.copy_and_resolve_references()
            with first.unlocked():
                first.k, first.steps, first.distill = 1, int(s.largest_steps), False
            if not wd.done("supernet"):
                log(f"supernet: {space.name}, first its largest sub-network alone, {first.steps} steps of "
                    f"{s.batch_size} images")
            init = train_supernet(space, first, data["train"], wd.path / "supernet_largest", progress)
        if not wd.done("supernet"):
            log(f"supernet: {space.name}, {s.steps} steps of {s.batch_size} images, {s.k} sub-networks "
                f"per step (largest, smallest, random)"
                + ("; the largest teaches the others (in-place distillation)" if s.distill else ""))
        variables = train_supernet(space, s, data["train"], wd.path / "supernet", progress,
                                   init_variables=init)
    wd.finish("supernet")
    return variables


def memory_check(space: SearchSpace, budget):
    """The evolution's "does it fit?" for ``space`` under ``budget``."""
    from tinyjax.search.tinynas.evolution import MemoryCheck

    return MemoryCheck(space, budget.sram_bytes, budget.flash_bytes, budget.target, budget.in_place,
                       budget.patch, budget.max_mac_overhead)


def subnet_evaluator(cfg, space: SearchSpace, data: dict, variables):
    """The evolution's score: BN recalibrated on the first ``supernet.calib_images`` training
    images, top-1 on the held-out ones."""
    from tinyjax.search.tinynas.supernet import SubnetEvaluator

    hx, hy = data["holdout"]
    calib = data["train"][0][: int(cfg.supernet.calib_images)]
    return SubnetEvaluator(space, variables, calib, hx, hy, int(cfg.supernet.eval_batch_size))


def evolution(cfg, budget, space: SearchSpace, data: dict, variables, wd, log) -> dict:
    from tinyjax.search.tinynas.evolution import EvolutionConfig, EvolutionState, evolve
    from tinyjax.search.tinynas.evolution_plots import pareto_figure, progress_figure

    check = memory_check(space, budget)
    if not wd.done("evolution"):
        e = cfg.evolution
        ecfg = EvolutionConfig(population=int(e.population), generations=int(e.generations),
                               parent_ratio=float(e.parent_ratio), mutation_ratio=float(e.mutation_ratio),
                               mutate_prob=float(e.mutate_prob))
        hx = data["holdout"][0]
        evaluator = subnet_evaluator(cfg, space, data, variables)
        path = wd.path / "evolution.json"
        state = EvolutionState.from_dict(json.loads(path.read_text())) if path.is_file() else None
        log(f"evolution: population {ecfg.population}, {ecfg.generations} generations; every "
            f"candidate planned for {budget.target} first, then scored on {len(hx):,} held-out images")
        if not (wd.path / "supernet.json").is_file():
            largest, smallest = evaluator.evaluate([space.largest(), space.smallest()])
            wd.write_json("supernet.json", {"top1_largest": largest, "top1_smallest": smallest,
                                            "holdout_images": len(hx), "resolution": int(hx.shape[1])})
        sn = wd.read_json("supernet.json")
        log(f"evolution: held-out top-1 of the supernet's largest sub-network {sn['top1_largest']:.4f}, "
            f"of its smallest {sn['top1_smallest']:.4f} (BN recalibrated, {sn['resolution']} px; "
            f"chance {1 / space.num_classes:.2f})")
        with _progress("evolution", "generation") as progress:
            progress.start(ecfg.generations + 1, 0 if state is None else state.generation + 1)

            def on_generation(s) -> None:
                wd.write_json("evolution.json", s.to_dict())
                progress.update(s.generation + 1, f"best {s.best.score:.3f}, {len(s.records)} scored")

            state = evolve(space, evaluator.evaluate, check, ecfg, seed=int(e.seed), state=state,
                           on_generation=on_generation)
        progress_figure(state).savefig(wd.path / "evolution.png", dpi=110)
        pareto_figure(state.records, budget.sram_bytes).savefig(wd.path / "pareto.png", dpi=110)
        wd.write_json("evolution.json", state.to_dict())
    state = EvolutionState.from_dict(wd.read_json("evolution.json"))
    arch = state.best.arch
    fit = verified_winner(check, arch)
    spec = space.spec(arch, name=f"tinynas_{format_bytes(budget.sram_bytes).replace(' ', '')}")
    write_atomic(wd.path / "best_spec.json", spec.to_json() + "\n")
    if not wd.done("evolution"):
        write_inherited(space, variables, evaluator, arch, wd.path / INHERITED)
    if not wd.done("evolution"):
        log(f"evolution: best {arch.key()} top-1 {state.best.score:.4f} (held-out), "
            f"{format_count(fit.macs)} MACs, peak {format_bytes(fit.peak_sram_bytes)}, "
            f"flash {format_bytes(fit.flash_bytes)} (verified by the planner)")
    wd.finish("evolution")
    return {"arch": arch, "score": float(state.best.score), "fit": fit, "spec": spec,
            "scored": len(state.records), "generation_best": state.best_scores,
            **wd.read_json("supernet.json")}


#: the winner's weights cut out of the supernet (BN recalibrated), what ``--finetune inherit`` starts from
INHERITED = "winner_inherited.msgpack"


def write_inherited(space: SearchSpace, variables, evaluator, arch, path) -> None:
    """The winner's own weights (:func:`~tinyjax.search.tinynas.supernet.subnet_variables`) with
    the BN statistics recalibrated for it, as a ``model_init`` file of ``tinyjax.train``."""
    from flax import serialization

    from tinyjax.search.tinynas.supernet import subnet_variables

    own = {"params": variables["params"], "batch_stats": evaluator.recalibrated_stats(arch)}
    sub = subnet_variables(space, own, arch)
    write_atomic(path, serialization.msgpack_serialize({"params": sub["params"],
                                                         "batch_stats": sub["batch_stats"]}))


def verified_winner(check, arch):
    """The winner's Fit re-planned with the planner's verifier (``MemoryCheck.verify``); a winner
    whose verified plan does not fit the budget stops the search before anything is trained or
    exported."""

    fit = check.verify(arch)
    if not fit.fits:
        raise SearchError(f"the search's winner {arch.key()} needs {format_bytes(fit.peak_sram_bytes)} "
                          f"of SRAM and {format_bytes(fit.flash_bytes)} of flash, over the budget of "
                          f"{check.budget()}: nothing is exported")
    return fit


# -- the winner: training and export --------------------------------------------------------------------

FINETUNE = ("inherit", "scratch")


def finetune_mode(cfg) -> str:
    mode = str(cfg.get("finetune_init", "scratch"))
    if mode not in FINETUNE:
        raise SearchError(f"finetune_init must be one of {', '.join(FINETUNE)}, got {mode!r}")
    return mode


def train_config(cfg, spec, model_init: str = ""):
    """The ``tinyjax.train`` config of the winner, on the search's dataset (the embedded one at the
    winner's resolution: the pixels the supernet saw): ``cfg.finetune`` from ``model_init`` (the
    inherited weights), or ``cfg.scratch`` from a random init when ``model_init`` is empty."""
    from tinyjax.search.tinynas.data import train_data_config

    t = (cfg.finetune if model_init else cfg.scratch).copy_and_resolve_references()
    data = train_data_config(cfg.data, spec.resolution)
    with t.unlocked():
        t.spec, t.resolution, t.model_init = spec.to_json(indent=None), 0, str(model_init)
        for key in ("name", "data_dir", "num_classes_subset", "subset_seed"):
            if key in data:
                t.data[key] = data[key] if data[key] != "" else None
    return t


def train(cfg, space, best: dict, wd, log) -> dict:
    from tinyjax.train.trainer import train_and_evaluate

    if wd.done("train") and (wd.path / "train.json").is_file():   # a finished search, rerun
        return wd.read_json("train.json")
    mode = finetune_mode(cfg)
    tcfg = train_config(cfg, best["spec"], str(wd.path / INHERITED) if mode == "inherit" else "")
    workdir = wd.path / "train"
    if not wd.done("train"):
        how = "fine-tuned from its inherited weights" if mode == "inherit" else "from scratch"
        log(f"train: the winner {how}, {tcfg.total_steps or tcfg.num_epochs} "
            f"{'steps' if tcfg.total_steps else 'epochs'} of {tcfg.batch_size} at lr {tcfg.lr:g} ({workdir})")
    with _progress("train", "step") as progress:
        result = train_and_evaluate(tcfg, workdir, progress=progress)
    if result.preempted:
        raise Stopped(f"training stopped by {result.signal_name} at step {result.step}, saved; rerun "
                      "the same command to resume", result.signal_name)
    out = {"top1_float": float(result.final_eval["eval_top1"]), "steps": int(result.step),
           "finetune": mode, "evals": evaluations(workdir)}
    wd.write_json("train.json", out)
    wd.finish("train")
    return out


def evaluations(workdir, last: int = 5) -> list[dict]:
    """The last ``last`` evaluations of a training run (``metrics.jsonl``: step, top-1), so a
    reader sees whether the curve has flattened."""
    path = workdir / "metrics.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    evals = [{"step": int(r["step"]), "top1": float(r["eval_top1"])} for r in rows if "eval_top1" in r]
    return evals[-last:]


def export(cfg, budget, wd, log) -> dict:
    from tinyjax.search.tinynas.export import export_and_check

    if wd.done("export") and (wd.path / "export.json").is_file():
        return wd.read_json("export.json")
    res = export_and_check(wd.path / "train", wd.path / "c", budget, int(cfg.export.test_images),
                           int(cfg.export.calibration_images), log)
    wd.write_json("export.json", res)
    wd.finish("export")
    return res


# -- summary --------------------------------------------------------------------------------------------

def _patch_fields(budget, spec) -> dict:
    """The winner's schedule under ``--patch auto``: its layer-by-layer peak, and the patch plan
    the export used (``codegen.patch.patch_summary``; n and p None when layer by layer fits)."""
    if not budget.patch:
        return {}
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.plan.patch import choose_patch_plan, patch_summary

    graph = graph_from_spec(spec)
    layer = plan_graph(graph, budget.target).peak_bytes
    pp = choose_patch_plan(graph, budget.target, max_mac_overhead=budget.max_mac_overhead,
                           budget=budget.sram_bytes, layer_peak_bytes=layer)
    out = patch_summary(pp, layer)
    out.pop("peak_sram_bytes")
    return out


def summarise(cfg, budget, space, best, trained, exported, wd) -> dict:
    fit = best["fit"]
    return {**_patch_fields(budget, best["spec"]),
        "budget": budget.to_dict(), "space": space.to_dict(), "arch": best["arch"].to_dict(),
        "blocks": [str(b) for st in best["spec"].stages for b in st.blocks],
        "macs": int(fit.macs), "params": int(fit.params), "peak_sram_bytes": int(fit.peak_sram_bytes),
        "flash_bytes": int(fit.flash_bytes), "top1_holdout_supernet": best["score"],
        "top1_supernet_largest": best.get("top1_largest"),
        "top1_supernet_smallest": best.get("top1_smallest"),
        "evolution_best_per_generation": best.get("generation_best"),
        "finetune": trained.get("finetune", "scratch"), "finetune_evals": trained.get("evals", []),
        "top1_float": trained["top1_float"], "top1_int8": exported["top1_int8"],
        "c_bit_exact": exported["bit_exact"], "c_images": exported["images"],
        "firmware": exported.get("firmware"), "candidates_scored": best["scored"],
        "seconds_per_stage": dict(wd.state["seconds"]),
    }


def summary_markdown(s: dict) -> str:
    b, sp = s["budget"], s["space"]
    rows = [("budget", f"{format_bytes(b['sram_bytes'])} SRAM for the arena"
             + (f" (+{format_bytes(b['reserve_bytes'])} reserved)" if b["reserve_bytes"] else "")
             + f", {format_bytes(b['flash_bytes'])} flash, {b['target']}"),
            ("space (stage 1)", f"width {sp['width']:g}, {sp['resolution']} px"),
            ("MACs", format_count(s["macs"])), ("parameters", f"{s['params']:,}"),
            ("peak SRAM (plan)", f"{format_bytes(s['peak_sram_bytes'])} ({s['peak_sram_bytes']:,} B)"),
            *([("layer-by-layer peak (without patches)",
                f"{format_bytes(s['layer_peak_sram_bytes'])} ({s['layer_peak_sram_bytes']:,} B)"),
               ("patch schedule", "none: layer by layer fits" if s["patch_stage_ops"] is None else
                f"first {s['patch_stage_ops']} ops in {s['patches_per_side']}x{s['patches_per_side']} "
                f"patches, +{100 * s['patch_mac_overhead']:.1f}% MACs")]
              if "layer_peak_sram_bytes" in s else []),
            ("flash (weights, constants)", f"{format_bytes(s['flash_bytes'])} ({s['flash_bytes']:,} B)"),
            *([("top-1 held-out, supernet's largest / smallest sub-network",
                f"{s['top1_supernet_largest']:.4f} / {s['top1_supernet_smallest']:.4f}")]
              if s.get("top1_supernet_largest") is not None else []),
            ("top-1 held-out, supernet weights", f"{s['top1_holdout_supernet']:.4f}"),
            *([("evolution: best held-out top-1 per generation",
                ", ".join(f"{x:.4f}" for x in s["evolution_best_per_generation"]))]
              if s.get("evolution_best_per_generation") else []),
            ("the winner's training", "fine-tuned from its inherited weights"
             if s.get("finetune") == "inherit" else "from scratch"),
            *([("last evaluations (step: top-1)",
                ", ".join(f"{e['step']}: {e['top1']:.4f}" for e in s["finetune_evals"]))]
              if s.get("finetune_evals") else []),
            ("top-1 validation, float", f"{s['top1_float']:.4f}"),
            ("top-1 int8 (integer reference)", f"{s['top1_int8']:.4f}"),
            ("C on the host vs integer reference",
             f"{s['c_bit_exact']}/{s['c_images']} bit-exact" if s["c_bit_exact"] is not None
             else "not built (no make/cc on this machine)")]
    if s.get("firmware"):
        f = s["firmware"]
        rows.append(("Cortex-M7 image (arm-none-eabi-size)",
                     f"text {f['text']:,} B, data {f['data']:,} B, bss {f['bss']:,} B"))
    lines = ["# TinyNAS search", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "Blocks: " + ", ".join(f"`{x}`" for x in s["blocks"]), "",
              "Seconds per stage: " + ", ".join(f"{k} {v:,.0f}" for k, v in s["seconds_per_stage"].items()),
              "", "Pictures: `stage1_cdf.png`, `evolution.png`, `pareto.png`; C: `c/`; spec: "
              "`best_spec.json`.", ""]
    return "\n".join(lines)
