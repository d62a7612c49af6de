"""The weighted op kinds: ``conv``, ``depthwise_conv`` and ``dense``.

They share one shape of behaviour: int8 weights in CMSIS-NN layout (conv OHWI ``(out, kh, kw,
in)``, depthwise ``(1, kh, kw, C·ch_mult)``, dense ``(out, in)``), an int32 bias of one entry per
output channel, a Q31 requantisation of ``s_in · s_w / s_out``, and a fused ``none`` / ``relu`` /
``relu6`` clamp. Conv and depthwise quantise their weights per output channel; ``dense`` per
tensor, because ``arm_fully_connected_s8`` takes per-tensor parameters (``filter_offset`` 0).

Kernels mirror the dispatch of CMSIS-NN v7.0.0's wrappers (``arm_convolve_wrapper_s8``,
``arm_depthwise_conv_wrapper_s8``) and its ``*_get_buffer_size`` functions per code path (DSP:
Cortex-M4/M7; MVE: Cortex-M55; plain C: host), as GCC builds them. A depthwise conv with
``ch_mult == 1`` may run in place (TinyEngine's idea): ``tjx_depthwise_conv_inplace_s8`` computes
output channel c into an ``out_h·out_w`` temporary from input channel c, then scatters it over
channel c's slots.

Flash: ``weights + out · (4 bias + 4 multiplier + 4 shift)``; dense ``weights + 4 · out + 8``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinyjax.codegen.numerics import fixedpoint, floatref, intops
from tinyjax.codegen.numerics.fakequant import fake_requantize, requant_right_shift
from tinyjax.codegen.numerics.quantmath import (
    activation_range,
    i32,
    quant_bias,
    rescale_multipliers,
    symmetric_scale,
)
from tinyjax.codegen.ops.base import KernelRow, OpKind, scalar, window_hw
from tinyjax.errors import GraphError, QuantizationError
from tinyjax.shapes import align_up, conv_macs

#: CMSIS-NN v7 ``CH_IN_BLOCK_MVE`` (Include/arm_nnsupportfunctions.h): channels per block of the
#: MVE depthwise kernel, which sizes its scratch.
CH_IN_BLOCK_MVE = 124
#: ``CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD`` with GCC (8 with armclang).
DW_TO_CONV_THRESHOLD_MVE = 1
#: tinyjax's in-place depthwise kernel (no CMSIS-NN counterpart).
INPLACE_DEPTHWISE = "tjx_depthwise_conv_inplace_s8"


class _Weighted(OpKind):
    """What conv, depthwise and dense share. ``out_axis``: the weight axis of output channels."""

    weighted = True
    needs_scratch = True
    out_axis = 0

    def out_channels(self, op) -> int:
        return self.weight_shape(op)[self.out_axis]

    def from_flax(self, kernel: np.ndarray) -> np.ndarray:
        """A Flax kernel (HWIO, ``[k, k, 1, C]`` depthwise, ``[in, out]`` dense) in this kind's
        CMSIS-NN layout."""
        raise NotImplementedError

    def per_channel(self, a, ndim: int) -> np.ndarray:
        """``a`` (one value per output channel, or a scalar) shaped to broadcast over a weight
        tensor of ``ndim`` axes: ``w * per_channel(a)`` scales output channel i by ``a[i]``."""
        a = np.asarray(a)
        if a.ndim == 0:
            return a
        shape = [1] * ndim
        shape[self.out_axis] = -1
        return a.reshape(shape)

    def float_weights(self, op, p: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """``(weight, bias)`` of an op's float parameters, checked against the graph (a missing
        bias is zero)."""
        if not p or "weight" not in p:
            raise QuantizationError(f"no parameters for op {op.name}")
        w = np.asarray(p["weight"])
        if tuple(w.shape) != self.weight_shape(op):
            raise QuantizationError(f"{op.name}: weight of shape {w.shape}, the graph expects "
                                    f"{self.weight_shape(op)}")
        b = p.get("bias")
        return w, np.zeros(self.out_channels(op)) if b is None else np.asarray(b)

    def apply(self, op, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The float layer before its activation, in ``x``'s float dtype."""
        raise NotImplementedError

    def run_float(self, op, ins, params, out_shape):
        w, b = self.float_weights(op, params)
        return floatref.clamp_act(self.apply(op, ins[0], w, b), op.attr("act"))

    def quantize(self, op, q_ins, q_out, params):
        q_in = q_ins[0]
        w, b = self.float_weights(op, params)
        w = np.asarray(w, np.float64)
        n = self.out_channels(op)
        s_w = symmetric_scale(np.moveaxis(np.abs(w), self.out_axis, 0).reshape(n, -1).max(axis=1))
        real = np.float64(q_in.scale) * s_w.astype(np.float64) / np.float64(q_out.scale)
        mult, shift = rescale_multipliers(real, op.name)
        qw = w / self.per_channel(s_w.astype(np.float64), w.ndim)
        act_min, act_max = activation_range(op.attr("act", "none"), q_out)
        return {"weight": np.clip(fixedpoint.round_half_away(qw), -127, 127).astype(np.int8),
                "bias": quant_bias(b, q_in.scale, s_w), "multiplier": mult, "shift": shift,
                "weight_scale": s_w, "input_offset": i32(-q_in.zero_point),
                "output_offset": i32(q_out.zero_point),
                "act_min": i32(act_min), "act_max": i32(act_max)}

    def fake_quant(self, sim, op, p, ins, out_shape):
        s_in = sim.scale(op.inputs[0])
        s_w = np.asarray(p["weight_scale"], np.float64)
        w = np.asarray(p["weight"], np.float64)
        w = w * self.per_channel(s_w, w.ndim)
        b = np.asarray(p["bias"], np.float64) * s_in * s_w
        s_out = sim.scale(op.output)
        n = fake_requantize(self.apply(op, ins[0], w, b) / s_out,
                            requant_right_shift(s_in * s_w / s_out))
        return sim.out(op.output, n, scalar(p["act_min"]), scalar(p["act_max"]))

    def flash_bytes(self, op) -> int:
        # math.prod on the small shape tuple: exact Python ints, ~10x cheaper than np.prod (the
        # search sums this over every op of every candidate)
        shape = self.weight_shape(op)
        return math.prod(shape) + 12 * shape[self.out_axis]

    def c_arrays(self, op, p, c) -> tuple[str, str, str]:
        """``(filter, bias, quant)``: the flash arrays of the weights and bias and the address of
        the op's ``cmsis_nn_per_channel_quant_params`` (its multiplier and shift arrays)."""
        w, b = c.array("weight", p["weight"], "int8_t"), c.array("bias", p["bias"], "int32_t")
        m, s = c.array("multiplier", p["multiplier"], "int32_t"), c.array("shift", p["shift"], "int32_t")
        # CMSIS-NN's struct holds non-const pointers; the kernels only read them
        quant = c.static("cmsis_nn_per_channel_quant_params",
                         {"multiplier": f"(int32_t *){m}", "shift": f"(int32_t *){s}"})
        return w, b, quant

    @staticmethod
    def c_activation(p) -> str:
        return f"{{.min = {scalar(p['act_min'])}, .max = {scalar(p['act_max'])}}}"


