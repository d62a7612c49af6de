"""Does the supernet rank sub-networks as training them alone would? Kendall's τ between the two.

    python benchmarks/supernet_rank.py --search runs/search [--n 12] [--steps 400]
        [--workdir runs/supernet_rank]

``--search`` is the work directory of a ``python -m tinyjax.search`` run (its supernet is read
from its checkpoints, not retrained). ``--n`` sub-networks that fit the search's budget are picked
spread over the MACs range of the fitting ones (the n quantiles of 400 random fitting draws).
Each is

* **scored with inherited weights**, as the evolution scores it: its weights cut out of the
  supernet, BatchNorm recalibrated on the config's ``supernet.calib_images`` training images,
  top-1 on the held-out training images; and
* **trained alone** from a random init with one fixed recipe (the search config's ``scratch``
  recipe, ``--steps`` steps; validation top-1, the last evaluations printed so a reader sees the
  curves flatten).

Printed: both columns per network, then Kendall's τ and its p-value (``scipy.stats.kendalltau``).
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
    """``n`` distinct fitting archs at the quantiles of the MACs of ``draws`` random fitting ones."""
    rng = random.Random(f"supernet-rank-{seed}")
    archs = {}
    for _ in range(draws):
        a = check.sample(rng)
        archs[a] = check(a).macs
    ordered = sorted(archs, key=archs.get)
    picked = []
    for i in range(n):
        a = ordered[round(i * (len(ordered) - 1) / max(n - 1, 1))]
        if a not in picked:
            picked.append(a)
    return picked


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/supernet_rank.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--search", required=True, help="work directory of a finished search")
    p.add_argument("--n", type=int, default=12, help="sub-networks (default 12)")
    p.add_argument("--steps", type=int, default=400, help="steps of each run alone (default 400)")
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
    print(f"{len(archs)} sub-networks of {s.space.name} scored with inherited weights in "
          f"{time.time() - t0:.0f} s", file=sys.stderr)
    rows = []
    out = Path(a.workdir)
    for i, arch in enumerate(archs):
        with Progress(f"supernet_rank [{i + 1}/{len(archs)} alone]", stream=sys.stderr) as progress:
            alone = s.train(arch, out / f"alone_{arch.key()}", init="scratch", progress=progress,
                            total_steps=a.steps, eval_every_steps=max(a.steps // 4, 1),
                            checkpoint_every_steps=max(a.steps // 4, 1))
        rows.append((arch, s.check(arch).macs, inherited[i], alone))
    print(f"{s.space.name}: {len(rows)} sub-networks that fit {s.budget.text()}; inherited = the "
          f"supernet's weights, BN recalibrated, top-1 on {len(s.data['holdout'][0])} held-out "
          f"training images; alone = trained from scratch, {a.steps} steps of "
          f"{s.cfg.scratch.batch_size}, validation top-1 (last evaluations)")
    print(f"{'arch':<44}{'MACs':>8}{'inherited':>11}{'alone':>8}  last evaluations")
    for arch, macs, inh, alone in rows:
        last = ", ".join(f"{e['step']}: {e['top1']:.3f}" for e in alone["evals"][-3:])
        print(f"{arch.key():<44}{format_count(macs):>8}{inh:>11.4f}{alone['top1']:>8.4f}  {last}")
    tau, pvalue = kendalltau([r[2] for r in rows], [r[3]["top1"] for r in rows])
    print(f"Kendall's tau (inherited vs alone): {tau:.3f} (p = {pvalue:.3g}, n = {len(rows)})")
    (out / "supernet_rank.json").write_text(json.dumps(
        {"space": s.space.to_dict(), "tau": tau, "p": pvalue, "steps": a.steps,
         "rows": [{"arch": r[0].to_dict(), "macs": r[1], "inherited": r[2], "alone": r[3]} for r in rows]},
        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
