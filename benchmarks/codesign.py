"""MCUNet's co-design comparison (its Figure A) on the embedded dataset under one SRAM budget.

    python benchmarks/codesign.py [--budget 320kB] [--flash 1MB] [--workdir runs/codesign] [--quick]

Four networks, each trained by ``tinyjax.train`` with the same recipe (the search config's
``scratch`` section, from a random init, on the embedded dataset drawn at the network's resolution):

1. **MbV2 + layer-by-layer**: MobileNetV2 (width 0.35/0.5/0.75/1.0 × the MCUNet resolutions) with
   the most MACs whose plan *without in-place ops* (every op's output in a buffer of its own, as
   CMSIS-NN under TFLite Micro runs it) fits: the paper's "MbV2 + CMSIS".
2. **MbV2 + tinyjax's planner**: the same scaling with tinyjax's plan (in-place depthwise, adds).
3. **TinyNAS + layer-by-layer**: ``python -m tinyjax.search``'s whole search, with stage 1 and
   the evolution planning layer by layer.
4. **TinyNAS + tinyjax's planner**: the co-designed search (the README's first command).

Printed as one table: MACs, peak SRAM under its planner and under tinyjax's, top-1 on the
validation split. MCUNet's figure shows each step (better planner, then search, then both)
adding accuracy on ImageNet; a 10-class toy dataset trained for minutes need not agree, and this
prints what it measures. Every run is a resumable work directory under
``--workdir``. ``--quick``: the search's ``runlocal`` config (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MBV2_WIDTHS = (0.35, 0.5, 0.75, 1.0)


def scaled_mbv2(budget, num_classes: int, resolutions) -> tuple[object, int, int]:
    """``(spec, peak, flash)``: the MobileNetV2 with the most MACs whose plan fits ``budget``
    (``budget.in_place`` picks the planner)."""
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
    if best is None:
        raise SystemExit(f"no MobileNetV2 fits {budget.text()}")
    return best[1], best[2], best[3]


def train(cfg, spec, workdir: Path) -> float:
    from tinyjax.progress import Progress
    from tinyjax.search.tinynas.stages import train_config
    from tinyjax.train.trainer import train_and_evaluate

    with Progress(f"codesign [{workdir.name}]", stream=sys.stderr) as progress:
        result = train_and_evaluate(train_config(cfg, spec), workdir, progress=progress)
    if result.preempted:
        raise SystemExit(130)
    return float(result.final_eval["eval_top1"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/codesign.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", default="320kB", help="SRAM budget (default 320kB)")
    p.add_argument("--flash", default="1MB", help="flash budget (default 1MB)")
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--workdir", default="runs/codesign", help="resumable runs (default runs/codesign)")
    p.add_argument("--quick", action="store_true", help="the runlocal config: a smoke test")
    a = p.parse_args(argv)

    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes
    from tinyjax.counting import count
    from tinyjax.search.tinynas.run import Budget, run_search
    from tinyjax.spec import ModelSpec
    from tinyjax.train.config import load_config
    from tinyjax.units import format_bytes, format_count, parse_bytes

    cfg = load_config(str(REPO / "configs/search_embedded.py") + (":runlocal" if a.quick else ""))
    cfg.finetune_init = "scratch"    # every network under one recipe, from a random init
    wd = Path(a.workdir)
    rows = []
    for in_place, label in ((False, "layer-by-layer"), (True, "tinyjax planner")):
        budget = Budget(parse_bytes(a.budget), parse_bytes(a.flash), a.target, in_place=in_place)
        spec, peak, _ = scaled_mbv2(budget, int(cfg.data.num_classes), tuple(cfg.space.resolutions))
        top1 = train(cfg, spec, wd / f"mbv2_{'inplace' if in_place else 'lbl'}")
        rows.append((f"MbV2 + {label}", spec, peak, top1))
    for in_place, label in ((False, "layer-by-layer"), (True, "tinyjax planner (co-design)")):
        budget = Budget(parse_bytes(a.budget), parse_bytes(a.flash), a.target, in_place=in_place)
        run = wd / f"tinynas_{'inplace' if in_place else 'lbl'}"
        s = run_search(cfg, budget, run, log=lambda m: print(m, file=sys.stderr, flush=True))
        spec = ModelSpec.from_json((run / "best_spec.json").read_text())
        rows.append((f"TinyNAS + {label}", spec, s["peak_sram_bytes"], s["top1_float"]))

    print(f"co-design at {a.budget} SRAM, {a.flash} flash, {a.target}; embedded dataset, "
          f"same training recipe ({cfg.scratch.total_steps} steps of {cfg.scratch.batch_size})")
    print("| network | resolution | MACs | peak SRAM (its planner) | peak SRAM (tinyjax) | top-1 |")
    print("|---|---:|---:|---:|---:|---:|")
    out = []
    for name, spec, peak, top1 in rows:
        ours = peak_sram_bytes(spec, a.target)
        macs = count(spec).macs
        print(f"| {name} | {spec.resolution} | {format_count(macs)} | {format_bytes(peak)} | "
              f"{format_bytes(ours)} | {top1:.4f} |")
        out.append({"network": name, "resolution": spec.resolution, "macs": macs, "peak": peak,
                    "peak_tinyjax": ours, "top1": top1})
    (wd / "codesign.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
