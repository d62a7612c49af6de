"""The embedded ``tinyjax_shapes`` dataset: deterministic, the advertised sizes, balanced, colour-blind."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from tinyjax.data import embedded, scenes
from tinyjax.errors import DataError


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
    again = scenes._render(scenes._draw_block(1, 2, b))  # block 2 alone, out of order
    np.testing.assert_array_equal(again, images[2 * b:3 * b])
    other_split = scenes._render(scenes._draw_block(0, 2, b))
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


# sha256 of render_split("validation") (images, then labels) drawn by the 32-px-only code of
# commit 03b7906, before sizes existed: size 32 must stay the TFDS dataset, bit for bit.
VALIDATION_32_SHA256 = "4c4efe335eec88d6171b346c9489a74a475e35dc06b1e2a7364da099be0ee74e"


def test_size_32_is_the_dataset_drawn_before_sizes_existed():
    assert _digest(*embedded.render_split("validation", 32)) == VALIDATION_32_SHA256
    assert _digest(*embedded.render_split("validation", workers=1)) == VALIDATION_32_SHA256


def _noiseless(size: int, n: int = 200) -> np.ndarray:
    params = scenes._draw_block(1, 0, n, size)
    params["noise"][:] = 0
    return scenes._render(params).astype(np.float32)


def _shrink(images: np.ndarray, factor: int) -> np.ndarray:
    n, s = images.shape[:2]
    return images.reshape(n, s // factor, factor, s // factor, factor, 3).mean(axis=(2, 4))


def test_a_larger_size_draws_the_same_scenes():
    small, large = _noiseless(32), _shrink(_noiseless(64), 2)
    per_image = np.abs(small - large).mean(axis=(1, 2, 3))
    # Only anti-aliasing differs: 1.20 of 255 on average; sample centres a quarter of a 32-px
    # pixel off (no + 0.5) give 1.87, another image 40.
    assert per_image.mean() < 1.4 and per_image.max() < 10, (per_image.mean(), per_image.max())
    other = np.abs(small - np.roll(large, 1, axis=0)).mean(axis=(1, 2, 3))
    assert other.min() > 20


def test_noise_keeps_its_strength_per_image_at_any_size():
    sigma = {}
    for size in (32, 96):
        noisy = scenes._render(scenes._draw_block(1, 0, 200, size)).astype(np.float32)
        sigma[size] = (noisy - _noiseless(size)).std(axis=(1, 2, 3))
    assert np.corrcoef(sigma[32], sigma[96])[0, 1] > 0.99
    assert 0.95 < np.mean(sigma[96] / sigma[32]) < 1.05
    # ... from a generator of its own: the 96-px noise is not the 32-px stream continued
    a = scenes._draw_block(1, 0, 4, 96)["noise"][:, :32, :32]
    assert not np.allclose(a, scenes._draw_block(1, 0, 4, 32)["noise"])


def test_marks_drawn_in_windows_equal_marks_drawn_over_the_whole_image(monkeypatch):
    windowed = scenes._render(scenes._draw_block(0, 3, 60, 80))

    def whole_image(mark, size):
        grid = np.broadcast_to(np.arange(size), (len(mark["x"]), size))
        return grid, grid

    monkeypatch.setattr(scenes, "_mark_window", whole_image)
    np.testing.assert_array_equal(windowed, scenes._render(scenes._draw_block(0, 3, 60, 80)))


def test_other_sizes_are_deterministic_and_drawn_block_by_block():
    images, labels = embedded.render_split("validation", 48, workers=2)
    assert images.shape == (1200, 48, 48, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.arange(1200) % 10)
    again, _ = embedded.render_split("validation", 48, workers=1)
    np.testing.assert_array_equal(images, again)
    b = embedded.BLOCK
    np.testing.assert_array_equal(scenes._render(scenes._draw_block(1, 4, b, 48)), images[4 * b:5 * b])


def test_the_cache_returns_identical_arrays(tmp_path, monkeypatch):
    drawn = embedded.load_rendered("validation", 48, tmp_path)
    path = embedded.cache_path("validation", 48, tmp_path)
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]

    def no_drawing(*args, **kwargs):
        raise AssertionError("drawn again although the cache holds the split")

    with monkeypatch.context() as m:
        m.setattr(embedded, "render_split", no_drawing)
        cached = embedded.load_rendered("validation", 48, tmp_path)
    assert _digest(*cached) == _digest(*drawn) and cached[0].dtype == np.uint8
    assert _digest(*drawn) == _digest(*embedded.render_split("validation", 48))
    path.write_bytes(b"half a file")  # not an .npz of the split: drawn again and replaced
    assert _digest(*embedded.load_rendered("validation", 48, tmp_path)) == _digest(*drawn)
    assert _digest(*embedded.load_rendered("validation", 48, tmp_path)) == _digest(*drawn)
    assert embedded.cache_path("validation", 64, tmp_path) != path


@pytest.mark.parametrize("size", [8, 48.0, True, "64"])
def test_a_bad_size_is_a_data_error(size):
    with pytest.raises(DataError, match="integer size of at least 16 px"):
        embedded.render_split("validation", size)


# a fresh interpreter drawing the dataset (7 s): run by .ci/run's "fresh interpreters" target
@pytest.mark.slow
def test_preparing_says_one_tinyjax_line_and_nothing_of_tfds_or_absl(tmp_path):
    """TFDS's "Downloading and preparing dataset Unknown size …" and absl's warnings about the
    half-written folder would be wrong here: one line of ours, on stderr, only the first time."""
    import subprocess
    import sys

    code = ("import sys; from tinyjax.data.embedded import ensure_prepared\n"
            f"ensure_prepared({str(tmp_path / 'd')!r}); print('second', file=sys.stderr)\n"
            f"ensure_prepared({str(tmp_path / 'd')!r})\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines == [f"tinyjax: drawing the embedded dataset tinyjax_shapes into {tmp_path / 'd'} "
                     "(generated here, once; nothing is downloaded)", "second"], r.stderr
