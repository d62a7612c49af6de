"""Does the evolution beat random sampling? The search's winner against random sub-networks that
fit the same budget, all fine-tuned the same way from their inherited weights.

    python benchmarks/search_vs_random.py --search runs/search [--n 10] [--seeds 3] [--steps N]
        [--workdir runs/search_vs_random]

``--search`` is the work directory of a finished ``python -m tinyjax.search`` run (its supernet
and evolution are read, nothing is retrained). Compared, each fine-tuned with the search's
``finetune`` recipe (``--steps`` shortens it, for every network alike) from its weights cut out of
the supernet (BN recalibrated), validation top-1:

* **the evolution's winner**, over ``--seeds`` fine-tuning seeds (data order and augmentation;
  mean, min–max);
* **random search with the same evaluation budget**: as many random fitting sub-networks as the
  evolution scored, each scored as the evolution scores (inherited weights, held-out top-1); the
  best of them is fine-tuned over the same seeds;
* **N random fitting sub-networks** (``--n``, the first N of those draws), each fine-tuned once
  (seed 0): their best and median.

Every fine-tuning run is a resumable work directory under ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/search_vs_random.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--search", required=True, help="work directory of a finished search")
    p.add_argument("--n", type=int, default=10, help="random sub-networks fine-tuned (default 10)")
    p.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds of the two picks (default 3)")
    p.add_argument("--steps", type=int, default=0, help="fine-tuning steps of every network (default: "
                   "the search's finetune recipe)")
    p.add_argument("--workdir", default="runs/search_vs_random", help="resumable fine-tuning runs")
    a = p.parse_args(argv)

    from tinyjax.errors import TinyJaxError
    from tinyjax.progress import Progress
    from tinyjax.search.tinynas.reopen import reopen
    from tinyjax.units import format_count

    try:
        s = reopen(a.search)
        winner, evaluations = s.winner()
    except TinyJaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = random.Random("search-vs-random-0")
    draws = [s.check.sample(rng) for _ in range(max(evaluations, a.n))]
    t0 = time.time()
    scores = s.score(draws)
    print(f"random search: {len(draws)} fitting sub-networks scored in {time.time() - t0:.0f} s",
          file=sys.stderr)
    pick = draws[max(range(len(draws)), key=scores.__getitem__)]
    out = Path(a.workdir)

    def finetune(arch, name: str, seed: int) -> dict:
        with Progress(f"search_vs_random [{name}, seed {seed}]", stream=sys.stderr) as progress:
            steps = {"total_steps": a.steps} if a.steps else {}
            return s.train(arch, out / f"{name}_s{seed}", init="inherit", seed=seed, progress=progress,
                           **steps)

    seeds = range(a.seeds)
    runs = {"winner": [finetune(winner, "winner", k) for k in seeds],
            "random_search": [finetune(pick, "random_search", k) for k in seeds],
            "random": [finetune(arch, f"random{i:02d}", 0) for i, arch in enumerate(draws[: a.n])]}
    top = {k: [r["top1"] for r in v] for k, v in runs.items()}

    print(f"{s.space.name}, budget {s.budget.text()}; every network fine-tuned from its inherited "
          f"weights with the search's recipe ({a.steps or s.cfg.finetune.total_steps} steps of "
          f"{s.cfg.finetune.batch_size}, lr {s.cfg.finetune.lr:g}); validation top-1")
    print(f"{'network':<46}{'MACs':>8}{'held-out':>10}   {'top-1':<24}")

    def row(name, arch, held, values):
        spread_ = (f"{statistics.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})"
                   if len(values) > 1 else f"{values[0]:.4f}")
        print(f"{name:<46}{format_count(s.check(arch).macs):>8}{held:>10.4f}   {spread_:<24}")

    row(f"evolution's winner ({evaluations} scored, {a.seeds} seeds)", winner,
        s.score([winner])[0], top["winner"])
    row(f"random search, {len(draws)} scored ({a.seeds} seeds)", pick, max(scores), top["random_search"])
    best_i = max(range(a.n), key=top["random"].__getitem__)
    row(f"best of {a.n} random, fine-tuned", draws[best_i], scores[best_i], [top["random"][best_i]])
    print(f"{'median of ' + str(a.n) + ' random, fine-tuned':<46}{'':>8}{'':>10}   "
          f"{statistics.median(top['random']):.4f}")
    for k in ("winner", "random_search"):
        last = runs[k][0]["evals"][-3:]
        print(f"last evaluations, {k} seed 0: " + ", ".join(f"{e['step']}: {e['top1']:.4f}" for e in last))
    diff = statistics.mean(top["winner"]) - max(top["random"])
    print(f"winner - best random: {100 * diff:+.2f} points")
    (out / "search_vs_random.json").write_text(json.dumps(
        {"space": s.space.to_dict(), "winner": winner.to_dict(), "evaluations": evaluations,
         "top1": top, "random_archs": [x.to_dict() for x in draws[: a.n]]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
