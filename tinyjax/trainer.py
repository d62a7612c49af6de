"""The resumable training loop ``train_and_evaluate(config, workdir)``: build a run, loop, log.

Data flow (see DESIGN.md): tf.data batches (per host) -> global ``jax.Array`` sharded over the
mesh's ``data`` axis -> ``jit(train_step)`` -> Orbax checkpoints in ``workdir/checkpoints``.
The parts live in their own modules: :mod:`tinyjax.steps` (state, train/eval steps),
:mod:`tinyjax.sharding` (mesh, shardings, the jitted program), :mod:`tinyjax.checkpoints`,
:mod:`tinyjax.metric_writers` and :mod:`tinyjax.progress`. Here: :func:`setup` builds everything
and restores, :func:`train_loop` runs the steps, :func:`log_window` summarises a logging window.

* Populations: every state leaf has a leading K axis (K seeds, or K learning-rate scales of one
  spec). Member k of a population equals a separate run with ``seed + k``.
* Resumption: the state (params, BN statistics, optimiser state, EMA, step, RNG) is checkpointed;
  the data iterator position is the step itself, because the input pipeline is deterministic
  and can start at any step.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tinyjax import optim
from tinyjax.checkpoints import Checkpoints, fingerprint
from tinyjax.errors import TinyJaxError
from tinyjax.metric_writers import MetricsWriter
from tinyjax.models import EfficientNet
from tinyjax.progress import Progress
from tinyjax.sharding import Program, compile_program, global_batch, make_mesh
from tinyjax.spec import ModelSpec
from tinyjax.steps import TrainState, create_train_state, stack_states


class CheckpointError(TinyJaxError):
    """A checkpoint that cannot be used (corrupt, or written by another configuration)."""


class TrainingDiverged(TinyJaxError):
    """The loss became NaN or infinite."""


# -- model from config ------------------------------------------------------------------------------

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
    """The Flax module of ``spec`` with the config's compute dtype, drop-path rate and depthwise
    implementation."""
    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}.get(cfg.get("dtype", "float32"))
    if dtype is None:
        raise optim.ConfigError(f"dtype must be 'float32' or 'bfloat16', got {cfg.dtype!r}")
    return EfficientNet(spec, drop_path_rate=cfg.get("drop_path_rate", 0.0), dtype=dtype,
                        dw_impl=cfg.get("dw_impl", "auto"))


# -- setup: everything a run needs, restored -------------------------------------------------------

@dataclasses.dataclass
class Run:
    """A run ready to loop: built by :func:`setup`, advanced by :func:`train_loop`."""

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


def _check_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise TinyJaxError(f"work directory {workdir} is not writable ({e.strerror}); choose "
                           "another --workdir") from None


def setup(cfg, workdir: Path, progress: Progress) -> Run:
    """Build the model, optimiser, mesh, jitted program, checkpoints and input pipelines of
    ``cfg`` in ``workdir``, and restore the latest checkpoint if there is one."""
    from tinyjax.data import pipeline

    _check_workdir(workdir)
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
    progress.status(f"building {spec.name} ({f'a population of {pop}' if pop > 1 else 'one model'})...")
    states = [create_train_state(model, tx, cfg.seed + k, scales[k]) for k in range(pop)]
    state = stack_states(states) if pop > 1 else states[0]
    mesh = make_mesh(max(1, pop), cfg.mesh.data)
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

    return Run(cfg, spec, pop, total_steps, start, program, state, ckpt, writer, train_batches,
               eval_batches, meta={"spec": spec.name, "total_steps": total_steps})


# -- per-window logging and evaluation --------------------------------------------------------------

def _summarise(sums: dict, population: bool) -> dict:
    """Summed metrics (device) -> means (host); per member for populations."""
    s = jax.device_get(sums)
    count = np.maximum(np.asarray(s["count"], np.float64), 1.0)
    return {"loss": np.asarray(s["loss_sum"]) / count, "top1": np.asarray(s["top1"]) / count,
            "top5": np.asarray(s["top5"]) / count}


def log_window(window: list[dict], step: int, seconds: float, images: int, population: bool,
               last_saved: int, checkpoint_dir: Path) -> dict:
    """The train metrics of a logging window (the step metrics of its ``len(window)`` steps,
    ending at ``step``, which took ``seconds`` for ``images`` examples): mean loss and top-1
    (per member in a population), the last learning rate and images per second.

    Raises :class:`TrainingDiverged` naming the first step whose loss is NaN/Inf.
    """
    losses = np.asarray(jax.device_get([m["loss_sum"] / jnp.maximum(m["count"], 1)
                                        for m in window]))
    bad = ~np.isfinite(losses).reshape(len(window), -1).all(axis=1)
    if bad.any():
        first = step - len(window) + 1 + int(np.argmax(bad))
        raise TrainingDiverged(
            f"loss became NaN/Inf at step {first}; the last good checkpoint "
            f"(step {last_saved}) is kept in {checkpoint_dir}. Lower the learning "
            "rate or check the data, then rerun")
    sums = jax.tree_util.tree_map(lambda *x: sum(x), *window)
    summary = _summarise(sums, population)
    seconds = max(seconds, 1e-9)
    return {"train_loss": summary["loss"], "train_top1": summary["top1"],
            "lr": window[-1]["lr"], "images_per_sec": images / seconds}


def window_text(values: dict) -> str:
    """The progress display's text for a window's train metrics (means over a population)."""
    return (f"loss {np.mean(values['train_loss']):.4f} top1 {np.mean(values['train_top1']):.3f} "
            f"{values['images_per_sec']:.0f} img/s")


def evaluate(program: Program, state: TrainState, batches: Iterator[dict], population: bool) -> dict:
    """Mean eval loss, top-1 and top-5 over every batch (per member in a population)."""
    totals = None
    for batch in batches:
        m = program.evaluate(state, global_batch(batch, program.shardings.batch))
        totals = m if totals is None else jax.tree_util.tree_map(jnp.add, totals, m)
    if totals is None:
        raise TinyJaxError("the evaluation split is empty")
    out = _summarise(totals, population)
    return {"eval_loss": out["loss"], "eval_top1": out["top1"], "eval_top5": out["top5"]}


def _fmt(v) -> str:
    a = np.asarray(v).reshape(-1)
    return " ".join(f"{x:.4f}" for x in a)


# -- the loop ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class RunResult:
    step: int
    state: TrainState
    final_eval: dict
    preempted: bool = False


@dataclasses.dataclass
class StopRequest:
    """Set by a signal handler; the loop checkpoints and returns at the next step boundary."""

    signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None


def train_loop(run: Run, progress: Progress, stop: StopRequest) -> RunResult:
    """Step from ``run.start`` to ``run.total_steps``: log every ``log_every_steps``, checkpoint
    every ``checkpoint_every_steps``, evaluate every ``eval_every_steps`` and at the end. When
    ``stop`` is set, checkpoint at the step boundary and return ``preempted=True``."""
    cfg, program, ckpt, pop = run.cfg, run.program, run.checkpoints, run.population
    state, step, last_saved = run.state, run.start, run.start
    final_eval: dict = {}
    batches = run.train_batches(run.start)
    window: list = []
    t0, images = time.time(), 0
    if step < run.total_steps:
        progress.status("compiling the train step...")
    while step < run.total_steps:
        batch = next(batches)
        state, metrics = program.train(state, global_batch(batch, program.shardings.batch))
        step += 1
        if step == run.start + 1:
            # The first step of a process compiles; wait for it so that the display's rate and
            # ETA measure steps, not compilation.
            jax.block_until_ready(metrics)
            progress.start(run.total_steps, step)
        window.append(metrics)
        images += cfg.batch_size
        at_log = step % cfg.log_every_steps == 0 or step == run.total_steps or bool(stop)
        at_ckpt = step % cfg.checkpoint_every_steps == 0 or step == run.total_steps or bool(stop)
        at_eval = step % cfg.eval_every_steps == 0 or step == run.total_steps
        if at_log or at_ckpt or at_eval:
            values = log_window(window, step, time.time() - t0, images, pop > 1, last_saved,
                                ckpt.directory)
            run.writer.write(step, values)
            progress.update(step, window_text(values))
            window, t0, images = [], time.time(), 0
        if at_ckpt:
            ckpt.save(state, run.meta)
            last_saved = step
        if stop:
            progress.status(f"{stop.signal_name}: saved a checkpoint at step {step} in "
                            f"{ckpt.directory}; run the same command again to resume")
            return RunResult(step, state, final_eval, preempted=True)
        if at_eval:
            final_eval = evaluate(program, state, run.eval_batches(), pop > 1)
            run.writer.write(step, final_eval)
            progress.status(f"step {step}: eval top-1 {_fmt(final_eval['eval_top1'])} top-5 "
                            f"{_fmt(final_eval['eval_top5'])}")
            t0 = time.time()
    if not final_eval:  # resumed at the very end
        final_eval = evaluate(program, state, run.eval_batches(), pop > 1)
    return RunResult(step, state, final_eval)


def train_and_evaluate(cfg, workdir: str | os.PathLike, *,
                       progress: Progress | None = None) -> RunResult:
    """Train per ``cfg`` in ``workdir``: resumes from its latest checkpoint; SIGTERM checkpoints
    and returns (``preempted=True``); a NaN/Inf loss raises :class:`TrainingDiverged` and leaves
    the last good checkpoint in place. Progress and messages go to ``progress`` (default: a
    display on stderr)."""
    own = progress is None
    progress = progress or Progress("tinyjax.train", stream=sys.stderr)
    stop = StopRequest()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # a TPU preemption notice
        stop.signal_name = "SIGTERM"

    try:
        run = setup(cfg, Path(workdir), progress)
        if threading_is_main():
            signal.signal(signal.SIGTERM, on_sigterm)
        return train_loop(run, progress, stop)
    finally:
        if own:
            progress.close()
        if threading_is_main():
            signal.signal(signal.SIGTERM, previous)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
