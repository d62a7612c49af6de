"""Patch schedules (MCUNetV2): which ops run patch by patch, and the region of every tensor that
each patch needs.

A schedule ``(n, p)`` runs the first ``n`` ops of a graph (a *stage* ending at a block boundary:
:func:`stage_cuts`) once per patch of a ``p × p`` split of the stage's output map. Regions are
separable: a patch is a band of rows times a band of columns, and each axis is propagated backwards
on its own. For a windowed op (``OpKind.patch == "window"``: conv, depthwise conv, avg pool) with
kernel ``k``, stride ``s`` and padding ``p`` along an axis of input length ``L``, output rows
``[o0, o1)`` need input rows ``[max(0, o0·s − p), min(L, (o1 − 1)·s − p + k))``; the kernel runs on
that sub-region with ``max(0, p − o0·s)`` rows of padding on top (CMSIS-NN's ``padding``) and,
through its ``output_dims``, implicit padding at the bottom where the windows reach past ``L``,
exactly as the whole-tensor call pads its borders. A pointwise op (add, lut) needs the same region
of each input. A tensor read by several ops of the stage (a residual block's input: the expansion
conv and the add) holds the union of what they need; the add reads its sub-rectangle. Patch
boundaries split each axis of the stage output as evenly as possible.

The plan of a schedule (where the regions live in the arena) is :mod:`tinyjax.codegen.plan.patch`'s.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tinyjax.codegen.graph import Graph, Op
from tinyjax.codegen.ops import OPS
from tinyjax.errors import GraphError

__all__ = ["Interval", "PatchSchedule", "make_schedule", "region_buffer", "stage_cuts"]

Interval = tuple[int, int]


def region_buffer(tensor: str) -> str:
    """The buffer name of a tensor's per-patch region (``@`` never occurs in tensor names)."""
    return "patch@" + tensor


def _scope(op: Op) -> str:
    return op.name.split("/", 1)[0]


def stage_cuts(graph: Graph) -> tuple[int, ...]:
    """The ``n`` for which the first ``n`` ops form a patch stage: every op patchable
    (``OpKind.patch``), the cut at a block boundary (op name scopes differ), and exactly one
    tensor, the last op's 4-d output (at least 2 × 2, not a graph output), read after the cut."""
    ops = graph.ops
    cuts = []
    produced = set(graph.inputs)
    readers_after = {}  # tensor -> index of its last reader
    for i, op in enumerate(ops):
        for t in op.inputs:
            readers_after[t] = i
    outputs = set(graph.outputs)
    for c in range(1, len(ops)):
        op = ops[c - 1]
        if OPS[op.kind].patch is None:
            break
        produced.update(op.outputs)
        if _scope(op) == _scope(ops[c]):
            continue
        crossing = [t for t in produced if readers_after.get(t, -1) >= c or t in outputs]
        out = op.output
        shape = graph.tensor(out).shape
        if crossing != [out] or out in outputs or len(shape) != 4 or min(shape[1:3]) < 2:
            continue
        cuts.append(c)
    return tuple(cuts)


