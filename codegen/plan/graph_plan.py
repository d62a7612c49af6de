"""The memory plan of a deployment graph: every run-time byte placed in one arena.

``Graph -> GraphPlan``. The buffers handed to :func:`tinyjax.codegen.plan.buffers.plan` are

* one per tensor *group*: the input image, every activation, and the tensors that share bytes
  with an earlier one (below), alive from the first member's producer (op 0 for the input image)
  to the last member's last reader (the end for graph outputs), as large as the largest member;
* one per op with scratch (``KernelChoice.scratch_bytes``, CMSIS-NN's ``*_get_buffer_size`` for
  the target, or the in-place depthwise kernel's temporary), alive during that op only.

Offsets are aligned to ``planner.DEFAULT_ALIGNMENT`` and the plan is checked by ``planner.verify``.
A tensor that shares bytes is not a separate buffer, so the planner still sees disjoint buffers and
``verify`` still proves that no live bytes are overwritten.

Sharing (TinyEngine's in-place updates), only where legal in the chosen execution order:

* a depthwise conv with ``ch_mult == 1`` writes over its input (``tjx_depthwise_conv_inplace_s8``:
  output channel c is computed into an out_h·out_w temporary from input channel c, then scattered
  over channel c's slots, which hold no other channel's data; stride 1 and 2 alike);
* an elementwise ``add``, a ``lut`` and a ``channel_mul`` write over an input (for ``add`` the
  shortcut, inputs[1], is preferred, then the branch);
* a ``reshape`` is a zero-copy view of its input.

With the ``cmsis-nn`` kernel set (``plan_graph(..., kernels="cmsis-nn")``) only CMSIS-NN's own
functions run, so a depthwise conv is planned out of place (``arm_depthwise_conv_wrapper_s8``) and
an add may still write over an input (Arm's kernel reads each element before writing it); a
network with an op CMSIS-NN has no kernel for is refused (:class:`PlanError`).

An op may overwrite input ``x`` only when the last reader of every tensor sharing ``x``'s bytes is
that op (no other consumer later in the order, e.g. not a residual shortcut still needed by the
add), the group holds no graph output, and the op's other inputs live elsewhere.

A shared buffer keeps its largest member's size for its whole lifetime: after a stride-2 in-place
depthwise conv the input's surplus bytes are not handed back before the output dies (simple and
safe; on the MCUNet models the plans still meet the lower bound of their buffers).

Planner: ``algorithm="portfolio"`` (the default) first tries the portfolio's cheapest member,
greedy by size, alone, and keeps it when it meets the lower bound (it is then optimal); otherwise
the whole portfolio runs. It saves the portfolio's other placements on the search's hot path
(greedy by size met the bound on every MCUNet zoo model and on 200 random MCUNet-like specs).

Execution order: where the graph has branches (its topological order is not unique), a bounded set
of topological orders is tried (the given one, a memory-greedy one, and up to ``MAX_ORDERS``
enumerated ones); the ``PLANNED_ORDERS`` with the smallest lower bound, and the given one, are
planned and the smallest peak wins (never worse than the given order).
A chain (MCUNet, MobileNet, EfficientNet: every op reads its predecessor's output) has one order.

Where the image lives (``input_mode``, :data:`INPUT_MODES`): ``"arena"`` (the default) counts
the whole input image in the arena, as the firmware that writes it there needs; ``"caller"``
leaves it in a buffer the caller owns (a camera frame buffer, external RAM, a decoder's output),
read through ``<prefix>_invoke``'s input pointer and never written: no op runs in place over it,
and neither it nor a view of it has an arena offset. MCUNetV2 and TinyEngine's patch code count
their peaks this way.

Units: bytes; times are positions in the execution order.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from tinyjax.codegen import targets as _kernels
from tinyjax.codegen.graph import Graph, _op, graph_from_spec
from tinyjax.codegen.ops import OPS
from tinyjax.codegen.plan.buffers import DEFAULT_ALIGNMENT, Buffer, MemoryPlan, lower_bound, plan
from tinyjax.codegen.plan.orders import dependencies, enumerate_orders, explicit_order, greedy_order, is_chain
from tinyjax.codegen.plan.protocol import ArenaFigures
from tinyjax.codegen.targets import KernelChoice, Target, check_kernel_set, get_target, is_cmsis_nn_function
from tinyjax.devices import DEFAULT_TARGET
from tinyjax.errors import GraphError, PlanError
from tinyjax.shapes import align_up

__all__ = [
    "GraphPlan",
    "INPUT_MODES",
    "MAX_ORDERS",
    "chain_buffers",
    "fits",
    "peak_sram_bytes",
    "peak_within",
    "plan_graph",
    "scratch_name",
]

#: Where the input image lives: in the arena (counted) or in the caller's buffer (module docstring).
INPUT_MODES = ("arena", "caller")

#: Topological orders enumerated at most when the graph has branches.
MAX_ORDERS = 32
#: Of those, how many (smallest lower bound first) are fully planned.
PLANNED_ORDERS = 3


def scratch_name(op_name: str) -> str:
    """The buffer name of an op's scratch (``#`` never occurs in tensor names)."""
    return op_name + "#scratch"


