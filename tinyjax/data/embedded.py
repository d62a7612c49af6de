"""``tinyjax_shapes``: the default dataset, drawn deterministically by numpy and served through TFDS.

What it is
    10 classes of procedurally drawn 32×32 RGB images: ``circle``, ``ring``, ``square``, ``frame``
    (hollow square), ``triangle``, ``cross``, ``star``, ``stripes_horizontal``, ``stripes_vertical``,
    ``checker``. 6,000 train and 1,200 validation images, exactly balanced (label = index mod 10).
    Images are drawn in blocks of 200, each from its own generator seeded ``(SEED, split, block)``,
    so every machine draws the same pixels and blocks can be drawn in any order (the per-pixel
    drawing uses only arithmetic, comparisons and square roots, which IEEE-754 rounds identically
    everywhere; trigonometry is computed per image by the C library, never by numpy's SIMD paths).
    Nothing is downloaded and nothing but this code is in git: :class:`TinyjaxShapes` is a TFDS
    ``GeneratorBasedBuilder`` that draws the splits inside ``download_and_prepare`` (a few seconds),
    so the same ``tf.data`` pipeline reads it and ImageNet.

Why a linear classifier fails (about 0.2 validation top-1 on raw pixels; chance is 0.1)
    A linear model scores a fixed weighted sum of pixel values. Here the evidence for a class is in
    *where edges are relative to each other* (a hole in a disk, a corner, a period of stripes), not
    in the value of any fixed pixel: the object moves over the image and changes size and rotation,
    and its colours are random, so the mean image of every class is nearly the same and every
    pixel's class-conditional distribution is nearly the same. What a linear model can use is weak:
    with the usual bright-on-dark polarity, how much of the image is bright near the centre differs a
    little between a disk, a ring, a thin cross and a large texture rectangle. Stripe orientation
    and checks are correlations between neighbouring pixels, which no weighted sum forms.
    ``benchmarks/linear_baseline.py`` measures it.

Why a small CNN succeeds (about 0.9 validation top-1 after a few CPU minutes)
    Every class is defined by local edge configurations that a stack of 3×3 convolutions detects
    wherever they are (translation equivariance) and global average pooling collects from any
    position; ReLUs after the first layer handle either contrast polarity. Objects are at least
    12 px across, noise is mild and clutter is much thinner or smaller than any object, so a few
    layers at 32×32 suffice. Horizontal flips keep every label (stripes keep their orientation).

How an image is drawn
    :mod:`tinyjax.data.scenes` (per image: background gradient, one shape or texture, clutter marks,
    noise; anti-aliased).

At any resolution (``render_split(split, size)``; :func:`load_rendered` caches it as ``.npz``)
    TinyNAS searches at 48–224 px, where memory budgets bind. Every image keeps the parameters drawn
    at 32 px (in 32-px units); shapes (2×2 sub-pixels), gradient and marks (edge one output pixel
    wide) are evaluated at ``size`` px. Noise at size ≠ 32 has the same σ per image, from its own
    generator seeded ``(SEED, split, block, size)``; size 32 is the TFDS dataset bit for bit.
    Blocks are drawn on threads (numpy releases the GIL); cost grows as size².
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from tinyjax.data.scenes import (
    BLOCK,
    CLASS_NAMES,
    IMAGE_SIZE,
    NUM_CLASSES,
    SEED,
    SPLIT_SIZES,
    _draw_block,
    _render,
)

__all__ = ["BLOCK", "CLASS_NAMES", "IMAGE_SIZE", "NAME", "NUM_CLASSES", "SEED", "SPLIT_SIZES",
           "QuietPreparation", "TinyjaxShapes", "cache_path", "default_data_dir", "encode_png",
           "ensure_prepared", "load_numpy", "load_rendered", "prepare", "render_split"]
from tinyjax.errors import DataError

NAME = "tinyjax_shapes"
_SPLIT_IDS = {"train": 0, "validation": 1}
_MIN_SIZE = 16  # pixels; the smallest rendering (objects stay at least 6 px across)
_RENDER_REVISION = 1  # part of the cache file name: raise it when drawing at size != 32 changes



def default_data_dir() -> str:
    """``$TINYJAX_DATA_DIR`` if set, else ``~/tensorflow_datasets`` (TFDS's own default)."""
    return os.environ.get("TINYJAX_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _check(split: str, size) -> None:
    if split not in SPLIT_SIZES:
        raise DataError(f"{NAME} has no split {split!r}; splits: {', '.join(SPLIT_SIZES)}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < _MIN_SIZE:
        raise DataError(f"{NAME} is drawn at an integer size of at least {_MIN_SIZE} px, got {size!r}")


def render_split(split: str, size: int = IMAGE_SIZE,
                 workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw a split in generation order: images uint8 [N, size, size, 3], labels int32 [N].

    Pure numpy, no TFDS; at size 32 the prepared TFDS dataset holds the same examples in TFDS's own
    order. Other sizes draw the same scenes (module docstring). ``workers`` threads draw blocks
    (default: one per CPU); the pixels do not depend on it.
    """
    _check(split, size)
    size = int(size)
    n, sid = SPLIT_SIZES[split], _SPLIT_IDS[split]
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty((n,), np.int32)

    def draw(block: int) -> None:
        start = block * BLOCK
        params = _draw_block(sid, block, min(BLOCK, n - start), size)
        images[start:start + len(params["label"])] = _render(params)
        labels[start:start + len(params["label"])] = params["label"]

    blocks = range(-(-n // BLOCK))
    with ThreadPoolExecutor(min(len(blocks), workers or os.cpu_count() or 1)) as pool:
        list(pool.map(draw, blocks))  # list(): re-raises a block's exception here
    return images, labels


def cache_path(split: str, size: int, cache_dir: str | os.PathLike) -> Path:
    """The ``.npz`` file of :func:`load_rendered` for ``split`` at ``size`` px under ``cache_dir``."""
    version = f"{TinyjaxShapes.VERSION}" + ("" if size == IMAGE_SIZE else f"-r{_RENDER_REVISION}")
    return Path(cache_dir).expanduser() / f"{NAME}-{version}-{split}-{size}px.npz"


def load_rendered(split: str, size: int = IMAGE_SIZE, cache_dir: str | os.PathLike | None = None,
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`render_split` through a cache (the one file this library writes: caching is its
    purpose): ``cache_dir``'s ``.npz`` (:func:`cache_path`) if it holds the split, else drawn and
    saved there through a temporary file and a rename. ``cache_dir=None``:
    ``<default_data_dir()>/tinyjax_shapes_rendered``. Uncompressed (noise barely compresses):
    train at 176 px is 557 MB."""
    _check(split, size)
    size = int(size)
    if cache_dir is None:
        cache_dir = os.path.join(default_data_dir(), f"{NAME}_rendered")
    path = cache_path(split, size, cache_dir)
    n = SPLIT_SIZES[split]
    if path.is_file():
        try:
            with np.load(path) as z:
                images, labels = z["images"], z["labels"]
            if (images.shape == (n, size, size, 3) and images.dtype == np.uint8
                    and labels.shape == (n,) and labels.dtype == np.int32):
                return images, labels
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # not a cache of this split: draw it again and replace the file
    images, labels = render_split(split, size, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=images, labels=labels)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return images, labels


# ----------------------------------------------------------------------------------------------
# TFDS


class QuietPreparation:
    """TFDS builder mix-in: no "Downloading and preparing dataset …" lines (:func:`prepare` says
    in one line what happens)."""

    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        pass


class TinyjaxShapes(QuietPreparation, tfds.core.GeneratorBasedBuilder):
    """TFDS builder of ``tinyjax_shapes`` (registered under that name when this module is imported).

    ``download_and_prepare()`` downloads nothing: the splits are drawn by :func:`render_split`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "10 classes of shapes and textures, 6,000 train / 1,200 validation."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=("Procedurally drawn 32x32 shapes and textures (10 classes) with random "
                         "position, scale, rotation, colours, clutter and noise; generated by "
                         "tinyjax from a fixed seed."),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), encoding_format="png"),
                "label": tfds.features.ClassLabel(names=list(CLASS_NAMES)),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split) for split in SPLIT_SIZES}

    def _generate_examples(self, split: str):
        images, labels = render_split(split)
        for i in range(len(labels)):
            yield i, {"image": encode_png(images[i]), "label": int(labels[i])}


def encode_png(image: np.ndarray) -> bytes:
    """A minimal lossless PNG of a uint8 [H, W, 3] image (8-bit RGB, no row filters).

    TFDS would encode through a TensorFlow graph per image (~0.4 ms each); zlib does it in a tenth
    of that, with identical pixels on decode.
    """
    h, w, _ = image.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit depth, colour type 2 (RGB)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def ensure_prepared(data_dir: str | None = None) -> str:
    """Build ``tinyjax_shapes`` into ``data_dir`` unless it is already there; returns the directory.

    ``data_dir=None`` means :func:`default_data_dir`. Preparing twice is a no-op (TFDS keeps
    ``<data_dir>/tinyjax_shapes/1.0.0``).
    """
    data_dir = str(Path(data_dir or default_data_dir()).expanduser())
    prepare(TinyjaxShapes(data_dir=data_dir), data_dir)
    return data_dir


def prepare(builder, data_dir: str) -> None:
    """Draw a generated dataset with TFDS unless it is prepared, saying so in one line on stderr.

    TFDS's own lines would be wrong here ("Downloading and preparing dataset Unknown size
    (download: Unknown size, …)", absl warnings about a variant folder without its
    ``dataset_info.json`` while it is checked and written): the builders override TFDS's two
    messages (:class:`QuietPreparation`) and absl's warnings are held back meanwhile."""
    import logging

    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        if builder.is_prepared():
            return
        name = builder.info.full_name.rsplit("/", 1)[0]
        print(f"tinyjax: drawing the embedded dataset {name} into {data_dir} (generated here, once; "
              "nothing is downloaded)", file=sys.stderr, flush=True)
        tfds.disable_progress_bar()   # TFDS's own bars would flood a log
        config = tfds.download.DownloadConfig(try_download_gcs=False,
                                              compute_stats=tfds.download.ComputeStatsMode.SKIP)
        builder.download_and_prepare(download_dir=os.path.join(data_dir, "downloads"),
                                     download_config=config)
    finally:
        absl_logger.setLevel(level)


def load_numpy(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split from the prepared TFDS copy (built first if missing), in TFDS's record order:
    images uint8 [N, 32, 32, 3], labels int32 [N]. Other sizes: :func:`load_rendered`."""
    _check(split, IMAGE_SIZE)
    builder = TinyjaxShapes(data_dir=ensure_prepared(data_dir))
    ds = builder.as_dataset(split=split, batch_size=-1, shuffle_files=False)
    arrays = tfds.as_numpy(ds)
    return np.asarray(arrays["image"], np.uint8), np.asarray(arrays["label"], np.int32)
