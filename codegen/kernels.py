"""Which kernel runs each op on a target, how much scratch it needs, and how much flash a graph takes.

One table, read by the memory planner (scratch bytes are arena buffers) and by the C emitter (the
function names it calls). :func:`choose_kernel` mirrors the dispatch of CMSIS-NN v7.0.0's wrappers
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

:func:`flash_bytes` counts the constant data a graph puts in flash (bytes)::

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
from typing import Any, Dict, Mapping, Optional, Tuple

from tinyjax.errors import TinyJaxError

from .graph import Graph, Op

__all__ = [
    "DEFAULT_TARGET",
    "KernelChoice",
    "TARGETS",
    "Target",
    "UnknownTargetError",
    "choose_kernel",
    "depthwise_in_place_legal",
    "flash_bytes",
    "get_target",
    "kernel_row",
    "op_flash_bytes",
]

DEFAULT_TARGET = "cortex-m7"

#: CMSIS-NN v7 ``CH_IN_BLOCK_MVE`` (Include/arm_nnsupportfunctions.h): channels per block of the
#: MVE depthwise kernel, which sizes its scratch.
CH_IN_BLOCK_MVE = 124
#: ``CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD`` with GCC (8 with armclang).
DW_TO_CONV_THRESHOLD_MVE = 1


class UnknownTargetError(TinyJaxError, ValueError):
    """A target name that is not in :data:`TARGETS`; the message lists the valid ones."""


@dataclass(frozen=True)
class Target:
    """A code-generation target: ``path`` is CMSIS-NN's code path, ``"dsp"``, ``"mve"`` or
    ``"plain"``."""

    name: str
    path: str
    description: str


TARGETS: Dict[str, Target] = {
    "cortex-m4": Target("cortex-m4", "dsp", "Cortex-M4F, DSP extension (CMSIS-NN ARM_MATH_DSP)"),
    "cortex-m7": Target("cortex-m7", "dsp", "Cortex-M7, DSP extension (CMSIS-NN ARM_MATH_DSP)"),
    "cortex-m55": Target("cortex-m55", "mve", "Cortex-M55, Helium MVE (CMSIS-NN ARM_MATH_MVEI)"),
    "host": Target("host", "plain", "portable C on the build machine (no DSP, no MVE)"),
}


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
    function: Optional[str]
    call: Optional[str]
    scratch_bytes: int
    in_place: bool
    target: str


# --------------------------------------------------------------------------
# CMSIS-NN v7.0.0 scratch rules (Source/*/arm_*_get_buffer_sizes_s8.c), one function each.
# --------------------------------------------------------------------------


def _conv_s8_scratch(path: str, in_c: int, kh: int, kw: int) -> int:
    cols = kh * kw * in_c
    if path == "mve":
        # arm_convolve_s8_get_buffer_size_mve: 4 im2col rows of whole 16-lane vectors.
        return 4 * (-(-cols // 16)) * 16
    # arm_convolve_s8_get_buffer_size (DSP and plain C alike): two int16 im2col columns of
    # kh·kw·in_c entries rounded up to a multiple of 4: (2 · align4(cols)) · sizeof(int16_t).
    return 2 * (-(-cols // 4) * 4) * 2


def _conv_1x1_fast_scratch(path: str, in_c: int) -> int:
    # arm_convolve_1x1_s8_fast_get_buffer_size: 0 on plain C and MVE; on DSP
    # (2 · in_c) · sizeof(int16_t) only when built by Arm Compiler 6 >= 6.10.05, 0 with GCC.
    return 0


def _conv_1_x_n_scratch(path: str, a: Mapping[str, Any], in_c: int, in_w: int, out_w: int) -> int:
    kh, kw = a["kernel"]
    if path != "mve":
        # arm_convolve_1_x_n_s8_get_buffer_size without MVE == arm_convolve_s8_get_buffer_size.
        return _conv_s8_scratch(path, in_c, kh, kw)
    # arm_convolve_1_x_n_s8_get_buffer_size_mve: left/right padded column slices.
    pad_x = a["padding"][1]
    stride_x = a["stride"][1]
    total_pad = (out_w - 1) * stride_x + kw - in_w
    asym = total_pad % 2
    right = max(1, (pad_x + asym + stride_x - 1) // stride_x) if pad_x + asym else 0
    left = max(1, (pad_x + stride_x - 1) // stride_x) if pad_x else 0
    if right + max(out_w - (right + left), 0) + left != out_w:
        return _conv_s8_scratch(path, in_c, kh, kw)
    pad_left = pad_x * in_c
    pad_right = right * in_c if asym else pad_left
    n_left = kw * in_c
    return max(n_left + pad_left, n_left - in_c + pad_right)


def _conv_kernel(a: Mapping[str, Any], in_shape, out_shape, path: str) -> Tuple[str, int]:
    """arm_convolve_wrapper_s8's dispatch (v7.0.0) and the chosen kernel's scratch."""
    kh, kw = a["kernel"]
    sh, sw = a["stride"]
    ph, pw = a["padding"]
    _, in_h, in_w, in_c = in_shape
    if kh == 1 and kw == 1 and ph == 0 and pw == 0:
        if sh == 1 and sw == 1:
            return "arm_convolve_1x1_s8_fast", _conv_1x1_fast_scratch(path, in_c)
        return "arm_convolve_1x1_s8", 0  # no buffer
    if in_h == 1 and kh == 1 and (sw * in_c) % 4 == 0:
        return "arm_convolve_1_x_n_s8", _conv_1_x_n_scratch(path, a, in_c, in_w, out_shape[2])
    return "arm_convolve_s8", _conv_s8_scratch(path, in_c, kh, kw)


def _depthwise_kernel(a: Mapping[str, Any], in_shape, out_shape, path: str) -> Tuple[str, int]:
    """arm_depthwise_conv_wrapper_s8's dispatch (v7.0.0) and the chosen kernel's scratch."""
    kh, kw = a["kernel"]
    ph, pw = a["padding"]
    in_c = in_shape[3]
    out_c = out_shape[3]
    if path == "mve" and in_c == 1 and out_c > DW_TO_CONV_THRESHOLD_MVE:
        # arm_depthwise_conv_to_conv_s8: the conv wrapper's MVE scratch for an (out_c, kh, kw, 1)
        # filter plus a reordered copy of the kh·kw·out_c weights.
        if kh == 1 and kw == 1 and ph == 0 and pw == 0:
            conv = 0
        elif in_shape[1] == 1 and kh == 1 and a["stride"][1] % 4 == 0:
            conv = _conv_1_x_n_scratch(path, a, 1, in_shape[2], out_shape[2])
        else:
            conv = _conv_s8_scratch(path, 1, kh, kw)
        return "arm_depthwise_conv_to_conv_s8", conv + kh * kw * out_c
    if a["ch_mult"] == 1:
        if path != "mve" and kh == 3 and kw == 3 and ph <= 1 and pw <= 1:
            return "arm_depthwise_conv_3x3_s8", 0  # wrapper returns size 0 for this case
        # arm_depthwise_conv_s8_opt_get_buffer_size: DSP in_c·kh·kw int16 (im2col of one
        # output pixel); MVE 4·CH_IN_BLOCK_MVE·kh·kw bytes; plain C 0.
        if path == "dsp":
            return "arm_depthwise_conv_s8_opt", in_c * kh * kw * 2
        if path == "mve":
            return "arm_depthwise_conv_s8_opt", 4 * CH_IN_BLOCK_MVE * kh * kw
        return "arm_depthwise_conv_s8_opt", 0
    return "arm_depthwise_conv_s8", 0  # ch_mult > 1: the generic kernel, no buffer


def depthwise_in_place_legal(op: Op, graph: Graph) -> bool:
    """True when ``op`` (a depthwise conv) may overwrite its input whatever the execution order:
    ``ch_mult == 1`` (output channel c then covers only input channel c's bytes) and its input is
    read by no other op and is not a graph output. The memory planner applies the finer,
    order-aware rule (the input's last reader is this op)."""
    if op.kind != "depthwise_conv" or op.attr("ch_mult") != 1:
        return False
    x = op.inputs[0]
    if x in graph.outputs:
        return False
    return sum(x in o.inputs for o in graph.ops) == 1


_IN_PLACE_KINDS = ("depthwise_conv", "add", "lut", "channel_mul")
INPLACE_DEPTHWISE = "tjx_depthwise_conv_inplace_s8"


def kernel_row(op: Op, in_shape: Tuple[int, ...], out_shape: Tuple[int, ...], path: str,
               in_place: bool = False) -> Tuple[Optional[str], Optional[str], int]:
    """``(function, call, scratch_bytes)`` of ``op`` given its first input's and its output's
    shapes, on a CMSIS-NN ``path`` (``"dsp"``, ``"mve"``, ``"plain"``). The fast core of
    :func:`choose_kernel` (no validation, no objects), used by the memory planner."""
    kind = op.kind
    if kind == "conv":
        fn, scratch = _conv_kernel(dict(op.attrs), in_shape, out_shape, path)
        return fn, "arm_convolve_wrapper_s8", scratch
    if kind == "depthwise_conv":
        if in_place:
            # tinyjax's in-place kernel: one output channel at a time in an out_h·out_w temporary,
            # then scattered over input channel c's slots (no im2col).
            return INPLACE_DEPTHWISE, INPLACE_DEPTHWISE, out_shape[1] * out_shape[2]
        fn, scratch = _depthwise_kernel(dict(op.attrs), in_shape, out_shape, path)
        return fn, "arm_depthwise_conv_wrapper_s8", scratch
    if kind == "dense":
        # arm_fully_connected_s8_get_buffer_size: 0 on DSP and plain C; MVE keeps the int32
        # kernel sums, filter_dims.c (= out_features) · sizeof(int32_t).
        fn = "arm_fully_connected_s8"
        return fn, fn, 4 * out_shape[-1] if path == "mve" else 0
    if kind == "avg_pool":
        # arm_avgpool_s8_get_buffer_size(output_x, ch_src): DSP ch_src · sizeof(int32_t)
        # (a row of int32 sums), MVE and plain C 0.
        fn = "arm_avgpool_s8"
        return fn, fn, 4 * in_shape[3] if path == "dsp" else 0
    fn = _FIXED_KERNELS.get(kind, "")
    if fn == "":
        raise ValueError(f"op {op.name}: no kernel for kind {kind!r}")
    return fn, fn, 0


_FIXED_KERNELS = {"add": "arm_elementwise_add_s8", "lut": "tjx_lut_s8",
                  "channel_mul": "tjx_channel_mul_s8", "pad": "tjx_pad_s8", "reshape": None}


def choose_kernel(op: Op, graph: Graph, target=DEFAULT_TARGET,
                  in_place: Optional[bool] = None) -> KernelChoice:
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
    if in_place and (op.kind not in _IN_PLACE_KINDS or
                     (op.kind == "depthwise_conv" and op.attr("ch_mult") != 1)):
        raise ValueError(f"op {op.name}: a {op.kind} op cannot run in place"
                         + (" (ch_mult != 1)" if op.kind == "depthwise_conv" else ""))
    fn, call, scratch = kernel_row(op, graph.tensor(op.inputs[0]).shape,
                                   graph.tensor(op.outputs[0]).shape, t.path, in_place)
    return KernelChoice(op.name, fn, call, scratch, in_place, t.name)


# --------------------------------------------------------------------------
# Flash
# --------------------------------------------------------------------------

_FIXED_PARAM_BYTES = {"add": 12 * 4, "channel_mul": 7 * 4, "avg_pool": 4 * 4, "lut": 256,
                      "pad": 0, "reshape": 0}


def op_flash_bytes(op: Op) -> int:
    """Constant bytes of one op in flash (formula in the module docstring)."""
    shape = op.weight_shape
    if shape is None:
        return _FIXED_PARAM_BYTES[op.kind]
    n = 1
    for d in shape:
        n *= d
    out = op.out_channels
    if op.kind == "dense":
        return n + 4 * out + 8
    return n + 12 * out


def flash_bytes(graph: Graph) -> int:
    """Constant data of ``graph`` in flash (bytes): weights, biases, requantisation parameters,
    lookup tables. Code is not included."""
    return sum(op_flash_bytes(op) for op in graph.ops)
