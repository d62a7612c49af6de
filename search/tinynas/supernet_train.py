"""Sandwich training of the weight-sharing supernet, K sub-networks vmapped in one step.

Every step draws K archs: the largest, the smallest and K−2 uniformly random ones from an RNG
seeded by ``(seed, step)`` (OFA's sandwich rule), stacks their masks and runs one
:func:`tinyjax.train.steps.train_step` (the K sub-networks see the same batch under ``vmap``; their
losses and BN statistics are averaged). The batch is drawn from ``(seed, step)`` too, so a run
resumed from a checkpoint draws exactly what an uninterrupted one would, and ends with the same
weights. Checkpoints (:class:`tinyjax.train.checkpoints.Checkpoints`, Orbax) hold the whole train
state; their fingerprint covers the space, the config and the data's shape.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyjax.errors import TinyJaxError
from tinyjax.search.tinynas.space import Arch, SearchSpace
from tinyjax.search.tinynas.supernet import (
    check_images,
    normalise_images,
    sort_channels,
    stack_masks,
    supernet_model,
)

__all__ = ["train_supernet", "step_archs", "step_batch", "make_optimizer", "sandwich_step", "initial_state"]


def step_archs(space: SearchSpace, k: int, seed: int, step: int) -> list[Arch]:
    """The K archs of ``step`` (sandwich rule): largest, smallest, then K−2 random ones drawn
    from ``random.Random`` seeded by ``(seed, step)``. K = 1 trains the largest only."""
    archs = [space.largest(), space.smallest()][:k]
    rng = random.Random(f"supernet-{seed}-{step}")
    return archs + [space.sample(rng) for _ in range(k - len(archs))]


def step_batch(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, step: int,
               flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The batch of ``step``: ``batch_size`` distinct examples and optional horizontal flips, all
    from ``np.random.default_rng((seed, step))``."""
    rng = np.random.default_rng((seed, step))
    idx = np.sort(rng.choice(len(images), batch_size, replace=False))
    x = images[idx]
    if flip:
        which = rng.random(batch_size) < 0.5
        x = np.where(which[:, None, None, None], x[:, :, ::-1], x)
    return x, labels[idx].astype(np.int32)


def make_optimizer(cfg, schedule):
    """``cfg.optimizer`` with weight decay on conv and dense kernels only: BN parameters, biases
    and the elastic-kernel transforms (which start at identity) are not decayed."""
    import jax
    import optax

    def mask(params):
        def decay(path, p):
            return p.ndim > 1 and not str(getattr(path[-1], "key", "")).endswith("_matrix")
        return jax.tree_util.tree_map_with_path(decay, params)

    if cfg.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=cfg.weight_decay, mask=mask)
    if cfg.optimizer == "sgd_nesterov":
        return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask=mask),
                           optax.sgd(schedule, momentum=cfg.momentum, nesterov=True))
    raise TinyJaxError(f"supernet optimizer {cfg.optimizer!r} is unknown; use 'adamw' or "
                       "'sgd_nesterov'")


def _check(cfg, images, labels) -> None:
    check_images("supernet training data", images, labels)
    for key in ("steps", "batch_size", "k", "checkpoint_every", "log_every"):
        if int(cfg[key]) < 1:
            raise TinyJaxError(f"supernet.{key} must be at least 1, got {cfg[key]}")
    if cfg.batch_size > len(images):
        raise TinyJaxError(f"supernet.batch_size {cfg.batch_size} exceeds the {len(images)} "
                           "training images; lower it")


