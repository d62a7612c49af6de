"""Which kernel runs each op on a target, how much scratch it needs, and how much flash a graph takes.

Read by the memory planner (scratch bytes are arena buffers) and by the C emitter (the function
names it calls). Each op kind's dispatch and scratch rules are its record's ``kernel`` method in
the op table (:mod:`tinyjax.codegen.ops`); this module names the targets and asks the table.
For convolutions the records mirror the dispatch of CMSIS-NN v7.0.0's wrappers
(``arm_convolve_wrapper_s8``, ``arm_depthwise_conv_wrapper_s8``) and its ``*_get_buffer_size``
functions for the target's code path:

=============  ==========  =====================================================================
target         path        meaning
=============  ==========  =====================================================================
``cortex-m4``  DSP         ``ARM_MATH_DSP`` (SIMD MAC instructions), no MVE
``cortex-m7``  DSP         same path as M4
``cortex-m55`` MVE         ``ARM_MATH_MVEI`` (Helium)
``host``       plain C     neither macro: the portable reference code
=============  ==========  =====================================================================

Builds are assumed to use GCC (``arm-none-eabi-gcc`` / host ``gcc``), the project's toolchain:
two CMSIS-NN sizes depend on the compiler (see ``_conv_1x1_fast_scratch``) and the GCC value is
the one used here.

Ops without a CMSIS-NN counterpart run tinyjax kernels (``tjx_*``): the in-place depthwise
convolution (TinyEngine's idea), the 256-entry lookup table, the per-channel gate multiply, padding.

Kernel sets (:data:`KERNEL_SETS`, ``python -m tinyjax.export --kernels``): ``tinyjax`` (the
default) uses those where they help; ``cmsis-nn`` calls CMSIS-NN's API for every op, so that a
build with Arm's library runs Arm's code for the whole network: an op runs in place only where
the CMSIS-NN function itself does (an add reads each element before writing it), a depthwise
convolution never (it goes through ``arm_depthwise_conv_wrapper_s8``), and a network with an op
CMSIS-NN lacks is refused (:func:`check_kernel_set`).

:func:`flash_bytes` counts the constant data a graph puts in flash (bytes; each kind's
``flash_bytes``)::

    conv, depthwise:  int8 weights + out_channels · (4 bias + 4 multiplier + 4 shift)
    dense:            int8 weights + 4 · out_features bias + 8 (one multiplier + shift)
    lut:              256 (one int8 entry per int8 input)
    add:              48 = 12 int32 (in1/in2 offset, multiplier, shift; left shift;
                           output offset, multiplier, shift; activation min, max)
    channel_mul:      28 = 7 int32 (two input offsets; output offset, multiplier, shift; min, max)
    avg_pool:         16 = 4 int32 (input offset, output offset, multiplier, shift)
    pad, reshape:     0

Code size is not included (it depends on the compiler and on which kernels are linked).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyjax.codegen.graph import Graph, Op
from tinyjax.codegen.ops import OPS, KernelRow
from tinyjax.devices import DEFAULT_TARGET
from tinyjax.errors import PlanError, UnknownTargetError

__all__ = [
    "DEFAULT_TARGET",
    "KERNEL_SETS",
    "KernelChoice",
    "TARGETS",
    "Target",
    "UnknownTargetError",
    "check_kernel_set",
    "choose_kernel",
    "depthwise_in_place_legal",
    "flash_bytes",
    "get_target",
    "is_cmsis_nn_function",
    "kernel_row",
    "op_flash_bytes",
]



@dataclass(frozen=True)
class Target:
    """A code-generation target: ``path`` is CMSIS-NN's code path, ``"dsp"``, ``"mve"`` or
    ``"plain"``."""

    name: str
    path: str
    description: str


TARGETS: dict[str, Target] = {
    "cortex-m4": Target("cortex-m4", "dsp", "Cortex-M4F, DSP extension (CMSIS-NN ARM_MATH_DSP)"),
    "cortex-m7": Target("cortex-m7", "dsp", "Cortex-M7, DSP extension (CMSIS-NN ARM_MATH_DSP)"),
    "cortex-m55": Target("cortex-m55", "mve", "Cortex-M55, Helium MVE (CMSIS-NN ARM_MATH_MVEI)"),
    "host": Target("host", "plain", "portable C on the build machine (no DSP, no MVE)"),
}


#: ``tinyjax``: CMSIS-NN's API plus tinyjax's own kernels (``tjx_*``) where they help;
#: ``cmsis-nn``: CMSIS-NN's API alone (module docstring)
KERNEL_SETS = ("tinyjax", "cmsis-nn")


def is_cmsis_nn_function(function: str | None) -> bool:
    """Whether a kernel function is part of CMSIS-NN's API (``arm_*``); a view (``None``) calls
    nothing and counts as one."""
    return function is None or function.startswith("arm_")


def check_kernel_set(kernels: str) -> str:
    """``kernels`` if it names a kernel set; :class:`PlanError` listing them otherwise."""
    if kernels not in KERNEL_SETS:
        raise PlanError(f"unknown kernel set {kernels!r}; valid kernel sets: {', '.join(KERNEL_SETS)}")
    return kernels


def get_target(target) -> Target:
    """The :class:`Target` called ``target`` (a name or a Target); :class:`UnknownTargetError`
    otherwise."""
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except (KeyError, TypeError):
        raise UnknownTargetError(f"unknown target {target!r}; valid targets: "
                                 f"{', '.join(sorted(TARGETS))}") from None


@dataclass(frozen=True)
class KernelChoice:
    """The kernel one op runs as.

    Attributes:
        op: the op's name.
        function: the function that does the work (``arm_convolve_s8``, ``tjx_lut_s8``, ...);
            ``None`` for a zero-copy view (a reshape moves no byte and calls nothing).
        call: what the generated C calls: the CMSIS-NN wrapper for convolutions
            (``arm_convolve_wrapper_s8`` dispatches to ``function``), else ``function``.
        scratch_bytes: the ``cmsis_nn_context`` buffer the call needs (bytes), as CMSIS-NN v7's
            ``*_get_buffer_size`` returns it on the target's path; for the in-place depthwise
            kernel its one-channel temporary.
        in_place: the op writes its output over an input's bytes: the first input for a
            depthwise conv, lut and channel_mul; for an add whichever input the memory plan
            chose (the one at the output's offset in ``GraphPlan.tensor_offsets``).
        target: the target name.
    """

    op: str
    function: str | None
    call: str | None
    scratch_bytes: int
    in_place: bool
    target: str


def depthwise_in_place_legal(op: Op, graph: Graph) -> bool:
    """True when ``op`` (a depthwise conv) may overwrite its input whatever the execution order:
    ``ch_mult == 1`` (output channel c then covers only input channel c's bytes) and its input is
    read by no other op and is not a graph output. The memory planner applies the finer,
    order-aware rule (the input's last reader is this op)."""
    if op.kind != "depthwise_conv" or not OPS[op.kind].in_place_inputs(op):
        return False
    x = op.inputs[0]
    if x in graph.outputs:
        return False
    return sum(x in o.inputs for o in graph.ops) == 1


def kernel_row(op: Op, in_shape: tuple[int, ...], out_shape: tuple[int, ...], path: str,
               in_place: bool = False) -> KernelRow:
    """``(function, call, scratch_bytes)`` of ``op`` given its first input's and its output's
    shapes, on a CMSIS-NN ``path`` (``"dsp"``, ``"mve"``, ``"plain"``). The fast core of
    :func:`choose_kernel` (no validation, no objects), used by the memory planner."""
    rec = OPS.get(op.kind)
    if rec is None:
        raise ValueError(f"op {op.name}: no kernel for kind {op.kind!r}")
    return rec.kernel(op, in_shape, out_shape, path, in_place)


def choose_kernel(op: Op, graph: Graph, target=DEFAULT_TARGET,
                  in_place: bool | None = None) -> KernelChoice:
    """The kernel ``op`` runs as on ``target`` (a name of :data:`TARGETS`).

    ``in_place``: whether the op writes over an input. ``None`` decides it from the graph
    alone: a depthwise conv runs in place when :func:`depthwise_in_place_legal`; elementwise ops
    (add, lut, channel_mul) run out of place (the memory planner, which knows the execution order,
    passes ``True`` where an input dies at that op). A reshape is always a zero-copy view
    (``function`` None, no call). Raises :class:`UnknownTargetError` for an unknown target and
    ``ValueError`` for an op that cannot run in place.
    """
    t = get_target(target)
    if in_place is None:
        in_place = depthwise_in_place_legal(op, graph)
    in_place = bool(in_place)
    if in_place and not OPS[op.kind].in_place_inputs(op):
        raise ValueError(f"op {op.name}: a {op.kind} op cannot run in place"
                         + (" (ch_mult != 1)" if op.kind == "depthwise_conv" else ""))
    fn, call, scratch = kernel_row(op, graph.tensor(op.inputs[0]).shape,
                                   graph.tensor(op.outputs[0]).shape, t.path, in_place)
    return KernelChoice(op.name, fn, call, scratch, in_place, t.name)


def op_flash_bytes(op: Op) -> int:
    """Constant bytes of one op in flash (formula in the module docstring)."""
    return OPS[op.kind].flash_bytes(op)


def flash_bytes(graph: Graph) -> int:
    """Constant data of ``graph`` in flash (bytes): weights, biases, requantisation parameters,
    lookup tables. Code is not included."""
    return sum(op_flash_bytes(op) for op in graph.ops)
