"""The exported C on a microcontroller: SRAM, flash and instructions per MAC, next to the peers.

    python benchmarks/mcu.py [--models mcunet_in0 ...] [--no-m4] [--json]

For each model (default: mcunet_in0 … in4 and proxyless-w0.3-r176), ``python -m tinyjax.export
--model NAME --target cortex-m7`` writes the C (random weights: sizes and instruction counts do not
depend on the values), then the export's own Makefile builds:

* ``make firmware``: the smallest Cortex-M7 image running the network (vector table, reset
  handler, the arena, no C library start-up). ``arm-none-eabi-size`` gives SRAM = data + bss
  (the arena; the stack is not counted, as in the peers' figures) and flash = text + data (weights,
  parameters, kernels, call sequence). These sit next to TinyEngine's and X-CUBE-AI 7.3's published
  STM32H743 figures (docs/papers.md; kB = 1024 B), with the ratio to the better of the two.
* ``make cortex-m7`` / ``cortex-m4`` (the check program on QEMU's mps2-an500 / mps2-an386, which
  also compares the output with the integer reference's and measures the stack the network uses by
  painting it): the exact number of instructions executed inside ``<prefix>_invoke``
  (:func:`tinyjax.codegen.emit.toolchain.count_instructions`), per MAC, with
  tinyjax's DSP (SIMD) kernels and with the same network on its plain-C kernels (``-DTJX_PLAIN_C``).

Goals (issue 9): SRAM and flash at or below the best peer for every model; at most 2.0
instructions per MAC on the Cortex-M7 for the whole network (TinyEngine runs mcunet-in0 at about
1.9 cycles per MAC on the H743). QEMU does not model the pipeline: instructions are not cycles.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent

#: zoo name -> (paper name, TinyEngine (SRAM kB, flash kB), X-CUBE-AI 7.3 (SRAM kB, flash kB)), STM32H743
PEERS = {
    "mcunet_in0": ("mcunet-in0", (49, 842), (69, 856)),
    "mcunet_in1": ("mcunet-in1", (96, 727), (106, 737)),
    "mcunet_in2": ("mcunet-in2", (215, 830), (238, 849)),
    "mcunet_in3": ("mcunet-in3", (260, 835), (243, 867)),
    "mcunet_in4": ("mcunet-in4", (416, 1825), (342, 1843)),
    "mcunet_proxyless_w03": ("proxyless-w0.3-r176", (259, 779), (221, 865)),
}
GOAL_INSNS_PER_MAC = 2.0


def parse_args(argv: Sequence[str] | None):
    p = argparse.ArgumentParser(prog="python benchmarks/mcu.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(PEERS), choices=list(PEERS), metavar="NAME",
                   help="zoo models (default: all six)")
    p.add_argument("--no-m4", action="store_true", help="count on the Cortex-M7 only")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    p.add_argument("--keep", metavar="DIR", help="write the exports into DIR and keep them")
    p.add_argument("--cmsis-nn", metavar="DIR", help="a checkout of Arm's CMSIS-NN (v7): also count the same "
                   "network linked with it (make CMSIS_NN=DIR), DSP path")
    return p.parse_args(argv)


def make(out: Path, target: str, extra: str = "", cmsis_nn: str | None = None) -> None:
    cmd = ["make", "-s", "-C", str(out), "-j2", target] + ([f"EXTRA_CFLAGS={extra}"] if extra else [])
    cmd += [f"CMSIS_NN={Path(cmsis_nn).resolve()}"] if cmsis_nn else []
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MAKEFLAGS": ""})
    if r.returncode != 0:
        raise RuntimeError(f"make {target} in {out} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")


def export(name: str, out: Path) -> None:
    from tinyjax.export import main as export_main

    with contextlib.redirect_stdout(io.StringIO()) as log:
        rc = export_main(["--model", name, "--out", str(out), "--target", "cortex-m7", "--prefix", "model"])
    if rc:
        raise RuntimeError(f"export of {name} failed:\n{log.getvalue()}")


def instructions(out: Path, cpu: str, plain: bool, cmsis_nn: str | None = None) -> tuple[int, int]:
    """``(instructions, stack bytes)`` of one model_invoke on ``cpu`` (the check program runs
    input.bin once, compares it with the integer reference's output, a wrong result raises, and
    measures the stack by painting)."""
    from tinyjax.codegen.emit import toolchain

    d = out.parent / f"{out.name}-{cpu}-{'plain' if plain else 'dsp'}{'-cmsis' if cmsis_nn else ''}"
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(out, d, ignore=shutil.ignore_patterns("build", "*.png"))
    target = {"cortex-m7": "cortex-m7", "cortex-m4": "cortex-m4"}[cpu]
    make(d, target, "-DTJX_PLAIN_C" if plain else "", cmsis_nn)
    counted = toolchain.run_counted(d / "build" / target / "model_check.elf", cpu, "model_invoke", cwd=d)
    if len(counted.calls) != 1:
        raise RuntimeError(f"expected one call of model_invoke, counted {len(counted.calls)}")
    stack = re.search(r"stack used by model_invoke: at most (\d+) bytes", counted.run.stdout)
    return counted.calls[0], int(stack.group(1))


def measure(name: str, root: Path, cpus: Sequence[str], cmsis_nn: str | None) -> dict:
    from tinyjax.codegen.emit import toolchain
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes
    from tinyjax.zoo import get_spec

    spec = get_spec(name)
    out = root / name
    export(name, out)
    make(out, "firmware")
    sz = toolchain.size(out / "build" / "firmware-m7" / "model_firmware.elf")
    macs = graph_from_spec(spec).total_macs()
    row = {"model": name, "resolution": spec.resolution, "macs": macs, "plan_bytes": peak_sram_bytes(spec),
           "sram_bytes": sz.data + sz.bss, "flash_bytes": sz.text + sz.data}
    for cpu in cpus:
        for plain in (False, True):
            n, stack = instructions(out, cpu, plain)
            row[f"{cpu}_{'plain' if plain else 'dsp'}_insns"] = n
            row[f"{cpu}_{'plain' if plain else 'dsp'}_stack_bytes"] = stack
            row[f"{cpu}_{'plain' if plain else 'dsp'}_per_mac"] = n / macs
        if cmsis_nn:
            n, _ = instructions(out, cpu, False, cmsis_nn)
            row[f"{cpu}_cmsis_nn_insns"], row[f"{cpu}_cmsis_nn_per_mac"] = n, n / macs
    return row


def verdict(ours: float, peers: tuple[float, float]) -> str:
    best = min(peers)
    return f"{ours / best:.3f}" + ("" if ours <= best else " behind")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tinyjax.codegen.emit import toolchain

    for tool in ("make", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-objdump",
                 "qemu-system-arm"):
        toolchain.require(tool)
    cpus = ["cortex-m7"] + ([] if args.no_m4 else ["cortex-m4"])
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tjx-mcu-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            print(f"{name}: exporting, building, counting on {', '.join(cpus)} ...", flush=True)
            rows.append(measure(name, root, cpus, args.cmsis_nn))
    print("\nSTM32H743 peers: TinyEngine and X-CUBE-AI 7.3 (docs/papers.md); kB = 1024 B; tinyjax: "
          "firmware image on Cortex-M7, arm-none-eabi-size (SRAM = data + bss; stack not counted, as "
          "in the peers' figures, and printed below)")
    print(f"{'model':22s} {'SRAM kB':>8s} {'TinyEng':>8s} {'X-CUBE':>7s} {'ratio':>13s}   "
          f"{'flash kB':>8s} {'TinyEng':>8s} {'X-CUBE':>7s} {'ratio':>13s}")
    for r in rows:
        paper, te, xc = PEERS[r["model"]]
        sram, flash = r["sram_bytes"] / 1024, r["flash_bytes"] / 1024
        print(f"{paper:22s} {sram:8.1f} {te[0]:8d} {xc[0]:7d} {verdict(sram, (te[0], xc[0])):>13s}   "
              f"{flash:8.1f} {te[1]:8d} {xc[1]:7d} {verdict(flash, (te[1], xc[1])):>13s}")
    cm = bool(args.cmsis_nn)
    also = ", Arm's CMSIS-NN (DSP; tinyjax's own kernels where it has none)" if cm else ""
    print("\nexecuted instructions per MAC inside model_invoke (QEMU, exact counts): tinyjax's DSP kernels, "
          "its plain-C kernels" + also)
    head = "".join(f" {c + ' DSP':>15s} {c + ' C':>13s}" + (f" {c + ' CMSIS':>17s}" if cm else "")
                   for c in cpus)
    print(f"{'model':22s} {'MMACs':>7s}{head}")
    for r in rows:
        cells = "".join(f" {r[f'{c}_dsp_per_mac']:15.3f} {r[f'{c}_plain_per_mac']:13.3f}"
                        + (f" {r[f'{c}_cmsis_nn_per_mac']:17.3f}" if cm else "") for c in cpus)
        print(f"{PEERS[r['model']][0]:22s} {r['macs'] / 1e6:7.2f}{cells}")
    print("\nstack used by model_invoke on the Cortex-M7 (painted and measured on QEMU), bytes: "
          + ", ".join(f"{PEERS[r['model']][0]} {r['cortex-m7_dsp_stack_bytes']}" for r in rows))
    behind_mem = [PEERS[r["model"]][0] for r in rows
                  if r["sram_bytes"] / 1024 > min(PEERS[r["model"]][1][0], PEERS[r["model"]][2][0])
                  or r["flash_bytes"] / 1024 > min(PEERS[r["model"]][1][1], PEERS[r["model"]][2][1])]
    slow = [PEERS[r["model"]][0] for r in rows if r["cortex-m7_dsp_per_mac"] > GOAL_INSNS_PER_MAC]
    print(f"\nSRAM and flash at or below the best peer: {len(rows) - len(behind_mem)}/{len(rows)}"
          + (f"; behind on {', '.join(behind_mem)}" if behind_mem else ""))
    print(f"Cortex-M7 at most {GOAL_INSNS_PER_MAC} instructions/MAC: {len(rows) - len(slow)}/{len(rows)}"
          + (f"; above on {', '.join(slow)}" if slow else ""))
    print(f"total {time.time() - t0:.0f} s")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from tinyjax.errors import run_cli

    sys.exit(run_cli(main, prog="mcu"))
