"""Devices: the ``(population, data)`` mesh, the shardings of state and batch, and the steps of a
run jitted over them.

``Program``/``compile_program`` live here, not in :mod:`tinyjax.train.steps`, because the jit's in/out
shardings, the population ``vmap`` and the mesh axes must agree with each other: they are one
decision about layout, and the steps themselves stay device-free.

* One model: state replicated, batch split over ``data``; BatchNorm statistics are computed over
  the global batch (XLA reduces across the data shards inside the jitted step).
* A population of K: every state leaf has a leading K axis sharded over ``population``; the step
  is ``vmap``-ed over it while all members see the same batch.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from tinyjax.models import EfficientNet
from tinyjax.train import optim
from tinyjax.train.steps import TrainState, eval_step, train_step


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
    """Where things live: ``state`` (a pytree of shardings like the state), ``batch`` (split over
    ``data``) and ``replicated`` (scalars and metrics of a single model)."""

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


@dataclasses.dataclass
class Program:
    """The jitted train/eval steps of a run (plain or population)."""

    train: Callable
    evaluate: Callable
    shardings: Shardings


def compile_program(cfg, model: EfficientNet, tx, schedule, num_classes: int, mesh: Mesh,
                    state: TrainState, population: int) -> Program:
    """``jit`` the steps of ``cfg`` (label smoothing, EMA) over ``mesh``; with ``population > 1``
    the steps are ``vmap``-ed over the leading K axis of ``state``. Compilation itself happens at
    the first call."""
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
