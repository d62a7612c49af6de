"""The search's images as in-memory uint8 arrays at a space's resolution.

The embedded ``tinyjax_shapes`` is drawn at that resolution (the same scenes as at 32 px,
``tinyjax_shapes_sized/<r>px``, prepared once under the data directory); any other dataset
(ImageNet, an ImageNet-100 subset from a TFDS ``data_dir``) goes through tinyjax's evaluation
pipeline (resize, centre crop) and is turned back into uint8, up to ``data.max_images`` images
per split (0: all). The supernet and the evolution read these arrays; the winner is trained by
``tinyjax.train`` on the same dataset.
"""

from __future__ import annotations

import numpy as np

EMBEDDED = "tinyjax_shapes"


def load_arrays(data_cfg, split: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, r, r, 3], labels int32 [N])`` of ``split`` at ``resolution``."""
    if is_embedded(data_cfg):
        from tinyjax.data.embedded_sized import load_numpy_sized

        return load_numpy_sized(split, resolution, data_cfg.data_dir)
    return _from_pipeline(data_cfg, split, resolution)


def is_embedded(data_cfg) -> bool:
    return str(data_cfg.name).split(":")[0].split("/")[0] in (EMBEDDED, EMBEDDED + "_sized")


def train_data_config(data_cfg, resolution: int):
    """The data section ``tinyjax.train`` trains the winner with: the embedded dataset at the
    space's resolution (the pixels the supernet saw), any other dataset as configured."""
    out = data_cfg.copy_and_resolve_references()
    if is_embedded(data_cfg):
        from tinyjax.data.embedded_sized import dataset_name

        with out.unlocked():
            out.name = dataset_name(resolution)
    return out


def _from_pipeline(data_cfg, split: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from tinyjax.data import pipeline

    cfg = pipeline.default_data_config()   # the search's data section names a subset of its keys
    for key, value in data_cfg.items():
        if key in cfg:
            setattr(cfg, key, None if key == "data_dir" and not value else value)
    cfg.eval_split = cfg.train_split if split == "train" else cfg.eval_split
    limit = int(data_cfg.get("max_images", 0) or 0) or None
    mean = np.asarray(cfg.mean, np.float32) * 255.0
    std = np.asarray(cfg.std, np.float32) * 255.0
    images, labels, have = [], [], 0
    for batch in pipeline.eval_dataset(cfg, batch_size=256, resolution=resolution).as_numpy_iterator():
        keep = batch["mask"] > 0
        x = np.clip(np.rint(batch["image"][keep] * std + mean), 0, 255).astype(np.uint8)
        images.append(x)
        labels.append(batch["label"][keep].astype(np.int32))
        have += len(x)
        if limit and have >= limit:
            break
    if not images:
        from tinyjax.errors import DataError

        raise DataError(f"split {split!r} of {cfg.name!r} is empty")
    x, y = np.concatenate(images), np.concatenate(labels)
    return (x[:limit], y[:limit]) if limit else (x, y)
