"""RandAugment and random erasing in TensorFlow ops, deterministic given stateless seeds.

Every function takes one image and a ``seed`` (an int32/int64 tensor of shape [2], as
``tf.random.stateless_*`` wants) and draws all its randomness from it, so an input pipeline that
derives the seed from (run seed, example position) replays exactly, whatever the thread schedule.

RandAugment (Cubuk et al. 2020) as timm's ``rand-m{M}-n{N}-mstd{S}`` runs it: ``n`` times, pick one
op uniformly from :data:`OPS` and apply it with probability 0.5, at magnitude ``m`` (0..10) plus
Gaussian noise of std ``mstd`` drawn afresh for each op, clipped to [0, 10]. Magnitudes grow with
``m`` for every op (timm's "increasing" variants: solarize threshold 256 → 0, posterize 8 → 4 bits),
and the geometric and enhancement ops take a random sign:

==============  =====================================================  ===================
op              what it does                                            at magnitude 10
==============  =====================================================  ===================
identity        nothing                                                 —
autocontrast    stretch each channel to 0..255                          —
equalize        histogram-equalise each channel (PIL's algorithm)       —
rotate          rotate about the centre                                 ±30°
solarize        invert pixels at or above a threshold                   threshold 0
color           blend with the greyscale image (saturation)             factor 1 ± 0.9
posterize       keep the top bits of each channel                       4 bits
contrast        blend with the mean grey level                          factor 1 ± 0.9
brightness      blend with black                                        factor 1 ± 0.9
sharpness       blend with PIL's smoothed image                         factor 1 ± 0.9
shear_x/_y      shear along x / y                                       ±0.3
translate_x/_y  shift along x / y                                       ±45% of the size
==============  =====================================================  ===================

Images are float32 [H, W, 3] holding values in 0..255 (integers where PIL would have uint8);
geometric ops fill uncovered pixels with ImageNet's mean colour, as timm does.
"""

from __future__ import annotations

import math

import tensorflow as tf

FILL_RGB = (124.0, 116.0, 104.0)  # ImageNet mean colour, 0..255: fill of rotated/shifted borders
MAX_LEVEL = 10.0
APPLY_PROB = 0.5  # each of the n RandAugment layers applies its op with this probability

_ROTATE_DEG = 30.0
_SHEAR = 0.3
_TRANSLATE_FRAC = 0.45
_ENHANCE = 0.9


def _signed(value, seed):
    """``value`` with a random sign (the magnitude-symmetric ops of RandAugment)."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.where(flip, -value, value)


def _blend(degenerate, image, factor):
    """PIL's ImageEnhance: ``degenerate + factor * (image - degenerate)``, clipped to 0..255."""
    return tf.clip_by_value(degenerate + factor * (image - degenerate), 0.0, 255.0)


def _grey(image):
    """ITU-R 601-2 luma, [H, W, 1] (PIL's ``convert('L')``, rounded)."""
    weights = tf.constant([0.299, 0.587, 0.114], tf.float32)
    return tf.round(tf.reduce_sum(image * weights, axis=-1, keepdims=True))


def _affine(image, transform):
    """Resample ``image`` at ``transform`` (8 numbers: output (x, y) -> input
    ((a0 x + a1 y + a2), (b0 x + b1 y + b2)), pixel units), bilinear, filling with FILL_RGB."""
    fill = tf.constant(FILL_RGB, tf.float32)
    shape = tf.shape(image)[:2]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=(image - fill)[None], transforms=tf.reshape(tf.cast(transform, tf.float32), [1, 8]),
        output_shape=shape, fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.clip_by_value(out[0] + fill, 0.0, 255.0)


# --- the ops: (image, level in [0, 10], seed) -> image ----------------------------------------


def identity(image, level, seed):
    del level, seed
    return image


