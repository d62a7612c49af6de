"""Human-readable views of a :class:`~tinyjax.codegen.memory.GraphPlan`: a per-layer text table
and a PNG picture of the arena (address × time), drawn with numpy and zlib only.

* :func:`layer_rows` — one dict per op in execution order (name, kind, kernel, shapes, MACs,
  scratch bytes, live bytes, offsets of its tensors);
* :func:`layer_table` — the same as aligned text, with a summary line;
* :func:`plan_image` — an ``(H, W, 3)`` uint8 array: one rectangle per buffer, x = execution
  position, y = arena offset (0 at the bottom), labelled where the label fits; scratch buffers are
  grey; dashed lines mark the peak (red) and the lower bound (blue);
* :func:`png_bytes` — an RGB array encoded as a PNG file's bytes (the CLI writes them).
"""

from __future__ import annotations

import struct
import zlib
from typing import Dict, List

import numpy as np

from .memory import GraphPlan, scratch_name

__all__ = ["layer_rows", "layer_table", "plan_image", "plan_png", "png_bytes"]


def _kb(n: int) -> str:
    return f"{n / 1024:.1f}"


def _shape(s) -> str:
    return "x".join(str(d) for d in s[1:]) if len(s) > 1 else str(s[0])


def layer_rows(gp: GraphPlan) -> List[Dict[str, object]]:
    """Per op, in execution order: ``position, op, kind, output, kernel, in_shapes, out_shape, macs,
    scratch_bytes, live_bytes`` (all buffers live during the op, aligned), ``in_place``, and
    ``offsets``: tensor or ``#scratch`` name -> arena offset (bytes)."""
    g = gp.graph
    live = gp.live_bytes()
    ops = {op.name: op for op in g.ops}
    rows = []
    for p, name in enumerate(gp.order):
        op = ops[name]
        k = gp.kernels[name]
        offsets = {t: gp.tensor_offsets[t] for t in op.inputs}
        offsets[op.outputs[0]] = gp.tensor_offsets[op.outputs[0]]
        if name in gp.scratch_offsets:
            offsets["#scratch"] = gp.scratch_offsets[name]
        rows.append({
            "position": p,
            "op": name,
            "kind": op.kind,
            "output": op.outputs[0],
            "kernel": k.function or "(view)",
            "in_shapes": [list(g.tensor(t).shape) for t in op.inputs],
            "out_shape": list(g.tensor(op.outputs[0]).shape),
            "macs": g.macs(op),
            "scratch_bytes": k.scratch_bytes,
            "live_bytes": live[p],
            "in_place": k.in_place,
            "offsets": offsets,
        })
    return rows


def layer_table(gp: GraphPlan) -> str:
    """The per-layer table as text (bytes in the offsets column, kB = 1024 bytes elsewhere)."""
    rows = layer_rows(gp)
    header = ("#", "op", "kind", "kernel", "in", "out", "MACs", "scratch", "live kB", "offsets")
    table = []
    for r in rows:
        ins = ",".join(_shape(s) for s in r["in_shapes"])
        offs = " ".join(("scr" if t == "#scratch" else "out" if t == r["output"] else "in")
                        + f"@{o}" for t, o in r["offsets"].items())
        kind = r["kind"] + ("*" if r["in_place"] else "")
        table.append((str(r["position"]), r["op"], kind, r["kernel"], ins, _shape(r["out_shape"]),
                      f"{r['macs']:,}", str(r["scratch_bytes"]), _kb(r["live_bytes"]), offs))
    widths = [max(len(x[i]) for x in table + [header]) for i in range(len(header))]
    right = {0, 6, 7, 8}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    mp = gp.memory_plan
    peak_at = max(range(len(rows)), key=lambda p: rows[p]["live_bytes"]) if rows else 0
    out = [f"target {gp.target}: peak {gp.peak_bytes:,} B ({_kb(gp.peak_bytes)} kB), "
           f"lower bound {gp.lower_bound_bytes:,} B, planner {mp.algorithm}, "
           f"{len(mp.buffers)} buffers, alignment {mp.alignment}",
           line(header)]
    out += [line(c) for c in table]
    out.append(f"* in place ({len(gp.in_place_ops)} ops); most bytes live at #{peak_at} "
               f"({rows[peak_at]['op'] if rows else '-'})")
    return "\n".join(out)


# --------------------------------------------------------------------------
# Picture
# --------------------------------------------------------------------------

# A 5×7 bitmap font (one int per row, bit 4 = leftmost pixel); lower case draws as upper case.
_FONT_ROWS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    "_": "00000 00000 00000 00000 00000 00000 11111",
    "/": "00001 00001 00010 00100 01000 10000 10000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    ",": "00000 00000 00000 00000 01100 00100 01000",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    "+": "00000 00100 00100 11111 00100 00100 00000",
    "#": "01010 01010 11111 01010 11111 01010 01010",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    "%": "11000 11001 00010 00100 01000 10011 00011",
    " ": "00000 00000 00000 00000 00000 00000 00000",
}
_GLYPHS = {c: np.array([[ch == "1" for ch in row] for row in rows.split()], dtype=bool)
           for c, rows in _FONT_ROWS.items()}