class Conv(_Weighted):
    """``conv``: ``kernel (kh, kw)``, ``stride (sh, sw)``, ``padding (ph, pw)``, ``in_chs``,
    ``out_chs``, ``act``."""

    name = "conv"
    patch = "window"

    def infer_shape(self, op, in_shapes, declared=None):
        n, h, w, c = in_shapes[0]
        if c != op.attr("in_chs"):
            raise GraphError(f"op {op.name}: input has {c} channels, in_chs={op.attr('in_chs')}")
        return (n,) + window_hw(op, h, w) + (op.attr("out_chs"),)

    def weight_shape(self, op):
        kh, kw = op.attr("kernel")
        return (op.attr("out_chs"), kh, kw, op.attr("in_chs"))

    def macs(self, op, out_shape):
        kh, kw = op.attr("kernel")
        return conv_macs(out_shape[1], out_shape[2], out_shape[3], op.attr("in_chs"), kh, kw)

    def from_flax(self, kernel):
        return kernel.transpose(3, 0, 1, 2)               # HWIO -> OHWI

    def apply(self, op, x, w, b):
        return floatref.conv(x, w, b, op.attr("kernel"), op.attr("stride"), op.attr("padding"))

    def run_int8(self, op, p, ins, out_shape):
        return intops.conv_s8(ins[0], p["weight"], p["bias"], scalar(p["input_offset"]),
                              scalar(p["output_offset"]), p["multiplier"], p["shift"],
                              stride=op.attr("stride"), padding=op.attr("padding"),
                              act_min=scalar(p["act_min"]), act_max=scalar(p["act_max"]),
                              out_hw=out_shape[1:3])

    def kernel(self, op, in_shape, out_shape, path, in_place=False) -> KernelRow:
        fn, scratch = _conv_kernel(op.attr("kernel"), op.attr("stride"), op.attr("padding"),
                                   in_shape, out_shape, path)
        return fn, "arm_convolve_wrapper_s8", scratch

    def c_call(self, op, p, c):
        w, b, quant = self.c_arrays(op, p, c)
        params = c.static("cmsis_nn_conv_params", {
            "input_offset": scalar(p["input_offset"]), "output_offset": scalar(p["output_offset"]),
            "stride": c.tile(op.attr("stride")), "padding": c.tile(op.attr("padding")),
            "dilation": c.tile((1, 1)), "activation": self.c_activation(p)})
        x, y = op.inputs[0], op.output
        return (f"arm_convolve_wrapper_s8({c.context()}, {params}, {quant}, {c.dims_of(x)}, {c.ptr(x)}, "
                f"{c.dims(self.weight_shape(op))}, {w}, {c.dims((1, 1, 1, self.out_channels(op)))}, {b}, "
                f"{c.dims_of(y)}, {c.ptr(y)})")


