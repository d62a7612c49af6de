"""The default suite's learning check: ``python -m tinyjax.train`` trains the tiny 16×16 network
for 300 steps on the embedded dataset and must end far above chance (about a minute on 2 cores).
The full default config is checked in the slow target (``test_train_cli.py``)."""

from __future__ import annotations

import json

from cli import args, metrics, run


def test_a_tiny_model_learns_far_above_chance(tmp_path, env):
    r = run(args(tmp_path / "learn", "--config.lr=0.02", "--config.log_every_steps=100",
                 "--config.checkpoint_every_steps=300", steps=300), env)
    assert r.returncode == 0, r.stderr[-3000:]
    final = json.loads(r.stdout.strip().splitlines()[-1])
    # chance is 0.1; this 16x16, 300-step run measured 0.40 (the full config is the real run)
    assert final["eval_top1"] >= 0.3, final
    evals = [m for m in metrics(tmp_path / "learn") if "eval_top1" in m]
    assert evals and {"step", "eval_top1", "eval_top5"} <= set(evals[-1])
