"""The accuracy cost of weight sharing: the supernet's largest sub-network against the same
network trained alone for the same steps, side by side in one run.

    python benchmarks/weight_sharing.py [--width W --resolution R] [--steps N] [--workdir DIR]

Both are trained by :func:`tinyjax.search.tinynas.supernet_train.train_supernet` with the search config's
supernet recipe (``configs/search_embedded.py``: phases, batch, optimiser, resolution) in the space
stage 1 picks (the config's widest and largest): the supernet as the search trains it (the
largest alone first, then the sandwich rule: K sub-networks per step, the largest, the smallest,
K-2 random, with in-place distillation), the largest network alone with K = 1 for the same total
steps (the same images, but its weights serve nobody else). Both are scored by
:class:`tinyjax.search.tinynas.supernet.SubnetEvaluator` (BN statistics recalibrated on training
images) on the embedded dataset's validation split at the training resolution. Printed: top-1 of
each, the difference (the cost of sharing), and the smallest sub-network's top-1 inside the
supernet. Runs are resumable work directories.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/weight_sharing.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=float, default=0.0,
                   help="space width multiplier (default: the config's widest, what stage 1 picks)")
    p.add_argument("--resolution", type=int, default=0,
                   help="space resolution (default: the config's largest, what stage 1 picks)")
    p.add_argument("--steps", type=int, default=0, help="sandwich steps (default: the config's)")
    p.add_argument("--workdir", default="runs/weight_sharing", help="resumable training runs")
    a = p.parse_args(argv)

    from tinyjax.progress import Progress
    from tinyjax.search.tinynas.data import load_arrays
    from tinyjax.search.tinynas.stages import _spaces
    from tinyjax.search.tinynas.supernet import SubnetEvaluator
    from tinyjax.search.tinynas.supernet_train import train_supernet
    from tinyjax.train.config import load_config

    cfg = load_config(str(REPO / "configs/search_embedded.py"))
    if a.steps:
        cfg.supernet.steps = a.steps
    widest = max(_spaces(cfg), key=lambda x: (x.width, x.resolution))
    space = dataclasses.replace(widest, width=a.width or widest.width,
                                resolution=a.resolution or widest.resolution)
    res = min(int(cfg.supernet.resolution) or space.resolution, space.resolution)
    train_x, train_y = load_arrays(cfg.data, "train", res)
    val_x, val_y = load_arrays(cfg.data, "validation", res)
    calib = train_x[: int(cfg.supernet.calib_images)]
    first, steps = int(cfg.supernet.largest_steps), int(cfg.supernet.steps)
    out = Path(a.workdir)
    rows = {}
    with Progress("weight_sharing [supernet]", stream=sys.stderr) as progress:
        init = None
        if first:   # the search's first phase: the largest alone
            sc = cfg.supernet.copy_and_resolve_references()
            sc.k, sc.steps, sc.distill = 1, first, False
            init = train_supernet(space, sc, (train_x, train_y), out / "largest_first", progress)
        shared = train_supernet(space, cfg.supernet, (train_x, train_y), out / "sandwich", progress,
                                init_variables=init)
    with Progress("weight_sharing [largest alone]", stream=sys.stderr) as progress:
        sc = cfg.supernet.copy_and_resolve_references()
        sc.k, sc.steps, sc.distill = 1, first + steps, False
        alone_vars = train_supernet(space, sc, (train_x, train_y), out / "alone", progress)
    for name, variables in (("supernet (sandwich)", shared), ("largest alone", alone_vars)):
        ev = SubnetEvaluator(space, variables, calib, val_x, val_y, int(cfg.supernet.eval_batch_size))
        rows[name] = ev.evaluate([space.largest(), space.smallest()])
    shared, alone = rows["supernet (sandwich)"][0], rows["largest alone"][0]
    print(f"{space.name}: the supernet trained as the search trains it ({first} steps of the largest "
          f"alone, then {steps} sandwich steps, K = {cfg.supernet.k}"
          + (", in-place distillation" if cfg.supernet.distill else "") + f"), the largest alone "
          f"for {first + steps} steps; batch {cfg.supernet.batch_size} at {res} px; validation "
          f"top-1 ({len(val_x)} images, BN recalibrated)")
    print(f"{'network':<34}{'top-1':>8}")
    print(f"{'largest, inside the supernet':<34}{shared:>8.4f}")
    print(f"{'largest, trained alone':<34}{alone:>8.4f}")
    print(f"{'smallest, inside the supernet':<34}{rows['supernet (sandwich)'][1]:>8.4f}")
    print(f"cost of weight sharing (alone - supernet): {100 * (alone - shared):+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
