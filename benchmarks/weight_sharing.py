"""The accuracy cost of weight sharing: the supernet's largest sub-network against the same
network trained alone for the same steps, side by side in one run.

    python benchmarks/weight_sharing.py [--width 0.5 --resolution 192] [--steps 60] [--workdir DIR]

Both are trained by :func:`tinyjax.search.tinynas.supernet_train.train_supernet` with the search config's
supernet recipe (``configs/search_embedded.py``: batch, optimiser, proxy resolution): the supernet
with the sandwich rule (K sub-networks per step: the largest, the smallest, K-2 random), the
network alone with K = 1 (the largest only, so it gets the same steps and images but its weights
serve nobody else). Both are scored by :class:`tinyjax.search.tinynas.supernet.SubnetEvaluator` (BN
statistics recalibrated on training images) on the embedded dataset's validation split at the
training resolution. Printed: top-1 of each, the difference (the cost of sharing), and the
smallest sub-network's top-1 inside the supernet. Runs are resumable work directories.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/weight_sharing.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=float, default=0.5, help="space width multiplier (default 0.5)")
    p.add_argument("--resolution", type=int, default=192, help="space resolution (default 192: what "
                   "stage 1 picks at 320 kB on the embedded dataset)")
    p.add_argument("--steps", type=int, default=0, help="training steps (default: the config's)")
    p.add_argument("--workdir", default="runs/weight_sharing", help="resumable training runs")
    a = p.parse_args(argv)

    from tinyjax.progress import Progress
    from tinyjax.search.tinynas.data import load_arrays
    from tinyjax.search.tinynas.space import SearchSpace
    from tinyjax.search.tinynas.supernet import SubnetEvaluator
    from tinyjax.search.tinynas.supernet_train import train_supernet
    from tinyjax.train.config import load_config

    cfg = load_config(str(REPO / "configs/search_embedded.py"))
    space = SearchSpace(a.width, a.resolution, int(cfg.data.num_classes))
    res = min(int(cfg.supernet.resolution) or a.resolution, a.resolution)
    train_x, train_y = load_arrays(cfg.data, "train", res)
    val_x, val_y = load_arrays(cfg.data, "validation", res)
    calib = train_x[: int(cfg.supernet.calib_images)]
    rows = {}
    for name, k in (("supernet (sandwich)", int(cfg.supernet.k)), ("largest alone", 1)):
        sc = cfg.supernet.copy_and_resolve_references()
        sc.k = k
        if a.steps:
            sc.steps = a.steps
        with Progress(f"weight_sharing [{name}]", stream=sys.stderr) as progress:
            variables = train_supernet(space, sc, (train_x, train_y), Path(a.workdir) / f"k{k}", progress)
        ev = SubnetEvaluator(space, variables, calib, val_x, val_y, int(cfg.supernet.eval_batch_size))
        rows[name] = ev.evaluate([space.largest(), space.smallest()])
    shared, alone = rows["supernet (sandwich)"][0], rows["largest alone"][0]
    print(f"{space.name}, trained at {res} px for {a.steps or cfg.supernet.steps} steps of "
          f"{cfg.supernet.batch_size}; validation top-1 at {res} px ({len(val_x)} images)")
    print(f"{'network':<34}{'top-1':>8}")
    print(f"{'largest, inside the supernet':<34}{shared:>8.4f}")
    print(f"{'largest, trained alone':<34}{alone:>8.4f}")
    print(f"{'smallest, inside the supernet':<34}{rows['supernet (sandwich)'][1]:>8.4f}")
    print(f"cost of weight sharing (alone - supernet): {100 * (alone - shared):+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
