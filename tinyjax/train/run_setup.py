"""Setting up a training run from its config: check it, then build everything and restore.

:func:`setup` checks every field a user can get wrong (model, spec, dtype, schedule, optimiser,
dataset, population, mesh, intervals) *before* it creates anything, so a mistake leaves no empty
work directory behind; then it builds the model, optimiser, mesh, jitted program, checkpoints and
input pipelines, and restores the latest checkpoint of the work directory if there is one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tinyjax.errors import TinyJaxError
from tinyjax.files import write_atomic
from tinyjax.models import EfficientNet
from tinyjax.progress import Progress
from tinyjax.spec import ModelSpec
from tinyjax.train import optim
from tinyjax.train.checkpoints import Checkpoints, fingerprint
from tinyjax.train.config import config_to_json
from tinyjax.train.metric_writers import MetricsWriter
from tinyjax.train.sharding import Program, compile_program, make_mesh
from tinyjax.train.steps import TrainState, create_train_state, stack_states


def _spec_json(value: str) -> str:
    """``cfg.spec``: ModelSpec JSON text, or the path of a file holding it (what ``python -m
    tinyjax.search --out FILE`` writes: ``--config.spec=FILE``)."""
    text = value.strip()
    if text.startswith("{"):
        return text
    try:
        return Path(text).read_text()
    except OSError as e:
        raise optim.ConfigError(f"spec: {text!r} is neither ModelSpec JSON nor a readable file "
                                f"({e.strerror or e})") from None


def spec_from_config(cfg, num_classes: int) -> ModelSpec:
    """The model spec of a config: ``cfg.model`` (zoo name) or ``cfg.spec`` (a spec's JSON, or
    the path of a spec JSON file), with the dataset's class count, ``cfg.resolution`` (0 = the
    model's own) and ``cfg.dropout`` (< 0 = the spec's own). ``cfg.model`` is ignored when
    ``cfg.spec`` is set, but must still name a zoo model (or be empty): a misspelt override must
    not pass unnoticed."""
    from tinyjax.zoo import get_spec

    named = get_spec(cfg.model) if cfg.get("model") else None
    spec = ModelSpec.from_json(_spec_json(cfg.spec)) if cfg.get("spec") else named
    if spec is None:
        raise optim.ConfigError("the config names no model: set model (a zoo name) or spec")
    changes: dict[str, Any] = {"num_classes": num_classes}
    if cfg.get("resolution"):
        changes["resolution"] = int(cfg.resolution)
    if cfg.get("dropout", -1) >= 0:
        changes["head"] = dataclasses.replace(spec.head, dropout=float(cfg.dropout))
    return spec.with_(**changes)


def build_model(cfg, spec: ModelSpec) -> EfficientNet:
    """The Flax module of ``spec`` with the config's compute dtype, drop-path rate and depthwise
    implementation."""
    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}.get(cfg.get("dtype", "float32"))
    if dtype is None:
        raise optim.ConfigError(f"dtype must be 'float32' or 'bfloat16', got {cfg.dtype!r}")
    return EfficientNet(spec, drop_path_rate=cfg.get("drop_path_rate", 0.0), dtype=dtype,
                        dw_impl=cfg.get("dw_impl", "auto"))


@dataclasses.dataclass
class Run:
    """A run ready to loop: built by :func:`setup`, advanced by :func:`tinyjax.train.trainer.train_loop`."""

    cfg: Any
    spec: ModelSpec
    population: int              # K; 1 = a single model
    total_steps: int
    start: int                   # the step the state is at (0, or the restored checkpoint's)
    program: Program
    state: TrainState
    checkpoints: Checkpoints
    writer: MetricsWriter
    train_batches: Callable[[int], Iterator[dict]]   # from step k on, this host's slice
    eval_batches: Callable[[], Iterator[dict]]       # the eval split, this host's slice
    meta: dict                   # saved beside every checkpoint


def _check_intervals(cfg) -> None:
    for key in ("batch_size", "eval_batch_size", "log_every_steps", "eval_every_steps",
                "checkpoint_every_steps", "checkpoint_keep"):
        if int(cfg[key]) < 1:
            raise optim.ConfigError(f"{key} must be at least 1, got {cfg[key]}")
    if int(cfg.population.size) < 1:
        raise optim.ConfigError(f"population.size must be at least 1, got {cfg.population.size}")


def _check_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise TinyJaxError(f"work directory {workdir} is not writable ({e.strerror}); choose "
                           "another --workdir") from None


def load_model_init(path, state) -> dict:
    """``{"params", "batch_stats"}`` of ``cfg.model_init`` (a flax.serialization msgpack), checked
    leaf by leaf against ``state``'s: a missing, unreadable or mismatched file is one line naming
    what differs (jnp arrays, ready for a state)."""
    from flax import serialization

    path = Path(path)
    try:
        raw = serialization.msgpack_restore(path.read_bytes())
    except OSError as e:
        raise TinyJaxError(f"model_init {path}: {e.strerror}; give the .msgpack of the weights to "
                           "start from") from None
    except Exception as e:  # noqa: BLE001 - msgpack raises its own types on a corrupt file
        raise TinyJaxError(f"model_init {path} is not a weights file ({type(e).__name__}); give "
                           "the .msgpack written with flax.serialization.msgpack_serialize") from None
    want = {"params": state.params, "batch_stats": state.batch_stats}
    if not isinstance(raw, dict) or set(raw) != set(want):
        raise TinyJaxError(f"model_init {path} must hold exactly 'params' and 'batch_stats'")
    got_leaves = jax.tree_util.tree_flatten_with_path(raw)[0]
    want_leaves = jax.tree_util.tree_flatten_with_path(want)[0]
    got = {jax.tree_util.keystr(k): np.shape(v) for k, v in got_leaves}
    for k, v in want_leaves:
        name = jax.tree_util.keystr(k)
        if got.get(name) != np.shape(v):
            raise TinyJaxError(f"model_init {path} does not fit this model: {name} is "
                               f"{got.get(name, 'missing')}, the model's is {np.shape(v)}")
    if len(got) != len(want_leaves):
        raise TinyJaxError(f"model_init {path} holds {len(got)} arrays, the model {len(want_leaves)}")
    return jax.tree_util.tree_map(lambda w, x: jnp.asarray(x, w.dtype), want, raw)


def setup(cfg, workdir: Path, progress: Progress) -> Run:
    """Check ``cfg``, then build its run in ``workdir`` (created here, after every check) and
    restore the latest checkpoint there. Statuses go to ``progress``."""
    from tinyjax.data import pipeline

    # -- checks: nothing is created before they pass (the data dir aside: the embedded dataset
    # is generated on first use)
    _check_intervals(cfg)
    spec_from_config(cfg, 1)  # the model name / spec, before the (slower) dataset
    if cfg.get("model_init") and not Path(cfg.model_init).is_file():
        raise TinyJaxError(f"model_init {cfg.model_init} not found; give the .msgpack of the weights "
                           "to start from, or '' for a random init")
    progress.status("building the input pipeline...")
    info = pipeline.get_info(cfg.data)
    spec = spec_from_config(cfg, info.num_classes)
    model = build_model(cfg, spec)
    pop = int(cfg.population.size)
    process_count, process_index = jax.process_count(), jax.process_index()
    if cfg.batch_size % process_count:
        raise optim.ConfigError(f"batch_size {cfg.batch_size} does not split over {process_count} hosts")
    steps_per_epoch = max(1, info.num_train // cfg.batch_size)
    total_steps = int(cfg.total_steps or round(cfg.num_epochs * steps_per_epoch))
    schedule = optim.make_schedule(cfg, steps_per_epoch, total_steps)
    tx = optim.make_optimizer(cfg, schedule)
    scales = list(cfg.population.lr_scales) if cfg.population.get("lr_scales") else [1.0] * pop
    if len(scales) != pop:
        raise optim.ConfigError(f"population.lr_scales has {len(scales)} entries, size is {pop}")
    pop_axis = int(cfg.mesh.get("population", -1))
    if pop_axis not in (-1, 1, pop):
        raise optim.ConfigError(f"mesh.population must be -1 (the population size), 1 or {pop}, "
                                f"got {pop_axis}")
    mesh = make_mesh(pop if pop_axis == -1 else pop_axis, cfg.mesh.data)
    _check_workdir(workdir)

    # -- build and restore
    progress.status(f"building {spec.name} ({f'a population of {pop}' if pop > 1 else 'one model'})...")
    states = [create_train_state(model, tx, cfg.seed + k, scales[k]) for k in range(pop)]
    if cfg.get("model_init"):
        init = load_model_init(cfg.model_init, states[0])
        states = [s.replace(params=init["params"], batch_stats=init["batch_stats"],
                            opt_state=tx.init(init["params"]),
                            ema_params=jax.tree_util.tree_map(jnp.copy, init["params"]),
                            ema_batch_stats=jax.tree_util.tree_map(jnp.copy, init["batch_stats"]))
                  for s in states]
    state = stack_states(states) if pop > 1 else states[0]
    program = compile_program(cfg, model, tx, schedule, info.num_classes, mesh, state, pop)
    state = jax.device_put(state, program.shardings.state)

    ckpt = Checkpoints(workdir, cfg.checkpoint_keep, fingerprint(cfg, spec, pop))
    start = 0
    latest = ckpt.latest_step()
    if latest is not None:
        progress.status(f"resuming from {ckpt.directory / str(latest)} (step {latest}): "
                        "restoring the checkpoint...")
        state, _ = ckpt.restore(state, program.shardings.state)
        start = int(np.asarray(jax.device_get(state.step)).reshape(-1)[0])
    if jax.process_index() == 0:
        # The work directory describes itself: the model and the config it was trained with
        # (python -m tinyjax.export reads both). Rewritten at every start, like the spec.
        write_atomic(workdir / "spec.json", spec.to_json())
        write_atomic(workdir / "config.json", config_to_json(cfg))
    writer = MetricsWriter(workdir, start, tensorboard=cfg.get("tensorboard", True))

    local_batch = cfg.batch_size // process_count

    def train_batches(from_step):
        ds = pipeline.train_dataset(cfg.data, batch_size=local_batch, resolution=spec.resolution,
                                    seed=cfg.data_seed, start_step=from_step,
                                    process_index=process_index, process_count=process_count)
        return ds.as_numpy_iterator()

    def eval_batches():
        ds = pipeline.eval_dataset(cfg.data, batch_size=cfg.eval_batch_size // process_count,
                                   resolution=spec.resolution, process_index=process_index,
                                   process_count=process_count)
        return ds.as_numpy_iterator()

    return Run(cfg, spec, pop, total_steps, start, program, state, ckpt, writer, train_batches,
               eval_batches, meta={"spec": spec.name, "total_steps": total_steps})
