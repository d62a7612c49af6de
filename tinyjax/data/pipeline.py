"""tf.data input pipelines over TFDS (ImageNet, any image-classification dataset, the embedded
``tinyjax_shapes``) and local image folders: deterministic, resumable, sharded per process.

Sources
    ``cfg.name`` is a TFDS name (``"imagenet2012"``, ``"tinyjax_shapes"``, ``"cifar10:3.0.2"``…, read
    from ``cfg.data_dir``: nothing is downloaded, a missing copy is a :class:`~tinyjax.data.DataError`;
    ``tinyjax_shapes`` is drawn on first use) or ``"imagefolder"``: ``cfg.folder/<split>/<class>/*``
    (jpg, jpeg, png, bmp, gif), classes = the sorted sub-folders of the train split.
    ``num_classes_subset=N`` keeps the first N ids of ``permutation(num_classes)`` under
    ``numpy.random.default_rng(subset_seed)`` (ImageNet-100 style) and renumbers them 0..N-1 in
    increasing order of the original id.

Sharding
    Process ``p`` of ``P`` reads the contiguous ``p``-th of ``P`` near-equal slices of each split
    (``tfds.even_splits``: sizes differ by at most one; TFDS opens only that slice's files). Slices
    are disjoint and cover the split. Training batches are per process: the global batch is
    ``batch_size * process_count``.

Determinism and resumption (training)
    The train stream is a sequence of epochs over the process's records (encoded, before decoding).
    Epoch ``e`` shuffles them with a seed drawn from (seed, process_index, e); record ``i`` of epoch
    ``e`` sits at stream position ``e·n + i``, and every random choice of its augmentation is a
    ``tf.random.stateless_*`` draw seeded by (seed, process_index, position). Nothing depends on
    thread scheduling or on how far an iterator has run, so ``start_step=k`` starts at epoch
    ``k·B // n``, drops ``k·B mod n`` encoded records of it (no decoding) and yields exactly the
    batches a fresh iterator yields from batch ``k`` on. Batches run across epoch boundaries.
    (Shuffling is a ``shuffle_buffer``-record buffer over TFDS's fixed file order: a full
    permutation for datasets that fit in the buffer. ``tf.random.set_seed`` changes the order,
    deterministically.)

Evaluation
    Every example once, in a fixed order; the last batch is padded to ``batch_size`` with ``mask``
    0, and every process yields the same number of batches (the largest slice's), so multi-host
    evaluation steps stay in lockstep. ``sum(mask)`` over all batches and processes is the split size.

Batches are dicts: ``image`` float32 [B, H, W, 3] normalised by ``mean``/``std`` (0..1 units),
``label`` int32 [B], ``mask`` float32 [B] (1 = real example).
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf

from tinyjax.data import augment
from tinyjax.data.sources import EMBEDDED, kept_records, source, subset_table
from tinyjax.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # 0..1 units
IMAGENET_STD = (0.229, 0.224, 0.225)

# Functions given to tf.data use tf.cond/tf.where, never Python control flow on tensors, so they
# skip AutoGraph's source transformation (which cost ~4 s per pipeline on a 2-core machine).
_graph = tf.autograph.experimental.do_not_convert


def default_data_config() -> ml_collections.ConfigDict:
    """The data section of a training config (sizes in pixels / examples, probabilities in 0..1)."""
    c = ml_collections.ConfigDict()
    c.name = EMBEDDED  # TFDS name, or "imagefolder"
    c.data_dir = None  # TFDS data dir; None: $TINYJAX_DATA_DIR or ~/tensorflow_datasets
    c.folder = ""  # imagefolder root: folder/<split>/<class>/<image>
    c.train_split = "train"
    c.eval_split = "validation"
    c.num_classes_subset = 0  # 0: all classes; N: a seeded N-class subset, labels 0..N-1
    c.subset_seed = 0
    c.randaugment_n = 2  # ops per image; 0 disables RandAugment
    c.randaugment_m = 9  # magnitude 0..10
    c.randaugment_mstd = 0.5
    c.random_erasing = 0.0  # probability per image
    c.crop_pct = 0.875  # eval: centre crop of resolution / crop_pct
    c.min_crop_area = 0.08  # train: random-resized-crop area range [min_crop_area, 1]
    c.mean = IMAGENET_MEAN
    c.std = IMAGENET_STD
    c.shuffle_buffer = 10_000  # records
    c.cache = True  # keep encoded records in memory after the first epoch (small datasets)
    return c


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a schedule need to know about a dataset (after class subsetting).

    ``num_train`` / ``num_eval`` count examples of the kept classes in the configured splits.
    """

    name: str
    num_classes: int
    num_train: int
    num_eval: int
    class_names: tuple[str, ...]


