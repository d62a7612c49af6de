"""Input data for tinyjax: the embedded ``tinyjax_shapes`` dataset and tf.data pipelines over TFDS.

Importing this package is cheap: TensorFlow loads only when a pipeline function is first used
(``tinyjax.data.train_dataset`` and friends resolve lazily), so ``tinyjax.info`` and the planner
never pay its import time. ``DataError`` is importable without TensorFlow.

Modules: :mod:`tinyjax.data.embedded` (the generated default dataset, a TFDS builder),
:mod:`tinyjax.data.pipeline` (train/eval ``tf.data`` pipelines, device prefetch),
:mod:`tinyjax.data.augment` (RandAugment and random erasing in TF ops).
"""

from __future__ import annotations

import os

# Quiet TensorFlow's C++ logging and keep oneDNN's non-deterministic float reordering off; set
# before TensorFlow is first imported (setdefault: the user's own setting wins).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from tinyjax.errors import DataError  # noqa: E402,F401 - importable from here without TensorFlow

_LAZY = {
    "DatasetInfo": "pipeline",
    "default_data_config": "pipeline",
    "get_info": "pipeline",
    "train_dataset": "pipeline",
    "eval_dataset": "pipeline",
    "as_numpy_iterator": "pipeline",
    "prefetch_to_device": "pipeline",
    "ensure_prepared": "embedded",
    "load_numpy": "embedded",
    "load_rendered": "embedded",
    "dataset_name": "embedded_sized",
    "load_numpy_sized": "embedded_sized",
}

__all__ = ["DataError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        if _LAZY[name] == "pipeline":
            import tinyjax.data.pipeline as module
        elif _LAZY[name] == "embedded":
            import tinyjax.data.embedded as module
        else:
            import tinyjax.data.embedded_sized as module
        return getattr(module, name)
    raise AttributeError(f"module 'tinyjax.data' has no attribute {name!r}")
