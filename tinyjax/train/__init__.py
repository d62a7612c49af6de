"""Training: ``python -m tinyjax.train --config FILE.py[:ARG] --workdir DIR``.

In the order a run uses them: :mod:`~tinyjax.train.config` (config files and overrides),
:mod:`~tinyjax.train.optim` (optax recipes, schedules, EMA), :mod:`~tinyjax.train.steps` (the
pure train and eval steps, vmapped populations), :mod:`~tinyjax.train.sharding` (the mesh and the
jitted program), :mod:`~tinyjax.train.checkpoints` and :mod:`~tinyjax.train.metric_writers`,
:mod:`~tinyjax.train.run_setup` (a run built from its config), :mod:`~tinyjax.train.trainer`
(the resumable loop, :func:`train_and_evaluate`), :mod:`~tinyjax.train.cli` (the command line,
the top layer: no library module imports it);
then what reads a finished run: :mod:`~tinyjax.train.runs` and :mod:`~tinyjax.train.cam`
(class-activation maps). Names resolve lazily here, so ``import tinyjax.train`` is cheap.
"""

from __future__ import annotations

_PUBLIC = ("train_and_evaluate",)
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import tinyjax.train.trainer as trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
