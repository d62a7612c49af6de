"""The scenes of ``tinyjax_shapes``: every random choice of an image, and its pixels at any size.

Pure numpy, vectorised over a block of images; :mod:`tinyjax.data.embedded` serves the result
as a dataset (TFDS, caches, splits).

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
"""

from __future__ import annotations

import math

import numpy as np

SEED = 20240607
IMAGE_SIZE = 32  # pixels
CLASS_NAMES = ("circle", "ring", "square", "frame", "triangle", "cross", "star",
               "stripes_horizontal", "stripes_vertical", "checker")
NUM_CLASSES = len(CLASS_NAMES)
SPLIT_SIZES = {"train": 6000, "validation": 1200}  # examples

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