@dataclass(frozen=True, eq=False)
class GraphPlan(ArenaFigures):
    """A graph's arena layout.

    Attributes:
        graph: the planned graph.
        target: target name (selects kernels and their scratch).
        order: op names in execution order.
        memory_plan: the underlying :class:`~tinyjax.codegen.plan.buffers.MemoryPlan` (buffer times are
            positions in ``order``).
        in_place: per op of ``graph.ops``, whether it writes over an input's bytes.
        tensor_buffers: tensor name -> name of the buffer holding it (tensors that share bytes
            map to the same buffer, named after the group's first tensor).
        tensor_offsets: tensor name -> arena offset in bytes.
        scratch_offsets: op name -> arena offset of its scratch (ops with scratch only).
        kernel_set: ``"tinyjax"`` or ``"cmsis-nn"`` (``targets.KERNEL_SETS``): the kernels the
            plan was made for.
        input_mode: ``"arena"`` or ``"caller"`` (:data:`INPUT_MODES`): whether the input image is
            in the arena (then in ``tensor_offsets``) or read from the caller's buffer.
    """

    graph: Graph
    target: str
    order: tuple[str, ...]
    memory_plan: MemoryPlan
    in_place: tuple[bool, ...]
    tensor_buffers: Mapping[str, str]
    tensor_offsets: Mapping[str, int]
    scratch_offsets: Mapping[str, int]
    kernel_set: str = "tinyjax"
    input_mode: str = "arena"

    @property
    def schedule(self) -> None:
        """No patch schedule: every op runs once, layer by layer (the :class:`Plan` protocol)."""
        return None

    @property
    def layer_peak_bytes(self) -> int:
        """This plan's own peak (:class:`~tinyjax.codegen.plan.protocol.Plan`)."""
        return self.peak_bytes

    @property
    def in_place_ops(self) -> tuple[str, ...]:
        """Names of the ops that write over an input, in execution order."""
        ops = {op.name: i for i, op in enumerate(self.graph.ops)}
        return tuple(n for n in self.order if self.in_place[ops[n]])

    @property
    def kernels(self) -> Mapping[str, KernelChoice]:
        """op name -> :class:`KernelChoice`, derived from the plan on each access (the search
        never needs it; bind it once when reading many ops)."""
        graph, t = self.graph, get_target(self.target)
        shape = {x.name: x.shape for x in graph.tensors}
        return MappingProxyType({
            op.name: KernelChoice(op.name, *OPS[op.kind].kernel(
                op, shape[op.inputs[0]], shape[op.outputs[0]], t.path, ip), ip, t.name)
            for op, ip in zip(graph.ops, self.in_place)})

    def live_bytes(self) -> tuple[int, ...]:
        """Aligned bytes of the buffers live at each position of ``order``."""
        a = self.memory_plan.alignment
        live = [0] * len(self.order)
        for b in self.memory_plan.buffers:
            s = align_up(b.size, a)
            for p in range(b.first_use, b.last_use + 1):
                live[p] += s
        return tuple(live)


