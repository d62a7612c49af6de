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

How an image is drawn
    A background colour with a random linear gradient, one foreground shape or texture, one to three
    clutter marks (thin lines 3–8 px long, dots 2–3 px across) and Gaussian pixel noise (σ 3–10 of
    255). Shapes get a random centre, circumradius 7–12.5 px and rotation, plus a random
    class-specific proportion (ring/frame hole, cross arm width, star depth); textures fill a random
    rectangle (14–30 px per side) with stripes or checks of random period (4.5–8 px) and phase,
    tilted by at most 12°. Foreground and background colours are drawn uniformly in RGB for every
    image, independently of the class; only a minimum distance between the two is enforced (so the
    object is visible), and the object is the brighter of the two in 80% of images (for every class
    alike). Edges are anti-aliased by 2×2 supersampling.

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

At any resolution (``render_split(split, size)``; :func:`load_rendered` caches it as ``.npz``)
    TinyNAS searches at 48–224 px, where memory budgets bind. Every image keeps the parameters drawn
    at 32 px (in 32-px units); shapes (2×2 sub-pixels), gradient and marks (edge one output pixel
    wide) are evaluated at ``size`` px. Noise at size ≠ 32 has the same σ per image, from its own
    generator seeded ``(SEED, split, block, size)``; size 32 is the TFDS dataset bit for bit.
    Blocks are drawn on threads (numpy releases the GIL); cost grows as size².
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from tinyjax.data import DataError  # the parent package, imported first, sets TF's environment

NAME = "tinyjax_shapes"
SEED = 20240607
IMAGE_SIZE = 32  # pixels
CLASS_NAMES = ("circle", "ring", "square", "frame", "triangle", "cross", "star",
               "stripes_horizontal", "stripes_vertical", "checker")
NUM_CLASSES = len(CLASS_NAMES)
SPLIT_SIZES = {"train": 6000, "validation": 1200}  # examples
_SPLIT_IDS = {"train": 0, "validation": 1}

BLOCK = 200  # images drawn from one random generator, seeded (SEED, split, block index)
_SS = 2  # supersampling factor per axis of the shapes (anti-aliased edges); _coverage assumes 2
_MAX_CLUTTER = 3
_MIN_COLOUR_DISTANCE = 110.0  # Euclidean RGB distance between foreground and background (0..255)
_SHAPE_CLASSES = 7  # labels below this are shapes, the rest textures
_STAR_POINTS = 5
_SCALE_RANGE = (7.0, 12.5)  # shape circumradius, pixels
_NOISE_RANGE = (3.0, 10.0)  # std of the Gaussian pixel noise, 0..255 units
_GRADIENT_STD = 25.0  # background gradient amplitude per channel at the border, 0..255 units
_P_BRIGHT_FOREGROUND = 0.8  # the shape is the brighter of its two colours in 80% of images
_COLOUR_TRIES = 8
_CHUNK_SAMPLES = 1 << 21  # sub-pixel samples drawn at once (bounds each float32 temporary to 8 MB)
_MIN_SIZE = 16  # pixels; the smallest rendering (objects stay at least 6 px across)
_RENDER_REVISION = 1  # part of the cache file name: raise it when drawing at size != 32 changes

# Columns of the [N, _NUM_UNIFORMS] matrix of U(0, 1) draws that parameterises a block of images.
_U_BG = slice(0, 3)
_U_FG = slice(3, 3 + 3 * _COLOUR_TRIES)  # candidate foreground colours
_U_POLARITY = 27
_U_GRADIENT = 28
_U_OBJECT = slice(29, 37)  # shape: scale, cx, cy, angle, proportion; texture: 8 numbers
_U_NUM_CLUTTER = 37
_U_CLUTTER = 38  # then 9 per mark: colour (3), start (2), kind, angle, length, width
_U_NOISE = _U_CLUTTER + 9 * _MAX_CLUTTER
_NUM_UNIFORMS = _U_NOISE + 1