def _fingerprint(space: SearchSpace, cfg, shape: tuple) -> str:
    keys = {"space": space.to_dict(), "data": list(shape),
            "cfg": {k: cfg[k] for k in ("steps", "batch_size", "k", "resolution", "optimizer", "lr",
                                        "momentum", "weight_decay", "warmup_steps", "label_smoothing",
                                        "flip", "seed")}}
    if cfg.get("distill"):    # only when on: supernets trained before the option resume as before
        keys["cfg"]["distill"] = True
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """All images to ``size``² (antialiased bilinear), in chunks, back to uint8."""
    import jax
    import jax.numpy as jnp

    fn = jax.jit(lambda x: jnp.clip(jnp.round(jax.image.resize(
        x.astype(jnp.float32), (x.shape[0], size, size, 3), "linear", antialias=True)), 0, 255
    ).astype(jnp.uint8))
    return np.concatenate([np.asarray(fn(images[i:i + 256])) for i in range(0, len(images), 256)])


def sandwich_step(model, tx, schedule, num_classes: int, label_smoothing: float,
                  distill: bool = False) -> Callable:
    """The jitted supernet step ``(state, images_u8, labels, masks) -> (state, {"loss", "top1"})``:
    normalises the uint8 batch and runs :func:`tinyjax.train.steps.train_step` with the stacked masks
    (K sub-networks vmapped; ``distill``: the first, the largest, teaches the others);
    ``loss``/``top1`` are means over the K against the labels, ``top1_first``/``top1_last`` the
    largest's and the smallest's. Donates the state."""
    import jax
    import jax.numpy as jnp

    from tinyjax.train.steps import train_step

    step_fn = functools.partial(train_step, model=model, tx=tx, schedule=schedule,
                                num_classes=num_classes, label_smoothing=label_smoothing,
                                ema_decay=0.0, ema_warmup=False, distill=distill)

    def sandwich(state, images_u8, labels, masks):
        batch = {"image": normalise_images(images_u8), "label": labels,
                 "mask": jnp.ones(labels.shape, jnp.float32)}
        state, metrics = step_fn(state, batch, masks)
        top1 = metrics["top1"] / metrics["count"]
        return state, {"loss": jnp.mean(metrics["loss_sum"] / metrics["count"]),
                       "top1": jnp.mean(top1), "top1_first": top1[0], "top1_last": top1[-1]}

    return jax.jit(sandwich, donate_argnums=0)


def initial_state(space: SearchSpace, model, tx, seed: int, init_variables: dict | None = None):
    """The train state at step 0: ``seed``'s init (or ``init_variables``), channel-sorted, with a
    fresh optimiser state."""
    import jax
    import jax.numpy as jnp

    from tinyjax.train.steps import create_train_state

    state = create_train_state(model, tx, seed)
    variables = init_variables or {"params": state.params, "batch_stats": state.batch_stats}
    variables = sort_channels(space, jax.device_get(variables))
    params = jax.tree_util.tree_map(jnp.asarray, variables["params"])
    stats = jax.tree_util.tree_map(jnp.asarray, variables["batch_stats"])
    return state.replace(params=params, batch_stats=stats, opt_state=tx.init(params),
                         ema_params=jax.tree_util.tree_map(jnp.copy, params),
                         ema_batch_stats=jax.tree_util.tree_map(jnp.copy, stats))


_PROGRAM_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "warmup_steps", "steps",
                 "label_smoothing", "distill")


@functools.lru_cache(maxsize=2)
def _program(model, num_classes: int, values: tuple):
    """The optimiser and the jitted step of a config, kept for the next call with the same ones:
    compiling the step takes most of a minute on 2 cores, and a resumed or repeated run in the
    same process (the search's orchestrator, the tests) need not pay it again."""
    import ml_collections

    from tinyjax.train import optim

    cfg = ml_collections.ConfigDict(dict(zip(_PROGRAM_KEYS, values)))
    schedule = optim.cosine_schedule(cfg.lr, cfg.steps, cfg.warmup_steps)
    tx = make_optimizer(cfg, schedule)
    return tx, sandwich_step(model, tx, schedule, num_classes, cfg.label_smoothing, bool(cfg.distill))


