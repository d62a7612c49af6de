"""TinyNAS with and without patch-based inference under one SRAM budget (issue: co-design with
MCUNetV2's patch schedules).

    python benchmarks/patch_search.py [--budget 128kB] [--workdir runs/patch_search] [--quick]

Two runs of ``python -m tinyjax.search`` with the same config and recipe (the search config; stage
1 plans ``stage1.patch_samples`` sub-networks per space in both, the number ``--patch auto``
uses), in ``WORKDIR/off`` and ``WORKDIR/auto``:

* ``--patch off``: a network fits when its layer-by-layer plan does;
* ``--patch auto``: a network also fits when a patch schedule's plan does (at most 15% more MACs).

Printed side by side: the space stage 1 chose, the winner's MACs, its layer-by-layer peak, the
peak of the plan its C uses (and the schedule), top-1 float and int8 on the validation split, and
the C's bit-exact images. Each run is a resumable work directory (a finished one is read back in
about a second). ``--quick``: the search's ``runlocal`` config (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def patch_samples(config: str) -> int:
    from tinyjax.train.config import load_config

    cfg = load_config(config)
    return int(cfg.stage1.get("patch_samples", cfg.stage1.samples))


def run(budget: str, mode: str, workdir: Path, config: str) -> dict:
    cmd = [sys.executable, "-m", "tinyjax.search", "--budget", budget, "--patch", mode,
           "--workdir", str(workdir), "--config", config]
    if mode == "off":           # the same number of stage-1 samples as --patch auto plans
        cmd.append(f"--config.stage1.samples={patch_samples(config)}")
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return json.loads((workdir / "summary.json").read_text())


def layer_peak(summary: dict) -> int:
    """The winner's layer-by-layer peak (a --patch off run's plan is layer by layer)."""
    return summary.get("layer_peak_sram_bytes", summary["peak_sram_bytes"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="128kB")
    ap.add_argument("--workdir", default="runs/patch_search")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    config = str(REPO / "configs" / "search_embedded.py") + (":runlocal" if args.quick else "")
    wd = Path(args.workdir)
    rows = {mode: run(args.budget, mode, wd / mode, config) for mode in ("off", "auto")}
    kb = lambda n: f"{n / 1024:.1f}"  # noqa: E731
    print(f"\nTinyNAS under {args.budget} SRAM (cortex-m7), same config and recipe; kB = 1024 B")
    print(f"{'--patch':<8}{'space':>12}{'MACs':>9}{'layer kB':>10}{'plan kB':>9}  {'schedule':<30}"
          f"{'float':>7}{'int8':>7}{'C exact':>9}")
    for mode, s in rows.items():
        sp = s["space"]
        space = f"w{sp['width']:g} r{sp['resolution']}"
        sched = "layer by layer" if s.get("patch_stage_ops") is None else \
            f"{s['patch_stage_ops']} ops, {s['patches_per_side']}x{s['patches_per_side']}, " \
            f"+{100 * s['patch_mac_overhead']:.1f}% MACs"
        exact = f"{s['c_bit_exact']}/{s['c_images']}"
        print(f"{mode:<8}{space:>12}{s['macs'] / 1e6:>8.2f}M{kb(layer_peak(s)):>10}"
              f"{kb(s['peak_sram_bytes']):>9}  {sched:<30}{s['top1_float']:>7.4f}{s['top1_int8']:>7.4f}"
              f"{exact:>9}")
    off, auto = rows["off"], rows["auto"]
    budget = auto["budget"]["sram_bytes"]
    print(f"--patch auto's network: layer-by-layer peak {kb(layer_peak(auto))} kB "
          f"({'over' if layer_peak(auto) > budget else 'within'} the {kb(budget)} kB budget), "
          f"its plan {kb(auto['peak_sram_bytes'])} kB; {auto['macs'] / off['macs']:.2f}x the MACs of --patch "
          f"off's; top-1 float {100 * (auto['top1_float'] - off['top1_float']):+.2f} points, int8 "
          f"{100 * (auto['top1_int8'] - off['top1_int8']):+.2f} points")


if __name__ == "__main__":
    main()
