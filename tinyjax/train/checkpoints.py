"""Orbax checkpoints of a run in ``workdir/checkpoints``, refused when another configuration wrote them.

A checkpoint holds the whole :class:`~tinyjax.train.steps.TrainState` (weights, BN statistics, optimiser
state, EMA, step, RNG) and a small JSON ``meta`` carrying the run's :func:`fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jax

from tinyjax.errors import CheckpointError
from tinyjax.spec import ModelSpec
from tinyjax.train.steps import TrainState


def fingerprint(cfg, spec: ModelSpec, population: int) -> str:
    """What a checkpoint must agree with to be resumed: architecture, optimiser, population."""
    keys = {"spec": spec.to_dict(), "optimizer": cfg.optimizer, "population": population,
            "dtype": cfg.get("dtype", "float32")}
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def _checkpoint_error(message: str):
    return CheckpointError(message)


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
        """Write ``state`` at its step (synchronously: on return the checkpoint is complete)."""
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
            raise _checkpoint_error(f"checkpoint {where} is unreadable ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:160]}); delete it or use a new "
                                    "--workdir") from None
        if meta is None or meta.get("fingerprint") != self.fingerprint:
            raise _checkpoint_error(f"checkpoint {where} was written by a different configuration "
                                    "(model, optimiser, dtype or population differ); use a new "
                                    "--workdir or delete the checkpoints")
        abstract = jax.tree_util.tree_map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), like, shardings)
        try:
            state = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract)))["state"]
        except Exception as e:  # noqa: BLE001
            raise _checkpoint_error(f"checkpoint {where} is corrupt or incompatible "
                                    f"({type(e).__name__}: {str(e).splitlines()[0][:160]}); delete "
                                    "it or use a new --workdir") from None
        return state, meta
