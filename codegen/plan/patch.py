"""Patch-based inference (MCUNetV2): the first blocks of a network run patch by patch.

Layer by layer, the first blocks of an image network hold most of its memory: their activations
are large. A *patch schedule* ``(n, p)`` runs the first ``n`` ops (a *stage* ending at a block
boundary) once per patch: the stage's output map is split into ``p × p`` spatial patches, and each
patch is computed from its *receptive field*, the region of every earlier tensor it depends on, so
only one patch's activations live at a time. Neighbouring receptive fields overlap; the overlap
is computed again for every patch (the MAC overhead). The rest of the network runs layer by layer.

The schedule and the region of every tensor that a patch needs are
:mod:`tinyjax.codegen.plan.schedule`'s; this module plans them.

Execution order of a patch plan (positions of the memory timeline):

* 0: copy the patch's region of the input image into a region buffer;
* 1 … n: the stage's ops on region buffers (depthwise, add and lut in place where legal);
* n + 1: copy the last region into the stage's output map, which lives across the whole loop;
* n + 2 …: the remaining ops, layer by layer, as :func:`tinyjax.codegen.plan.graph_plan.plan_graph` plans
  them.

Positions 0 … n + 1 repeat once per patch; a buffer that lives across patches (the input image,
the stage output map) is live over all of them, a region buffer only where one patch uses it, so
one plan of the timeline serves every patch and :func:`tinyjax.codegen.plan.buffers.verify` proves that
no two live buffers overlap at any step of the loop. Everything is counted: the whole input image,
the stage output map, every region buffer at its largest patch, every kernel's scratch at its
largest patch, alignment. With ``input_mode="caller"`` the whole image is the caller's (its
buffer, never written; MCUNetV2's and TinyEngine's way of counting) and position 0 copies the
patch's region out of it: the arena holds the region buffer, not the image.

:func:`choose_patch_plan` picks ``(n, p)``: the smallest peak whose MAC overhead is at most
``max_mac_overhead`` (default 15% of the network's MACs), or, under a ``budget``, the least
overhead whose peak fits (``None``: layer by layer is best, or fits already).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from tinyjax.codegen.graph import Graph
from tinyjax.codegen.ops import OPS
from tinyjax.codegen.plan.buffers import DEFAULT_ALIGNMENT, MemoryPlan, lower_bound
from tinyjax.codegen.plan.buffers import verify as check_plan
from tinyjax.codegen.plan.graph_plan import (
    _buffer,
    _layout,
    _plan,
    _Static,
    check_input_mode,
    plan_graph,
    scratch_name,
)
from tinyjax.codegen.plan.protocol import ArenaFigures
from tinyjax.codegen.plan.schedule import PatchSchedule, make_schedule, region_buffer, stage_cuts
from tinyjax.codegen.targets import KernelChoice, get_target
from tinyjax.devices import DEFAULT_MAX_MAC_OVERHEAD, DEFAULT_TARGET
from tinyjax.errors import GraphError

__all__ = [
    "DEFAULT_MAX_MAC_OVERHEAD",
    "MAX_PATCHES_PER_SIDE",
    "PatchPlan",
    "PatchSchedule",
    "choose_patch_plan",
    "make_schedule",
    "patch_summary",
    "plan_patches",
    "region_buffer",
    "stage_cuts",
]

#: the most patches along one side that :func:`choose_patch_plan` tries
MAX_PATCHES_PER_SIDE = 8

# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PatchPlan(ArenaFigures):
    """The arena of a graph run with a patch schedule.

    Attributes:
        graph, target: as for :class:`~tinyjax.codegen.plan.graph_plan.GraphPlan`.
        schedule: the :class:`PatchSchedule`.
        order: op names in execution order (the stage's ops, then the rest).
        memory_plan: the plan of the timeline (see the module docstring): positions 0 … n + 1
            are one patch's loop body, then one position per remaining op.
        layer_peak_bytes: the layer-by-layer plan's peak, for comparison.
        in_place: per op of ``graph.ops``, whether it writes over an input's bytes (a stage op:
            over the input's region buffer).
        tensor_offsets: arena offset of every whole tensor (the input image in ``"arena"`` mode,
            the stage output, the rest's tensors).
        region_offsets: arena offset of the region buffer of every stage tensor.
        scratch_offsets: op name -> offset of its scratch.
        scratch_bytes: op name -> scratch bytes (a stage op: its largest patch's).
        input_mode: ``"arena"`` (the whole image in the arena) or ``"caller"`` (in the caller's
            buffer; ``graph_plan.INPUT_MODES``). ``layer_peak_bytes`` is planned in the same mode.
    """

    graph: Graph
    target: str
    schedule: PatchSchedule
    order: tuple[str, ...]
    memory_plan: MemoryPlan
    layer_peak_bytes: int
    in_place: tuple[bool, ...]
    tensor_offsets: Mapping[str, int]
    region_offsets: Mapping[str, int]
    scratch_offsets: Mapping[str, int]
    scratch_bytes: Mapping[str, int]
    input_mode: str = "arena"

    @property
    def kernel_set(self) -> str:
        """Always ``"tinyjax"``: the patch loop copies regions with tinyjax's
        ``tjx_copy_region_s8``, which CMSIS-NN has no counterpart of."""
        return "tinyjax"

    @property
    def n(self) -> int:
        return self.schedule.n

    @property
    def p(self) -> int:
        return self.schedule.p

    @property
    def mac_overhead(self) -> int:
        return self.schedule.mac_overhead

    @property
    def mac_overhead_fraction(self) -> float:
        """The recomputed MACs as a fraction of the network's layer-by-layer MACs."""
        return self.mac_overhead / max(1, self.graph.total_macs())

    @property
    def in_place_ops(self) -> tuple[str, ...]:
        return tuple(op.name for op, ip in zip(self.graph.ops, self.in_place) if ip)

    @property
    def kernels(self) -> Mapping[str, KernelChoice]:
        """op name -> :class:`KernelChoice` (a stage op: its first patch's function, its largest
        scratch)."""
        graph, t, sch = self.graph, get_target(self.target), self.schedule
        shape = {x.name: x.shape for x in graph.tensors}
        out = {}
        for k, (op, ip) in enumerate(zip(graph.ops, self.in_place)):
            if k < sch.n:
                fn, call, _ = OPS[op.kind].kernel(sch.patch_op(op, 0, 0),
                                                  sch.region_shape(op.inputs[0], 0, 0),
                                                  sch.region_shape(op.output, 0, 0), t.path, ip)
            else:
                fn, call, _ = OPS[op.kind].kernel(op, shape[op.inputs[0]], shape[op.output], t.path, ip)
            out[op.name] = KernelChoice(op.name, fn, call, self.scratch_bytes.get(op.name, 0), ip, t.name)
        return MappingProxyType(out)


def _stage_layout(sch: PatchSchedule, path: str, in_place: bool):
    """Region buffers (groups of tensors sharing bytes), in-place flags and scratch of the stage,
    positions 0 … n + 1."""
    n, graph = sch.n, sch.graph
    ops = sch.stage_ops
    patches = sch.patches()
    size = {t: max(int(np.prod(sch.region_shape(t, i, j))) for i, j in patches)
            for t in sch.stage_tensors}
    last: dict[str, int] = {}
    for k, op in enumerate(ops):
        for t in op.inputs:
            last[t] = k + 1
    x_in = graph.inputs[0]
    last[sch.output] = n + 1
    group = {x_in: x_in}
    g_first, g_last, g_size = {x_in: 0}, {x_in: last.get(x_in, 0)}, {x_in: size[x_in]}
    inplace = [False] * n
    scratch: dict[str, tuple[int, int]] = {}   # op name -> (position, bytes)
    for k, op in enumerate(ops):
        pos, rec, out = k + 1, OPS[op.kind], op.output
        root = None
        if in_place:
            for x in rec.in_place_inputs(op):
                g = group[x]
                if g_last[g] != pos or any(group[y] == g for y in op.inputs if y != x) \
                        or op.inputs.count(x) > 1:
                    continue
                if rec.patch == "pointwise" and any(
                        sch.region(x, i, j) != sch.region(out, i, j) for i, j in patches):
                    continue
                root = g
                break
        s = max(rec.kernel(sch.patch_op(op, i, j), sch.region_shape(op.inputs[0], i, j),
                           sch.region_shape(out, i, j), path, root is not None)[2]
                for i, j in patches) if rec.needs_scratch else 0
        if s:
            scratch[op.name] = (pos, s)
        t_last = last.get(out, pos)
        if root is None:
            group[out] = out
            g_first[out], g_last[out], g_size[out] = pos, t_last, size[out]
        else:
            inplace[k] = True
            group[out] = root
            g_last[root] = max(g_last[root], t_last)
            g_size[root] = max(g_size[root], size[out])
    buffers = [_buffer(region_buffer(g), g_size[g], g_first[g], g_last[g]) for g in g_first]
    buffers += [_buffer("patch@" + scratch_name(name), s, pos, pos) for name, (pos, s) in scratch.items()]
    return buffers, group, inplace, scratch


def plan_patches(graph: Graph, schedule: PatchSchedule | tuple[int, int],
                 target: str = DEFAULT_TARGET, *, alignment: int = DEFAULT_ALIGNMENT,
                 in_place: bool = True, verify: bool = True,
                 layer_peak_bytes: int | None = None, input_mode: str = "arena") -> PatchPlan:
    """Plan ``graph`` run with ``schedule`` (a :class:`PatchSchedule` or ``(n, p)``) into one
    arena for ``target``, the image in the arena or the caller's buffer (``input_mode``); checked
    by ``planner.verify`` unless ``verify=False`` (the search's fit check)."""
    t = get_target(target)
    check_input_mode(input_mode)
    sch = schedule if isinstance(schedule, PatchSchedule) else make_schedule(graph, *schedule)
    if sch.graph is not graph and (sch.graph.ops != graph.ops or sch.graph.inputs != graph.inputs):
        raise GraphError("the patch schedule belongs to another graph")
    if layer_peak_bytes is None:
        layer_peak_bytes = plan_graph(graph, t.name, verify=False, input_mode=input_mode).peak_bytes
    return _plan_patches(graph, sch, t, _Rest(graph, sch.n, t, in_place), alignment, in_place,
                         verify, layer_peak_bytes, input_mode)


class _Rest:
    """The layer-by-layer rest after a cut, laid out as ``plan_graph`` lays out a graph whose input
    is the stage output (positions from 0; independent of ``p``, so made once per cut)."""

    __slots__ = ("graph", "static", "layout")

    def __init__(self, graph: Graph, n: int, t, in_place: bool) -> None:
        self.graph = Graph(graph.tensors, graph.ops[n:], (graph.ops[n - 1].output,), graph.outputs)
        self.static = _Static(self.graph, t)
        self.layout = _layout(self.static, tuple(range(len(self.graph.ops))), in_place, True)


def _plan_patches(graph: Graph, sch: PatchSchedule, t, rest: _Rest, alignment: int, in_place: bool,
                  verify: bool, layer_peak_bytes: int, input_mode: str = "arena") -> PatchPlan:
    n, x_in, y = sch.n, graph.inputs[0], sch.output
    image_inside = input_mode == "arena"
    stage_bufs, group, stage_inplace, stage_scratch = _stage_layout(sch, t.path, in_place)
    shift = n + 2

    def combined(lay):
        bufs = list(stage_bufs)
        if image_inside:
            bufs.append(_buffer(x_in, graph.tensor(x_in).nbytes, 0, n + 1))
        for b in lay.buffers:
            first = 0 if b.name == lay.tensor_group[y] else b.first_use + shift
            bufs.append(_buffer(b.name, b.size, first, b.last_use + shift))
        return bufs

    lay = rest.layout
    mp = _plan(combined(lay), "portfolio", alignment, verify)
    if mp.peak_bytes > mp.lower_bound_bytes and in_place:
        alt = _layout(rest.static, lay.order, in_place, False)
        mp2 = _plan(combined(alt), "portfolio", alignment, verify)
        if mp2.peak_bytes < mp.peak_bytes:
            lay, mp = alt, mp2
    rest_ops = rest.graph.ops
    offset = dict(zip((b.name for b in mp.buffers), mp.offsets))
    tensor_offsets = {x_in: offset[x_in]} if image_inside else {}
    tensor_offsets.update({tn: offset[g] for tn, g in lay.tensor_group.items()})
    region_offsets = {tn: offset[region_buffer(g)] for tn, g in group.items()}
    scratch_offsets = {name: offset["patch@" + scratch_name(name)] for name in stage_scratch}
    scratch_offsets.update({rest_ops[i].name: offset[scratch_name(rest_ops[i].name)]
                            for i, _, _ in lay.scratch})
    scratch_bytes = {name: s for name, (_, s) in stage_scratch.items()}
    scratch_bytes.update({rest_ops[i].name: s for i, _, s in lay.scratch})
    return PatchPlan(
        graph=graph, target=t.name, schedule=sch, order=tuple(op.name for op in graph.ops),
        memory_plan=mp, layer_peak_bytes=layer_peak_bytes,
        in_place=tuple(stage_inplace) + tuple(lay.inplace),
        tensor_offsets=MappingProxyType(tensor_offsets),
        region_offsets=MappingProxyType(region_offsets),
        scratch_offsets=MappingProxyType(scratch_offsets),
        scratch_bytes=MappingProxyType(scratch_bytes), input_mode=input_mode)


def _lower_bound(graph: Graph, rest: _Rest, input_mode: str = "arena") -> int:
    """A lower bound of any patch plan's peak at this cut: the rest's own buffers (layer by layer
    from the cut) and the stage output with the input image (when it is in the arena)."""
    image = graph.tensor(graph.inputs[0]).nbytes if input_mode == "arena" else 0
    return max(lower_bound(rest.layout.buffers, DEFAULT_ALIGNMENT),
               image + graph.tensor(rest.graph.inputs[0]).nbytes)


def choose_patch_plan(graph: Graph, target: str = DEFAULT_TARGET, *,
                      max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD,
                      budget: int | None = None, verify: bool = True,
                      max_patches: int = MAX_PATCHES_PER_SIDE,
                      layer_peak_bytes: int | None = None,
                      input_mode: str = "arena") -> PatchPlan | None:
    """The patch plan to use, or ``None`` when layer by layer is as good.

    Without ``budget``: the smallest peak over every stage cut and ``p`` in 2 … ``max_patches``
    whose MAC overhead is at most ``max_mac_overhead`` (a fraction of the network's MACs; ties:
    less overhead); ``None`` when none is below the layer-by-layer peak.
    With ``budget`` (bytes): ``None`` when layer by layer fits; else the least overhead within
    the cap whose peak fits (ties: the smaller peak); when none fits, the smallest peak within the
    cap (the caller sees it does not fit), or ``None`` if no schedule is within the cap.
    ``layer_peak_bytes``: the layer-by-layer peak when the caller has it (else it is planned),
    in the same ``input_mode`` (``"arena"``: the image counted; ``"caller"``: in the caller's
    buffer, every peak here without it).
    """
    check_input_mode(input_mode)
    if not (0 <= max_mac_overhead):
        raise ValueError(f"max_mac_overhead must be >= 0, got {max_mac_overhead}")
    t = get_target(target)
    layer_peak = layer_peak_bytes
    if layer_peak is None:
        layer_peak = plan_graph(graph, t.name, verify=False, input_mode=input_mode).peak_bytes
    if budget is not None and layer_peak <= budget:
        return None
    cuts = stage_cuts(graph)
    if not cuts:
        return None
    rests = {c: _Rest(graph, c, t, True) for c in cuts}
    bounds = {c: _lower_bound(graph, rest, input_mode) for c, rest in rests.items()}
    total_macs = max(1, graph.total_macs())
    best = None        # (key, plan)
    for c in cuts:
        if best is not None and budget is None and bounds[c] >= best[1].peak_bytes:
            continue
        if budget is not None and bounds[c] > budget and best is not None:
            continue
        _, h, w, _ = graph.tensor(graph.ops[c - 1].output).shape
        for p in range(2, min(max_patches, h, w) + 1):
            try:
                sch = make_schedule(graph, c, p)
            except GraphError:
                break
            frac = sch.mac_overhead / total_macs
            if frac > max_mac_overhead:
                break          # more patches only recompute more
            if budget is not None and best is not None and best[0][0] == 0 and frac >= best[0][1]:
                break          # a fitting schedule with less overhead is known
            pp = _plan_patches(graph, sch, t, rests[c], DEFAULT_ALIGNMENT, True, False, layer_peak,
                               input_mode)
            peak = pp.peak_bytes
            if budget is None or peak > budget:
                key = (0 if budget is None else 1, peak, frac)
            else:
                key = (0, frac, peak)
            if best is None or key < best[0]:
                best = (key, pp)
            if budget is not None and peak <= budget:
                break          # the least overhead that fits at this cut
    if best is None:
        return None
    pp = best[1]
    if budget is None and pp.peak_bytes >= layer_peak:
        return None
    if verify:       # the same placement, checked (plan_patches(..., verify=True) gives these offsets)
        check_plan(pp.memory_plan)
    return pp


def patch_summary(plan: PatchPlan | None, layer_peak_bytes: int) -> dict:
    """The JSON fields ``tinyjax.info`` and the export report give: ``peak_sram_bytes`` (the plan
    used), ``layer_peak_sram_bytes``, ``patch_mac_overhead`` (a fraction), ``patch_stage_ops``
    (n) and ``patches_per_side`` (p); n and p are ``None`` for layer by layer."""
    if plan is None:
        return {"peak_sram_bytes": layer_peak_bytes, "layer_peak_sram_bytes": layer_peak_bytes,
                "patch_mac_overhead": 0.0, "patch_stage_ops": None, "patches_per_side": None}
    return {"peak_sram_bytes": plan.peak_bytes, "layer_peak_sram_bytes": plan.layer_peak_bytes,
            "patch_mac_overhead": round(plan.mac_overhead_fraction, 6),
            "patch_stage_ops": plan.n, "patches_per_side": plan.p,
            "patch_stage_output": plan.schedule.output}