def autocontrast(image, level, seed):
    del level, seed
    lo = tf.reduce_min(image, axis=(0, 1), keepdims=True)
    hi = tf.reduce_max(image, axis=(0, 1), keepdims=True)
    scale = 255.0 / tf.maximum(hi - lo, 1e-6)
    stretched = tf.clip_by_value(tf.floor((image - lo) * scale), 0.0, 255.0)  # PIL truncates
    return tf.where(hi > lo, stretched, image)


def _equalize_channel(channel):
    """PIL's ImageOps.equalize on one [H, W] channel of integer values."""
    values = tf.cast(tf.clip_by_value(channel, 0.0, 255.0), tf.int32)
    hist = tf.math.bincount(tf.reshape(values, [-1]), minlength=256, maxlength=256)
    nonzero = tf.boolean_mask(hist, hist > 0)
    step = (tf.reduce_sum(hist) - nonzero[-1]) // 255
    safe_step = tf.maximum(step, 1)
    lut = (tf.cumsum(hist, exclusive=True) + safe_step // 2) // safe_step
    lut = tf.clip_by_value(lut, 0, 255)
    equalized = tf.cast(tf.gather(lut, values), tf.float32)
    return tf.where(step > 0, equalized, channel)


def equalize(image, level, seed):
    del level, seed
    return tf.stack([_equalize_channel(image[..., c]) for c in range(3)], axis=-1)


def rotate(image, level, seed):
    angle = _signed(level / MAX_LEVEL * _ROTATE_DEG, seed) * (math.pi / 180.0)
    shape = tf.cast(tf.shape(image), tf.float32)
    cx, cy = (shape[1] - 1.0) / 2.0, (shape[0] - 1.0) / 2.0
    c, s = tf.cos(angle), tf.sin(angle)
    return _affine(image, [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, 0.0, 0.0])


def solarize(image, level, seed):
    del seed
    threshold = 256.0 - level / MAX_LEVEL * 256.0
    return tf.where(image >= threshold, 255.0 - image, image)


def color(image, level, seed):
    factor = 1.0 + _signed(level / MAX_LEVEL * _ENHANCE, seed)
    return _blend(tf.tile(_grey(image), [1, 1, 3]), image, factor)


def posterize(image, level, seed):
    del seed
    shift = tf.cast(level / MAX_LEVEL * 4.0, tf.int32)  # bits dropped: 0..4
    div = tf.cast(tf.bitwise.left_shift(1, shift), tf.float32)
    return tf.floor(image / div) * div


def contrast(image, level, seed):
    factor = 1.0 + _signed(level / MAX_LEVEL * _ENHANCE, seed)
    mean = tf.round(tf.reduce_mean(_grey(image)))
    return _blend(mean, image, factor)


def brightness(image, level, seed):
    factor = 1.0 + _signed(level / MAX_LEVEL * _ENHANCE, seed)
    return _blend(tf.zeros_like(image), image, factor)


def sharpness(image, level, seed):
    factor = 1.0 + _signed(level / MAX_LEVEL * _ENHANCE, seed)
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "VALID")[0]
    smooth = tf.round(smooth)
    # PIL's SMOOTH filter leaves the one-pixel border untouched.
    mask = tf.pad(tf.ones_like(smooth), [[1, 1], [1, 1], [0, 0]])
    degenerate = mask * tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]) + (1.0 - mask) * image
    return _blend(degenerate, image, factor)


def shear_x(image, level, seed):
    s = _signed(level / MAX_LEVEL * _SHEAR, seed)
    return _affine(image, [1.0, s, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])


def shear_y(image, level, seed):
    s = _signed(level / MAX_LEVEL * _SHEAR, seed)
    return _affine(image, [1.0, 0.0, 0.0, s, 1.0, 0.0, 0.0, 0.0])


def translate_x(image, level, seed):
    width = tf.cast(tf.shape(image)[1], tf.float32)
    t = _signed(level / MAX_LEVEL * _TRANSLATE_FRAC * width, seed)
    return _affine(image, [1.0, 0.0, t, 0.0, 1.0, 0.0, 0.0, 0.0])


