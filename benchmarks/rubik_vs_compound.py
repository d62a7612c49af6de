"""The Rubik's-cube formula's network vs EfficientNet's compound-shrunk network of the same MACs.

    python benchmarks/rubik_vs_compound.py [--targets 12M,24M,50M] [--steps 300] [--workdir DIR]
    python benchmarks/rubik_vs_compound.py --quick        # smoke run: a few steps each

At each MACs target: the built-in formula's network (``solve(builtin_formula(), target)``:
TinyNet's r and d, w solved on the counted MACs) against EfficientNet-B0 compound-scaled by the φ
whose counted MACs come closest to the target (``d, w, r = 1.2^φ, 1.1^φ, 1.15^φ``, ceil repeats,
scaled stem and head; φ by bisection on the count, then the nearer of the two steps around the
target). MACs are counted as the papers count them (1000 classes, 224-px base). Both are trained
with the same config (``configs/rubik_embedded.py`` by default: AdamW, cosine, batch 64) on the
embedded dataset (``tinyjax_shapes``, 10 classes, 32-px images resized to each network's
resolution), 3 seeds vmapped as one population; the table gives mean ± std top-1 over the seeds
and the difference (formula − compound). The paper reports +0.3 to +3.8 points on ImageNet at
339M…24M; a 10-class toy dataset trained for minutes need not agree, and this prints what it
measures. Each training run is a resumable ``python -m tinyjax.train`` work directory under
``--workdir``: rerunning skips finished runs.

Cost on 2 CPU cores: every network is EfficientNet-sized (10-16 blocks with squeeze-excite), so
XLA takes 1-2 minutes to compile each, and a step at 60-100 px with 3 members takes seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

from tinyjax.counting import count
from tinyjax.zoo import efficientnet_compound_scaled

REPO = Path(__file__).resolve().parents[1]


def compound_phi(macs_target: int, lo: float = -12.0, hi: float = 0.0) -> float:
    """φ ≤ 0 whose compound-scaled EfficientNet-B0 has counted MACs nearest ``macs_target``.
    MACs grow with φ in steps (rounded channels and repeats): bisect to the step edge, then keep
    the nearer side."""
    macs = lambda phi: count(efficientnet_compound_scaled(phi)).macs  # noqa: E731
    if macs(lo) > macs_target or macs(hi) < macs_target:
        raise ValueError(f"{macs_target / 1e6:g}M MACs is outside compound scaling's φ in [{lo}, {hi}]")
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if macs(mid) < macs_target else (lo, mid)
    return min((lo, hi), key=lambda phi: abs(macs(phi) / macs_target - 1))


def networks(target: int) -> dict:
    """``{"rubik": (spec, label), "compound": (spec, label)}`` at ``target`` MACs."""
    from tinyjax.search.rubik.formula import builtin_formula, solve

    sol = solve(builtin_formula(), target)
    phi = compound_phi(target)
    comp = efficientnet_compound_scaled(phi, name=f"efficientnet_phi{phi:.3f}")
    return {"rubik": (sol.spec, f"r={sol.r:.3f} d={sol.d:.3f} w={sol.w:.3f}"),
            "compound": (comp, f"phi={phi:.3f}")}


def train_seeds(cfg, spec, workdir: Path, seeds: int) -> np.ndarray:
    """Top-1 of ``seeds`` members (seeds ``cfg.seed + k``) trained as one vmapped population."""
    from tinyjax.progress import Progress
    from tinyjax.train.trainer import train_and_evaluate

    c = copy.deepcopy(cfg)
    c.spec, c.resolution = spec.to_json(indent=None), 0
    c.population.size = seeds
    # The seeds as a vmap axis on one device: splitting a 2-core CPU into 3 XLA devices made the
    # population's collectives wait on each other past XLA's 40 s rendezvous limit under load.
    c.mesh.population = 1
    with Progress(f"rubik_vs_compound [{workdir.name}]", stream=sys.stderr) as progress:
        result = train_and_evaluate(c, workdir, progress=progress)
    if result.preempted:
        raise SystemExit(130)
    return np.asarray(result.final_eval["eval_top1"], np.float64).reshape(-1)


def table(rows: list[dict]) -> str:
    head = (f"{'target':>7} | {'formula network':<34} | {'compound network':<26} | "
            f"{'formula top-1':>13} | {'compound top-1':>13} | {'diff':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        a, b = np.asarray(r["rubik_top1"]), np.asarray(r["compound_top1"])
        net = {k: f"{r[k + '_label']} {r[k + '_res']}px {r[k + '_macs'] / 1e6:.1f}M"
               for k in ("rubik", "compound")}
        lines.append(f"{r['target'] / 1e6:>6g}M | {net['rubik']:<34} | {net['compound']:<26} | "
                     f"{100 * a.mean():6.2f} ± {100 * a.std():4.2f} | "
                     f"{100 * b.mean():6.2f} ± {100 * b.std():4.2f} | {100 * (a.mean() - b.mean()):+6.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default="12M,24M,50M", help="three MACs targets (default 12M,24M,50M)")
    p.add_argument("--config", default=str(REPO / "configs/rubik_embedded.py"),
                   help="the training config both networks use")
    p.add_argument("--steps", type=int, default=300, help="training steps per network (default 300)")
    p.add_argument("--seeds", type=int, default=3, help="seeds, vmapped as a population (default 3)")
    p.add_argument("--workdir", default="runs/rubik_vs_compound", help="training runs (resumable)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 steps per network, batch 16")
    a = p.parse_args(argv)
    from tinyjax.search.rubik.sampling import parse_targets
    from tinyjax.train.config import load_config

    targets = parse_targets(a.targets)
    cfg = load_config(a.config)
    cfg.total_steps = 3 if a.quick else a.steps
    if a.quick:
        cfg.batch_size, cfg.log_every_steps, cfg.checkpoint_every_steps = 16, 1, 3
    rows = []
    for t in targets:
        row = {"target": t}
        for kind, (spec, label) in networks(t).items():
            workdir = Path(a.workdir) / f"{t // 10**6}M_{kind}"
            row[f"{kind}_label"], row[f"{kind}_res"] = label, spec.resolution
            row[f"{kind}_macs"] = count(spec).macs
            row[f"{kind}_top1"] = train_seeds(cfg, spec, workdir, a.seeds).tolist()
        rows.append(row)
        print(f"rubik_vs_compound: {t / 1e6:g}M done: {json.dumps(row)}", file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
