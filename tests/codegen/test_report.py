"""Per-layer table and the matplotlib picture of a plan."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.plan.graph_plan import plan_graph, scratch_name
from tinyjax.codegen.plan.report import layer_rows, layer_table, plan_figure, plan_png, short_name
from tinyjax.zoo import get_spec


@pytest.fixture(scope="module")
def plan_in0():
    return plan_graph(graph_from_spec(get_spec("mcunet_in0")))


@pytest.fixture(scope="module")
def plan_e():  # SE blocks, lookup tables, channel multiplies
    return plan_graph(graph_from_spec(get_spec("tinynet_e", resolution=64)))


@pytest.fixture(scope="module")
def figure_in0(plan_in0):
    return plan_figure(plan_in0, "mcunet_in0")


def test_rows_follow_the_execution_order_and_the_plan(plan_in0):
    rows = layer_rows(plan_in0)
    g = plan_in0.graph
    assert [r["op"] for r in rows] == list(plan_in0.order)
    assert max(r["live_bytes"] for r in rows) == plan_in0.lower_bound_bytes
    assert sum(r["macs"] for r in rows) == 6_364_224   # mcunet-in0: 6.4M MACs, as published
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


def test_short_names_drop_the_repeated_parts():
    assert short_name("blocks_1_0/conv_pw") == "1_0/pw"
    assert short_name("blocks_1_0/conv_pwl") == "1_0/pwl"
    assert short_name("blocks_2_1/se/conv_reduce") == "2_1/se/reduce"
    assert short_name(scratch_name("blocks_1_0/conv_dw")) == "1_0/dw#"
    assert short_name("stem/conv") == "stem" and short_name("input") == "input"


def test_figure_has_labelled_axes_and_a_title_with_model_target_and_peak(plan_in0, figure_in0):
    (ax,) = figure_in0.axes
    assert "op index" in ax.get_xlabel()
    assert "arena offset" in ax.get_ylabel() and "kB" in ax.get_ylabel()
    title = ax.get_title(loc="left")
    assert "mcunet_in0" in title and "cortex-m7" in title
    assert f"peak {plan_in0.peak_bytes / 1024:.1f} kB" in title
    assert ax.get_xlim() == (-0.5, len(plan_in0.order) - 0.5)


def test_each_buffer_is_a_rectangle_at_its_offset_and_lifetime(plan_in0, figure_in0):
    (ax,) = figure_in0.axes
    rects = {p.get_gid(): p for p in ax.patches}
    mp = plan_in0.memory_plan
    drawn = [(b, o) for b, o in zip(mp.buffers, mp.offsets) if b.size]
    assert set(rects) == {b.name for b, _ in drawn}
    scratch = {scratch_name(op) for op in plan_in0.scratch_offsets}
    for b, off in drawn:
        r = rects[b.name]
        assert r.get_x() == b.first_use - 0.5 and r.get_width() == b.last_use - b.first_use + 1
        assert r.get_y() == pytest.approx(off / 1024)
        assert r.get_height() == pytest.approx(b.size / 1024)
        assert bool(r.get_hatch()) == (b.name in scratch)  # scratch looks different


def test_a_text_artist_per_labelled_buffer_inside_its_rectangle(plan_in0, figure_in0):
    (ax,) = figure_in0.axes
    rects = {p.get_gid(): p for p in ax.patches}
    labels = [t for t in ax.texts if t.get_gid() in rects]
    names = [t.get_gid() for t in labels]
    assert len(names) == len(set(names)) >= 15            # one text per labelled buffer
    biggest = max(plan_in0.memory_plan.buffers, key=lambda b: b.size)
    assert biggest.name in names
    renderer = figure_in0.canvas.get_renderer()
    for t in labels:
        r = rects[t.get_gid()]
        assert t.get_text() == short_name(t.get_gid())
        x, y = t.get_position()
        assert r.get_x() < x < r.get_x() + r.get_width()
        assert r.get_y() < y < r.get_y() + r.get_height()
        box, room = t.get_window_extent(renderer), r.get_window_extent(renderer)
        assert room.x0 <= box.x0 and box.x1 <= room.x1 and room.y0 <= box.y0 and box.y1 <= room.y1
    # a 25-byte scratch buffer has no room for a label
    assert scratch_name("blocks_6_0/conv_dw") not in names


def test_peak_and_lower_bound_lines_are_at_the_plan_values_in_kb(plan_e):
    fig = plan_figure(plan_e, "tinynet_e")
    (ax,) = fig.axes
    lines = {line.get_gid(): line for line in ax.lines}
    peak, bound = plan_e.peak_bytes / 1024, plan_e.lower_bound_bytes / 1024
    assert list(lines["peak"].get_ydata()) == [peak, peak]
    assert list(lines["lower_bound"].get_ydata()) == [bound, bound]
    texts = {t.get_gid(): t.get_text() for t in ax.texts}
    assert texts["peak_label"] == f"peak {peak:.1f} kB"
    assert texts["lower_bound_label"] == f"lower bound {bound:.1f} kB"
    assert ax.get_ylim()[1] > peak


def test_png_bytes_read_back_at_the_requested_size(plan_e):
    from matplotlib.image import imread

    data = plan_png(plan_e, "tinynet_e", size=(8, 5), dpi=50)
    img = imread(io.BytesIO(data), format="png")
    assert img.shape == (250, 400, 4)
    assert (img[..., :3] < 0.99).any() and (img[..., :3] > 0.99).any()  # drawn on white


def test_the_table_does_not_import_matplotlib():
    code = ("import sys; from tinyjax.codegen.graph import graph_from_spec\n"
            "from tinyjax.codegen.plan.graph_plan import plan_graph\n"
            "from tinyjax.codegen.plan.report import layer_table\nfrom tinyjax.zoo import get_spec\n"
            "layer_table(plan_graph(graph_from_spec(get_spec('mcunet_in0'))))\n"
            "assert 'matplotlib' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
