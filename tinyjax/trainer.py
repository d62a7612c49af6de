"""Training: pure step functions, sharded jit over a device mesh, vmapped populations, and the
resumable ``train_and_evaluate(config, workdir)`` loop.

Data flow (see DESIGN.md): tf.data batches (per host) -> global ``jax.Array`` sharded over the
mesh's ``data`` axis -> ``jit(train_step)`` -> Orbax checkpoints in ``workdir/checkpoints``.

* One model: state replicated, batch split over ``data``; BatchNorm statistics are computed over
  the global batch (XLA reduces across the data shards inside the jitted step).
* A population of K: every state leaf has a leading K axis sharded over ``population``; the step
  is ``vmap``-ed over it while all members see the same batch (K seeds, or K learning-rate
  scales of one spec). Member k of a population equals a separate run with ``seed + k``.
* Resumption: the state (params, BN statistics, optimiser state, EMA, step, RNG) is checkpointed;
  the data iterator position is the step itself, because the input pipeline is deterministic
  and can start at any step.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from tinyjax import optim
from tinyjax.errors import TinyJaxError
from tinyjax.models import EfficientNet, init_variables
from tinyjax.spec import ModelSpec


class CheckpointError(TinyJaxError):
    """A checkpoint that cannot be used (corrupt, or written by another configuration)."""


class TrainingDiverged(TinyJaxError):
    """The loss became NaN or infinite."""


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


# -- model and state -------------------------------------------------------------------------------

def spec_from_config(cfg, num_classes: int) -> ModelSpec:
    """The model spec of a config: ``cfg.model`` (zoo name) or ``cfg.spec`` (a spec dict), with the
    dataset's class count, ``cfg.resolution`` (0 = the model's own) and ``cfg.dropout`` (< 0 =
    the spec's own)."""
    from tinyjax.zoo import get_spec

    if cfg.get("spec"):
        spec = ModelSpec.from_json(cfg.spec)
    else:
        spec = get_spec(cfg.model)
    changes: dict[str, Any] = {"num_classes": num_classes}
    if cfg.get("resolution"):
        changes["resolution"] = int(cfg.resolution)
    if cfg.get("dropout", -1) >= 0:
        changes["head"] = dataclasses.replace(spec.head, dropout=float(cfg.dropout))
    return spec.with_(**changes)


def build_model(cfg, spec: ModelSpec) -> EfficientNet:
    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}.get(cfg.get("dtype", "float32"))
    if dtype is None:
        raise optim.ConfigError(f"dtype must be 'float32' or 'bfloat16', got {cfg.dtype!r}")
    return EfficientNet(spec, drop_path_rate=cfg.get("drop_path_rate", 0.0), dtype=dtype,
                        dw_impl=cfg.get("dw_impl", "auto"))


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
    return jax.tree_util.tree_map(lambda x: x[k], state)


# -- steps -----------------------------------------------------------------------------------------

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


def train_step(state: TrainState, batch: dict, masks: dict | None = None, *, model: EfficientNet,
               tx: optax.GradientTransformation, schedule: optim.Schedule, num_classes: int,
               label_smoothing: float, ema_decay: float, ema_warmup: bool):
    """One optimisation step. Returns ``(new_state, metrics)``; metrics are sums over the batch.

    With ``masks`` (sub-network masks with a leading K axis, :func:`~tinyjax.models.subnet_masks`
    stacked), this is a weight-sharing supernet step: the K sub-networks run on the same batch
    under ``vmap``, the loss is their mean, their BN statistics are averaged, and the metrics
    have a leading K axis.
    """
    dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def forward(params, mask):
        logits, new_vars = model.apply(
            {"params": params, "batch_stats": state.batch_stats}, batch["image"], train=True,
            mutable=["batch_stats"], rngs={"dropout": dropout_rng}, masks=mask)
        loss, metrics = classification_metrics(logits, batch["label"], batch["mask"], num_classes,
                                               label_smoothing)
        return loss, (new_vars["batch_stats"], metrics)

    def loss_fn(params):
        if masks is None:
            return forward(params, None)
        losses, (stats, metrics) = jax.vmap(forward, in_axes=(None, 0))(params, masks)
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
    params, stats = (state.ema_params, state.ema_batch_stats) if use_ema else (state.params,
                                                                              state.batch_stats)
    logits = model.apply({"params": params, "batch_stats": stats}, batch["image"], train=False)
    return classification_metrics(logits, batch["label"], batch["mask"], num_classes)[1]


