"""A training run read back from its work directory: its config, model, weights and data.

``python -m tinyjax.train`` leaves in its work directory ``checkpoints/`` (Orbax), ``spec.json``
(the model) and ``config.json`` (the config it ran with; runs made before tinyjax wrote it need
the config file passed again). :func:`load_run` restores the latest checkpoint's weights for
inference (the EMA weights when the config keeps an EMA); :func:`train_images` and
:func:`eval_images` read the run's own dataset, preprocessed as in training and evaluation.
Used by ``python -m tinyjax.export`` and ``benchmarks/quant_accuracy.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from tinyjax.errors import RunDirError
from tinyjax.spec import ModelSpec

__all__ = ["LoadedRun", "RunDirError", "check_run_dir", "eval_images", "load_run", "run_config",
           "train_images"]


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """The latest checkpoint of a run, ready for inference.

    ``variables``: ``{"params", "batch_stats"}`` as numpy arrays (the EMA's when ``ema``).
    """

    workdir: Path
    cfg: Any
    spec: ModelSpec
    model: Any                 # tinyjax.models.EfficientNet
    variables: dict
    step: int
    ema: bool


def _train_command(workdir: str | Path) -> str:
    return f"python -m tinyjax.train --config FILE.py --workdir {workdir}"


def check_run_dir(workdir: str | Path) -> Path:
    """``workdir`` as a Path when it is a training run's directory (it has ``checkpoints/``);
    else :class:`RunDirError` saying what is missing, with the path as the user wrote it
    (``./run`` stays ``./run``). Cheap: no JAX, no config."""
    shown = str(workdir)
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise RunDirError(f"{shown} does not exist; pass the --workdir of a training run "
                          f"({_train_command('DIR')})")
    if not (workdir / "checkpoints").is_dir():
        present = [n for n in ("spec.json", "config.json") if (workdir / n).is_file()]
        also = f" (it has {', '.join(present)})" if present else ", spec.json or config.json"
        raise RunDirError(f"{shown} is not a tinyjax training run: no checkpoints/ folder{also}; "
                          f"pass the --workdir of a run, or train one first: "
                          f"{_train_command(shown)}")
    return workdir


def run_config(workdir: str | Path, config: str | None = None):
    """The config of the run in ``workdir``: ``config`` (``FILE.py[:ARG]``) when given, else the
    run's ``config.json``. :class:`RunDirError` says what is missing from a directory that is
    not a run (:func:`check_run_dir`)."""
    from tinyjax.train.config import config_from_json, load_config

    workdir = check_run_dir(workdir)
    if config:
        return load_config(config)
    saved = workdir / "config.json"
    if not saved.is_file():
        raise RunDirError(f"{workdir} has no config.json (runs trained before tinyjax wrote it); "
                          "pass --config FILE.py[:ARG], the config the run was trained with")
    return config_from_json(saved.read_text(), str(saved))


def load_run(workdir: str | Path, config: str | None = None) -> LoadedRun:
    """The latest checkpoint of the run in ``workdir`` (config: see :func:`run_config`).

    Raises :class:`RunDirError` (not a run, no checkpoint, a population run, a config that is
    not the run's) or :class:`tinyjax.train.trainer.CheckpointError` (unreadable, or written by another
    configuration: the fingerprint is checked).
    """
    workdir = Path(workdir)
    cfg = run_config(workdir, config)   # before the heavy imports: a wrong directory fails at once
    import jax

    from tinyjax.data import pipeline
    from tinyjax.train import optim
    from tinyjax.train.checkpoints import Checkpoints, fingerprint
    from tinyjax.train.run_setup import build_model, spec_from_config
    from tinyjax.train.steps import create_train_state

    source = config or str(workdir / "config.json")
    if int(cfg.population.size) != 1:
        raise RunDirError(f"{workdir} is a population run ({cfg.population.size} models); "
                          "export one member at a time")
    info = pipeline.get_info(cfg.data)
    spec = spec_from_config(cfg, info.num_classes)
    saved = workdir / "spec.json"
    if saved.is_file() and ModelSpec.from_json(saved.read_text()) != spec:
        raise RunDirError(f"{saved} is not the model of {source}; pass the config the run was "
                          "trained with (--config)")
    ckpt = Checkpoints(workdir, cfg.checkpoint_keep, fingerprint(cfg, spec, 1))
    step = ckpt.latest_step()
    if step is None:
        raise RunDirError(f"no checkpoint in {ckpt.directory}; train first: "
                          f"{_train_command(workdir)}")
    model = build_model(cfg, spec)
    steps_per_epoch = max(1, info.num_train // cfg.batch_size)
    total = int(cfg.total_steps or round(cfg.num_epochs * steps_per_epoch))
    tx = optim.make_optimizer(cfg, optim.make_schedule(cfg, steps_per_epoch, total))
    like = create_train_state(model, tx, cfg.seed)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    state, _ = ckpt.restore(like, jax.tree_util.tree_map(lambda _: device, like))
    ema = cfg.ema_decay > 0
    if ema:
        variables = {"params": state.ema_params, "batch_stats": state.ema_batch_stats}
    else:
        variables = {"params": state.params, "batch_stats": state.batch_stats}
    variables = jax.tree_util.tree_map(np.asarray, jax.device_get(variables))
    return LoadedRun(workdir, cfg, spec, model, variables, int(step), ema)


def _take(batches, n: int, masked: bool) -> list[dict]:
    out, have = [], 0
    for batch in batches:
        if masked:
            keep = batch["mask"] > 0
            batch = {k: v[keep] for k, v in batch.items()}
        batch = {k: v[:n - have] for k, v in batch.items()}
        if len(batch["image"]):
            out.append(batch)
            have += len(batch["image"])
        if have >= n:
            break
    return out


def train_images(run: LoadedRun, n: int, batch_size: int | None = None) -> list[np.ndarray]:
    """The first ``n`` images (float NHWC) of the run's training pipeline (seed ``data_seed``,
    augmentation included), in batches of ``batch_size`` (default the run's); the last batch may
    be smaller. For calibration."""
    from tinyjax.data import pipeline

    cfg = run.cfg
    batches = pipeline.train_dataset(cfg.data, batch_size=int(batch_size or cfg.batch_size),
                                     resolution=run.spec.resolution, seed=cfg.data_seed)
    return [b["image"] for b in _take(batches.as_numpy_iterator(), n, masked=False)]


def eval_images(run: LoadedRun, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: the first ``n`` examples of the run's evaluation split (float NHWC,
    preprocessed as in evaluation; fewer when the split is smaller)."""
    from tinyjax.data import pipeline

    ds = pipeline.eval_dataset(run.cfg.data, batch_size=min(n, 256), resolution=run.spec.resolution)
    taken = _take(ds.as_numpy_iterator(), n, masked=True)
    if not taken:
        raise RunDirError("the run's evaluation split is empty")
    return (np.concatenate([b["image"] for b in taken]),
            np.concatenate([b["label"] for b in taken]))
