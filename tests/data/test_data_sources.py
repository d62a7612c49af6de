"""Other sources: ImageNet through ``tfds.testing.mock_data``, local image folders, and the errors a
user sees for a wrong name, folder or split."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from tinyjax.data import DataError, pipeline
from tinyjax.errors import TinyJaxError, run_cli

tfds = pytest.importorskip("tensorflow_datasets")


def _cfg(**changes):
    cfg = pipeline.default_data_config()
    cfg.randaugment_n = 0
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg


def _take(ds, n=None):
    return list(itertools.islice(ds.as_numpy_iterator(), n))


# --- ImageNet (mocked: random JPEGs of random sizes, nothing on disk, nothing downloaded) -------


def test_imagenet_train_and_validation_from_random_sized_images(tmp_path):
    cfg = _cfg(name="imagenet2012", data_dir=str(tmp_path), randaugment_n=2)
    with tfds.testing.mock_data(num_examples=20):
        raw = tfds.builder("imagenet2012", data_dir=str(tmp_path)).as_dataset(split="train")
        sizes = {tuple(ex["image"].shape) for ex in raw}
        assert len(sizes) > 3  # the mock draws a random size per image

        info = pipeline.get_info(cfg)
        assert (info.num_classes, info.num_train, info.num_eval) == (1000, 20, 20)
        assert len(info.class_names) == 1000 and info.class_names[0] == "n01440764"

        (batch,) = _take(pipeline.train_dataset(cfg, batch_size=8, resolution=40, seed=0), 1)
        assert batch["image"].shape == (8, 40, 40, 3) and np.all(np.isfinite(batch["image"]))
        evals = _take(pipeline.eval_dataset(cfg, batch_size=8, resolution=40))
        assert len(evals) == 3 and sum(b["mask"].sum() for b in evals) == 20
        assert all(b["image"].shape == (8, 40, 40, 3) for b in evals)
    assert not (tmp_path / "downloads").exists()


def test_imagenet_100_style_class_subset(tmp_path):
    cfg = _cfg(name="imagenet2012", data_dir=str(tmp_path), num_classes_subset=100, subset_seed=0)
    kept = np.sort(np.random.default_rng(0).permutation(1000)[:100])
    with tfds.testing.mock_data(num_examples=150):
        builder = tfds.builder("imagenet2012", data_dir=str(tmp_path))
        all_names = builder.info.features["label"].names
        labels = [int(ex["label"]) for ex in builder.as_dataset(split="train")]
        expected = sum(label in set(kept.tolist()) for label in labels)
        assert expected > 0

        info = pipeline.get_info(cfg)
        assert info.num_classes == 100 and info.num_train == expected
        assert info.class_names == tuple(all_names[i] for i in kept)

        train = _take(pipeline.train_dataset(cfg, batch_size=4, resolution=16, seed=0), 3)
        got = np.concatenate([b["label"] for b in train])
        assert got.min() >= 0 and got.max() < 100
        evals = _take(pipeline.eval_dataset(cfg, batch_size=4, resolution=16))
        assert sum(b["mask"].sum() for b in evals) == info.num_eval


# --- image folders ------------------------------------------------------------------------------


def _nearest(image: np.ndarray, cfg, colours) -> int:
    """Index of the written colour closest to a (normalised, solid) output image."""
    pixel = image.reshape(-1, 3).mean(0) * np.array(cfg.std) * 255 + np.array(cfg.mean) * 255
    return int(np.argmin(np.abs(np.array(colours) - pixel).sum(1)))


def test_imagefolder_reads_both_splits_with_any_size_and_format(image_folder):
    root, colours = image_folder
    cfg = _cfg(name="imagefolder", folder=str(root))
    info = pipeline.get_info(cfg)
    assert info == pipeline.DatasetInfo("imagefolder", 3, 12, 6, ("blue", "green", "red"))

    evals = _take(pipeline.eval_dataset(cfg, batch_size=4, resolution=16))
    images = np.concatenate([b["image"] for b in evals])[:6]
    labels = np.concatenate([b["label"] for b in evals])[:6]
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]  # class folders sorted, files sorted
    assert [_nearest(im, cfg, colours["validation"]) for im in images] == list(range(6))
    assert np.concatenate([b["mask"] for b in evals]).tolist() == [1] * 6 + [0] * 2

    (batch,) = _take(pipeline.train_dataset(cfg, batch_size=12, resolution=16, seed=0), 1)
    found = sorted(_nearest(im, cfg, colours["train"]) for im in batch["image"])
    assert found == list(range(12))  # one epoch: every training image exactly once
    assert [lb for lb in batch["label"]] == [_nearest(im, cfg, colours["train"]) // 4
                                            for im in batch["image"]]


def test_imagefolder_resume_across_epoch_boundaries(image_folder):
    root, _ = image_folder
    cfg = _cfg(name="imagefolder", folder=str(root), randaugment_n=2, cache=False)
    fresh = _take(pipeline.train_dataset(cfg, batch_size=5, resolution=12, seed=9), 8)  # 3⅓ epochs
    resumed = _take(pipeline.train_dataset(cfg, batch_size=5, resolution=12, seed=9, start_step=5), 3)
    for a, b in zip(fresh[5:], resumed):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    # Each epoch is a fresh permutation: the label order of epochs 1 and 2 differs.
    labels = np.concatenate([b["label"] for b in fresh])
    assert not np.array_equal(labels[12:24], labels[24:36])


def test_imagefolder_shards_cover_the_split(image_folder):
    root, colours = image_folder
    cfg = _cfg(name="imagefolder", folder=str(root))
    seen = []
    for pi in range(4):
        for b in _take(pipeline.eval_dataset(cfg, batch_size=2, resolution=8, process_index=pi,
                                             process_count=4)):
            seen += [_nearest(im, cfg, colours["validation"]) for im, m in zip(b["image"], b["mask"]) if m]
    assert sorted(seen) == list(range(6))


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_dataset_name_is_a_one_line_data_error(tmp_path, capsys):
    cfg = _cfg(name="imagenet2021_typo", data_dir=str(tmp_path))
    with pytest.raises(DataError) as e:
        pipeline.get_info(cfg)
    message = str(e.value)
    assert isinstance(e.value, TinyJaxError)
    assert "unknown dataset 'imagenet2021_typo'" in message and "data_dir" in message
    assert "\n" not in message

    def main(argv):
        pipeline.train_dataset(cfg, batch_size=2, resolution=8, seed=0)

    assert run_cli(main, [], prog="tinyjax.train") == 2
    err = capsys.readouterr().err
    assert err.startswith("tinyjax.train: error: unknown dataset") and err.count("\n") == 1


def test_unprepared_tfds_dataset_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not prepared in"):
        pipeline.eval_dataset(_cfg(name="mnist", data_dir=str(tmp_path)), batch_size=2, resolution=8)


def test_missing_image_folder_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        pipeline.get_info(_cfg(name="imagefolder", folder=str(missing)))


def test_missing_split_is_a_data_error(image_folder, shapes_dir):
    root, _ = image_folder
    with pytest.raises(DataError, match="no split 'test'"):
        pipeline.eval_dataset(_cfg(name="imagefolder", folder=str(root), eval_split="test"),
                              batch_size=2, resolution=8)
    with pytest.raises(DataError, match="no split 'test'.*available: train, validation"):
        pipeline.get_info(_cfg(data_dir=shapes_dir, eval_split="test"))


def test_importing_tinyjax_data_does_not_import_tensorflow():
    code = ("import sys, tinyjax.data; from tinyjax.data import DataError; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
