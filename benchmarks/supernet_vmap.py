"""Supernet sandwich training: K sub-networks vmapped in one step vs K steps of one sub-network.

    python benchmarks/supernet_vmap.py [--width 0.4] [--resolution 144] [--stem-stride 2] [--batch 32]
                                       [--steps 3] [--ks 1,4,8]

For each K: the supernet step of ``tinyjax.search.tinynas.supernet_train`` (one ``train_step`` with K
stacked masks: largest, smallest, K−2 random; all see the same batch) against K calls of the same
step compiled for one mask (the sequential reference: same archs, same total sub-network images),
median of ``--steps`` after compilation, timed in alternation. images/s counts K × batch
sub-network images per step; the ratio > 1 is what vmap buys. Also printed: the first-call time
(XLA compilation + one step) of the vmapped step, and its step time, which is what sizes the
supernet's share of the search (``supernet_defaults``).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from timing import median_times  # benchmarks/timing.py (the script's own folder)

from tinyjax.search.tinynas.space import SearchSpace
from tinyjax.search.tinynas.supernet import stack_masks, supernet_defaults, supernet_model
from tinyjax.search.tinynas.supernet_train import initial_state, make_optimizer, sandwich_step, step_archs
from tinyjax.train import optim


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=0.4)
    p.add_argument("--resolution", type=int, default=144)
    p.add_argument("--stem-stride", type=int, default=2, choices=(1, 2))
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--ks", default="1,4,8")
    p.add_argument("--no-sequential", action="store_true", help="time the vmapped step only")
    a = p.parse_args()

    space = SearchSpace(a.width, a.resolution, a.classes, stem_stride=a.stem_stride)
    cfg = supernet_defaults()
    model = supernet_model(space, a.resolution)
    schedule = optim.cosine_schedule(cfg.lr, 1000, 10)
    tx = make_optimizer(cfg, schedule)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (a.batch, a.resolution, a.resolution, 3), dtype=np.uint8)
    labels = rng.integers(0, a.classes, a.batch).astype(np.int32)
    print(f"{space.name} supernet, batch {a.batch}, {jax.device_count()} {jax.default_backend()} "
          f"device(s)")
    seq_step = None if a.no_sequential else sandwich_step(model, tx, schedule, a.classes, 0.1)
    head = f"{'K':>3}{'vmapped img/s':>15}{'sequential img/s':>18}{'ratio':>8}{'compile+1st s':>15}" \
           f"{'step ms':>9}"
    print(head, flush=True)
    for k in [int(x) for x in a.ks.split(",")]:
        archs = step_archs(space, k, 0, 0)
        masks = stack_masks(space, archs)
        singles = [stack_masks(space, [arch]) for arch in archs]
        step = sandwich_step(model, tx, schedule, a.classes, 0.1)   # a fresh jit: its own compile
        box = {"v": initial_state(space, model, tx, 0), "s": initial_state(space, model, tx, 0)}
        t0 = time.perf_counter()
        box["v"], m = step(box["v"], images, labels, masks)
        jax.block_until_ready(m)
        first = time.perf_counter() - t0

        def vmapped(box=box, step=step, masks=masks):
            box["v"], m = step(box["v"], images, labels, masks)
            jax.block_until_ready(m)

        def sequential(box=box, singles=singles):
            for mk in singles:
                box["s"], m = seq_step(box["s"], images, labels, mk)
            jax.block_until_ready(m)

        fns = [vmapped] if seq_step is None else [vmapped, sequential]
        times = median_times(fns, a.steps)
        n = k * a.batch
        tv = times[0]
        seq = f"{n / times[1]:>18.1f}{times[1] / tv:>7.2f}x" if len(times) > 1 else f"{'-':>18}{'-':>8}"
        print(f"{k:>3}{n / tv:>15.1f}{seq}{first:>15.1f}{tv * 1e3:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
