"""The pure functions of training: the ``TrainState`` pytree, its creation, and one train/eval step.

Nothing here knows about devices, files or loops: a step is ``state, batch -> state, metrics``,
so :mod:`tinyjax.train.sharding` can ``jit`` it over a mesh and ``vmap`` it over a population, and tests
can call it directly on a tiny model.

Batches are dicts ``{"image": float[B, H, W, 3], "label": int32[B], "mask": float32[B]}``; a mask
of 0 marks an eval padding example, which counts in no metric.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from tinyjax.models import EfficientNet, init_variables
from tinyjax.train import optim


@flax.struct.dataclass
class TrainState:
    """Everything a step changes. ``rng`` is raw key data (uint32[2]) for dropout/drop-path;
    ``lr_scale`` multiplies the schedule (a per-member hyper-parameter in populations)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    ema_params: Any
    ema_batch_stats: Any
    rng: jax.Array
    lr_scale: jax.Array


def create_train_state(model: EfficientNet, tx: optax.GradientTransformation, seed: int,
                       lr_scale: float = 1.0) -> TrainState:
    """A fresh state on the host: weights from ``seed``, dropout RNG from ``seed`` too."""
    variables = init_variables(model, seed)
    params, batch_stats = variables["params"], variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
        # The EMA starts equal to the weights but must own its buffers (the step donates state).
        opt_state=tx.init(params), ema_params=jax.tree_util.tree_map(jnp.copy, params),
        ema_batch_stats=jax.tree_util.tree_map(jnp.copy, batch_stats),
        rng=jax.random.key_data(jax.random.key(seed + 1_000_003)),
        lr_scale=jnp.asarray(lr_scale, jnp.float32))


def stack_states(states: list[TrainState]) -> TrainState:
    """K states -> one state whose leaves have a leading K axis (a population)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


def unstack_state(state: TrainState, k: int) -> TrainState:
    """Member ``k`` of a population state (the inverse of :func:`stack_states`)."""
    return jax.tree_util.tree_map(lambda x: x[k], state)


def classification_metrics(logits, labels, mask, num_classes: int, label_smoothing: float = 0.0):
    """Mean smoothed cross-entropy over real examples, and summed top-1/top-5 hits and count."""
    onehot = jax.nn.one_hot(labels, num_classes)
    if label_smoothing:
        onehot = optax.smooth_labels(onehot, label_smoothing)
    per_example = optax.softmax_cross_entropy(logits.astype(jnp.float32), onehot)
    count = jnp.sum(mask)
    loss = jnp.sum(per_example * mask) / jnp.maximum(count, 1.0)
    top1 = jnp.sum((jnp.argmax(logits, -1) == labels) * mask)
    k = min(5, num_classes)
    topk = jnp.sum(jnp.any(jax.lax.top_k(logits, k)[1] == labels[:, None], axis=-1) * mask)
    return loss, {"loss_sum": loss * count, "top1": top1, "top5": topk, "count": count}


def distillation_loss(logits, teacher_logits, mask):
    """Mean cross-entropy of ``logits`` against the teacher's softmax (its gradient stopped) over
    real examples: BigNAS/OFA in-place distillation, where the largest sub-network teaches the
    others on the same batch."""
    soft = jax.nn.softmax(jax.lax.stop_gradient(teacher_logits.astype(jnp.float32)), -1)
    per_example = optax.softmax_cross_entropy(logits.astype(jnp.float32), soft)
    return jnp.sum(per_example * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def train_step(state: TrainState, batch: dict, masks: dict | None = None, *, model: EfficientNet,
               tx: optax.GradientTransformation, schedule: optim.Schedule, num_classes: int,
               label_smoothing: float, ema_decay: float, ema_warmup: bool, distill: bool = False):
    """One optimisation step. Returns ``(new_state, metrics)``; metrics are sums over the batch.

    With ``masks`` (sub-network masks with a leading K axis, :func:`~tinyjax.models.subnet_masks`
    stacked), this is a weight-sharing supernet step: the K sub-networks run on the same batch
    under ``vmap``, the loss is their mean, their BN statistics are averaged, and the metrics
    have a leading K axis. ``distill`` (with masks): sub-network 0 (the largest, by the sandwich
    rule) learns from the labels and the others from its predictions
    (:func:`distillation_loss`); the metrics still score every one against the labels.
    """
    dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def forward(params, mask):
        logits, new_vars = model.apply(
            {"params": params, "batch_stats": state.batch_stats}, batch["image"], train=True,
            mutable=["batch_stats"], rngs={"dropout": dropout_rng}, masks=mask)
        loss, metrics = classification_metrics(logits, batch["label"], batch["mask"], num_classes,
                                               label_smoothing)
        return loss, (new_vars["batch_stats"], metrics, logits)

    def loss_fn(params):
        if masks is None:
            loss, (stats, metrics, _) = forward(params, None)
            return loss, (stats, metrics)
        losses, (stats, metrics, logits) = jax.vmap(forward, in_axes=(None, 0))(params, masks)
        if distill:
            taught = jax.vmap(distillation_loss, in_axes=(0, None, None))(logits[1:], logits[0],
                                                                          batch["mask"])
            losses = jnp.concatenate([losses[:1], taught])
        return jnp.mean(losses), (jax.tree_util.tree_map(lambda a: jnp.mean(a, 0), stats), metrics)

    (_, (batch_stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    # Every recipe here is linear in the learning rate (momentum included), so scaling the
    # update equals scaling the schedule: a per-member hyper-parameter that vmaps.
    updates = jax.tree_util.tree_map(lambda u: u * state.lr_scale.astype(u.dtype), updates)
    params = optax.apply_updates(state.params, updates)
    decay = optim.ema_decay_at(state.step, ema_decay, ema_warmup)
    new_state = state.replace(
        step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
        ema_params=optim.ema_update(state.ema_params, params, decay),
        ema_batch_stats=optim.ema_update(state.ema_batch_stats, batch_stats, decay))
    metrics["lr"] = schedule(state.step) * state.lr_scale
    return new_state, metrics


def eval_step(state: TrainState, batch: dict, *, model: EfficientNet, num_classes: int,
              use_ema: bool):
    """Summed metrics of one eval batch (``loss_sum``, ``top1``, ``top5``, ``count``), from the
    EMA weights and statistics when ``use_ema``."""
    params, stats = (state.ema_params, state.ema_batch_stats) if use_ema else (state.params,
                                                                              state.batch_stats)
    logits = model.apply({"params": params, "batch_stats": stats}, batch["image"], train=False)
    return classification_metrics(logits, batch["label"], batch["mask"], num_classes)[1]