# ----------------------------------------------------------------------------------------------
# Public API


def get_info(cfg) -> DatasetInfo:
    """Classes and split sizes of ``cfg``'s dataset, after ``num_classes_subset``."""
    src = source(cfg)
    table = subset_table(len(src.class_names), cfg)
    names = src.class_names if table is None else tuple(
        src.class_names[i] for i in np.flatnonzero(table >= 0))
    return DatasetInfo(name=src.name, num_classes=len(names),
                       num_train=src.count(cfg.train_split, (0, 1), table),
                       num_eval=src.count(cfg.eval_split, (0, 1), table), class_names=names)


def _check_process(process_index: int, process_count: int) -> tuple[int, int]:
    if not 0 <= process_index < process_count:
        raise DataError(f"process_index {process_index} is not in [0, process_count={process_count})")
    return int(process_index), int(process_count)


def _options() -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    options.threading.max_intra_op_parallelism = 1  # one example per thread: no nested pools
    return options


def _normalise(image, cfg):
    mean = tf.constant(cfg.mean, tf.float32) * 255.0
    std = tf.constant(cfg.std, tf.float32) * 255.0
    return (image - mean) / std


def _decode(data):
    """Any encoded image (JPEG, PNG, BMP, GIF; grey, RGB or RGBA) -> uint8 [H, W, 3]."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def _decode_random_crop(data, seed, min_area: float):
    """Decode and take an Inception-style random crop: area in [min_area, 1] of the image, aspect
    ratio in [3/4, 4/3], 10 attempts, else the whole image. JPEGs decode only the crop window."""
    whole = tf.constant([[[0.0, 0.0, 1.0, 1.0]]], tf.float32)

    def window(shape):
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            shape, bounding_boxes=whole, seed=seed, min_object_covered=0.0,
            aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0), area_range=(float(min_area), 1.0),
            max_attempts=10, use_image_if_no_bounding_boxes=True)
        return begin, size

    def jpeg():
        begin, size = window(tf.image.extract_jpeg_shape(data))
        crop = tf.stack([begin[0], begin[1], size[0], size[1]])
        return tf.image.decode_and_crop_jpeg(data, crop, channels=3)

    def other():
        image = _decode(data)
        begin, size = window(tf.shape(image))
        return tf.slice(image, begin, size)

    image = tf.cond(tf.io.is_jpeg(data), jpeg, other)
    return tf.ensure_shape(image, [None, None, 3])


def _resize(image, size):
    """Bicubic (anti-aliased when shrinking), clipped and rounded to 0..255 integers, float32."""
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bicubic", antialias=True)
    return tf.round(tf.clip_by_value(image, 0.0, 255.0))


def _stream_key(seed: int, process_index: int) -> tf.Tensor:
    return tf.constant([int(seed), int(process_index)], tf.int64)


_SHUFFLE_SALT, _AUGMENT_SALT = 1, 2


def train_dataset(cfg, *, batch_size: int, resolution: int, seed: int, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1) -> tf.data.Dataset:
    """Infinite training batches of this process's slice (see the module docstring).

    ``batch_size`` is per process (examples, remainder dropped), ``resolution`` in pixels;
    ``start_step=k`` starts at batch ``k`` of the stream that ``start_step=0`` gives.
    """
    pi, pc = _check_process(process_index, process_count)
    if batch_size < 1 or resolution < 1 or start_step < 0:
        raise DataError(f"batch_size ({batch_size}) and resolution ({resolution}) must be positive "
                        f"and start_step ({start_step}) non-negative")
    src = source(cfg)
    records, n = kept_records(src, cfg, cfg.train_split, (pi, pc))
    if n == 0:
        raise DataError(f"split {cfg.train_split!r} of {src.name!r} has no examples for process "
                        f"{pi} of {pc}")
    if cfg.cache:
        records = records.cache()
    start_epoch, offset = divmod(int(start_step) * int(batch_size), n)
    key = _stream_key(seed, pi)
    shuffle_key = tf.random.experimental.stateless_fold_in(key, _SHUFFLE_SALT)
    augment_key = tf.random.experimental.stateless_fold_in(key, _AUGMENT_SALT)
    buffer = min(int(cfg.shuffle_buffer), n)

    def epoch(e):
        ds = records
        if buffer > 1:
            epoch_seed = tf.random.stateless_uniform(
                [], tf.random.experimental.stateless_fold_in(shuffle_key, e),
                minval=0, maxval=2**31 - 1, dtype=tf.int64)
            ds = ds.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)
        positions = tf.data.Dataset.range(e * n, (e + 1) * n)
        return tf.data.Dataset.zip((positions, ds))

    stream = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(_graph(epoch))
    stream = stream.skip(offset)  # encoded records: cheap

    rand_n, rand_m = int(cfg.randaugment_n), float(cfg.randaugment_m)
    rand_std, erase_p = float(cfg.randaugment_mstd), float(cfg.random_erasing)
    min_area = float(cfg.min_crop_area)

    def example(position, record):
        data, label = record
        crop_seed, flip_seed, ra_seed, erase_seed = tf.unstack(tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(augment_key, position), 4))
        image = _decode_random_crop(src.load(data), crop_seed, min_area)
        image = _resize(image, [resolution, resolution])
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        image = augment.randaugment(image, ra_seed, rand_n, rand_m, rand_std)
        image = _normalise(image, cfg)
        image = augment.random_erasing(image, erase_seed, erase_p)
        image = tf.ensure_shape(image, [resolution, resolution, 3])
        return {"image": image, "label": tf.cast(label, tf.int32),
                "mask": tf.constant(1.0, tf.float32)}

    ds = stream.map(_graph(example), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def eval_dataset(cfg, *, batch_size: int, resolution: int, process_index: int = 0,
                 process_count: int = 1) -> tf.data.Dataset:
    """Finite evaluation batches of this process's slice: shorter side resized (bicubic) to
    ``resolution / crop_pct`` pixels, centre crop ``resolution``; padded batches carry ``mask`` 0.

    Every process yields ``ceil(largest slice / batch_size)`` batches.
    """
    pi, pc = _check_process(process_index, process_count)
    if batch_size < 1 or resolution < 1:
        raise DataError(f"batch_size ({batch_size}) and resolution ({resolution}) must be positive")
    src = source(cfg)
    records, n = kept_records(src, cfg, cfg.eval_split, (pi, pc))
    table = subset_table(len(src.class_names), cfg)
    largest = max(n if i == pi else src.count(cfg.eval_split, (i, pc), table) for i in range(pc))
    num_batches = -(-largest // batch_size)
    if cfg.cache:
        records = records.cache()
    scale_size = int(math.floor(resolution / float(cfg.crop_pct)))

    def example(data, label):
        image = _decode(src.load(data))
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        short = tf.reduce_min(shape)
        new = tf.maximum(tf.cast(tf.round(shape * (scale_size / short)), tf.int32), resolution)
        image = _resize(image, new)
        top = (new[0] - resolution) // 2
        left = (new[1] - resolution) // 2
        image = tf.slice(image, [top, left, 0], [resolution, resolution, 3])
        image = tf.ensure_shape(_normalise(image, cfg), [resolution, resolution, 3])
        return {"image": image, "label": tf.cast(label, tf.int32), "mask": tf.constant(1.0, tf.float32)}

    ds = records.map(_graph(example), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    padding = {"image": tf.zeros([resolution, resolution, 3], tf.float32),
               "label": tf.constant(0, tf.int32), "mask": tf.constant(0.0, tf.float32)}
    ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat(num_batches * batch_size - n))
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def as_numpy_iterator(dataset: tf.data.Dataset) -> Iterator[dict[str, np.ndarray]]:
    """Batches of ``dataset`` as dicts of numpy arrays."""
    return dataset.as_numpy_iterator()


def prefetch_to_device(iterator: Iterable[Any] | tf.data.Dataset, size: int = 2,
                       sharding=None) -> Iterator[Any]:
    """Yield ``iterator``'s batches (pytrees of arrays) as ``jax.Array``s, ``size`` in flight.

    Without ``sharding`` each batch goes to the default device. With a ``jax.sharding.Sharding``
    of the *global* batch: on one process ``jax.device_put(batch, sharding)``; on several, each
    process's batch is its slice of the global array (``jax.make_array_from_process_local_data``).
    Transfers are asynchronous, so keeping ``size`` batches queued overlaps them with compute.
    """
    import jax

    if size < 1:
        raise ValueError(f"prefetch size must be at least 1, got {size}")
    if isinstance(iterator, tf.data.Dataset):
        iterator = as_numpy_iterator(iterator)
    iterator = iter(iterator)

    if sharding is None:
        put = jax.device_put
    elif jax.process_count() > 1:
        def put(batch):
            return jax.tree_util.tree_map(
                lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
    else:
        def put(batch):
            return jax.device_put(batch, sharding)

    queue: collections.deque = collections.deque()
    for batch in itertools.islice(iterator, size):
        queue.append(put(batch))
    while queue:
        yield queue.popleft()
        for batch in itertools.islice(iterator, 1):
            queue.append(put(batch))
