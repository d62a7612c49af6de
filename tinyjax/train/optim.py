"""Optimiser recipes (optax) for the TinyNet/EfficientNet schedule and for supernets.

* ``rmsprop_tf``: RMSProp as TensorFlow (and timm's ``RMSpropTF``) computes it: the square
  average starts at 1, ``eps`` sits inside the square root, and the learning rate is applied
  *before* the momentum accumulator (so a changing rate does not rescale past momentum).
* ``exponential_schedule``: linear warm-up, then ``lr · rate^floor(epoch / decay_epochs)``
  (0.97 every 2.4 epochs in the released TinyNet recipe).
* ``cosine_schedule``: linear warm-up then cosine to zero (SGD-Nesterov for supernets).
* Weight decay is L2 added to the gradient (as timm's optimisers do), masked to conv and dense
  kernels: BatchNorm scale/shift and biases are not decayed.
* ``adamw``: Adam with decoupled weight decay (same mask); the fast recipe for small runs such
  as the embedded dataset.
* ``ema_update``: exponential moving average of weights and BN statistics, with timm's optional
  warm-up ``min(decay, (1 + t) / (10 + t))`` so short runs get a useful average.

All schedules take the step (an int array) and return a float32 learning rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from tinyjax.errors import ConfigError

Schedule = Callable[[jax.Array], jax.Array]


def exponential_schedule(base_lr: float, steps_per_epoch: int, warmup_epochs: float = 3.0,
                         decay_rate: float = 0.97, decay_epochs: float = 2.4,
                         warmup_init_lr: float = 1e-6) -> Schedule:
    """Warm-up from ``warmup_init_lr`` to ``base_lr`` over ``warmup_epochs``, then staircase
    exponential decay by ``decay_rate`` every ``decay_epochs`` (counted from step 0, as timm)."""
    warmup_steps = max(1, int(round(warmup_epochs * steps_per_epoch))) if warmup_epochs > 0 else 0
    decay_steps = max(1.0, decay_epochs * steps_per_epoch)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        decayed = base_lr * decay_rate ** jnp.floor(step / decay_steps)
        if warmup_steps == 0:
            return decayed
        warm = warmup_init_lr + (base_lr - warmup_init_lr) * step / warmup_steps
        return jnp.where(step < warmup_steps, warm, decayed)

    return schedule


def cosine_schedule(base_lr: float, total_steps: int, warmup_steps: int = 0,
                    warmup_init_lr: float = 0.0) -> Schedule:
    """Linear warm-up, then cosine decay from ``base_lr`` to 0 at ``total_steps``."""
    decay_steps = max(1, total_steps - warmup_steps)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        t = jnp.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)
        cos = 0.5 * base_lr * (1 + jnp.cos(jnp.pi * t))
        if warmup_steps == 0:
            return cos
        warm = warmup_init_lr + (base_lr - warmup_init_lr) * step / warmup_steps
        return jnp.where(step < warmup_steps, warm, cos)

    return schedule


def decay_mask(params: Any) -> Any:
    """True for conv and dense kernels (ndim > 1), False for BN scale/shift and biases."""
    return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def rmsprop_tf(schedule: Schedule, decay: float = 0.9, momentum: float = 0.9, eps: float = 1e-3,
               weight_decay: float = 1e-5) -> optax.GradientTransformation:
    """TF-style RMSProp with masked L2 weight decay (see module docstring)."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay, mask=decay_mask),
        optax.scale_by_rms(decay=decay, eps=eps, initial_scale=1.0, eps_in_sqrt=True),
        optax.scale_by_learning_rate(schedule),
        optax.trace(decay=momentum, nesterov=False),
    )


def sgd_nesterov(schedule: Schedule, momentum: float = 0.9,
                 weight_decay: float = 4e-5) -> optax.GradientTransformation:
    """SGD with Nesterov momentum and masked L2 weight decay."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay, mask=decay_mask),
        optax.sgd(schedule, momentum=momentum, nesterov=True),
    )


def adamw(schedule: Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4) -> optax.GradientTransformation:
    """Adam with decoupled weight decay, masked to conv and dense kernels."""
    return optax.adamw(schedule, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=decay_mask)


def make_schedule(cfg, steps_per_epoch: int, total_steps: int, lr_scale: float = 1.0) -> Schedule:
    """The schedule named by ``cfg.schedule`` (``exponential`` | ``cosine``), learning rate
    ``cfg.lr`` × ``lr_scale``."""
    lr = cfg.lr * lr_scale
    if cfg.schedule == "exponential":
        return exponential_schedule(lr, steps_per_epoch, cfg.warmup_epochs, cfg.decay_rate,
                                    cfg.decay_epochs)
    if cfg.schedule == "cosine":
        return cosine_schedule(lr, total_steps, int(round(cfg.warmup_epochs * steps_per_epoch)))
    raise ConfigError(f"unknown schedule {cfg.schedule!r}; use 'exponential' or 'cosine'")


def make_optimizer(cfg, schedule: Schedule) -> optax.GradientTransformation:
    """The optimiser named by ``cfg.optimizer`` (``rmsprop_tf`` | ``sgd_nesterov`` | ``adamw``)."""
    if cfg.optimizer == "rmsprop_tf":
        return rmsprop_tf(schedule, cfg.rms_decay, cfg.momentum, cfg.rms_eps, cfg.weight_decay)
    if cfg.optimizer == "sgd_nesterov":
        return sgd_nesterov(schedule, cfg.momentum, cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return adamw(schedule, weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; use 'rmsprop_tf', 'sgd_nesterov' "
                      "or 'adamw'")


def ema_decay_at(step: jax.Array, decay: float, warmup: bool) -> jax.Array:
    """The EMA decay used at ``step`` (timm's warm-up when ``warmup``)."""
    if not warmup:
        return jnp.asarray(decay, jnp.float32)
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema: Any, new: Any, decay: jax.Array) -> Any:
    """``ema · decay + new · (1 − decay)``, leaf by leaf."""
    return jax.tree_util.tree_map(lambda e, p: e * decay + p.astype(e.dtype) * (1.0 - decay), ema, new)
