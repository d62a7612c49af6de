"""``tinyjax_shapes_sized``: the embedded dataset drawn at another resolution, served through TFDS.

``tinyjax_shapes_sized/176px`` holds the same 6,000 + 1,200 scenes as ``tinyjax_shapes`` (each
image's parameters are drawn at 32 px) drawn at 176×176 by
:func:`tinyjax.data.embedded.render_split`: edges, stripes and marks have 176-px detail instead of
being 32-px images scaled up. TinyNAS needs it so that a network at the resolution a 320 kB
microcontroller runs sees images worth that resolution, and so that the supernet (which reads
:func:`load_numpy_sized`) and ``tinyjax.train`` (which reads the TFDS copy through the usual
pipeline, ``data.name = "tinyjax_shapes_sized/176px"``) see the same pixels.

One builder config per size in :data:`SIZES` (the MCUNet resolutions and 32); preparing a size draws
it once (about a minute at 176 px on 2 cores) into ``<data_dir>/tinyjax_shapes_sized/<size>px/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from tinyjax.data.embedded import (
    CLASS_NAMES,
    SPLIT_SIZES,
    QuietPreparation,
    default_data_dir,
    encode_png,
    prepare,
    render_split,
)

NAME = "tinyjax_shapes_sized"
SIZES = (32, *range(48, 225, 16), 256)   # pixels


def dataset_name(size: int) -> str:
    """The TFDS name of the embedded dataset at ``size`` pixels."""
    _check_size(size)
    return f"{NAME}/{size}px"


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size not in SIZES:
        from tinyjax.errors import DataError

        raise DataError(f"{NAME} is drawn at {', '.join(map(str, SIZES))} px, not {size!r}")
    return size


class TinyjaxShapesSized(QuietPreparation, tfds.core.GeneratorBasedBuilder):
    """TFDS builder of ``tinyjax_shapes_sized/<size>px`` (module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "tinyjax_shapes' scenes drawn at the MCUNet resolutions."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=f"{s}px", description=f"drawn at {s}x{s} pixels")
                       for s in SIZES]

    @property
    def size(self) -> int:
        return int(self.builder_config.name[:-2])

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.size
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"tinyjax_shapes (10 classes of shapes and textures) drawn at {s}x{s} pixels.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
                "label": tfds.features.ClassLabel(names=list(CLASS_NAMES)),
            }),
            supervised_keys=("image", "label"),
            disable_shuffling=True,   # records in drawing order (and no minute-long shuffle pass)
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split) for split in SPLIT_SIZES}

    def _generate_examples(self, split: str):
        images, labels = render_split(split, self.size)
        for i in range(len(labels)):
            yield i, {"image": encode_png(images[i]), "label": int(labels[i])}


def ensure_prepared_sized(size: int, data_dir: str | None = None) -> str:
    """Draw ``tinyjax_shapes_sized/<size>px`` into ``data_dir`` unless it is there; the directory."""
    _check_size(size)
    data_dir = str(Path(data_dir or default_data_dir()).expanduser())
    builder = TinyjaxShapesSized(config=f"{size}px", data_dir=data_dir)
    prepare(builder, data_dir)
    return data_dir


def load_numpy_sized(split: str, size: int, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split at ``size`` pixels from the prepared TFDS copy (drawn first if missing), in
    drawing order (the order of :func:`~tinyjax.data.embedded.render_split`): images uint8
    [N, size, size, 3], labels int32 [N]."""
    if split not in SPLIT_SIZES:
        from tinyjax.errors import DataError

        raise DataError(f"{NAME} has no split {split!r}; splits: {', '.join(SPLIT_SIZES)}")
    builder = TinyjaxShapesSized(config=f"{size}px", data_dir=ensure_prepared_sized(size, data_dir))
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    return np.asarray(arrays["image"], np.uint8), np.asarray(arrays["label"], np.int32)
