"""Integer reference kernels with CMSIS-NN (v7, default build, int8) semantics.

These numpy functions are the *golden model* for generated C: every kernel here is meant
to agree bit for bit with the corresponding CMSIS-NN function (``arm_convolve_wrapper_s8``,
``arm_depthwise_conv_wrapper_s8``, ``arm_fully_connected_s8``, ``arm_avgpool_s8``) built without
``CMSIS_NN_USE_SINGLE_ROUNDING``.  The fixed-point rules they share (quantise/dequantise,
Q31 multiplier + shift, ``requantize``) live in :mod:`tinyjax.codegen.numerics.fixedpoint`; the
pointwise kernels (add, mul, lookup tables) in :mod:`tinyjax.codegen.numerics.pointwise`.

Conventions
-----------
* Activations are NHWC ``int8``; conv weights OHWI ``int8``; depthwise weights
  ``[1, KH, KW, C * ch_mult]``; fully-connected weights ``[out, in]``; biases ``int32``
  (``None`` means zero).
* ``input_offset = -zero_point_in``, ``output_offset = +zero_point_out``.  Padding cells read
  the input zero point, i.e. contribute ``0`` once ``input_offset`` has been added.
* Per-channel quantisation parameters: ``multiplier[oc]`` is a Q31 ``int32``; ``shift[oc]`` is
  an ``int32`` exponent, positive meaning left shift.  Real scale = ``multiplier * 2**(shift - 31)``.
* All integer arithmetic is done in ``int64`` numpy arrays that emulate the ``int32`` C
  arithmetic exactly (no floating point in any integer path).  Accumulators are checked to
  fit ``int32`` (an ``OverflowError`` is raised otherwise, since the C code would wrap).
  ``val << shift`` inside :func:`requantize` wraps to ``int32`` like the two's-complement
  hardware does.
* Integer division in C truncates toward zero; right shifts of negative numbers are
  arithmetic (numpy's ``>>`` on signed integers is arithmetic too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the fixed-point rules every kernel ends with
from tinyjax.codegen.numerics.fixedpoint import (
    INT8_MAX,
    INT8_MIN,
    _as_int_array,
    _check_act,
    _check_fits32,
    _check_int8_values,
    _finish,
)
from tinyjax.shapes import conv_out_size

__all__ = [
    "conv_output_size",
    "conv_s8",
    "depthwise_conv_s8",
    "fully_connected_s8",
    "avgpool_s8",
    "global_avgpool_s8",
]

_I64 = np.int64


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------


def _pair(v, name: str) -> tuple[int, int]:
    if np.ndim(v) == 0:
        return int(v), int(v)
    v = tuple(int(t) for t in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v}")
    return v


# ----------------------------------------------------------------------------------------
# convolutions
# ----------------------------------------------------------------------------------------


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """``(size + 2*padding - dilation*(kernel-1) - 1) // stride + 1``
    (:func:`tinyjax.shapes.conv_out_size`)."""
    return conv_out_size(size, kernel, stride, padding, dilation)


def _pad_and_windows(xo: np.ndarray, kh: int, kw: int, stride, padding, dilation, out_hw=None):
    """Zero-pad (already offset) NHWC input top/left by ``padding`` and bottom/right as needed.

    ``out_hw``: the output grid ``(oh, ow)`` when given (CMSIS-NN's ``output_dims``: a window
    reaching past the bottom/right edge reads padding), else the size formula's.
    Returns ``(xp, oh, ow)``, ``xp`` being large enough for every window of the output grid.
    """
    n, h, w, c = xo.shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError("stride/dilation must be >= 1 and padding >= 0")
    if out_hw is None:
        oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    else:
        oh, ow = (int(v) for v in out_hw)
    if oh < 1 or ow < 1:
        raise ValueError(f"empty output ({oh}x{ow})")
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    xp = np.zeros((n, max(need_h, ph + h), max(need_w, pw + w), c), dtype=_I64)
    xp[:, ph : ph + h, pw : pw + w, :] = xo
    return xp, oh, ow


def _tap(xp: np.ndarray, i: int, j: int, oh: int, ow: int, stride, dilation) -> np.ndarray:
    """Input slice ``[N, OH, OW, C]`` read by kernel tap (i, j)."""
    sh, sw = stride
    dh, dw = dilation
    y0, x0 = i * dh, j * dw
    return xp[:, y0 : y0 + (oh - 1) * sh + 1 : sh, x0 : x0 + (ow - 1) * sw + 1 : sw, :]


def _bias_vec(bias, n_out: int) -> np.ndarray:
    if bias is None:
        return np.zeros(n_out, dtype=_I64)
    b = _as_int_array(bias, "bias").reshape(-1)
    if b.shape[0] != n_out:
        raise ValueError(f"bias has {b.shape[0]} entries, expected {n_out}")
    _check_fits32(b, "bias")
    return b


def conv_s8(
    x,
    w,
    bias,
    input_offset: int,
    output_offset: int,
    multiplier,
    shift,
    stride: Sequence[int] | int = (1, 1),
    padding: Sequence[int] | int = (0, 0),
    dilation: Sequence[int] | int = (1, 1),
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    out_hw: Sequence[int] | None = None,
) -> np.ndarray:
    """``arm_convolve_wrapper_s8`` equivalent.

    x: int8 ``[N, H, W, C_in]``; w: int8 OHWI ``[C_out, KH, KW, C_in]``; bias: int32 ``[C_out]``
    or None; multiplier/shift: per-channel ``[C_out]`` (or scalars).  stride/padding/dilation are
    (y, x) pairs or ints; padding is applied top/left, the bottom/right being padded as far as
    the output size ``(H + 2*ph - dil*(KH-1) - 1)//sh + 1`` requires (or ``out_hw``, given:
    CMSIS-NN's ``output_dims``, which may pad the bottom/right more or less than the top/left).
    Returns int8 ``[N, OH, OW, C_out]``.
    """
    x = _as_int_array(x, "x")
    w = _as_int_array(w, "w")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError("conv_s8 expects NHWC input and OHWI weights")
    _check_int8_values(x, "x")
    _check_int8_values(w, "w")
    n, h, wd, cin = x.shape
    cout, kh, kw, wcin = w.shape
    if wcin != cin:
        raise ValueError(f"weight input channels {wcin} != input channels {cin}")
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    dilation = _pair(dilation, "dilation")
    xp, oh, ow = _pad_and_windows(x + int(input_offset), kh, kw, stride, padding, dilation, out_hw)
    acc = np.zeros((n, oh, ow, cout), dtype=_I64)
    acc += _bias_vec(bias, cout)
    if kh * kw == 1:
        acc += np.matmul(_tap(xp, 0, 0, oh, ow, stride, dilation), w[:, 0, 0, :].T)
    else:
        # im2col: patches [N*OH*OW, KH*KW*C_in] (tap-major, channel-minor like OHWI) @ [K, C_out]
        taps = [_tap(xp, i, j, oh, ow, stride, dilation) for i in range(kh) for j in range(kw)]
        patches = np.stack(taps, axis=3).reshape(n * oh * ow, kh * kw * cin)
        acc += np.matmul(patches, w.reshape(cout, kh * kw * cin).T).reshape(n, oh, ow, cout)
    _check_fits32(acc, "conv")
    return _finish(acc, multiplier, shift, output_offset, act_min, act_max)


def depthwise_conv_s8(
    x,
    w,
    bias,
    input_offset: int,
    output_offset: int,
    multiplier,
    shift,
    ch_mult: int = 1,
    stride: Sequence[int] | int = (1, 1),
    padding: Sequence[int] | int = (0, 0),
    dilation: Sequence[int] | int = (1, 1),
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    out_hw: Sequence[int] | None = None,
) -> np.ndarray:
    """``arm_depthwise_conv_wrapper_s8`` equivalent.

    x: int8 ``[N, H, W, C]``; w: int8 ``[1, KH, KW, C*ch_mult]``; bias int32 ``[C*ch_mult]`` or
    None; multiplier/shift per output channel.  Output channel ``c*ch_mult + m`` reads input
    channel ``c``.  Same padding/stride/dilation conventions as :func:`conv_s8`.
    Returns int8 ``[N, OH, OW, C*ch_mult]``.
    """
    x = _as_int_array(x, "x")
    w = _as_int_array(w, "w")
    if x.ndim != 4 or w.ndim != 4 or w.shape[0] != 1:
        raise ValueError("depthwise_conv_s8 expects NHWC input and [1, KH, KW, C*ch_mult] weights")
    _check_int8_values(x, "x")
    _check_int8_values(w, "w")
    ch_mult = int(ch_mult)
    n, h, wd, c = x.shape
    _, kh, kw, cout = w.shape
    if ch_mult < 1 or cout != c * ch_mult:
        raise ValueError(f"weight channels {cout} != C ({c}) * ch_mult ({ch_mult})")
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    dilation = _pair(dilation, "dilation")
    xo = x + int(input_offset)
    if ch_mult > 1:
        xo = np.repeat(xo, ch_mult, axis=3)  # channel c*ch_mult + m <- c
    xp, oh, ow = _pad_and_windows(xo, kh, kw, stride, padding, dilation, out_hw)
    acc = np.zeros((n, oh, ow, cout), dtype=_I64)
    acc += _bias_vec(bias, cout)
    for i in range(kh):
        for j in range(kw):
            acc += _tap(xp, i, j, oh, ow, stride, dilation) * w[0, i, j, :]
    _check_fits32(acc, "depthwise conv")
    return _finish(acc, multiplier, shift, output_offset, act_min, act_max)


def fully_connected_s8(
    x,
    w,
    bias,
    input_offset: int,
    filter_offset: int,
    output_offset: int,
    multiplier: int,
    shift: int,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
) -> np.ndarray:
    """``arm_fully_connected_s8`` equivalent (per-tensor ``multiplier``/``shift`` scalars).

    x: int8 ``[N, in]`` (higher-rank inputs are flattened to ``[N, -1]``); w: int8 ``[out, in]``;
    bias int32 ``[out]`` or None.  ``acc = sum((x + input_offset) * (w + filter_offset)) + bias``.
    Returns int8 ``[N, out]``.
    """
    x = _as_int_array(x, "x")
    w = _as_int_array(w, "w")
    if x.ndim == 1:
        x = x[None, :]
    x = x.reshape(x.shape[0], -1)
    if w.ndim != 2 or w.shape[1] != x.shape[1]:
        raise ValueError(f"weights {w.shape} do not match input {x.shape}")
    if np.ndim(multiplier) != 0 or np.ndim(shift) != 0:
        raise ValueError("fully_connected_s8 takes per-tensor (scalar) multiplier and shift")
    _check_int8_values(x, "x")
    _check_int8_values(w, "w")
    acc = np.matmul(x + int(input_offset), (w + int(filter_offset)).T) + _bias_vec(bias, w.shape[0])
    _check_fits32(acc, "fully connected")
    return _finish(acc, int(multiplier), int(shift), output_offset, act_min, act_max)


# ----------------------------------------------------------------------------------------
# pooling
# ----------------------------------------------------------------------------------------


def _trunc_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """C integer division (truncation toward zero) of int64 arrays, ``den > 0``."""
    q = np.abs(num) // den
    return np.where(num < 0, -q, q)


def avgpool_s8(
    x,
    kernel: Sequence[int] | int,
    stride: Sequence[int] | int = (1, 1),
    padding: Sequence[int] | int = (0, 0),
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    out_hw: Sequence[int] | None = None,
) -> np.ndarray:
    """``arm_avgpool_s8`` equivalent.

    x: int8 ``[N, H, W, C]``; kernel/stride/padding (y, x) pairs or ints.  Output size is
    ``(H + 2*ph - KH)//sh + 1``.  Only cells inside the input are summed and counted; the
    average is ``(sum + count/2)/count`` if ``sum > 0`` else ``(sum - count/2)/count`` with C
    (truncating) division, then clamped.  No rescaling.  Returns int8 ``[N, OH, OW, C]``.
    """
    x = _as_int_array(x, "x")
    if x.ndim != 4:
        raise ValueError("avgpool_s8 expects NHWC input")
    _check_int8_values(x, "x")
    act_min, act_max = _check_act(act_min, act_max)
    kh, kw = _pair(kernel, "kernel")
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    n, h, w, c = x.shape
    xp, oh, ow = _pad_and_windows(x, kh, kw, stride, padding, (1, 1), out_hw)
    ones = np.zeros(xp.shape[1:3], dtype=_I64)
    ph, pw = padding
    ones[ph : ph + h, pw : pw + w] = 1
    total = np.zeros((n, oh, ow, c), dtype=_I64)
    count = np.zeros((oh, ow), dtype=_I64)
    sh, sw = stride
    for i in range(kh):
        for j in range(kw):
            total += _tap(xp, i, j, oh, ow, stride, (1, 1))
            count += ones[i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
    if np.any(count == 0):
        raise ValueError("a pooling window lies entirely in the padding")
    count = count[None, :, :, None]
    half = count // 2
    avg = np.where(total > 0, _trunc_div(total + half, count), _trunc_div(total - half, count))
    return np.clip(avg, act_min, act_max).astype(np.int8)


def global_avgpool_s8(x, act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> np.ndarray:
    """Average pool over the whole H x W: int8 ``[N, H, W, C]`` -> int8 ``[N, 1, 1, C]``."""
    x = np.asarray(x)
    return avgpool_s8(x, (x.shape[1], x.shape[2]), (1, 1), (0, 0), act_min, act_max)
