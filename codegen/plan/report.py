"""Human-readable views of a :class:`~tinyjax.codegen.plan.graph_plan.GraphPlan`: a per-layer text table
and a picture of the arena (address × time) drawn with matplotlib.

* :func:`layer_rows` — one dict per op in execution order (name, kind, kernel, shapes, MACs,
  scratch bytes, live bytes, offsets of its tensors);
* :func:`layer_table` — the same as aligned text, with a summary line;
* :func:`plan_figure` — a matplotlib ``Figure``: x = op index in execution order, y = arena offset
  in kB; one rectangle per buffer from its first to its last use, coloured by stage and labelled
  where the label fits; scratch buffers hatched grey; lines at the peak and the lower bound;
* :func:`plan_png` — that figure as PNG bytes (the CLI writes them).

matplotlib is imported inside the picture functions only (Agg canvas, no pyplot, no global
state): the table and ``python -m tinyjax.info`` do not pay its import time.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from tinyjax.codegen.plan.graph_plan import GraphPlan, scratch_name

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["layer_rows", "layer_table", "plan_figure", "plan_png", "short_name"]

KB = 1024  # bytes per kB (docs/design.md: units)


def _kb(n: int) -> str:
    return f"{n / 1024:.1f}"


def _shape(s) -> str:
    return "x".join(str(d) for d in s[1:]) if len(s) > 1 else str(s[0])


def layer_rows(gp: GraphPlan) -> list[dict[str, object]]:
    """Per op, in execution order: ``position, op, kind, output, kernel, in_shapes, out_shape, macs,
    scratch_bytes, live_bytes`` (all buffers live during the op, aligned), ``in_place``, and
    ``offsets``: tensor or ``#scratch`` name -> arena offset (bytes; ``None`` for the caller's
    image of a plan with ``input_mode="caller"``)."""
    g = gp.graph
    live = gp.live_bytes()
    ops = {op.name: op for op in g.ops}
    kernels = gp.kernels          # derived on each access: once for the whole table
    rows = []
    for p, name in enumerate(gp.order):
        op = ops[name]
        k = kernels[name]
        offsets = {t: gp.tensor_offsets.get(t) for t in op.inputs}
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
                        + ("@caller" if o is None else f"@{o}") for t, o in r["offsets"].items())
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

_SCRATCH_SUFFIX = scratch_name("")           # "#scratch"
_STAGE = re.compile(r"^blocks_(\d+)_")
_LABEL_PT = 7                                 # font size of the labels inside the rectangles
_PEAK_COLOR, _BOUND_COLOR, _SCRATCH_COLOR = "#c0392b", "#1f4e9c", "#d9d9d9"


def short_name(buffer: str) -> str:
    """The label of a buffer in the picture: ``blocks_1_0/conv_pw`` -> ``1_0/pw``,
    ``stem/conv`` -> ``stem``, a scratch buffer ends in ``#`` (``1_0/dw#``)."""
    scratch = buffer.endswith(_SCRATCH_SUFFIX)
    name = buffer[:-len(_SCRATCH_SUFFIX)] if scratch else buffer
    name = name.removeprefix("blocks_")
    name = re.sub(r"(^|/)conv_", r"\1", name)
    if name.endswith("/conv"):                  # stem/conv, head/conv
        name = name[:-len("/conv")]
    return name + ("#" if scratch else "")


def _group(buffer: str) -> str:
    """Legend group of a buffer: ``input``, ``stem``, ``stage k`` or ``head``."""
    m = _STAGE.match(buffer)
    if m:
        return f"stage {m.group(1)}"
    if buffer == "input":
        return "input"
    return "stem" if buffer.startswith("stem") else "head"


def _group_key(g: str) -> tuple[int, int]:
    """Legend order: input, stem, stages in order, head."""
    if g.startswith("stage "):
        return (2, int(g.split()[1]))
    return ({"input": 0, "stem": 1, "head": 3}[g], 0)


def _fits(text, renderer, width_px: float, height_px: float) -> bool:
    box = text.get_window_extent(renderer)
    return box.width + 3 <= width_px and box.height + 2 <= height_px


