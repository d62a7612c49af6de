"""A tiny network and a tiny training config for the sampler and CAM tests (seconds per run)."""

from __future__ import annotations

from pathlib import Path

from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec

REPO = Path(__file__).resolve().parents[2]

TINY = ModelSpec(
    name="tiny", stem=StemSpec(8),
    stages=(StageSpec((BlockSpec("ds", 3, 1, 8, se=0.25),)),
            StageSpec((BlockSpec("ir", 3, 2, 16, expand=3, repeats=2),)),
            StageSpec((BlockSpec("ir", 3, 2, 24, expand=3),))),
    head=HeadSpec(32, dropout=0.0), resolution=16, num_classes=10, act="relu6")

#: --config.KEY=VALUE overrides of configs/rubik_embedded.py for a run of a few steps
TINY_OVERRIDES = ("total_steps=4", "batch_size=16", "eval_batch_size=400", "log_every_steps=2",
                  "checkpoint_every_steps=2", "eval_every_steps=4", "tensorboard=False")


def tiny_config(spec: ModelSpec = TINY, **changes):
    from tinyjax.train.config import apply_overrides, load_config

    cfg = apply_overrides(load_config(str(REPO / "configs/rubik_embedded.py")), TINY_OVERRIDES)
    cfg.spec = spec.to_json(indent=None)
    cfg.resolution = 0
    for k, v in changes.items():
        cfg[k] = v
    return cfg