def translate_y(image, level, seed):
    height = tf.cast(tf.shape(image)[0], tf.float32)
    t = _signed(level / MAX_LEVEL * _TRANSLATE_FRAC * height, seed)
    return _affine(image, [1.0, 0.0, 0.0, 0.0, 1.0, t, 0.0, 0.0])


OPS = (identity, autocontrast, equalize, rotate, solarize, color, posterize, contrast, brightness,
       sharpness, shear_x, shear_y, translate_x, translate_y)
OP_NAMES = tuple(op.__name__ for op in OPS)


def apply_op(name: str, image, level, seed):
    """Apply one RandAugment op by name (for tests and inspection)."""
    return OPS[OP_NAMES.index(name)](image, tf.cast(level, tf.float32), seed)


def randaugment(image, seed, num_layers: int, magnitude: float, magnitude_std: float = 0.0,
                apply_prob: float = APPLY_PROB):
    """RandAugment of a float32 [H, W, 3] image in 0..255; ``num_layers=0`` returns it unchanged.

    The layers run in a ``tf.while_loop`` so the 14 ops are traced once, not once per layer.
    """
    if num_layers <= 0:
        return image
    image = tf.convert_to_tensor(image, tf.float32)
    static_shape = image.shape

    def layer(i, img):
        op_seed, level_seed, apply_seed, arg_seed = tf.unstack(
            tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(seed, tf.cast(i, tf.int64)), num=4))
        op_index = tf.random.stateless_uniform([], op_seed, 0, len(OPS), dtype=tf.int32)
        level = tf.constant(float(magnitude), tf.float32)
        if magnitude_std > 0:
            level = level + magnitude_std * tf.random.stateless_normal([], level_seed)
        level = tf.clip_by_value(level, 0.0, MAX_LEVEL)
        apply = tf.random.stateless_uniform([], apply_seed) < apply_prob
        branches = [lambda op=op: op(img, level, arg_seed) for op in OPS]
        out = tf.cond(apply, lambda: tf.switch_case(op_index, branches), lambda: img)
        return i + 1, tf.ensure_shape(out, static_shape)

    _, image = tf.while_loop(lambda i, _: i < num_layers, layer, (tf.constant(0), image))
    return image


_LOG_RATIO = (math.log(0.3), math.log(3.3))


def random_erasing(image, seed, probability: float, area=(0.02, 1.0 / 3.0),
                   log_ratio=_LOG_RATIO, attempts: int = 10):
    """timm's RandomErasing in "pixel" mode on a normalised float32 [H, W, C] image.

    With probability ``probability`` one rectangle of ``area`` (fraction of the image) and aspect
    ratio exp(U(``log_ratio``)) is replaced by standard-normal noise; the first of ``attempts``
    draws that fits inside the image is used, none if none fits.
    """
    if probability <= 0:
        return image
    do_seed, size_seed, pos_seed, fill_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    draws = tf.random.stateless_uniform([attempts, 2], size_seed)
    target = (area[0] + (area[1] - area[0]) * draws[:, 0]) * hf * wf
    ratio = tf.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * draws[:, 1])
    eh = tf.cast(tf.round(tf.sqrt(target * ratio)), tf.int32)
    ew = tf.cast(tf.round(tf.sqrt(target / ratio)), tf.int32)
    fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    eh, ew = eh[first], ew[first]
    pos = tf.random.stateless_uniform([2], pos_seed)
    top = tf.cast(pos[0] * tf.cast(h - eh + 1, tf.float32), tf.int32)
    left = tf.cast(pos[1] * tf.cast(w - ew + 1, tf.float32), tf.int32)
    rows = tf.range(h)[:, None, None]
    cols = tf.range(w)[None, :, None]
    inside = (rows >= top) & (rows < top + eh) & (cols >= left) & (cols < left + ew)
    erase = (tf.random.stateless_uniform([], do_seed) < probability) & tf.reduce_any(fits)
    noise = tf.random.stateless_normal(shape, fill_seed, dtype=image.dtype)
    return tf.where(inside & erase, noise, image)
