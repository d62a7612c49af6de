"""Time of the search's feasibility check: graph_from_spec + plan_graph per candidate.

    python benchmarks/fit_check.py [--repeat 300] [--random 8]

For the MCUNet zoo models and a few random MCUNet-like candidates (TinyNAS space: width
0.3-0.7 of the ProxylessNAS/MobileNetV2 backbone, resolution 96-176, kernel {3,5,7}, expand
{3,4,6}, depth {2,3,4} per stage, ReLU6): median wall time (perf_counter) and median CPU time
(process_time, less sensitive to other processes on a shared machine) of
``plan_graph(graph_from_spec(spec), verify=False)`` (what ``memory.fits`` runs for a new
candidate: the same plan and peak as the verified one), uncached, default planner and target, and
the medians of the two parts (graph = graph_from_spec, plan = plan_graph) in wall ms. The last
column is the verified plan (``verify=True``, what export uses), for comparison. Goal: <= 1 ms median
per candidate. The 1-minute load average is printed: on a busy 2-core box every figure stretches.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.plan.graph_plan import plan_graph
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec, make_divisible
from tinyjax.zoo import get_spec

MODELS = ["mcunet_in0", "mcunet_in1", "mcunet_in2", "mcunet_in3", "mcunet_in4",
          "mcunet_mbv2_w035", "mcunet_proxyless_w03"]
# ProxylessNAS / MobileNetV2 backbone: (out channels, stride) per searchable stage
BACKBONE = [(24, 2), (40, 2), (80, 2), (96, 1), (192, 2), (320, 1)]


def random_mcunet_spec(rng: random.Random, k: int) -> ModelSpec:
    w = rng.choice([0.3, 0.4, 0.5, 0.6, 0.7])
    stages = [StageSpec((BlockSpec("ds", 3, 1, make_divisible(16 * w), 1.0, act=None),))]
    for c, s in BACKBONE:
        depth = 1 if c == 320 else rng.choice([2, 3, 4])
        blocks = tuple(BlockSpec("ir", rng.choice([3, 5, 7]), s if i == 0 else 1,
                                 make_divisible(c * w), float(rng.choice([3, 4, 6])))
                       for i in range(depth))
        stages.append(StageSpec(blocks))
    return ModelSpec(name=f"random_{k}", stem=StemSpec(make_divisible(32 * w)),
                     stages=tuple(stages), head=HeadSpec(None, 0.0),
                     resolution=rng.choice(range(96, 177, 16)), act="relu6")


def timed(spec: ModelSpec, repeat: int):
    """Median wall and CPU ms of graph_from_spec + plan_graph, and the wall ms of each part."""
    wall, cpu, part_g, part_p = [], [], [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        g = graph_from_spec(spec)
        t1 = time.perf_counter()
        plan_graph(g, verify=False)
        t2, c2 = time.perf_counter(), time.process_time()
        wall.append(t2 - t0)
        cpu.append(c2 - c0)
        part_g.append(t1 - t0)
        part_p.append(t2 - t1)
    g = graph_from_spec(spec)
    verified = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan_graph(g)
        verified.append(time.perf_counter() - t0)
    return tuple(statistics.median(x) * 1e3 for x in (wall, cpu, part_g, part_p, verified))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--random", type=int, default=8)
    ap.add_argument("--fresh", type=int, default=1000, help="distinct candidates timed once each")
    args = ap.parse_args()
    rng = random.Random(0)
    specs = [get_spec(n) for n in MODELS] + [random_mcunet_spec(rng, k) for k in range(args.random)]
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.repeat} runs each")
    print(f"{'model':<22}{'res':>4}{'ops':>5}{'buffers':>8}{'peak kB':>9}{'wall ms':>9}{'cpu ms':>8}"
          f"{'graph':>8}{'plan':>8}{'verified plan':>15}")
    walls, cpus = [], []
    for spec in specs:
        p = plan_graph(graph_from_spec(spec))
        assert p.peak_bytes == plan_graph(graph_from_spec(spec), verify=False).peak_bytes
        wall, cpu, tg, tp, tv = timed(spec, args.repeat)
        walls.append(wall)
        cpus.append(cpu)
        print(f"{spec.name:<22}{spec.resolution:>4}{len(p.order):>5}{len(p.memory_plan.buffers):>8}"
              f"{p.peak_bytes / 1024:>9.1f}{wall:>9.3f}{cpu:>8.3f}{tg:>8.3f}{tp:>8.3f}{tv:>15.3f}")
    print(f"median over models: wall {statistics.median(walls):.3f} ms, "
          f"cpu {statistics.median(cpus):.3f} ms; worst wall {max(walls):.3f} ms "
          f"(goal <= 1 ms per candidate)")
    # A search meets each candidate once: the memoised layer ops and scratch rules help only as
    # far as candidates share layers. Time that path too, on distinct random candidates.
    fresh = [random_mcunet_spec(random.Random(1000 + k), k) for k in range(args.fresh)]
    cold = []
    for spec in fresh:
        t0 = time.perf_counter()
        plan_graph(graph_from_spec(spec), verify=False)
        cold.append(time.perf_counter() - t0)
    print(f"{args.fresh} distinct random candidates, each planned once: median wall "
          f"{statistics.median(cold) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