class DepthwiseConv(_Weighted):
    """``depthwise_conv``: ``kernel``, ``stride``, ``padding``, ``channels``, ``ch_mult``,
    ``act``."""

    name = "depthwise_conv"
    patch = "window"
    out_axis = 3

    def infer_shape(self, op, in_shapes, declared=None):
        n, h, w, c = in_shapes[0]
        if c != op.attr("channels"):
            raise GraphError(f"op {op.name}: input has {c} channels, "
                             f"channels={op.attr('channels')}")
        return (n,) + window_hw(op, h, w) + (c * op.attr("ch_mult"),)

    def weight_shape(self, op):
        kh, kw = op.attr("kernel")
        return (1, kh, kw, op.attr("channels") * op.attr("ch_mult"))

    def macs(self, op, out_shape):
        kh, kw = op.attr("kernel")
        return conv_macs(out_shape[1], out_shape[2], out_shape[3], 1, kh, kw)

    def from_flax(self, kernel):
        return kernel.transpose(2, 0, 1, 3)               # [k, k, 1, C] -> (1, k, k, C)

    def apply(self, op, x, w, b):
        return floatref.depthwise(x, w, b, op.attr("kernel"), op.attr("stride"),
                                  op.attr("padding"), op.attr("ch_mult", 1))

    def run_int8(self, op, p, ins, out_shape):
        return intops.depthwise_conv_s8(ins[0], p["weight"], p["bias"], scalar(p["input_offset"]),
                                        scalar(p["output_offset"]), p["multiplier"], p["shift"],
                                        ch_mult=op.attr("ch_mult", 1), stride=op.attr("stride"),
                                        padding=op.attr("padding"),
                                        act_min=scalar(p["act_min"]), act_max=scalar(p["act_max"]),
                                        out_hw=out_shape[1:3])

    def in_place_inputs(self, op, prefer_shortcut=True):
        # Output channel c then covers only input channel c's bytes.
        return op.inputs[:1] if op.attr("ch_mult") == 1 else ()

    def kernel(self, op, in_shape, out_shape, path, in_place=False) -> KernelRow:
        if in_place:
            # one output channel at a time in an out_h·out_w temporary (no im2col)
            return INPLACE_DEPTHWISE, INPLACE_DEPTHWISE, out_shape[1] * out_shape[2]
        fn, scratch = _depthwise_kernel(op, in_shape, out_shape, path)
        return fn, "arm_depthwise_conv_wrapper_s8", scratch

    def c_call(self, op, p, c):
        w, b, quant = self.c_arrays(op, p, c)
        params = c.static("cmsis_nn_dw_conv_params", {
            "input_offset": scalar(p["input_offset"]), "output_offset": scalar(p["output_offset"]),
            "ch_mult": op.attr("ch_mult", 1), "stride": c.tile(op.attr("stride")),
            "padding": c.tile(op.attr("padding")), "dilation": c.tile((1, 1)),
            "activation": self.c_activation(p)})
        x, y = op.inputs[0], op.output
        f_dims, b_dims = c.dims(self.weight_shape(op)), c.dims((1, 1, 1, self.out_channels(op)))
        if c.in_place:       # output channel c over input channel c's bytes, one at a time
            return (f"{INPLACE_DEPTHWISE}({c.context()}, {params}, {quant}, {c.dims_of(x)}, {f_dims}, {w}, "
                    f"{b_dims}, {b}, {c.dims_of(y)}, {c.ptr(x)})")
        return (f"arm_depthwise_conv_wrapper_s8({c.context()}, {params}, {quant}, {c.dims_of(x)}, "
                f"{c.ptr(x)}, {f_dims}, {w}, {b_dims}, {b}, {c.dims_of(y)}, {c.ptr(y)})")


