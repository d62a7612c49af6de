"""Does the supernet rank sub-networks as training them alone would? Kendall's τ between the two.

    python benchmarks/supernet_rank.py --search runs/search [--n 12] [--steps 400] [--seeds 1]
        [--workdir runs/supernet_rank]

``--search`` is the work directory of a ``python -m tinyjax.search`` run (its supernet is read
from its checkpoints, not retrained). ``--n`` sub-networks that fit the search's budget are picked
evenly over the space's whole MACs range: its smallest and largest sub-networks (when they fit) and,
between them, the fitting draw (of 400 random ones) nearest each of n - 2 evenly spaced MACs. (The
quantiles of random draws, the first version of this script, crowd the middle of the range, where
sub-networks differ by less than the noise of either measurement.) Each is

* **scored with inherited weights**, as the evolution scores it: its weights cut out of the
  supernet, BatchNorm recalibrated on the config's ``supernet.calib_images`` training images,
  top-1 on the held-out training images (the evolution's score) and, with the same weights and
  statistics, on the validation split (more images, none seen by the supernet or the evolution:
  the same ranking with less sampling noise); and
* **trained alone** from a random init with one fixed recipe (the search config's ``scratch``
  recipe, ``--steps`` steps; validation top-1, the last evaluations printed so a reader sees the
  curves flatten), once per ``--seeds`` seed (initialisation and data order); the mean is ranked.

Printed: the columns per network, then Kendall's τ and its p-value (``scipy.stats.kendalltau``)
of the stand-alone column against each inherited one; with ``--seeds 2`` or more also seed 0's
stand-alone ranking against seed 1's, the ceiling a supernet's ranking can be measured against.
Every training run is a resumable work directory under ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path


def spread(check, n: int, draws: int = 400, seed: int = 0) -> list:
    """``n`` distinct fitting archs evenly over the space's MACs range: the smallest and largest
    sub-networks when they fit, and between them the random fitting draw nearest each of the
    ``n - 2`` evenly spaced MACs."""
    rng = random.Random(f"supernet-rank-{seed}")
    space = check.space
    archs = {a: check(a).macs for a in (space.smallest(), space.largest()) if check(a).fits}
    for _ in range(draws):
        a = check.sample(rng)
        archs[a] = check(a).macs
    lo, hi = min(archs.values()), max(archs.values())
    picked = []
    for i in range(n):
        target = lo + (hi - lo) * i / max(n - 1, 1)
        left = [a for a in archs if a not in picked]
        if left:
            picked.append(min(left, key=lambda a: (abs(archs[a] - target), a.key())))
    return sorted(picked, key=archs.get)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/supernet_rank.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--search", required=True, help="work directory of a finished search")
    p.add_argument("--n", type=int, default=12, help="sub-networks (default 12)")
    p.add_argument("--steps", type=int, default=400, help="steps of each run alone (default 400)")
    p.add_argument("--seeds", type=int, default=1, help="runs alone per sub-network, seeds 0.. "
                   "(default 1); their mean is ranked")
    p.add_argument("--workdir", default="runs/supernet_rank", help="resumable training runs")
    a = p.parse_args(argv)

    from scipy.stats import kendalltau

    from tinyjax.errors import TinyJaxError
    from tinyjax.progress import Progress
    from tinyjax.search.tinynas.reopen import reopen
    from tinyjax.units import format_count

    try:
        s = reopen(a.search)
    except TinyJaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    archs = spread(s.check, a.n)
    t0 = time.time()
    inherited = s.score(archs)
    inherited_val = s.score_validation(archs)
    print(f"{len(archs)} sub-networks of {s.space.name} scored with inherited weights in "
          f"{time.time() - t0:.0f} s", file=sys.stderr)
    rows = []
    out = Path(a.workdir)
    for i, arch in enumerate(archs):
        runs = []
        for seed in range(a.seeds):
            name = f"alone_{arch.key()}" + (f"_seed{seed}" if seed else "")
            with Progress(f"supernet_rank [{i + 1}/{len(archs)} alone, seed {seed}]",
                          stream=sys.stderr) as progress:
                runs.append(s.train(arch, out / name, init="scratch", seed=seed, progress=progress,
                                    total_steps=a.steps, eval_every_steps=max(a.steps // 4, 1),
                                    checkpoint_every_steps=max(a.steps // 4, 1)))
        alone = {"top1": sum(r["top1"] for r in runs) / len(runs), "runs": runs}
        rows.append((arch, s.check(arch).macs, inherited[i], alone, inherited_val[i]))
    print(f"{s.space.name}: {len(rows)} sub-networks that fit {s.budget.text()}; inherited = the "
          f"supernet's weights, BN recalibrated, top-1 on {len(s.data['holdout'][0])} held-out "
          f"training images and on the validation split; alone = trained from scratch, {a.steps} steps of "
          f"{s.cfg.scratch.batch_size}, validation top-1"
          + (f", the mean of {a.seeds} seeds" if a.seeds > 1 else "") + " (last evaluations)")
    print(f"{'arch':<44}{'MACs':>8}{'held-out':>10}{'valid.':>8}{'alone':>8}  last evaluations")
    for arch, macs, inh, alone, inh_val in rows:
        last = "; ".join(", ".join(f"{e['step']}: {e['top1']:.3f}" for e in r["evals"][-3:])
                         for r in alone["runs"])
        print(f"{arch.key():<44}{format_count(macs):>8}{inh:>10.4f}{inh_val:>8.4f}"
              f"{alone['top1']:>8.4f}  {last}")
    alone_top1 = [r[3]["top1"] for r in rows]
    taus = {}
    for name, column in (("held-out", 2), ("validation", 4)):
        tau, pvalue = kendalltau([r[column] for r in rows], alone_top1)
        taus[name] = {"tau": float(tau), "p": float(pvalue)}
        print(f"Kendall's tau (inherited on {name} vs alone): {tau:.3f} (p = {pvalue:.3g}, "
              f"n = {len(rows)})")
    if a.seeds > 1:   # how well the reference ranks itself: one seed's runs against another's
        tau, pvalue = kendalltau([r[3]["runs"][0]["top1"] for r in rows],
                                 [r[3]["runs"][1]["top1"] for r in rows])
        taus["seeds"] = {"tau": float(tau), "p": float(pvalue)}
        print(f"Kendall's tau (alone, seed 0 vs seed 1: the reference's own reproducibility): "
              f"{tau:.3f} (p = {pvalue:.3g})")
    (out / "supernet_rank.json").write_text(json.dumps(
        {"space": s.space.to_dict(), "tau": taus["held-out"]["tau"], "p": taus["held-out"]["p"],
         "tau_validation": taus["validation"]["tau"], "p_validation": taus["validation"]["p"],
         "tau_seeds": taus.get("seeds", {}).get("tau"),
         "steps": a.steps, "seeds": a.seeds,
         "rows": [{"arch": r[0].to_dict(), "macs": r[1], "inherited": r[2], "inherited_validation": r[4],
                   "alone": r[3]} for r in rows]},
        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
