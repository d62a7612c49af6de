"""A tiny network and synthetic batches for fast training tests."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec
from tinyjax.train import optim, run_setup, steps

TINY = ModelSpec(
    name="tiny", stem=StemSpec(8),
    stages=(StageSpec((BlockSpec("ds", 3, 1, 8, se=0.25),)),
            StageSpec((BlockSpec("ir", 3, 2, 16, expand=3, repeats=2),)),
            StageSpec((BlockSpec("ir", 5, 2, 24, expand=3, se=0.25),))),
    head=HeadSpec(None, dropout=0.2), resolution=16, num_classes=10, act="relu6")


def step_parts(spec=TINY, drop_path=0.1, lr=0.05):
    cfg = ConfigDict({"dtype": "float32", "drop_path_rate": drop_path, "dw_impl": "auto"})
    model = run_setup.build_model(cfg, spec)
    schedule = optim.exponential_schedule(lr, steps_per_epoch=4, warmup_epochs=1)
    tx = optim.rmsprop_tf(schedule)
    step = functools.partial(steps.train_step, model=model, tx=tx, schedule=schedule,
                             num_classes=spec.num_classes, label_smoothing=0.1, ema_decay=0.99,
                             ema_warmup=True)
    return model, tx, schedule, step


def batches(n, batch=16, res=16, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return [{"image": jnp.asarray(rng.standard_normal((batch, res, res, 3)), jnp.float32),
             "label": jnp.asarray(rng.integers(0, classes, batch), jnp.int32),
             "mask": jnp.ones((batch,), jnp.float32)} for _ in range(n)]
