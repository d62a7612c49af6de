"""Where a pipeline's records come from: a prepared TFDS image-classification dataset (ImageNet,
any TFDS name, the embedded ``tinyjax_shapes``, drawn on first use) or a local image folder
(``folder/<split>/<class>/*``), with the class subset of ``num_classes_subset`` applied. Each source
gives records of (encoded image or file path, label) in a fixed order, per process slice;
:mod:`tinyjax.data.pipeline` decodes, augments and batches them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tinyjax.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
EMBEDDED = "tinyjax_shapes"
IMAGEFOLDER = "imagefolder"

# Functions given to tf.data use tf.cond/tf.where, never Python control flow on tensors, so they
# skip AutoGraph's source transformation (which cost ~4 s per pipeline on a 2-core machine).
_graph = tf.autograph.experimental.do_not_convert


def _data_dir(cfg) -> str:
    from tinyjax.data.embedded import default_data_dir

    return str(Path(cfg.data_dir).expanduser()) if cfg.data_dir else default_data_dir()


def subset_table(num_classes: int, cfg) -> np.ndarray | None:
    """Old label -> new label (-1: dropped), or None when every class is kept."""
    n = int(cfg.num_classes_subset or 0)
    if n <= 0:
        return None
    if n > num_classes:
        raise DataError(f"num_classes_subset={n} is more than the {num_classes} classes of {cfg.name!r}")
    kept = np.sort(np.random.default_rng(int(cfg.subset_seed)).permutation(num_classes)[:n])
    table = np.full(num_classes, -1, np.int64)
    table[kept] = np.arange(n)
    return table


class _TfdsSource:
    """A prepared TFDS image-classification dataset (features ``image`` and ``label``)."""

    # Counts of real (on-disk, immutable) splits, keyed by (name, data_dir, split, slice, subset).
    _counts: dict = {}

    def __init__(self, cfg):
        self.name = str(cfg.name)
        self.data_dir = _data_dir(cfg)
        base = self.name.split(":")[0]
        if base == EMBEDDED:
            from tinyjax.data.embedded import ensure_prepared

            ensure_prepared(self.data_dir)
        elif base.startswith(EMBEDDED + "_sized/"):   # the embedded dataset at another resolution
            from tinyjax.data.embedded_sized import ensure_prepared_sized

            size = base.split("/", 1)[1].removesuffix("px")
            ensure_prepared_sized(int(size) if size.isdigit() else size, self.data_dir)
        try:
            self.builder = tfds.builder(self.name, data_dir=self.data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            raise DataError(f"unknown dataset {self.name!r}: TFDS has no builder of that name and "
                            f"{self.data_dir} holds no prepared copy of it; check the name "
                            f"(tfds.list_builders()), pass data_dir=DIR where DIR/{self.name}/<version>/ "
                            f"is a prepared copy, or use name='{EMBEDDED}' or name='{IMAGEFOLDER}' "
                            "with folder=DIR") from None
        except Exception as e:  # bad version, bad config, unreadable metadata
            raise DataError(f"cannot open TFDS dataset {self.name!r} in {self.data_dir}: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        features = self.builder.info.features
        if "image" not in features or "label" not in features or not hasattr(features["label"], "names"):
            raise DataError(f"dataset {self.name!r} is not an image-classification dataset "
                            "(it needs an 'image' feature and a ClassLabel 'label')")
        self.class_names = tuple(features["label"].names)
        # tfds.testing.mock_data serves datasets without split metadata; it also ignores slicing,
        # so shards are then taken with Dataset.shard.
        self.has_metadata = len(self.builder.info.splits) > 0

    def _check_split(self, split: str) -> None:
        if not self.has_metadata:
            return
        try:
            self.builder.info.splits[split]
        except (KeyError, ValueError, AssertionError):
            available = ", ".join(sorted(self.builder.info.splits))
            raise DataError(f"dataset {self.name!r} has no split {split!r}; available: {available}") from None

    def _read(self, split: str, shard: tuple[int, int], decoders) -> tf.data.Dataset:
        self._check_split(split)
        index, count = shard
        sub = tfds.even_splits(split, n=count)[index] if self.has_metadata else split
        try:
            ds = self.builder.as_dataset(split=sub, shuffle_files=False, decoders=decoders)
        except AssertionError:  # TFDS's way of saying "not prepared"
            raise DataError(f"dataset {self.name!r} is not prepared in {self.data_dir}: prepare it "
                            f"with TFDS (tfds.builder({self.name!r}, data_dir=...).download_and_prepare()"
                            f") or set data_dir to a directory holding a prepared copy") from None
        except (KeyError, ValueError) as e:
            raise DataError(f"dataset {self.name!r}: cannot read split {split!r}: {e}") from None
        if not self.has_metadata and count > 1:
            ds = ds.shard(count, index)
        return ds

    def records(self, split: str, shard: tuple[int, int]) -> tf.data.Dataset:
        """(encoded image bytes, int64 label) of one process slice, in a fixed order."""
        ds = self._read(split, shard, {"image": tfds.decode.SkipDecoding()})
        return ds.map(_graph(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int64))))

    def load(self, data):
        return data  # already the encoded image

    def count(self, split: str, shard: tuple[int, int], table: np.ndarray | None) -> int:
        """Examples of one process slice, of the kept classes."""
        self._check_split(split)
        if self.has_metadata and table is None:
            index, count = shard
            return int(self.builder.info.splits[tfds.even_splits(split, n=count)[index]].num_examples)
        key = (self.name, self.data_dir, split, shard, None if table is None else table.tobytes())
        if self.has_metadata and key in self._counts:
            return self._counts[key]
        # Read exactly as records() does (mock_data draws different examples for other decoders).
        n = _count_kept(self.records(split, shard).map(_graph(lambda data, label: label)), table)
        if self.has_metadata:
            self._counts[key] = n
        return n


class _FolderSource:
    """``folder/<split>/<class>/<image>``; classes are the train split's sub-folders."""

    def __init__(self, cfg):
        self.name = IMAGEFOLDER
        if not cfg.folder:
            raise DataError("name='imagefolder' needs folder=DIR (DIR/<split>/<class>/<images>)")
        self.root = Path(cfg.folder).expanduser()
        if not self.root.is_dir():
            raise DataError(f"image folder {str(self.root)!r} does not exist")
        train = self.root / cfg.train_split
        if not train.is_dir():
            raise DataError(f"image folder {str(self.root)!r} has no split {cfg.train_split!r} "
                            f"(no folder {str(train)!r})")
        self.class_names = tuple(sorted(d.name for d in train.iterdir() if d.is_dir()))
        if not self.class_names:
            raise DataError(f"image folder {str(train)!r} has no class sub-folders")

    def _files(self, split: str) -> tuple[list[str], list[int]]:
        base = self.root / split
        if not base.is_dir():
            raise DataError(f"image folder {str(self.root)!r} has no split {split!r} "
                            f"(no folder {str(base)!r})")
        paths, labels = [], []
        for d in sorted(p for p in base.iterdir() if p.is_dir()):
            if d.name not in self.class_names:
                raise DataError(f"class folder {str(d)!r} is not a class of the train split "
                                f"({len(self.class_names)} classes under {str(self.root)!r})")
            label = self.class_names.index(d.name)
            for f in sorted(d.iterdir()):
                if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file():
                    paths.append(str(f))
                    labels.append(label)
        return paths, labels

    @staticmethod
    def _slice(n: int, shard: tuple[int, int]) -> slice:
        index, count = shard  # the same rule as tfds.even_splits: first n % count slices get one more
        per, extra = divmod(n, count)
        start = per * index + min(index, extra)
        return slice(start, start + per + (1 if index < extra else 0))

    def records(self, split: str, shard: tuple[int, int]) -> tf.data.Dataset:
        """(file path, int64 label) of one process slice, in sorted order (read after skipping)."""
        paths, labels = self._files(split)
        s = self._slice(len(paths), shard)
        return tf.data.Dataset.from_tensor_slices(
            (tf.constant(paths[s], tf.string), tf.constant(labels[s], tf.int64)))

    def load(self, path):
        return tf.io.read_file(path)

    def count(self, split: str, shard: tuple[int, int], table: np.ndarray | None) -> int:
        _, labels = self._files(split)
        labels = np.asarray(labels[self._slice(len(labels), shard)], np.int64)
        return int(labels.size if table is None else np.sum(table[labels] >= 0))


def _count_kept(labels: tf.data.Dataset, table: np.ndarray | None) -> int:
    n = 0
    for batch in labels.batch(8192).as_numpy_iterator():
        n += int(batch.size if table is None else np.sum(table[batch] >= 0))
    return n


def source(cfg):
    if cfg.name == IMAGEFOLDER:
        return _FolderSource(cfg)
    return _TfdsSource(cfg)


def kept_records(src, cfg, split: str, shard: tuple[int, int]) -> tuple[tf.data.Dataset, int]:
    """Records of the kept classes with labels renumbered, and how many there are."""
    table = subset_table(len(src.class_names), cfg)
    ds = src.records(split, shard)
    if table is not None:
        lookup = tf.constant(table, tf.int64)
        ds = ds.map(_graph(lambda data, label: (data, tf.gather(lookup, label))))
        ds = ds.filter(_graph(lambda data, label: label >= 0))
    return ds, src.count(split, shard, table)