class Dense(_Weighted):
    """``dense``: ``in_features``, ``out_features``, ``act``; reads its input flattened."""

    name = "dense"

    def infer_shape(self, op, in_shapes, declared=None):
        flat = int(np.prod(in_shapes[0][1:]))
        if flat != op.attr("in_features"):
            raise GraphError(f"op {op.name}: input has {flat} features, "
                             f"in_features={op.attr('in_features')}")
        return (in_shapes[0][0], op.attr("out_features"))

    def weight_shape(self, op):
        return (op.attr("out_features"), op.attr("in_features"))

    def macs(self, op, out_shape):
        return conv_macs(1, 1, op.attr("out_features"), op.attr("in_features"), 1, 1)

    def from_flax(self, kernel):
        return kernel.T                                   # [in, out] -> (out, in)

    def apply(self, op, x, w, b):
        return x.reshape(x.shape[0], -1) @ w.astype(x.dtype).T + b.astype(x.dtype)

    def quantize(self, op, q_ins, q_out, params):
        q_in = q_ins[0]
        w, b = self.float_weights(op, params)
        w = np.asarray(w, np.float64)
        s_w = symmetric_scale(np.abs(w).max())           # per tensor: a 0-d scale
        real = np.float64(q_in.scale) * np.float64(s_w) / np.float64(q_out.scale)
        mult, shift = rescale_multipliers(np.asarray([real]), op.name)
        act_min, act_max = activation_range(op.attr("act", "none"), q_out)
        return {"weight": np.clip(fixedpoint.round_half_away(w / np.float64(s_w)), -127,
                                  127).astype(np.int8),
                "bias": quant_bias(b, q_in.scale, np.asarray(s_w)),
                "multiplier": i32(mult[0]), "shift": i32(shift[0]),
                "weight_scale": np.asarray(s_w, np.float32),
                "input_offset": i32(-q_in.zero_point), "filter_offset": i32(0),
                "output_offset": i32(q_out.zero_point),
                "act_min": i32(act_min), "act_max": i32(act_max)}

    def run_int8(self, op, p, ins, out_shape):
        x = ins[0].reshape(ins[0].shape[0], -1)
        return intops.fully_connected_s8(x, p["weight"], p["bias"], scalar(p["input_offset"]),
                                         scalar(p["filter_offset"]), scalar(p["output_offset"]),
                                         scalar(p["multiplier"]), scalar(p["shift"]),
                                         act_min=scalar(p["act_min"]), act_max=scalar(p["act_max"]))

    def kernel(self, op, in_shape, out_shape, path, in_place=False) -> KernelRow:
        # arm_fully_connected_s8_get_buffer_size: 0 on DSP and plain C; MVE keeps the int32
        # kernel sums, filter_dims.c (= out_features) · sizeof(int32_t).
        fn = "arm_fully_connected_s8"
        return fn, fn, 4 * out_shape[-1] if path == "mve" else 0

    def flash_bytes(self, op) -> int:
        shape = self.weight_shape(op)
        return math.prod(shape) + 4 * shape[self.out_axis] + 8

    def c_call(self, op, p, c):
        w, b = c.array("weight", p["weight"], "int8_t"), c.array("bias", p["bias"], "int32_t")
        quant = c.static("cmsis_nn_per_tensor_quant_params",
                         {"multiplier": scalar(p["multiplier"]), "shift": scalar(p["shift"])})
        params = c.static("cmsis_nn_fc_params", {
            "input_offset": scalar(p["input_offset"]), "filter_offset": scalar(p["filter_offset"]),
            "output_offset": scalar(p["output_offset"]), "activation": self.c_activation(p)})
        n_in, n_out = op.attr("in_features"), op.attr("out_features")
        x, y = op.inputs[0], op.output
        # CMSIS-NN: filter_dims.n = input features, .c = outputs; input_dims.n = batches
        return (f"arm_fully_connected_s8({c.context()}, {params}, {quant}, {c.dims((1, 1, 1, n_in))}, "
                f"{c.ptr(x)}, {c.dims((n_in, 1, 1, n_out))}, {w}, {c.dims((1, 1, 1, n_out))}, {b}, "
                f"{c.dims((1, 1, 1, n_out))}, {c.ptr(y)})")