def default_data_dir() -> str:
    """``$TINYJAX_DATA_DIR`` if set, else ``~/tensorflow_datasets`` (TFDS's own default)."""
    return os.environ.get("TINYJAX_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


# ----------------------------------------------------------------------------------------------
# Drawing (pure numpy, vectorised over a block of images)


def _cos_sin(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin through the C library, one scalar at a time: numpy's vectorised float64 trig
    differs between CPUs in the last bit (SIMD code paths), which could flip a rounded pixel."""
    return (np.array([math.cos(a) for a in angles.tolist()]),
            np.array([math.sin(a) for a in angles.tolist()]))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _draw_block(split_id: int, block: int, n: int, size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    """Every random choice of images ``block·BLOCK … block·BLOCK + n - 1`` of a split, as arrays;
    the pixel noise at ``size`` px (the same σ per image at every size)."""
    rng = np.random.default_rng((SEED, split_id, block))
    u = rng.random((n, _NUM_UNIFORMS))
    gradient_amp = rng.normal(0.0, _GRADIENT_STD, (n, 3))
    if size == IMAGE_SIZE:  # the 32-px noise continues the parameters' stream (the TFDS dataset)
        noise = rng.standard_normal((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    else:
        noise_rng = np.random.default_rng((SEED, split_id, block, size))
        noise = noise_rng.standard_normal((n, size, size, 3), dtype=np.float32)
    p: dict[str, np.ndarray] = {"label": (block * BLOCK + np.arange(n)) % NUM_CLASSES}
    lerp = lambda col, lo, hi: lo + (hi - lo) * u[:, col]  # noqa: E731

    # Colours, independent of the class: the first candidate far enough from the background (the
    # RGB complement if none is), then the brighter one is the foreground with probability 0.8.
    bg = 255.0 * u[:, _U_BG]
    candidates = 255.0 * u[:, _U_FG].reshape(n, _COLOUR_TRIES, 3)
    far = np.sqrt(np.sum((candidates - bg[:, None]) ** 2, axis=-1)) >= _MIN_COLOUR_DISTANCE
    fg = candidates[np.arange(n), np.argmax(far, axis=1)]
    fg = np.where(far.any(axis=1)[:, None], fg, 255.0 - bg)
    swap = ((_luma(fg) < _luma(bg)) == (u[:, _U_POLARITY] < _P_BRIGHT_FOREGROUND))[:, None]
    p["fg"], p["bg"] = np.where(swap, bg, fg), np.where(swap, fg, bg)
    p["grad_cos"], p["grad_sin"] = _cos_sin(lerp(_U_GRADIENT, 0.0, 2.0 * math.pi))
    p["grad_amp"] = gradient_amp

    o = u[:, _U_OBJECT]
    shape = p["label"] < _SHAPE_CLASSES
    # Shapes: circumradius (px), centre inside the image, any rotation, a class-specific proportion.
    scale = _SCALE_RANGE[0] + (_SCALE_RANGE[1] - _SCALE_RANGE[0]) * o[:, 0]
    margin = 0.85 * scale + 1.0
    shape_cx = margin + (IMAGE_SIZE - 2 * margin) * o[:, 1]
    shape_cy = margin + (IMAGE_SIZE - 2 * margin) * o[:, 2]
    shape_angle = 2.0 * math.pi * o[:, 3]
    # Textures: a rectangle of half-sizes 7-15 px inside the image, period 4.5-8 px, tilt ±12°.
    half_w, half_h = 7.0 + 8.0 * o[:, 0], 7.0 + 8.0 * o[:, 1]
    tex_cx = half_w + (IMAGE_SIZE - 2 * half_w) * o[:, 2]
    tex_cy = half_h + (IMAGE_SIZE - 2 * half_h) * o[:, 3]
    tilt = np.deg2rad(-12.0 + 24.0 * o[:, 5])
    p["cx"] = np.where(shape, shape_cx, tex_cx)
    p["cy"] = np.where(shape, shape_cy, tex_cy)
    p["cos"], p["sin"] = _cos_sin(np.where(shape, shape_angle, tilt))
    p["scale"], p["k"] = scale, o[:, 4]
    p["half_w"], p["half_h"] = half_w, half_h
    p["period"] = 4.5 + 3.5 * o[:, 4]
    p["phase_u"], p["phase_v"] = o[:, 6], o[:, 7]

    # Clutter: 1-3 marks, each a thin line (length 3-8 px, half-width 0.4-0.7 px) or a dot
    # (radius 0.8-1.6 px) of a random colour anywhere.
    count = 1 + np.floor(u[:, _U_NUM_CLUTTER] * _MAX_CLUTTER).astype(int)
    marks = []
    for slot in range(_MAX_CLUTTER):
        c = u[:, _U_CLUTTER + 9 * slot: _U_CLUTTER + 9 * (slot + 1)]
        line = c[:, 5] < 0.5
        dir_cos, dir_sin = _cos_sin(math.pi * c[:, 6])
        marks.append({
            "present": slot < count, "colour": 255.0 * c[:, 0:3],
            "x": IMAGE_SIZE * c[:, 3], "y": IMAGE_SIZE * c[:, 4],
            "dx": dir_cos, "dy": dir_sin,
            "length": np.where(line, 3.0 + 5.0 * c[:, 7], 0.0),
            "radius": np.where(line, 0.4 + 0.3 * c[:, 8], 0.8 + 0.8 * c[:, 8]),
        })
    p["marks"] = marks
    noise *= lerp(_U_NOISE, *_NOISE_RANGE).astype(np.float32)[:, None, None, None]
    p["noise"] = noise
    return p


def _centres(ss: int, size: int) -> np.ndarray:
    """Sample centres along an axis in 32-px units, float32 [size·ss] (geometry runs in float32;
    rows and columns broadcast). At size 32 the factor is 1/ss, a power of two, so the centres
    are exactly ``(i + 0.5) / ss``."""
    return ((np.arange(size * ss) + 0.5) * (IMAGE_SIZE / (size * ss))).astype(np.float32)


def _coverage(mask: np.ndarray) -> np.ndarray:
    """[N, 2S, 2S] bool sub-pixel mask -> [N, 1, S, S] float32 fraction of each pixel covered."""
    m = mask.view(np.uint8)
    total = m[:, 0::2, 0::2] + m[:, 1::2, 0::2] + m[:, 0::2, 1::2] + m[:, 1::2, 1::2]
    return (total.astype(np.float32) * np.float32(1.0 / (_SS * _SS)))[:, None]


def _shape_mask(label: int, p: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Boolean sub-pixel mask [N, 2·size, 2·size] of the foreground of images of class ``label``."""
    col = lambda key: p[key].astype(np.float32)[:, None, None]  # noqa: E731
    centres = _centres(_SS, size)
    dx, dy = centres[None, None, :] - col("cx"), centres[None, :, None] - col("cy")  # [N,1,W], [N,H,1]
    cos, sin = col("cos"), col("sin")
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # object frame, pixels
    if label >= _SHAPE_CLASSES:  # textures: stripes/checks inside an axis-aligned rectangle
        inside = (np.abs(dx) <= col("half_w")) & (np.abs(dy) <= col("half_h"))
        su = np.mod(u / col("period") + col("phase_u"), 1.0) < 0.5
        sv = np.mod(v / col("period") + col("phase_v"), 1.0) < 0.5
        pattern = {7: sv, 8: su, 9: su ^ sv}[label]
        return inside & pattern
    k = col("k")
    a, b = u / col("scale"), v / col("scale")  # units of the circumradius
    r2 = a * a + b * b
    cheb = np.maximum(np.abs(a), np.abs(b))
    if label == 0:  # circle
        return r2 <= 0.85 ** 2
    if label == 1:  # ring: hole 45-65% of the outer radius
        inner = 0.9 * (0.45 + 0.2 * k)
        return (r2 <= 0.9 ** 2) & (r2 >= inner * inner)
    if label == 2:  # square
        return cheb <= 0.72
    if label == 3:  # frame: hole 45-62% of the outer size
        return (cheb <= 0.75) & (cheb >= 0.75 * (0.45 + 0.17 * k))
    if label == 4:  # equilateral triangle, circumradius 1 (inradius 1/2)
        out = np.ones(a.shape, bool)
        for j in range(3):
            ang = math.pi / 2 + 2 * math.pi * j / 3
            out &= (a * math.cos(ang) + b * math.sin(ang)) >= -0.5
        return out
    if label == 5:  # cross: arm half-width 0.2-0.3
        w = 0.2 + 0.1 * k
        return (((np.abs(a) <= w) & (np.abs(b) <= 0.95)) |
                ((np.abs(b) <= w) & (np.abs(a) <= 0.95)))
    if label == 6:  # five-pointed star: notches at 0.38-0.5 of the tips' radius
        return _star(a, b, 0.38 + 0.12 * k)
    raise ValueError(f"no shape for label {label}")


def _star(a: np.ndarray, b: np.ndarray, inner) -> np.ndarray:
    """Star polygon with tips at radius 1 and notches at radius ``inner`` ([N,1,1]): the union of
    the inner pentagon and five tip triangles, with half-plane tests only (no per-pixel trig)."""
    def at(j, radius=1.0):
        ang = math.pi / 2 + 2 * math.pi * j / _STAR_POINTS
        return radius * math.cos(ang), radius * math.sin(ang)

    tips = [at(j) for j in range(_STAR_POINTS)]
    notches = [at(j + 0.5, inner) for j in range(_STAR_POINTS)]

    def left_of(p, q):  # points on the left of the directed edge p -> q (counter-clockwise polygon)
        return (q[0] - p[0]) * (b - p[1]) - (q[1] - p[1]) * (a - p[0]) >= 0

    out = np.ones(a.shape, bool)
    for j in range(_STAR_POINTS):  # the inner pentagon
        out &= left_of(notches[j - 1], notches[j])
    for j in range(_STAR_POINTS):  # tip j sits between notch j-1 and notch j
        n0, n1 = notches[j - 1], notches[j]
        out |= left_of(n0, tips[j]) & left_of(tips[j], n1) & left_of(n1, n0)
    return out


def _mark_window(mark: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns [N, W] of a W×W window per image that holds every pixel one clutter mark
    covers (a mark is at most 9.4 of 32 px across), so marks are drawn on windows, not images."""
    px = size / IMAGE_SIZE
    reach = mark["radius"] + 0.5 / px  # coverage is zero farther than this from the segment
    lo, hi = [], []
    for start, step in ((mark["y"], mark["dy"]), (mark["x"], mark["dx"])):
        end = start + mark["length"] * step
        lo.append(np.floor((np.minimum(start, end) - reach) * px).astype(int) - 1)
        hi.append(np.ceil((np.maximum(start, end) + reach) * px).astype(int) + 1)
    w = min(size, int(max(np.max(hi[0] - lo[0]), np.max(hi[1] - lo[1]))))
    rows, cols = (np.clip(low, 0, size - w)[:, None] + np.arange(w) for low in lo)
    return rows, cols


def _mark_coverage(mark: dict[str, np.ndarray], gx: np.ndarray, gy: np.ndarray,
                   px: np.float32) -> np.ndarray:
    """Coverage [N, 1, H, W] of one clutter mark per image (zero where absent) at sample centres
    ``gx`` [N, 1, W] and ``gy`` [N, H, 1] (32-px units); ``px`` output pixels per 32-px unit.

    Marks are thin, so they are anti-aliased analytically at output-pixel resolution (coverage
    falls linearly from 1 to 0 across the output pixel at the edge) rather than by supersampling.
    """
    col = lambda key: mark[key].astype(np.float32)[:, None, None]  # noqa: E731
    # Distance to the segment start + t·dir, t clipped to [0, length] (length 0: a dot).
    t = np.clip((gx - col("x")) * col("dx") + (gy - col("y")) * col("dy"), 0.0, col("length"))
    ex, ey = gx - col("x") - t * col("dx"), gy - col("y") - t * col("dy")
    cover = np.clip(col("radius") * px + 0.5 - np.sqrt(ex * ex + ey * ey) * px, 0.0, 1.0)
    return (cover * col("present")).astype(np.float32)[:, None]


def _take(p: dict, rows: slice) -> dict:
    out = {k: v[rows] for k, v in p.items() if k != "marks"}
    out["marks"] = [{k: v[rows] for k, v in mark.items()} for mark in p["marks"]]
    return out


def _render(p: dict[str, np.ndarray]) -> np.ndarray:
    """Images [N, S, S, 3] uint8 of a block of parameters, S the size of its noise, drawn in chunks
    of at most ``_CHUNK_SAMPLES`` sub-pixel samples (one chunk at 32 px)."""
    n, size = p["noise"].shape[:2]
    step = max(1, _CHUNK_SAMPLES // (size * _SS) ** 2)
    if n <= step:
        return _render_chunk(p, size)
    out = np.empty((n, size, size, 3), np.uint8)
    for start in range(0, n, step):
        out[start:start + step] = _render_chunk(_take(p, slice(start, start + step)), size)
    return out


def _render_chunk(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    n = len(p["label"])
    centres = _centres(1, size)
    gx, gy = centres[None, None, :], centres[None, :, None]
    ramp = ((p["grad_cos"][:, None, None] * (gx - IMAGE_SIZE / 2) +
             p["grad_sin"][:, None, None] * (gy - IMAGE_SIZE / 2)) / (IMAGE_SIZE / 2))
    # Channels first while compositing: numpy broadcasts colours over rows far faster than over 3.
    colour = lambda x: np.asarray(x, np.float32)[:, :, None, None]  # noqa: E731  [N, 3, 1, 1]
    img = colour(p["bg"]) + np.asarray(ramp, np.float32)[:, None] * colour(p["grad_amp"])
    cover = np.zeros((n, 1, size, size), np.float32)
    for label in np.unique(p["label"]):
        idx = np.flatnonzero(p["label"] == label)
        sub = {k: v[idx] for k, v in p.items() if k not in ("marks", "noise")}
        cover[idx] = _coverage(_shape_mask(int(label), sub, size))
    blend = colour(p["fg"]) - img
    blend *= cover
    img += blend
    px = np.float32(size / IMAGE_SIZE)  # output pixels per 32-px unit (exactly 1 at size 32)
    images, channels = np.arange(n)[:, None, None, None], np.arange(3)[None, :, None, None]
    for mark in p["marks"]:  # outside its window a mark's coverage is 0: blending there is a no-op
        rows, cols = _mark_window(mark, size)
        c = _mark_coverage(mark, centres[cols][:, None, :], centres[rows][:, :, None], px)
        at = (images, channels, rows[:, None, :, None], cols[:, None, None, :])
        window = img[at]
        window += c * (colour(mark["colour"]) - window)
        img[at] = window
    out = p["noise"] + img.transpose(0, 2, 3, 1)  # NHWC
    return np.clip(np.rint(out, out=out), 0, 255, out=out).astype(np.uint8)


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


class TinyjaxShapes(tfds.core.GeneratorBasedBuilder):
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
    builder = TinyjaxShapes(data_dir=data_dir)
    if not builder.is_prepared():
        config = tfds.download.DownloadConfig(try_download_gcs=False,
                                              compute_stats=tfds.download.ComputeStatsMode.SKIP)
        builder.download_and_prepare(download_dir=os.path.join(data_dir, "downloads"),
                                     download_config=config)
    return data_dir


def load_numpy(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split from the prepared TFDS copy (built first if missing), in TFDS's record order:
    images uint8 [N, 32, 32, 3], labels int32 [N]. Other sizes: :func:`load_rendered`."""
    _check(split, IMAGE_SIZE)
    builder = TinyjaxShapes(data_dir=ensure_prepared(data_dir))
    ds = builder.as_dataset(split=split, batch_size=-1, shuffle_files=False)
    arrays = tfds.as_numpy(ds)
    return np.asarray(arrays["image"], np.uint8), np.asarray(arrays["label"], np.int32)