def _split(length: int, p: int) -> list[Interval]:
    return [((i * length) // p, ((i + 1) * length) // p) for i in range(p)]


def _propagate(graph: Graph, n: int, out_band: Interval, axis: int
               ) -> tuple[dict[str, Interval], dict[str, tuple[int, int]]]:
    """One band of the stage output along ``axis`` (1: rows, 2: columns) -> the region of every
    tensor of the stage along that axis and each windowed op's padding ``(before, after)``."""
    ops = graph.ops[:n]
    region: dict[str, Interval] = {ops[-1].output: out_band}
    pads: dict[str, tuple[int, int]] = {}
    needs: dict[tuple[int, str], Interval] = {}
    for k in range(n - 1, -1, -1):
        op = ops[k]
        if op.output not in region:
            raise GraphError(f"op {op.name}: its output is not needed by the patch stage")
        o0, o1 = region[op.output]
        rec = OPS[op.kind]
        for x in op.inputs:
            if rec.patch == "window":
                a = axis - 1
                kern, stride, pad = op.attr("kernel")[a], op.attr("stride")[a], op.attr("padding")[a]
                length = graph.tensor(x).shape[axis]
                lo, hi = o0 * stride - pad, (o1 - 1) * stride - pad + kern
                need = (max(0, lo), min(length, hi))
                pads[op.name] = (need[0] - lo, max(0, hi - length))
            else:
                need = (o0, o1)
            needs[(k, x)] = need
            old = region.get(x)
            region[x] = need if old is None else (min(old[0], need[0]), max(old[1], need[1]))
    for (k, x), need in needs.items():
        if OPS[ops[k].kind].patch == "window" and region[x] != need:
            raise GraphError(f"op {ops[k].name}: its input {x} is read by another op of the stage "
                             "over a wider region; a windowed op must read its whole input region")
    return region, pads


@dataclass(frozen=True, eq=False)
class PatchSchedule:
    """``(n, p)`` and the geometry it implies.

    Attributes:
        graph: the graph.
        n: ops in the patch stage (the first ``n`` of ``graph.ops``).
        p: patches per side (``p × p`` patches, row-major).
        rows / cols: per band, ``{tensor: (lo, hi)}``, the tensor's region along that axis.
        row_pads / col_pads: per band, ``{op name: (before, after)}`` for the stage's windowed ops.
    """

    graph: Graph
    n: int
    p: int
    rows: tuple[Mapping[str, Interval], ...]
    cols: tuple[Mapping[str, Interval], ...]
    row_pads: tuple[Mapping[str, tuple[int, int]], ...]
    col_pads: tuple[Mapping[str, tuple[int, int]], ...]

    @property
    def stage_ops(self) -> tuple[Op, ...]:
        return self.graph.ops[:self.n]

    @property
    def output(self) -> str:
        """The stage's output tensor (the full map the patches fill)."""
        return self.graph.ops[self.n - 1].output

    @property
    def stage_tensors(self) -> tuple[str, ...]:
        """Tensors with a region buffer: the graph input's patch, then every stage op's output."""
        return (self.graph.inputs[0],) + tuple(op.output for op in self.stage_ops)

    def patches(self) -> list[tuple[int, int]]:
        """``(i, j)`` of every patch, in execution order (row-major)."""
        return [(i, j) for i in range(self.p) for j in range(self.p)]

    def region(self, tensor: str, i: int, j: int) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` of ``tensor`` in patch ``(i, j)`` (half-open)."""
        return self.rows[i][tensor] + self.cols[j][tensor]

    def region_shape(self, tensor: str, i: int, j: int) -> tuple[int, int, int, int]:
        y0, y1, x0, x1 = self.region(tensor, i, j)
        return (1, y1 - y0, x1 - x0, self.graph.tensor(tensor).shape[3])

    def padding(self, op: Op, i: int, j: int) -> tuple[int, int]:
        """The top/left padding of a windowed op's call in patch ``(i, j)``."""
        return self.row_pads[i][op.name][0], self.col_pads[j][op.name][0]

    def patch_op(self, op: Op, i: int, j: int) -> Op:
        """The op as it is called in patch ``(i, j)``: a windowed op's ``padding`` is the padding
        that falls inside the patch (top/left; bottom/right follow from the output dims)."""
        if OPS[op.kind].patch != "window":
            return op
        attrs = tuple((k, self.padding(op, i, j) if k == "padding" else v) for k, v in op.attrs)
        return dataclasses.replace(op, attrs=attrs)

    def macs(self) -> int:
        """MACs of the stage run patch by patch (overlaps counted once per patch)."""
        total = 0
        for op in self.stage_ops:
            rec = OPS[op.kind]
            for i, j in self.patches():
                total += rec.macs(op, self.region_shape(op.output, i, j))
        return total

    def layer_macs(self) -> int:
        """MACs of the stage run layer by layer."""
        return sum(OPS[op.kind].macs(op, self.graph.tensor(op.output).shape) for op in self.stage_ops)

    @property
    def mac_overhead(self) -> int:
        """Extra MACs of the recomputation."""
        return self.macs() - self.layer_macs()


def make_schedule(graph: Graph, n: int, p: int) -> PatchSchedule:
    """The schedule running the first ``n`` ops in ``p × p`` patches. Raises :class:`GraphError`
    naming what is wrong (``n`` not a cut of :func:`stage_cuts`, ``p`` out of range)."""
    cuts = stage_cuts(graph)
    if n not in cuts:
        raise GraphError(f"the first {n} ops are not a patch stage of this graph; valid stage "
                         f"lengths: {', '.join(map(str, cuts)) or 'none'}")
    out = graph.ops[n - 1].output
    _, h, w, _ = graph.tensor(out).shape
    try:
        p = operator.index(p)
    except TypeError:
        raise GraphError(f"patches per side must be an integer, got {p!r}") from None
    if p < 1 or p > min(h, w):
        raise GraphError(f"{p} patches per side do not split the {h}x{w} stage output {out}; "
                         f"use 1 to {min(h, w)}")
    rows, row_pads = zip(*(_propagate(graph, n, band, 1) for band in _split(h, p)))
    cols, col_pads = zip(*(_propagate(graph, n, band, 2) for band in _split(w, p)))
    freeze = lambda ds: tuple(MappingProxyType(d) for d in ds)  # noqa: E731
    return PatchSchedule(graph, n, p, freeze(rows), freeze(cols), freeze(row_pads),
                         freeze(col_pads))