def plan_figure(gp: GraphPlan, model: str = "", size: tuple[float, float] | None = None,
                dpi: int = 100) -> Figure:
    """The plan as a matplotlib ``Figure`` (Agg canvas) of ``size`` inches (default: wide enough
    for every op, 6.5 in high) at ``dpi``.

    Op ``p`` spans ``[p - 0.5, p + 0.5]`` on x; a buffer of ``size`` bytes at ``offset`` is the
    rectangle ``[first_use - 0.5, last_use + 0.5] × [offset, offset + size] / 1024`` (gid = its
    name). A buffer's :func:`short_name` is written inside it (a ``Text`` with the buffer's name as
    gid), horizontally or vertically, only where it fits. Lines with gids ``peak`` and
    ``lower_bound`` mark those sizes in kB.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import MaxNLocator

    mp = gp.memory_plan
    n = max(len(gp.order), 1)
    width, height = size or (min(40.0, max(9.0, 3.2 + 0.15 * n)), 6.5)
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    # fixed margins (inches), so that the rectangles' pixel sizes are known before drawing
    left, right, bottom, top = 0.8, 1.9, 0.6, 0.55
    ax = fig.add_axes((left / width, bottom / height, 1 - (left + right) / width,
                       1 - (bottom + top) / height))
    peak_kb, bound_kb = mp.peak_bytes / KB, mp.lower_bound_bytes / KB
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(0, max(peak_kb, 1e-3) * 1.06)
    ax.set_xlabel("op index (execution order)")
    ax.set_ylabel("arena offset (kB, 1 kB = 1024 B)")
    head = f"{model} on {gp.target}" if model else f"target {gp.target}"
    ax.set_title(f"{head}: peak {peak_kb:.1f} kB, lower bound {bound_kb:.1f} kB "
                 f"({len(mp.buffers)} buffers, {len(gp.order)} ops, planner {mp.algorithm})",
                 fontsize=10, loc="left")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=min(n, 40), integer=True))
    ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)

    scratch = {scratch_name(o) for o in gp.scratch_offsets}
    groups = sorted({_group(b.name) for b in mp.buffers if b.name not in scratch},
                    key=_group_key)
    palette = colormaps["Set3"].colors
    color = {g: palette[i % len(palette)] for i, g in enumerate(groups)}

    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    for b, off in zip(mp.buffers, mp.offsets):
        if not b.size:
            continue
        x0, x1 = b.first_use - 0.5, b.last_use + 0.5
        y0, y1 = off / KB, (off + b.size) / KB
        is_scratch = b.name in scratch
        ax.add_patch(Rectangle(
            (x0, y0), x1 - x0, y1 - y0, gid=b.name, linewidth=0.5,
            facecolor=_SCRATCH_COLOR if is_scratch else color[_group(b.name)],
            edgecolor="#555555" if is_scratch else "#333333", hatch="////" if is_scratch else None))
        (px0, py0), (px1, py1) = to_px((x0, y0)), to_px((x1, y1))
        w_px, h_px = px1 - px0, py1 - py0
        if min(w_px, h_px) < _LABEL_PT:   # no room for any label: skip the measuring
            continue
        text = ax.text((x0 + x1) / 2, (y0 + y1) / 2, short_name(b.name), gid=b.name,
                       fontsize=_LABEL_PT, ha="center", va="center", clip_on=True)
        if not _fits(text, renderer, w_px, h_px):
            text.set_rotation(90)
            if not _fits(text, renderer, w_px, h_px):
                text.remove()

    trans = ax.get_yaxis_transform()  # x in axes fraction, y in data (kB)
    # the bound is drawn wider, so that it still shows where the peak meets it
    for value, gid, label, colour, style, lw, va in (
            (bound_kb, "lower_bound", "lower bound", _BOUND_COLOR, ":", 2.6, "top"),
            (peak_kb, "peak", "peak", _PEAK_COLOR, "--", 1.4, "bottom")):
        ax.axhline(value, color=colour, linestyle=style, linewidth=lw, gid=gid)
        ax.text(1.005, value, f"{label} {value:.1f} kB", transform=trans, color=colour,
                fontsize=8, ha="left", va=va, gid=f"{gid}_label")

    handles = [Patch(facecolor=color[g], edgecolor="#333333", label=g) for g in groups]
    handles.append(Patch(facecolor=_SCRATCH_COLOR, edgecolor="#555555", hatch="////",
                         label="scratch (name#)"))
    handles += [Line2D([], [], color=_PEAK_COLOR, linestyle="--", label="peak"),
                Line2D([], [], color=_BOUND_COLOR, linestyle=":", label="lower bound")]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.005, 0.0), fontsize=8,
              frameon=False, title="buffers", title_fontsize=8)
    return fig


def plan_png(gp: GraphPlan, model: str = "", size: tuple[float, float] | None = None,
             dpi: int = 100) -> bytes:
    """:func:`plan_figure` as PNG bytes (``size`` inches × ``dpi`` pixels, RGBA)."""
    buf = io.BytesIO()
    plan_figure(gp, model, size, dpi).savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