# --------------------------------------------------------------------------
# Buffers of one execution order
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _scratch_bytes(path: str, kind: str, attrs: tuple, in_shape: tuple, out_shape: tuple,
                   can_run_in_place: bool) -> tuple[int, int]:
    """Scratch bytes of an op run out of place, and run in place (-1: it cannot). A pure
    function of what the kernel rules read, memoised: a search meets the same layers again
    and again."""
    op = _op("", kind, (), attrs)      # the kernel rules read the kind and attributes only
    rec = OPS[kind]
    out_of_place = rec.kernel(op, in_shape, out_shape, path, False)[2]
    if not can_run_in_place:
        return out_of_place, -1
    return out_of_place, rec.kernel(op, in_shape, out_shape, path, True)[2]


class _Static:
    """Order-independent facts of a graph, computed once per plan_graph call."""

    __slots__ = ("graph", "target", "kernel_set", "ops", "recs", "nbytes", "scratch",
                 "in_place_scratch", "graph_inputs", "graph_outputs", "input_mode")

    def __init__(self, graph: Graph, target: Target, kernel_set: str = "tinyjax",
                 input_mode: str = "arena") -> None:
        self.graph = graph
        self.input_mode = check_input_mode(input_mode)
        self.target = target
        self.kernel_set = kernel_set
        self.ops = ops = graph.ops
        self.recs = recs = [OPS[op.kind] for op in ops]
        self.nbytes = {t.name: t.nbytes for t in graph.tensors}
        shape = {t.name: t.shape for t in graph.tensors}
        path = target.path
        # Scratch bytes of each op run out of place, and run in place (-1: it cannot).
        both = [_scratch_bytes(path, op.kind, op.attrs, shape[op.inputs[0]], shape[op.outputs[0]],
                               bool(rec.in_place_inputs(op))) if rec.needs_scratch
                else (0, 0 if rec.in_place_inputs(op) else -1)
                for op, rec in zip(ops, recs)]
        self.scratch = [b[0] for b in both]
        self.in_place_scratch = [b[1] for b in both]
        self.graph_inputs = graph.inputs
        self.graph_outputs = frozenset(graph.outputs)
        if kernel_set == "cmsis-nn":
            self._cmsis_nn_only(shape, path)

    def _cmsis_nn_only(self, shape, path: str) -> None:
        """The ``cmsis-nn`` kernel set: an op whose kernel is tinyjax's is refused, and an op runs
        in place only where its in-place kernel is CMSIS-NN's own."""
        missing: dict[str, list] = {}
        for i, (op, rec) in enumerate(zip(self.ops, self.recs)):
            x, y = shape[op.inputs[0]], shape[op.outputs[0]]
            fn = rec.kernel(op, x, y, path, False)[0]
            if not is_cmsis_nn_function(fn):
                missing.setdefault(op.kind, []).append((op.name, fn))
            elif (self.in_place_scratch[i] >= 0 and not rec.view
                  and not is_cmsis_nn_function(rec.kernel(op, x, y, path, True)[0])):
                self.in_place_scratch[i] = -1
        if missing:
            what = " and ".join(f"{kind} ops ({len(ops)}, e.g. {ops[0][0]}: {ops[0][1]})"
                                for kind, ops in missing.items())
            raise PlanError(f"the cmsis-nn kernel set cannot run this network: CMSIS-NN has no "
                            f"kernel for its {what}; use the tinyjax kernel set (--kernels tinyjax), "
                            "which runs them with tinyjax's own kernels")


