"""MCUNet's co-design comparison (its Figure A) on the embedded dataset under one SRAM budget.

    python benchmarks/codesign.py [--budget 32kB] [--flash 1MB] [--workdir runs/codesign] [--quick]

Four networks, each trained by ``tinyjax.train`` with the same recipe (the search config's
``scratch`` section, from a random init, on the embedded dataset drawn at the network's resolution;
the last evaluations are printed so a reader sees whether the curves have flattened):

1. **MbV2 + layer-by-layer**: MobileNetV2 (width 0.35/0.5/0.75/1.0 × the embedded dataset's
   resolutions up to the space's largest: 32, 48 and 64 px) with the most MACs whose plan
   *without in-place ops* (every op's output in a buffer of its own, as CMSIS-NN under TFLite
   Micro runs it) fits: the paper's "MbV2 + CMSIS". When none fits, its row says so.
2. **MbV2 + tinyjax's planner**: the same scaling with tinyjax's plan (in-place depthwise, adds).
3. **TinyNAS + layer-by-layer**: ``python -m tinyjax.search``'s whole search, with stage 1 and
   the evolution planning layer by layer.
4. **TinyNAS + tinyjax's planner**: the co-designed search (the README's first command).

Printed as one table: MACs, peak SRAM under its planner and under tinyjax's, top-1 on the
validation split. When both planners pick the same MobileNetV2, it is trained once.

The default budget is 32 kB, not MCUNet's 320 kB: the default config's space is sized for 64-px
scenes, and at 320 kB every network of it fits under either planner (peaks 15.9-34.7 kB
layer by layer, 15.9-28.1 kB in place), as does MobileNetV2 at 0.5 × 64 px (0.75 and 1.0 need
more than 1 MB of flash), so each pair of rows would be one network. At 32 kB the in-place
planner fits the whole w1.0 r64 space and MobileNetV2 0.5 × 48 px (31.5 kB), while layer by
layer 83% of the w1.0 r64 space's random sub-networks (the largest need 34.7 kB) and no
MobileNetV2 above 32 px (48 px needs 33.8 kB) fit: the budget binds where the planners differ,
as 320 kB does for ImageNet-sized networks. MCUNet's figure shows each step (better planner,
then search, then both) adding accuracy on ImageNet; a 10-class toy dataset trained for minutes
need not agree, and this prints what it measures. Every run is a resumable work directory under
``--workdir``. ``--quick``: the search's ``runlocal`` config (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MBV2_WIDTHS = (0.35, 0.5, 0.75, 1.0)


def mbv2_resolutions(space_resolutions) -> tuple[int, ...]:
    """The embedded dataset's resolutions (``tinyjax_shapes_sized``: 32 px, then every 16) up to
    the space's largest, the space's own among them."""
    from tinyjax.data.embedded_sized import SIZES

    top = max(space_resolutions)
    return tuple(sorted({r for r in SIZES if r <= top} | {int(r) for r in space_resolutions}))


def scaled_mbv2(budget, num_classes: int, resolutions):
    """``(spec, peak, flash)``: the MobileNetV2 with the most MACs whose plan fits ``budget``
    (``budget.in_place`` picks the planner), or None when none does."""
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.targets import flash_bytes
    from tinyjax.counting import count
    from tinyjax.zoo import mobilenetv2

    best = None
    for w in MBV2_WIDTHS:
        for r in resolutions:
            spec = mobilenetv2(w).with_(resolution=r, num_classes=num_classes,
                                        name=f"mbv2_w{w}_r{r}")
            graph = graph_from_spec(spec)
            peak = plan_graph(graph, budget.target, verify=False, in_place=budget.in_place).peak_bytes
            flash = flash_bytes(graph)
            if peak <= budget.sram_bytes and flash <= budget.flash_bytes:
                macs = count(spec).macs
                if best is None or macs > best[0]:
                    best = (macs, spec, peak, flash)
    return None if best is None else best[1:]


def train(cfg, spec, workdir: Path) -> tuple[float, list]:
    """Validation top-1 and the last evaluations of ``spec`` trained with the scratch recipe."""
    from tinyjax.progress import Progress
    from tinyjax.search.tinynas.stages import evaluations, train_config
    from tinyjax.train.trainer import train_and_evaluate

    with Progress(f"codesign [{workdir.name}]", stream=sys.stderr) as progress:
        result = train_and_evaluate(train_config(cfg, spec), workdir, progress=progress)
    if result.preempted:
        raise SystemExit(130)
    return float(result.final_eval["eval_top1"]), evaluations(workdir)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/codesign.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", default="32kB", help="SRAM budget (default 32kB: the module "
                   "docstring says why)")
    p.add_argument("--flash", default="1MB", help="flash budget (default 1MB)")
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--workdir", default="runs/codesign", help="resumable runs (default runs/codesign)")
    p.add_argument("--quick", action="store_true", help="the runlocal config: a smoke test")
    a = p.parse_args(argv)

    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes
    from tinyjax.counting import count
    from tinyjax.search.tinynas.run import Budget, run_search
    from tinyjax.search.tinynas.stages import evaluations
    from tinyjax.spec import ModelSpec
    from tinyjax.train.config import load_config
    from tinyjax.units import format_bytes, format_count, parse_bytes

    cfg = load_config(str(REPO / "configs/search_embedded.py") + (":runlocal" if a.quick else ""))
    cfg.finetune_init = "scratch"    # every network under one recipe, from a random init
    wd = Path(a.workdir)
    rows = []
    resolutions = mbv2_resolutions(cfg.space.resolutions)
    for in_place, label in ((False, "layer-by-layer"), (True, "tinyjax planner")):
        budget = Budget(parse_bytes(a.budget), parse_bytes(a.flash), a.target, in_place=in_place)
        found = scaled_mbv2(budget, int(cfg.data.num_classes), resolutions)
        if found is None:
            rows.append((f"MbV2 + {label}", None, 0, None, []))
            continue
        spec, peak, _ = found
        top1, evals = train(cfg, spec, wd / spec.name)   # one run when both planners pick it
        rows.append((f"MbV2 + {label}", spec, peak, top1, evals))
    for in_place, label in ((False, "layer-by-layer"), (True, "tinyjax planner (co-design)")):
        budget = Budget(parse_bytes(a.budget), parse_bytes(a.flash), a.target, in_place=in_place)
        run = wd / f"tinynas_{'inplace' if in_place else 'lbl'}"
        s = run_search(cfg, budget, run, log=lambda m: print(m, file=sys.stderr, flush=True))
        spec = ModelSpec.from_json((run / "best_spec.json").read_text())
        rows.append((f"TinyNAS + {label}", spec, s["peak_sram_bytes"], s["top1_float"],
                     evaluations(run / "train")))

    print(f"co-design at {a.budget} SRAM, {a.flash} flash, {a.target}; embedded dataset, "
          f"same training recipe ({cfg.scratch.total_steps} steps of {cfg.scratch.batch_size}, "
          "from a random init)")
    print("| network | resolution | MACs | peak SRAM (its planner) | peak SRAM (tinyjax) | top-1 | "
          "last evaluations |")
    print("|---|---:|---:|---:|---:|---:|---|")
    out = []
    for name, spec, peak, top1, evals in rows:
        if spec is None:
            print(f"| {name} | no MobileNetV2 of widths {', '.join(map(str, MBV2_WIDTHS))} at "
                  f"{resolutions[0]}-{resolutions[-1]} px fits | | | | | |")
            out.append({"network": name, "fits": False})
            continue
        ours = peak_sram_bytes(spec, a.target)
        macs = count(spec).macs
        last = ", ".join(f"{e['step']}: {e['top1']:.3f}" for e in evals[-3:])
        print(f"| {name} | {spec.resolution} | {format_count(macs)} | {format_bytes(peak)} | "
              f"{format_bytes(ours)} | {top1:.4f} | {last} |")
        out.append({"network": name, "fits": True, "spec": spec.name, "resolution": spec.resolution,
                    "macs": macs, "peak": peak, "peak_tinyjax": ours, "top1": top1, "evaluations": evals})
    (wd / "codesign.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
