"""Where training metrics go: ``workdir/metrics.jsonl`` (one JSON object per line) and TensorBoard.

Only process 0 writes. A metric is a scalar or, in a population run, one value per member
(TensorBoard then gets ``name/member{k}``).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np


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