def check_input_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`INPUT_MODES`, else a :class:`PlanError` saying which are."""
    if mode not in INPUT_MODES:
        raise PlanError(f"unknown input mode {mode!r}: use 'arena' (the image in the arena, "
                        "counted) or 'caller' (the image in the caller's buffer, not counted)")
    return mode


def _buffer(name: str, size: int, first: int, last: int) -> Buffer:
    # Buffer.__post_init__ validates user input; these fields are ints computed here, and
    # skipping the check saves ~40% of plan_graph's own time on the search's hot path.
    b = object.__new__(Buffer)
    b.__dict__.update(name=name, size=size, first_use=first, last_use=last)
    return b


class _Layout:
    """Buffers of one execution order (before placement)."""

    __slots__ = ("order", "buffers", "tensor_group", "inplace", "scratch")

    def __init__(self, order, buffers, tensor_group, inplace, scratch):
        self.order = order
        self.buffers = buffers
        self.tensor_group = tensor_group
        self.inplace = inplace
        self.scratch = scratch


def _layout(st: _Static, order: Sequence[int], in_place: bool, prefer_shortcut: bool) -> _Layout:
    ops, nbytes = st.ops, st.nbytes
    n = len(order)
    end = n - 1
    # last[t]: position of t's last reader (graph outputs live to the end).
    last: dict[str, int] = {}
    for p, i in enumerate(order):
        for t in ops[i].inputs:
            last[t] = p  # positions increase, so the final write is the last reader
    for t in st.graph_outputs:
        last[t] = end
    group: dict[str, str] = {}
    g_first: dict[str, int] = {}
    g_last: dict[str, int] = {}
    g_size: dict[str, int] = {}
    pinned = set()  # groups holding a graph output (or the caller's image): never overwritten
    caller = st.input_mode == "caller"
    for t in st.graph_inputs:
        group[t] = t
        g_first[t] = 0
        g_last[t] = last.get(t, 0)
        g_size[t] = nbytes[t]
        if caller or t in st.graph_outputs:
            pinned.add(t)
    inplace = [False] * len(ops)
    scratch: list[tuple[int, int, int]] = []  # (op index, position, bytes)
    op_scratch, in_place_scratch, recs = st.scratch, st.in_place_scratch, st.recs
    for p, i in enumerate(order):
        op = ops[i]
        out = op.outputs[0]
        rec = recs[i]
        root = None
        s = op_scratch[i]
        if rec.view:
            root = group[op.inputs[0]]
        elif in_place and in_place_scratch[i] >= 0:
            ins = op.inputs
            for x in rec.in_place_inputs(op, prefer_shortcut):
                g = group[x]
                if g in pinned or g_last[g] != p:
                    continue
                if len(ins) > 1 and (ins.count(x) > 1 or
                                     any(group[y] == g for y in ins if y != x)):
                    continue
                root = g
                break
            if root is not None:
                inplace[i] = True
                s = in_place_scratch[i]
        if s:
            scratch.append((i, p, s))
        t_last = last.get(out, p)
        if root is None:
            group[out] = out
            g_first[out] = p
            g_last[out] = t_last
            g_size[out] = nbytes[out]
            if out in st.graph_outputs:
                pinned.add(out)
        else:
            group[out] = root
            if t_last > g_last[root]:
                g_last[root] = t_last
            if nbytes[out] > g_size[root]:
                g_size[root] = nbytes[out]
            if out in st.graph_outputs:
                pinned.add(root)
    outside = frozenset(st.graph_inputs) if caller else ()   # the caller's: not in the arena
    buffers = [_buffer(g, g_size[g], g_first[g], g_last[g]) for g in g_first if g not in outside]
    buffers.extend(_buffer(scratch_name(ops[i].name), s, p, p) for i, p, s in scratch)
    return _Layout(tuple(order), buffers, group, inplace, scratch)


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def _finish(st: _Static, lay: _Layout, mp: MemoryPlan) -> GraphPlan:
    offset = dict(zip((b.name for b in mp.buffers), mp.offsets))
    ops = st.ops
    return GraphPlan(
        graph=st.graph,
        target=st.target.name,
        order=tuple(ops[i].name for i in lay.order),
        memory_plan=mp,
        in_place=tuple(lay.inplace),
        tensor_buffers=MappingProxyType(dict(lay.tensor_group)),
        tensor_offsets=MappingProxyType({t: offset[g] for t, g in lay.tensor_group.items()
                                         if g in offset}),
        scratch_offsets=MappingProxyType({ops[i].name: offset[scratch_name(ops[i].name)]
                                          for i, _, _ in lay.scratch}),
        kernel_set=st.kernel_set,
        input_mode=st.input_mode,
    )


def _plan(buffers: list[Buffer], algorithm: str, alignment: int, check: bool = True) -> MemoryPlan:
    """``planner.plan``, with a fast path for the portfolio: its cheapest member, greedy by size,
    is tried alone first and kept when it meets the lower bound (then it is optimal and the
    portfolio could not do better; ``MemoryPlan.algorithm`` then says ``greedy_by_size``)."""
    if algorithm == "portfolio":
        mp = plan(buffers, "greedy_by_size", alignment, check)
        if mp.peak_bytes <= mp.lower_bound_bytes:
            return mp
    return plan(buffers, algorithm, alignment, check)


def plan_graph(graph: Graph, target: str = DEFAULT_TARGET, algorithm: str = "portfolio",
               order: str | Sequence[str] = "auto", *,
               alignment: int = DEFAULT_ALIGNMENT, in_place: bool = True,
               verify: bool = True, kernels: str = "tinyjax", input_mode: str = "arena") -> GraphPlan:
    """Plan ``graph``'s arena for ``target``.

    Args:
        graph: a valid :class:`Graph` (not re-validated here: this is on the search's hot path).
        target: a name of ``kernels.TARGETS``; selects kernels and their scratch.
        algorithm: a planner of ``planner.PLANNERS``.
        order: ``"auto"`` (search the topological orders when the graph has branches),
            ``"given"`` (``graph.ops`` as listed) or a sequence of every op name.
        alignment: buffer offset alignment in bytes.
        in_place: allow byte sharing (in-place depthwise/add/lut/channel_mul; views always share).
        verify: check the plan with ``planner.verify`` (default). The search's fit check
            (:func:`fits`, :func:`peak_sram_bytes` on a spec) skips it: same plan, same peak,
            ~10% faster; a plan that is exported is always verified.
        kernels: the kernel set, ``"tinyjax"`` or ``"cmsis-nn"`` (module docstring).
        input_mode: ``"arena"`` (the image counted in the arena) or ``"caller"`` (module docstring).

    Raises:
        UnknownTargetError: unknown target. GraphError: a bad explicit order.
        PlanError: an unknown kernel set or input mode, or an op the ``cmsis-nn`` set has no
            kernel for.
        ValueError: unknown algorithm.
    """
    st = _Static(graph, get_target(target), check_kernel_set(kernels), input_mode)
    n = len(graph.ops)
    if isinstance(order, str) and order not in ("auto", "given"):
        raise ValueError(f"order must be 'auto', 'given' or a sequence of op names, got {order!r}")
    if not isinstance(order, str):
        orders = [explicit_order(graph, order)]
    elif order == "given" or is_chain(graph):
        orders = [tuple(range(n))]
    else:
        deps = dependencies(graph)
        orders = [tuple(range(n)), greedy_order(graph, deps, st.nbytes)]
        for o in enumerate_orders(deps, MAX_ORDERS):
            if o not in orders:
                orders.append(o)
    if len(orders) == 1:
        layouts = [_layout(st, orders[0], in_place, True)]
    else:
        scored = []
        for k, o in enumerate(orders):
            lay = _layout(st, o, in_place, True)
            scored.append((lower_bound(lay.buffers, alignment), k, lay))
        scored.sort(key=lambda x: (x[0], x[1]))
        layouts = [lay for _, _, lay in scored[:PLANNED_ORDERS]]
        if all(k for _, k, _ in scored[:PLANNED_ORDERS]):  # always plan the given order too:
            layouts.append(next(lay for _, k, lay in scored if k == 0))  # never worse than it
    return _finish(st, *_best(st, layouts, algorithm, alignment, in_place, verify))


def _best(st: _Static, layouts: Sequence[_Layout], algorithm: str, alignment: int, in_place: bool,
          verify: bool) -> tuple[_Layout, MemoryPlan]:
    """The layout and plan with the smallest peak (the first on ties)."""
    best: tuple[_Layout, MemoryPlan] | None = None
    for lay in layouts:
        mp = _plan(lay.buffers, algorithm, alignment, verify)
        if mp.peak_bytes > mp.lower_bound_bytes and in_place and any(
                len(rec.in_place_inputs(op)) > 1 for op, rec in zip(st.ops, st.recs)):
            # Overwriting the branch instead of the shortcut gives the same live totals but
            # other rectangles; try it when the first packing is not provably optimal.
            alt = _layout(st, lay.order, in_place, False)
            mp2 = _plan(alt.buffers, algorithm, alignment, verify)
            if mp2.peak_bytes < mp.peak_bytes:
                lay, mp = alt, mp2
        if best is None or mp.peak_bytes < best[1].peak_bytes:
            best = (lay, mp)
    return best


@functools.lru_cache(maxsize=4096)
def _spec_memory(spec, target: str) -> tuple[int, int]:
    graph = graph_from_spec(spec)
    return plan_graph(graph, target, verify=False).peak_bytes, _kernels.flash_bytes(graph)


def peak_sram_bytes(spec_or_graph, target: str = DEFAULT_TARGET) -> int:
    """Planned arena bytes (input image, activations, scratch, alignment) of a ModelSpec or Graph
    with the default planner. Specs are cached (they are frozen and hashable)."""
    get_target(target)
    if isinstance(spec_or_graph, Graph):
        return plan_graph(spec_or_graph, target).peak_bytes
    return _spec_memory(spec_or_graph, target)[0]


def fits(spec, sram_bytes: int, flash_bytes: int | None = None,
         target: str = DEFAULT_TARGET) -> bool:
    """Whether ``spec`` runs in ``sram_bytes`` of arena (and ``flash_bytes`` of constant data,
    when given) on ``target``: the search's feasibility test, with the plan the C arena uses."""
    get_target(target)
    if isinstance(spec, Graph):
        peak = plan_graph(spec, target).peak_bytes
        flash = None if flash_bytes is None else _kernels.flash_bytes(spec)
    else:
        peak, flash = _spec_memory(spec, target)
    if peak > sram_bytes:
        return False
    return flash_bytes is None or flash <= flash_bytes


def chain_buffers(graph: Graph, target: str = DEFAULT_TARGET) -> list[Buffer]:
    """The buffers :func:`plan_graph` places first for a chain graph (one execution order,
    in-place updates on, an add overwriting its shortcut first), in its order: groups of tensors
    that share bytes, then scratch. Raises GraphError when ``graph`` branches."""
    if not is_chain(graph):
        raise GraphError("chain_buffers needs a chain graph (each op reads its predecessor's output)")
    st = _Static(graph, get_target(target))
    return _layout(st, tuple(range(len(graph.ops))), True, True).buffers


def peak_within(graph: Graph, limit: int, target: str = DEFAULT_TARGET) -> tuple[int, int | None]:
    """``(lower, peak)``: a lower bound of the arena and, when that bound is at most ``limit``
    bytes, the planned peak ``plan_graph(graph, target, verify=False).peak_bytes`` (else ``None``:
    the peak is above ``limit`` too, and its placement is skipped).

    The search's fast fit check: most candidates of a large space are rejected by the bound
    alone. For a chain (one execution order) ``lower`` is ``buffers.lower_bound`` of the order's
    buffers, which no placement beats; a graph with branches is planned in full
    (``lower == peak``).
    """
    t = get_target(target)
    if not is_chain(graph):
        peak = plan_graph(graph, t.name, verify=False).peak_bytes
        return peak, peak
    st = _Static(graph, t)
    lay = _layout(st, tuple(range(len(graph.ops))), True, True)
    lower = lower_bound(lay.buffers, DEFAULT_ALIGNMENT)
    if lower > limit:
        return lower, None
    return lower, _best(st, [lay], "portfolio", DEFAULT_ALIGNMENT, True, False)[1].peak_bytes