_UNKNOWN = np.ones((7, 5), dtype=bool)
CHAR_W, CHAR_H = 6, 8  # glyph plus one pixel of spacing

_PALETTE = np.array([
    (141, 211, 199), (255, 255, 179), (190, 186, 218), (251, 128, 114), (128, 177, 211),
    (253, 180, 98), (179, 222, 105), (252, 205, 229), (188, 128, 189), (204, 235, 197),
    (255, 237, 111), (166, 206, 227)], dtype=np.uint8)
_SCRATCH = np.array((200, 200, 200), dtype=np.uint8)
_INK = np.array((30, 30, 30), dtype=np.uint8)


def _text(img: np.ndarray, x: int, y: int, s: str, color=_INK) -> None:
    """Draw ``s`` with its top-left corner at pixel (x, y), clipped to the image."""
    h, w, _ = img.shape
    for k, c in enumerate(s):
        g = _GLYPHS.get(c.upper(), _UNKNOWN)
        x0 = x + k * CHAR_W
        ys, xs = np.nonzero(g)
        ys, xs = ys + y, xs + x0
        keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        img[ys[keep], xs[keep]] = color


def _fit(label: str, room_px: int) -> str:
    n = room_px // CHAR_W
    if n <= 0:
        return ""
    return label if len(label) <= n else (label[:n - 1] + "." if n > 2 else "")


def _short(name: str) -> str:
    return name[len("blocks_"):] if name.startswith("blocks_") else name


def plan_image(gp: GraphPlan, height: int = 640, max_width: int = 1600) -> np.ndarray:
    """The plan as an RGB image ``(H, W, 3)`` uint8: x = execution position (one column band per
    op), y = arena offset growing upwards, one filled, outlined rectangle per buffer."""
    mp = gp.memory_plan
    n = max(len(gp.order), 1)
    left, right, top, bottom = 64, 16, 28, 36
    cell = max(6, min(40, (max_width - left - right) // n))
    pw = cell * n
    ph = max(120, height - top - bottom)
    img = np.full((top + ph + bottom, left + pw + right, 3), 255, dtype=np.uint8)
    peak = max(mp.peak_bytes, 1)
    scale = ph / peak

    def ypix(offset: int) -> int:  # offset 0 at the bottom of the plot area
        return top + ph - int(round(offset * scale))

    scratch = {scratch_name(o) for o in gp.scratch_offsets}
    for k, (b, off) in enumerate(sorted(zip(mp.buffers, mp.offsets), key=lambda x: x[0].name)):
        if not b.size:
            continue
        x0, x1 = left + b.first_use * cell, left + (b.last_use + 1) * cell
        y1, y0 = ypix(off), ypix(off + b.size)
        y0 = min(y0, y1 - 1)
        color = _SCRATCH if b.name in scratch else _PALETTE[k % len(_PALETTE)]
        img[y0:y1, x0:x1] = color
        img[y0, x0:x1] = img[y1 - 1, x0:x1] = _INK
        img[y0:y1, x0] = img[y0:y1, x1 - 1] = _INK
        if y1 - y0 >= CHAR_H + 2:
            label = _fit(_short(b.name.replace("#scratch", "#")), x1 - x0 - 4)
            if label:
                _text(img, x0 + 2, (y0 + y1 - 7) // 2, label)
    # axes, peak and lower-bound lines
    img[top:top + ph + 1, left - 1] = _INK
    img[top + ph, left - 1:left + pw] = _INK
    for value, color in ((mp.lower_bound_bytes, (30, 30, 220)), (mp.peak_bytes, (220, 30, 30))):
        y = ypix(value)
        if top <= y <= top + ph:
            xs = np.arange(left, left + pw)
            img[y, xs[(xs // 4) % 2 == 0]] = color
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = int(peak * frac)
        y = ypix(value)
        img[y, left - 4:left - 1] = _INK
        _text(img, 2, y - 3, _fit(f"{value / 1024:.0f}K", left - 8))
    step = max(1, -(-n // max(1, pw // (CHAR_W * 4))))
    for p in range(0, n, step):
        _text(img, left + p * cell, top + ph + 4, str(p))
    _text(img, left, top + ph + 4 + CHAR_H + 4, "op (execution order)")
    title = (f"{gp.target}  peak {gp.peak_bytes / 1024:.1f} kB  lower bound "
             f"{gp.lower_bound_bytes / 1024:.1f} kB  {len(mp.buffers)} buffers")
    _text(img, left, 8, _fit(title, img.shape[1] - left))
    return img


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 array as PNG (8-bit RGB, no interlace, filter 0)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    h, w, _ = rgb.shape
    raw = np.zeros((h, 1 + 3 * w), dtype=np.uint8)  # a leading 0: filter type None per row
    raw[:, 1:] = rgb.reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b""))


def plan_png(gp: GraphPlan, height: int = 640, max_width: int = 1600) -> bytes:
    """:func:`plan_image` encoded as PNG bytes."""
    return png_bytes(plan_image(gp, height, max_width))
