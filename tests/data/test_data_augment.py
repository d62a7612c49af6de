"""RandAugment ops and random erasing: PIL's numerics where PIL defines them, range, determinism."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tinyjax.data import augment  # noqa: E402

SEED = tf.constant([3, 4], tf.int64)


def _image(h=20, w=24, lo=0, hi=256, seed=0) -> np.ndarray:
    """A structured test image (gradient + noise), integer values in [lo, hi)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, w)[None, :, None] * np.linspace(0.3, 1, h)[:, None, None]
    img = lo + (hi - 1 - lo) * ramp * np.array([1.0, 0.6, 0.3]) + rng.normal(0, 12, (h, w, 3))
    return np.clip(np.round(img), lo, hi - 1).astype(np.float32)


def _run(name, image, level, seed=SEED):
    return augment.apply_op(name, tf.constant(image), level, seed).numpy()


@pytest.mark.parametrize("name", augment.OP_NAMES)
def test_every_op_keeps_shape_and_range_and_is_deterministic(name):
    image = _image()
    out = _run(name, image, 10)
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 255
    np.testing.assert_array_equal(out, _run(name, image, 10))


@pytest.mark.parametrize("name", [n for n in augment.OP_NAMES if n != "identity"])
def test_every_op_but_identity_changes_the_image_at_full_magnitude(name):
    image = _image(lo=40, hi=210)  # not already stretched: autocontrast and equalize have work
    assert np.abs(_run(name, image, 10) - image).mean() > 1.0


@pytest.mark.parametrize("name", ["rotate", "shear_x", "shear_y", "translate_x", "translate_y",
                                  "color", "contrast", "brightness", "sharpness", "posterize"])
def test_magnitude_zero_is_the_identity(name):
    image = _image()
    np.testing.assert_allclose(_run(name, image, 0), image, atol=1e-3)


def test_geometric_ops_fill_with_the_mean_colour():
    out = _run("translate_x", np.zeros((20, 20, 3), np.float32), 10)  # a shift of 9 pixels
    filled = out[np.all(out > 0, axis=-1)]
    assert len(filled) > 0 and np.allclose(filled, augment.FILL_RGB)


PIL = pytest.importorskip("PIL")


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(image.astype(np.uint8))


def test_equalize_autocontrast_posterize_solarize_match_pil():
    from PIL import ImageOps

    image = _image(lo=30, hi=220)
    np.testing.assert_array_equal(_run("equalize", image, 0), np.asarray(ImageOps.equalize(_pil(image))))
    np.testing.assert_array_equal(_run("autocontrast", image, 0),
                                  np.asarray(ImageOps.autocontrast(_pil(image))))
    # level 5: posterize keeps 6 bits, solarize inverts from 128 up.
    np.testing.assert_array_equal(_run("posterize", image, 5), np.asarray(ImageOps.posterize(_pil(image), 6)))
    np.testing.assert_array_equal(_run("solarize", image, 5), np.asarray(ImageOps.solarize(_pil(image), 128)))


@pytest.mark.parametrize("name,enhancer", [("color", "Color"), ("contrast", "Contrast"),
                                           ("brightness", "Brightness"), ("sharpness", "Sharpness")])
def test_enhance_ops_match_pil_within_rounding(name, enhancer):
    from PIL import ImageEnhance

    image = _image(lo=20, hi=230)
    out = _run(name, image, 6)
    # Recover the factor the op drew (1 ± 0.54) and compare with PIL at the same factor.
    best = min((np.abs(out - np.asarray(getattr(ImageEnhance, enhancer)(_pil(image)).enhance(f),
                                         np.float32)).max(), f) for f in (1 - 0.54, 1 + 0.54))
    assert best[0] <= 2.0, best


def test_randaugment_is_deterministic_and_off_with_zero_layers():
    image = tf.constant(_image())
    a = augment.randaugment(image, SEED, 2, 9, 0.5).numpy()
    b = augment.randaugment(image, SEED, 2, 9, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(augment.randaugment(image, SEED, 0, 9, 0.5).numpy(), image.numpy())
    outs = [augment.randaugment(image, tf.constant([s, 0], tf.int64), 2, 9, 0.5).numpy()
            for s in range(12)]
    changed = sum(not np.array_equal(o, image.numpy()) for o in outs)
    assert changed >= 6  # with p=0.5 per layer, about 3 in 4 images change


def test_random_erasing_replaces_one_rectangle_with_noise():
    image = tf.zeros([40, 40, 3])
    out = augment.random_erasing(image, SEED, 1.0).numpy()
    erased = np.any(out != 0, axis=-1)
    rows, cols = np.flatnonzero(erased.any(1)), np.flatnonzero(erased.any(0))
    assert 0.02 * 1600 * 0.5 <= erased.sum() <= 1600 / 3 * 1.2
    assert erased[rows.min():rows.max() + 1, cols.min():cols.max() + 1].mean() > 0.99  # a rectangle
    assert 0.5 < out[erased].std() < 1.5  # standard-normal fill
    np.testing.assert_array_equal(out, augment.random_erasing(image, SEED, 1.0).numpy())
    np.testing.assert_array_equal(augment.random_erasing(image, SEED, 0.0).numpy(), image.numpy())