# -- mesh and shardings ----------------------------------------------------------------------------

def make_mesh(population: int = 1, data: int = -1, devices=None) -> Mesh:
    """A ``(population, data)`` mesh; ``data=-1`` takes every device the population leaves."""
    devices = list(devices if devices is not None else jax.devices())
    if data == -1:
        if len(devices) % population:
            raise optim.ConfigError(f"{len(devices)} devices do not split into a population axis of "
                                    f"{population}")
        data = len(devices) // population
    if population * data > len(devices):
        raise optim.ConfigError(f"mesh {population}x{data} needs {population * data} devices, "
                                f"{len(devices)} available")
    grid = np.asarray(devices[: population * data]).reshape(population, data)
    return Mesh(grid, ("population", "data"))


@dataclasses.dataclass(frozen=True)
class Shardings:
    state: Any
    batch: NamedSharding
    replicated: NamedSharding


def shardings_for(mesh: Mesh, state: TrainState, population: bool) -> Shardings:
    spec = P("population") if population else P()
    return Shardings(
        state=jax.tree_util.tree_map(lambda _: NamedSharding(mesh, spec), state),
        batch=NamedSharding(mesh, P("data")),
        replicated=NamedSharding(mesh, P()))


def global_batch(local: dict, sharding: NamedSharding) -> dict:
    """This host's slice of the batch -> one global ``jax.Array`` per field (multi-host safe)."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in local.items()}


# -- the compiled functions of a run ---------------------------------------------------------------

@dataclasses.dataclass
class Program:
    """The jitted train/eval steps of a run (plain or population)."""

    train: Callable
    evaluate: Callable
    shardings: Shardings


def compile_program(cfg, model: EfficientNet, tx, schedule, num_classes: int, mesh: Mesh,
                    state: TrainState, population: int) -> Program:
    step_fn = functools.partial(
        train_step, model=model, tx=tx, schedule=schedule, num_classes=num_classes,
        label_smoothing=cfg.label_smoothing, ema_decay=cfg.ema_decay, ema_warmup=cfg.ema_warmup)
    ev_fn = functools.partial(eval_step, model=model, num_classes=num_classes,
                              use_ema=cfg.ema_decay > 0)
    if population > 1:
        step_fn = jax.vmap(step_fn, in_axes=(0, None))
        ev_fn = jax.vmap(ev_fn, in_axes=(0, None))
    sh = shardings_for(mesh, state, population > 1)
    member = NamedSharding(mesh, P("population")) if population > 1 else sh.replicated
    train = jax.jit(step_fn, in_shardings=(sh.state, sh.batch), out_shardings=(sh.state, member),
                    donate_argnums=0)
    evaluate = jax.jit(ev_fn, in_shardings=(sh.state, sh.batch), out_shardings=member)
    return Program(train, evaluate, sh)


# -- checkpoints -----------------------------------------------------------------------------------

def fingerprint(cfg, spec: ModelSpec, population: int) -> str:
    """What a checkpoint must agree with to be resumed: architecture, optimiser, population."""
    keys = {"spec": spec.to_dict(), "optimizer": cfg.optimizer, "population": population,
            "dtype": cfg.get("dtype", "float32")}
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


class Checkpoints:
    """Orbax ``CheckpointManager`` over ``workdir/checkpoints`` with a compatibility check."""

    def __init__(self, workdir: Path, keep: int, fingerprint_: str):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = (workdir / "checkpoints").absolute()
        self.fingerprint = fingerprint_
        self.manager = ocp.CheckpointManager(
            self.directory, item_names=("state", "meta"),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, state: TrainState, meta: dict) -> None:
        ocp = self._ocp
        step = int(jax.device_get(state.step).reshape(-1)[0])
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            meta=ocp.args.JsonSave({**meta, "fingerprint": self.fingerprint, "step": step})),
            force=True)
        self.manager.wait_until_finished()

    def restore(self, like: TrainState, shardings: Any) -> tuple[TrainState, dict]:
        """Restore the latest checkpoint into the structure/shardings of ``like``."""
        ocp = self._ocp
        step = self.latest_step()
        where = self.directory / str(step)
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:  # noqa: BLE001 - any failure here means an unusable checkpoint
            raise CheckpointError(f"checkpoint {where} is unreadable ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:160]}); delete it or use a new "
                                  "--workdir") from None
        if meta is None or meta.get("fingerprint") != self.fingerprint:
            raise CheckpointError(f"checkpoint {where} was written by a different configuration "
                                  "(model, optimiser, dtype or population differ); use a new "
                                  "--workdir or delete the checkpoints")
        abstract = jax.tree_util.tree_map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), like, shardings)
        try:
            state = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract)))["state"]
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"checkpoint {where} is corrupt or incompatible "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:160]}); delete it "
                                  "or use a new --workdir") from None
        return state, meta


# -- metrics ---------------------------------------------------------------------------------------

class MetricsWriter:
    """``metrics.jsonl`` (one JSON object per line) and TensorBoard events in the work dir."""

    def __init__(self, workdir: Path, resume_step: int, tensorboard: bool = True):
        self.path = workdir / "metrics.jsonl"
        if self.path.exists():  # drop lines the interrupted run logged after its last checkpoint
            kept = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in kept))
        self._tb = None
        if tensorboard and jax.process_index() == 0:
            import tensorflow as tf

            self._tb = tf.summary.create_file_writer(str(workdir / "tensorboard"))

    def write(self, step: int, values: dict) -> None:
        if jax.process_index() != 0:
            return
        line = {"step": int(step), **{k: _jsonable(v) for k, v in values.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        if self._tb is not None:
            import tensorflow as tf

            with self._tb.as_default(step=int(step)):
                for k, v in values.items():
                    arr = np.asarray(v, dtype=np.float64).reshape(-1)
                    for i, x in enumerate(arr):
                        tf.summary.scalar(k if arr.size == 1 else f"{k}/member{i}", float(x))
            self._tb.flush()


def _jsonable(v):
    a = np.asarray(v)
    return a.item() if a.size == 1 else a.tolist()


class Progress:
    """A progress bar on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, start: int, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start_time, self.start_step = time.time(), start

    def update(self, step: int, text: str) -> None:
        if self.tty:
            frac = step / max(self.total, 1)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            self.stream.write(f"\r[{bar}] {step}/{self.total} {text}")
            self.stream.flush()
        else:
            self.stream.write(f"step {step}/{self.total} {text}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


# -- the loop --------------------------------------------------------------------------------------

def _check_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise TinyJaxError(f"work directory {workdir} is not writable ({e.strerror}); choose "
                           "another --workdir") from None


def _summarise(sums: dict, population: bool) -> dict:
    """Summed metrics (device) -> means (host); per member for populations."""
    s = jax.device_get(sums)
    count = np.maximum(np.asarray(s["count"], np.float64), 1.0)
    return {"loss": np.asarray(s["loss_sum"]) / count, "top1": np.asarray(s["top1"]) / count,
            "top5": np.asarray(s["top5"]) / count}


def evaluate(program: Program, state: TrainState, batches: Iterator[dict], population: bool) -> dict:
    totals = None
    for batch in batches:
        m = program.evaluate(state, global_batch(batch, program.shardings.batch))
        totals = m if totals is None else jax.tree_util.tree_map(jnp.add, totals, m)
    if totals is None:
        raise TinyJaxError("the evaluation split is empty")
    out = _summarise(totals, population)
    return {"eval_loss": out["loss"], "eval_top1": out["top1"], "eval_top5": out["top5"]}


@dataclasses.dataclass
class RunResult:
    step: int
    state: TrainState
    final_eval: dict
    preempted: bool = False


def train_and_evaluate(cfg, workdir: str | os.PathLike, *, log=print) -> RunResult:
    """Train per ``cfg`` in ``workdir``: resumes from its latest checkpoint; SIGTERM checkpoints
    and returns (``preempted=True``); a NaN/Inf loss raises :class:`TrainingDiverged` and leaves
    the last good checkpoint in place."""
    from tinyjax.data import pipeline

    workdir = Path(workdir)
    _check_workdir(workdir)
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
    states = [create_train_state(model, tx, cfg.seed + k, scales[k]) for k in range(pop)]
    state = stack_states(states) if pop > 1 else states[0]
    mesh = make_mesh(pop if pop > 1 else 1, cfg.mesh.data)
    program = compile_program(cfg, model, tx, schedule, info.num_classes, mesh, state, pop)
    state = jax.device_put(state, program.shardings.state)

    ckpt = Checkpoints(workdir, cfg.checkpoint_keep, fingerprint(cfg, spec, pop))
    start = 0
    if ckpt.latest_step() is not None:
        state, _ = ckpt.restore(state, program.shardings.state)
        start = int(np.asarray(jax.device_get(state.step)).reshape(-1)[0])
        log(f"resuming from {ckpt.directory / str(start)} (step {start})")
    if jax.process_index() == 0:
        (workdir / "spec.json").write_text(spec.to_json())
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

    stop = {"flag": False}
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # a TPU preemption notice
        stop["flag"] = True

    if threading_is_main():
        signal.signal(signal.SIGTERM, on_sigterm)
    progress = Progress(total_steps, start)
    meta = {"spec": spec.name, "total_steps": total_steps}
    last_saved = start
    final_eval: dict = {}
    try:
        batches = train_batches(start)
        window: list = []
        t0, images = time.time(), 0
        step = start
        while step < total_steps:
            batch = next(batches)
            state, metrics = program.train(state, global_batch(batch, program.shardings.batch))
            step += 1
            window.append(metrics)
            images += cfg.batch_size
            at_log = step % cfg.log_every_steps == 0 or step == total_steps or stop["flag"]
            at_ckpt = step % cfg.checkpoint_every_steps == 0 or step == total_steps or stop["flag"]
            at_eval = step % cfg.eval_every_steps == 0 or step == total_steps
            if at_log or at_ckpt or at_eval:
                losses = np.asarray(jax.device_get([m["loss_sum"] / jnp.maximum(m["count"], 1)
                                                    for m in window]))
                bad = ~np.isfinite(losses).reshape(len(window), -1).all(axis=1)
                if bad.any():
                    first = step - len(window) + 1 + int(np.argmax(bad))
                    raise TrainingDiverged(
                        f"loss became NaN/Inf at step {first}; the last good checkpoint "
                        f"(step {last_saved}) is kept in {ckpt.directory}. Lower the learning "
                        "rate or check the data, then rerun")
                sums = jax.tree_util.tree_map(lambda *x: sum(x), *window)
                summary = _summarise(sums, pop > 1)
                dt = max(time.time() - t0, 1e-9)
                values = {"train_loss": summary["loss"], "train_top1": summary["top1"],
                          "lr": window[-1]["lr"], "images_per_sec": images / dt}
                writer.write(step, values)
                progress.update(step, f"loss {np.mean(summary['loss']):.4f} top1 "
                                      f"{np.mean(summary['top1']):.3f} {images / dt:.0f} img/s")
                window, t0, images = [], time.time(), 0
            if at_ckpt:
                ckpt.save(state, meta)
                last_saved = step
            if stop["flag"]:
                log(f"SIGTERM: saved a checkpoint at step {step} in {ckpt.directory}; run the same "
                    "command again to resume")
                return RunResult(step, state, final_eval, preempted=True)
            if at_eval:
                final_eval = evaluate(program, state, eval_batches(), pop > 1)
                writer.write(step, final_eval)
                log(f"step {step}: eval top-1 {_fmt(final_eval['eval_top1'])} top-5 "
                    f"{_fmt(final_eval['eval_top5'])}")
                t0 = time.time()
        if not final_eval:  # resumed at the very end
            final_eval = evaluate(program, state, eval_batches(), pop > 1)
        return RunResult(step, state, final_eval)
    finally:
        progress.close()
        if threading_is_main():
            signal.signal(signal.SIGTERM, previous)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _fmt(v) -> str:
    a = np.asarray(v).reshape(-1)
    return " ".join(f"{x:.4f}" for x in a)
