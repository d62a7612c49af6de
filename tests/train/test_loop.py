"""``train_loop`` and ``StopRequest`` on fakes (no model, no data): when a signal is honoured, and
that the step it reports is the step it saved."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import ConfigDict

from tinyjax.progress import Progress
from tinyjax.train.run_setup import Run
from tinyjax.train.sharding import Program, Shardings
from tinyjax.train.trainer import StopRequest, train_loop


class Saves:
    directory = Path("/nowhere/checkpoints")

    def __init__(self):
        self.steps: list[int] = []

    def save(self, state, meta):
        self.steps.append(state)


class Writer:
    """Runs ``at_write(step)`` inside each write: where a signal handler may land in real runs
    (after the logging's device_get)."""

    def __init__(self, at_write):
        self.at_write, self.steps = at_write, []

    def write(self, step, values):
        self.steps.append(step)
        self.at_write(step)


def fake_run(writer, saves, total=100):
    mesh = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("population", "data"))
    one = {"loss_sum": jnp.float32(2.0), "count": jnp.float32(2.0), "top1": jnp.float32(1.0),
           "top5": jnp.float32(2.0), "lr": jnp.float32(0.1)}
    program = Program(train=lambda state, batch: (state + 1, one),
                      evaluate=lambda state, batch: {
                          k: one[k] for k in ("loss_sum", "count", "top1", "top5")},
                      shardings=Shardings(None, NamedSharding(mesh, P("data")),
                                          NamedSharding(mesh, P())))
    batch = {"image": np.zeros((2, 4, 4, 3), np.float32), "label": np.zeros(2, np.int32),
             "mask": np.ones(2, np.float32)}
    cfg = ConfigDict({"batch_size": 2, "log_every_steps": 3, "checkpoint_every_steps": 50,
                      "eval_every_steps": 50})
    return Run(cfg, spec=None, population=1, total_steps=total, start=0, program=program, state=0,
               checkpoints=saves, writer=writer, train_batches=lambda k: iter(lambda: batch, None),
               eval_batches=lambda: iter([batch]), meta={})


def test_a_signal_during_logging_is_saved_at_the_next_boundary_not_skipped():
    progress = Progress("t", stream=io.StringIO())
    stop = StopRequest(progress)

    def land_signal(step):
        if step == 3:
            stop.signal_name = "SIGINT"

    saves = Saves()
    result = train_loop(fake_run(Writer(land_signal), saves), progress, stop)
    assert result.preempted and result.signal_name == "SIGINT"
    assert result.step == 4 and saves.steps == [4]
    assert "SIGINT: saved a checkpoint at step 4 in /nowhere/checkpoints/4" in progress.stream.getvalue()


def test_without_a_signal_the_loop_saves_and_logs_only_on_its_schedule():
    progress, saves = Progress("t", stream=io.StringIO()), Saves()
    writer = Writer(lambda step: None)
    result = train_loop(fake_run(writer, saves, total=10), progress, StopRequest(progress))
    assert not result.preempted and result.step == 10 and result.final_eval["eval_top1"] == 0.5
    assert saves.steps == [10] and writer.steps == [3, 6, 9, 10, 10]  # the last 10: the eval


def test_the_first_signal_restores_the_default_action_so_a_second_one_kills():
    progress = Progress("t", stream=io.StringIO())
    before = signal.getsignal(signal.SIGINT)
    with StopRequest(progress) as stop:
        assert signal.getsignal(signal.SIGINT) == stop.handle
        stop.handle(signal.SIGINT, None)
        assert stop and stop.signal_name == "SIGINT"
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is before
