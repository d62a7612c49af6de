"""Per-layer table and the PNG picture of a plan (decoded here with zlib, independently)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.memory import plan_graph
from tinyjax.codegen.report import (
    CHAR_H,
    _GLYPHS,
    _text,
    layer_rows,
    layer_table,
    plan_image,
    plan_png,
    png_bytes,
)
from tinyjax.zoo import get_spec


@pytest.fixture(scope="module")
def plan_in0():
    return plan_graph(graph_from_spec(get_spec("mcunet_in0")))


@pytest.fixture(scope="module")
def plan_e():  # SE blocks, lookup tables, channel multiplies
    return plan_graph(graph_from_spec(get_spec("tinynet_e", resolution=64)))


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        pos += 12 + n
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, color, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color, comp, filt, inter) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, 1 + 3 * w)
    assert not rows[:, 0].any()  # filter type 0 on every row
    return rows[:, 1:].reshape(h, w, 3)


def test_rows_follow_the_execution_order_and_the_plan(plan_in0):
    rows = layer_rows(plan_in0)
    g = plan_in0.graph
    assert [r["op"] for r in rows] == list(plan_in0.order)
    assert max(r["live_bytes"] for r in rows) == plan_in0.lower_bound_bytes
    assert sum(r["macs"] for r in rows) == g.total_macs()
    stem = rows[0]
    assert stem["kernel"] == "arm_convolve_s8" and stem["scratch_bytes"] == 112
    assert stem["offsets"]["#scratch"] == plan_in0.scratch_offsets["stem/conv"]
    assert stem["in_shapes"] == [[1, 48, 48, 3]]
    assert stem["out_shape"] == list(g.tensor("stem/conv").shape)
    dw = next(r for r in rows if r["kind"] == "depthwise_conv")
    assert dw["in_place"] and dw["kernel"] == "tjx_depthwise_conv_inplace_s8"
    assert dw["offsets"][dw["op"]] == dw["offsets"][g.op(dw["op"]).inputs[0]]


def test_text_table_has_every_op_and_the_summary(plan_e):
    text = layer_table(plan_e)
    lines = text.splitlines()
    assert lines[0].startswith("target cortex-m7: peak ")
    assert f"{plan_e.peak_bytes:,} B" in lines[0] and f"{plan_e.lower_bound_bytes:,} B" in lines[0]
    assert lines[1].split()[:4] == ["#", "op", "kind", "kernel"]
    assert len(lines) == len(plan_e.order) + 3
    for name, line in zip(plan_e.order, lines[2:]):
        assert line.split()[1] == name
    assert "tjx_lut_s8" in text and "tjx_channel_mul_s8" in text and "lut*" in text
    assert f"in place ({len(plan_e.in_place_ops)} ops)" in lines[-1]


def test_png_round_trips_the_image(plan_e):
    img = plan_image(plan_e, height=300, max_width=600)
    assert img.dtype == np.uint8 and img.shape[2] == 3 and img.shape[0] == 300
    decoded = decode_png(plan_png(plan_e, height=300, max_width=600))
    np.testing.assert_array_equal(decoded, img)


def test_picture_draws_each_buffer_where_the_plan_put_it(plan_in0):
    img = plan_image(plan_in0, height=640, max_width=1600)
    mp = plan_in0.memory_plan
    # geometry used by plan_image: left margin 64, top 28, plot height 640 - 28 - 36
    n = len(plan_in0.order)
    cell = max(6, min(40, (1600 - 64 - 16) // n))
    ph = 640 - 28 - 36
    biggest = max(zip(mp.buffers, mp.offsets), key=lambda bo: bo[0].size)
    b, off = biggest
    x = 64 + b.first_use * cell + 1
    y_top = 28 + ph - round((off + b.size) * ph / mp.peak_bytes)
    y_bot = 28 + ph - round(off * ph / mp.peak_bytes)
    inside = img[(y_top + y_bot) // 2, x]
    assert tuple(inside) != (255, 255, 255)          # filled
    assert tuple(img[y_top, x + 2]) == (30, 30, 30)  # outlined
    # the peak is the top of the plot: a red dashed line there
    assert tuple(img[28, 64]) == (220, 30, 30) and tuple(img[28, 68]) != (220, 30, 30)


def test_text_rendering_uses_the_bitmap_font():
    img = np.full((10, 20, 3), 255, np.uint8)
    _text(img, 1, 1, "7a")
    ink = (img == 30).all(axis=2)
    np.testing.assert_array_equal(ink[1:8, 1:6], _GLYPHS["7"])
    np.testing.assert_array_equal(ink[1:8, 7:12], _GLYPHS["A"])
    assert CHAR_H == 8
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4), np.uint8))