# --------------------------------------------------------------------------
# CMSIS-NN v7.0.0 dispatch and scratch rules (Source/*/arm_*_get_buffer_sizes_s8.c)
# --------------------------------------------------------------------------


def _conv_s8_scratch(path: str, in_c: int, kh: int, kw: int) -> int:
    cols = kh * kw * in_c
    if path == "mve":
        # arm_convolve_s8_get_buffer_size_mve: 4 im2col rows of whole 16-lane vectors.
        return 4 * align_up(cols, 16)
    # arm_convolve_s8_get_buffer_size (DSP and plain C alike): two int16 im2col columns of
    # kh·kw·in_c entries rounded up to a multiple of 4: (2 · align4(cols)) · sizeof(int16_t).
    return 2 * align_up(cols, 4) * 2


def _conv_1x1_fast_scratch(path: str, in_c: int) -> int:
    # arm_convolve_1x1_s8_fast_get_buffer_size: 0 on plain C and MVE; on DSP
    # (2 · in_c) · sizeof(int16_t) only when built by Arm Compiler 6 >= 6.10.05, 0 with GCC.
    return 0


def _conv_1_x_n_scratch(path: str, kernel, stride, padding, in_c: int, in_w: int,
                        out_w: int) -> int:
    kh, kw = kernel
    if path != "mve":
        # arm_convolve_1_x_n_s8_get_buffer_size without MVE == arm_convolve_s8_get_buffer_size.
        return _conv_s8_scratch(path, in_c, kh, kw)
    # arm_convolve_1_x_n_s8_get_buffer_size_mve: left/right padded column slices.
    pad_x, stride_x = padding[1], stride[1]
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


def _conv_kernel(kernel, stride, padding, in_shape, out_shape, path: str) -> tuple[str, int]:
    """arm_convolve_wrapper_s8's dispatch (v7.0.0) and the chosen kernel's scratch."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    _, in_h, in_w, in_c = in_shape
    if kh == 1 and kw == 1 and ph == 0 and pw == 0:
        if sh == 1 and sw == 1:
            return "arm_convolve_1x1_s8_fast", _conv_1x1_fast_scratch(path, in_c)
        return "arm_convolve_1x1_s8", 0  # no buffer
    if in_h == 1 and kh == 1 and (sw * in_c) % 4 == 0:
        return "arm_convolve_1_x_n_s8", _conv_1_x_n_scratch(path, kernel, stride, padding, in_c,
                                                            in_w, out_shape[2])
    return "arm_convolve_s8", _conv_s8_scratch(path, in_c, kh, kw)


def _depthwise_kernel(op, in_shape, out_shape, path: str) -> tuple[str, int]:
    """arm_depthwise_conv_wrapper_s8's dispatch (v7.0.0) and the chosen kernel's scratch."""
    kernel, stride, padding = op.attr("kernel"), op.attr("stride"), op.attr("padding")
    (kh, kw), (ph, pw) = kernel, padding
    in_c, out_c = in_shape[3], out_shape[3]
    if path == "mve" and in_c == 1 and out_c > DW_TO_CONV_THRESHOLD_MVE:
        # arm_depthwise_conv_to_conv_s8: the conv wrapper's MVE scratch for an (out_c, kh, kw, 1)
        # filter plus a reordered copy of the kh·kw·out_c weights.
        if kh == 1 and kw == 1 and ph == 0 and pw == 0:
            conv = 0
        elif in_shape[1] == 1 and kh == 1 and stride[1] % 4 == 0:
            conv = _conv_1_x_n_scratch(path, kernel, stride, padding, 1, in_shape[2], out_shape[2])
        else:
            conv = _conv_s8_scratch(path, 1, kh, kw)
        return "arm_depthwise_conv_to_conv_s8", conv + kh * kw * out_c
    if op.attr("ch_mult") == 1:
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


KINDS: Sequence[OpKind] = (Conv(), DepthwiseConv(), Dense())
