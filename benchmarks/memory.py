"""Planned peak SRAM of the MCUNet models vs TinyEngine's published peaks, side by side.

    python benchmarks/memory.py [--target cortex-m7]

For each model: tinyjax's planned arena (default planner, everything counted: input image,
activations, per-kernel scratch, 16-byte alignment), the greedy-by-size planner (TFLite Micro's
idea) on the very same buffers, the lower bound of those buffers, the same plan without in-place
updates, and TinyEngine's published peak SRAM (STM32H743 table of the TinyEngine README for
mcunet-in0..in4; the STM32F746 table of the MCUNet paper for mbv2-w0.35 and proxyless-w0.3, see
shared/REFERENCES.md). kB = 1024 bytes. Goal: tinyjax <= TinyEngine and within 5% of the bound.
"""

from __future__ import annotations

import argparse

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.memory import plan_graph
from tinyjax.codegen.planner import plan
from tinyjax.zoo import get_spec

TINYENGINE_KB = {  # model: (peak SRAM kB, source)
    "mcunet_in0": (49, "H743"),
    "mcunet_in1": (96, "H743"),
    "mcunet_in2": (215, "H743"),
    "mcunet_in3": (260, "H743"),
    "mcunet_in4": (416, "H743"),
    "mcunet_mbv2_w035": (308, "F746"),
    "mcunet_proxyless_w03": (292, "F746"),
}


def kb(n: int) -> str:
    return f"{n / 1024:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cortex-m7")
    args = ap.parse_args()
    head = (f"{'model':<22}{'res':>4}{'tinyjax':>9}{'greedy':>9}{'bound':>9}{'no-inpl':>9}"
            f"{'TinyEngine':>11} {'tj/TE':>6}{'tj/bound':>9}{'greedy/bnd':>11}  in-place ops")
    print(f"peak SRAM in kB (1024 B), target {args.target}, alignment 16, input image and scratch "
          f"included")
    print(head)
    ok = True
    for name, (te, board) in TINYENGINE_KB.items():
        spec = get_spec(name)
        g = graph_from_spec(spec)
        p = plan_graph(g, args.target)
        greedy = plan(p.memory_plan.buffers, "greedy_by_size", p.memory_plan.alignment)
        flat = plan_graph(g, args.target, in_place=False)
        r_te = p.peak_bytes / (te * 1024)
        r_lb = p.peak_bytes / p.lower_bound_bytes
        ok &= r_te <= 1.0 and r_lb <= 1.05
        print(f"{name:<22}{spec.resolution:>4}{kb(p.peak_bytes):>9}{kb(greedy.peak_bytes):>9}"
              f"{kb(p.lower_bound_bytes):>9}{kb(flat.peak_bytes):>9}{te:>5} {board:<4}"
              f"{r_te:>7.3f}{r_lb:>9.3f}{greedy.peak_bytes / p.lower_bound_bytes:>11.3f}"
              f"  {len(p.in_place_ops)}/{len(g.ops)}")
    print("goal (tinyjax <= TinyEngine and <= 1.05 x lower bound for every model):",
          "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
