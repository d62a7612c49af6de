"""The resumable training loop ``train_and_evaluate(config, workdir)``: build a run, loop, log.

Data flow (see docs/design.md): tf.data batches (per host) -> global ``jax.Array`` sharded over the
mesh's ``data`` axis -> ``jit(train_step)`` -> Orbax checkpoints in ``workdir/checkpoints``.
The parts live in their own modules: :mod:`tinyjax.train.steps` (state, train/eval steps),
:mod:`tinyjax.train.sharding` (mesh, shardings, the jitted program), :mod:`tinyjax.train.checkpoints`,
:mod:`tinyjax.train.metric_writers`, :mod:`tinyjax.progress` and :mod:`tinyjax.train.run_setup` (checks the
config, builds everything, restores). Here: :func:`train_loop` runs the steps,
:func:`log_window` summarises a logging window, :class:`StopRequest` turns SIGTERM and SIGINT
into a checkpoint.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import jax
import jax.numpy as jnp
import numpy as np

from tinyjax.errors import TinyJaxError, TrainingDiverged
from tinyjax.progress import Progress
from tinyjax.train.run_setup import Run, setup
from tinyjax.train.sharding import Program, global_batch
from tinyjax.train.steps import TrainState

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
    preempted: bool = False      # stopped early by a signal, with a checkpoint at ``step``
    signal_name: str | None = None   # which signal stopped it: "SIGTERM" or "SIGINT"


class StopRequest:
    """SIGTERM (a TPU preemption notice) and SIGINT (Ctrl-C) ask the loop to checkpoint at the
    next step boundary and return. The first signal puts back the default action of its kind, so
    a second one ends the process at once, even inside a long XLA call where no Python handler can
    run; the last complete checkpoint survives that, because Orbax writes a step into a temporary
    folder and renames it only once complete."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, progress: Progress):
        self.progress = progress
        self.signal_name: str | None = None
        self._previous: dict = {}

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def handle(self, signum, frame) -> None:
        self.signal_name = signal.Signals(signum).name
        signal.signal(signum, signal.SIG_DFL)
        again = "Ctrl-C" if signum == signal.SIGINT else self.signal_name
        self.progress.status_from_signal_handler(
            f"{self.signal_name}: saving a checkpoint at the end of this step, then exiting "
            f"({again} again quits at once, keeping the last complete checkpoint)")

    def __enter__(self) -> Self:
        if threading_is_main():  # signal handlers can only be set from the main thread
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self.handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


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
        # Read the request once: a signal handled later in this iteration (they run whenever
        # Python code does, e.g. after the logging's device_get) must wait for the next
        # boundary, not skip this one's save and then return as if it had saved.
        stopping = bool(stop)
        at_log = step % cfg.log_every_steps == 0 or step == run.total_steps or stopping
        at_ckpt = step % cfg.checkpoint_every_steps == 0 or step == run.total_steps or stopping
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
        if stopping:
            progress.status(f"{stop.signal_name}: saved a checkpoint at step {step} in "
                            f"{ckpt.directory / str(step)}; run the same command again to resume")
            return RunResult(step, state, final_eval, preempted=True, signal_name=stop.signal_name)
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
    """Train per ``cfg`` in ``workdir``: resumes from its latest checkpoint; SIGTERM or SIGINT
    checkpoints at the next step boundary and returns (``preempted=True``); a NaN/Inf loss raises
    :class:`TrainingDiverged` and leaves the last good checkpoint in place. Progress and messages
    go to ``progress`` (default: a display on stderr)."""
    own = progress is None
    progress = progress or Progress("tinyjax.train", stream=sys.stderr)
    try:
        # Signals are caught only once there is a state to save; before that Ctrl-C is the
        # usual KeyboardInterrupt.
        run = setup(cfg, Path(workdir), progress)
        with StopRequest(progress) as stop:
            return train_loop(run, progress, stop)
    finally:
        if own:
            progress.close()


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