def train_supernet(space: SearchSpace, cfg, train_data: tuple[np.ndarray, np.ndarray],
                   workdir, progress=None, *, init_variables: dict | None = None,
                   callback: Callable[[int, dict], None] | None = None) -> dict:
    """Train the supernet of ``space`` by the sandwich rule; returns ``{"params", "batch_stats"}``
    (numpy) of the supernet.

    ``cfg``: a :func:`~tinyjax.search.tinynas.supernet.supernet_defaults` section. ``train_data``: uint8
    images ``[N, r, r, 3]`` and int labels ``[N]`` (resized once to ``cfg.resolution`` if that is
    set and differs). ``workdir``: checkpoints go to ``workdir/checkpoints``; calling again with
    the same arguments resumes from the latest one (a finished run returns at once).
    ``init_variables``: start from these weights (e.g. a trained largest network) instead of
    ``cfg.seed``'s init. Either way the initial weights are channel-sorted
    (:func:`~tinyjax.search.tinynas.supernet.sort_channels`) before step 0: this is the start of the
    elastic phase. ``progress``: a :class:`tinyjax.progress.Progress` (steps, loss, img/s, ETA).
    ``callback(step, metrics)`` runs after each step (tests interrupt a run through it).
    """
    import jax
    from jax.sharding import SingleDeviceSharding

    from tinyjax.train.checkpoints import Checkpoints

    images, labels = train_data
    _check(cfg, images, labels)
    labels = np.asarray(labels, np.int32)
    size = int(cfg.resolution) or images.shape[1]
    fp = _fingerprint(space, cfg, images.shape)
    if size != images.shape[1]:
        images = _resize(images, size)
    model = supernet_model(space, size)
    tx, train = _program(model, space.num_classes, tuple(cfg[k] for k in _PROGRAM_KEYS))

    def status(text):
        if progress is not None:
            progress.status(text)

    status(f"building the supernet of {space.name} (K={cfg.k}, batch {cfg.batch_size}, {size} px)...")
    state = initial_state(space, model, tx, cfg.seed, init_variables)

    # committed to one device, as the step's outputs and a restored state are: every call then
    # hits the same compiled program (an uncommitted first state costs a second compilation)
    device = SingleDeviceSharding(jax.devices()[0])
    state = jax.device_put(state, device)
    ckpt = Checkpoints(Path(workdir), int(cfg.checkpoint_keep), fp)
    start = 0
    if ckpt.latest_step() is not None:
        status(f"resuming from {ckpt.directory / str(ckpt.latest_step())}...")
        state, _ = ckpt.restore(state, jax.tree_util.tree_map(lambda _: device, state))
        start = int(jax.device_get(state.step))

    meta = {"space": space.name, "steps": int(cfg.steps)}
    if start < cfg.steps:
        status("compiling the supernet step...")
    t0, seen, losses = time.time(), 0, []
    for step in range(start, int(cfg.steps)):
        x, y = step_batch(images, labels, cfg.batch_size, cfg.seed, step, cfg.flip)
        masks = stack_masks(space, step_archs(space, cfg.k, cfg.seed, step))
        state, metrics = train(state, x, y, masks)
        done = step + 1
        if done == start + 1:  # the first step compiles: start the clock after it
            jax.block_until_ready(metrics)
            if progress is not None:
                progress.start(int(cfg.steps), done)
            t0, seen = time.time(), 0
        else:
            seen += cfg.batch_size
        losses.append(metrics["loss"])
        if done % cfg.log_every == 0 or done == cfg.steps:
            loss = float(np.mean(jax.device_get(losses)))
            if not np.isfinite(loss):
                raise TinyJaxError(f"the supernet loss became NaN/Inf by step {done}; lower "
                                   "supernet.lr (the last good checkpoint is kept)")
            if progress is not None:
                rate = seen / max(time.time() - t0, 1e-9)
                progress.update(done, f"loss {loss:.4f} {rate:.0f} img/s x{cfg.k} subnets")
            losses = []
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            ckpt.save(state, meta)
        if callback is not None:
            callback(done, metrics)
    out = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
    return jax.tree_util.tree_map(np.asarray, out)
