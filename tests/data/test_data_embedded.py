"""The embedded ``tinyjax_shapes`` dataset: deterministic, the advertised sizes, balanced, colour-blind."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from tinyjax.data import DataError, embedded


def _digest(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


def test_two_builds_in_two_directories_are_identical(shapes_dir, tmp_path):
    other = embedded.ensure_prepared(str(tmp_path / "second"))
    assert other != shapes_dir
    for split in ("train", "validation"):
        a = embedded.load_numpy(split, shapes_dir)
        b = embedded.load_numpy(split, other)
        assert _digest(*a) == _digest(*b), split


def test_tfds_copy_holds_exactly_the_rendered_examples(shapes_dir):
    images, labels = embedded.load_numpy("validation", shapes_dir)
    drawn_images, drawn_labels = embedded.render_split("validation")
    key = lambda im, lb: hashlib.sha1(im.tobytes() + bytes([lb])).hexdigest()  # noqa: E731
    assert sorted(map(key, images, labels)) == sorted(map(key, drawn_images, drawn_labels))


def test_blocks_are_drawn_independently_of_each_other():
    images, labels = embedded.render_split("validation")
    b = embedded.BLOCK
    again = embedded._render(embedded._draw_block(1, 2, b))  # block 2 alone, out of order
    np.testing.assert_array_equal(again, images[2 * b:3 * b])
    other_split = embedded._render(embedded._draw_block(0, 2, b))
    assert not np.array_equal(again, other_split)
    np.testing.assert_array_equal(labels, np.arange(len(labels)) % 10)


def test_advertised_sizes_classes_and_balance(shapes_dir):
    assert embedded.NUM_CLASSES == len(embedded.CLASS_NAMES) == 10
    for split, n in (("train", 6000), ("validation", 1200)):
        images, labels = embedded.load_numpy(split, shapes_dir)
        assert images.shape == (n, 32, 32, 3) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int32
        counts = np.bincount(labels, minlength=10)
        assert counts.min() >= 0.9 * n / 10 and counts.max() <= 1.1 * n / 10, counts
        # TFDS stores records in a hash order, not class by class.
        assert len(set(labels[:20].tolist())) > 3


def test_tfds_metadata_names_the_classes(shapes_dir):
    import tensorflow_datasets as tfds

    builder = tfds.builder("tinyjax_shapes", data_dir=shapes_dir)
    assert builder.info.features["label"].names == list(embedded.CLASS_NAMES)
    assert builder.info.splits["train"].num_examples == 6000
    assert builder.info.splits["validation"].num_examples == 1200
    assert str(builder.info.version) == "1.0.0"


def test_colour_carries_no_class_information(shapes_dir):
    images, labels = embedded.load_numpy("train", shapes_dir)
    means = np.stack([images[labels == c].reshape(-1, 3).mean(0) for c in range(10)])
    # Per-class mean colours all sit near the global mean (a colour-coded class would be ~100 away).
    assert np.abs(means - means.mean(0)).max() < 15, means


def test_images_are_not_trivial(shapes_dir):
    images, _ = embedded.load_numpy("validation", shapes_dir)
    per_image_std = images.reshape(len(images), -1).std(axis=1)
    assert per_image_std.min() > 5  # a visible object on a background, never a flat image
    assert len({im.tobytes() for im in images}) == len(images)  # no duplicates


def test_preparing_twice_is_a_no_op(shapes_dir):
    version_dir = os.path.join(shapes_dir, "tinyjax_shapes", "1.0.0")
    before = sorted((f, os.path.getmtime(os.path.join(version_dir, f))) for f in os.listdir(version_dir))
    assert embedded.ensure_prepared(shapes_dir) == shapes_dir
    after = sorted((f, os.path.getmtime(os.path.join(version_dir, f))) for f in os.listdir(version_dir))
    assert before == after


def test_data_dir_defaults_to_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYJAX_DATA_DIR", str(tmp_path))
    assert embedded.default_data_dir() == str(tmp_path)
    monkeypatch.delenv("TINYJAX_DATA_DIR")
    assert embedded.default_data_dir() == os.path.expanduser("~/tensorflow_datasets")


def test_unknown_split_is_a_data_error(shapes_dir):
    with pytest.raises(DataError, match="no split 'test'"):
        embedded.load_numpy("test", shapes_dir)
