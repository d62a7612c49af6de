"""Float reference kernels (numpy): what each int8 op computes, in real arithmetic.

The op table (:mod:`tinyjax.codegen.ops`) runs them for the float forward pass of a graph
(``quantize.run_float``, which calibration reads) and, on dequantised values in float64, for the
fake-quantised simulation (``interpreter.run_fake_quant``). Layouts are the graph's: NHWC
activations, OHWI conv weights, ``(1, kh, kw, C·ch_mult)`` depthwise weights. Windows take
``(kh, kw)``, ``(sh, sw)`` strides and symmetric ``(ph, pw)`` padding, as the ops' attributes hold
them. Every function works in its input's float dtype.
"""

from __future__ import annotations

import numpy as np

from tinyjax.errors import QuantizationError
from tinyjax.shapes import conv_out_size

__all__ = ["LUT_FUNCTIONS", "avg_pool", "clamp_act", "conv", "depthwise", "window_out"]


def window_out(h: int, w: int, kernel, stride, padding) -> tuple[int, int]:
    """Output ``(out_h, out_w)`` of a window op on an ``h × w`` map."""
    return (conv_out_size(h, kernel[0], stride[0], padding[0]),
            conv_out_size(w, kernel[1], stride[1], padding[1]))


def _padded(x: np.ndarray, padding, out_hw, kernel, stride, value: float = 0.0) -> np.ndarray:
    """``x`` with ``padding`` cells of ``value`` above/left and as many below/right as the
    windows of an ``out_hw`` output reach."""
    n, h, w, c = x.shape
    (ph, pw), (oh, ow), (kh, kw), (sh, sw) = padding, out_hw, kernel, stride
    xp = np.full((n, max((oh - 1) * sh + kh, ph + h), max((ow - 1) * sw + kw, pw + w), c), value,
                 dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w] = x
    return xp


def _taps(xp: np.ndarray, out_hw, kernel, stride):
    """``(i, j, view)``: for each kernel tap, the input cells it meets at every output pixel."""
    (oh, ow), (kh, kw), (sh, sw) = out_hw, kernel, stride
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """Convolution with OHWI weights ``w`` and bias ``b``, zero padding."""
    n, h, wd, cin = x.shape
    out_hw = window_out(h, wd, kernel, stride, padding)
    (oh, ow), (sh, sw) = out_hw, stride
    cout = w.shape[0]
    w = w.astype(x.dtype)
    if tuple(kernel) == (1, 1) and tuple(padding) == (0, 0):
        y = x[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw, :] @ w[:, 0, 0, :].T
    else:
        xp = _padded(x, padding, out_hw, kernel, stride)
        patches = np.stack([t for _, _, t in _taps(xp, out_hw, kernel, stride)], axis=3)
        y = (patches.reshape(n * oh * ow, -1) @ w.reshape(cout, -1).T).reshape(n, oh, ow, cout)
    return y + b.astype(x.dtype)


def depthwise(x: np.ndarray, w: np.ndarray, b: np.ndarray, kernel, stride, padding,
              ch_mult: int = 1) -> np.ndarray:
    """Depthwise convolution with ``(1, kh, kw, C·ch_mult)`` weights, zero padding."""
    if ch_mult > 1:
        x = np.repeat(x, ch_mult, axis=3)
    n, h, wd, c = x.shape
    out_hw = window_out(h, wd, kernel, stride, padding)
    xp = _padded(x, padding, out_hw, kernel, stride)
    w = w.astype(x.dtype)
    y = np.zeros((n,) + out_hw + (c,), x.dtype)
    for i, j, t in _taps(xp, out_hw, kernel, stride):
        y += t * w[0, i, j]
    return y + b.astype(x.dtype)


def avg_pool(x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """Average over the window cells inside the input (padding is not counted, as in
    ``arm_avgpool_s8``)."""
    n, h, wd, c = x.shape
    out_hw = window_out(h, wd, kernel, stride, padding)
    if tuple(kernel) == (h, wd) and tuple(padding) == (0, 0) and out_hw == (1, 1):
        return x.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(x.dtype)
    xp = _padded(x, padding, out_hw, kernel, stride)
    ones = _padded(np.ones((1, h, wd, 1), x.dtype), padding, out_hw, kernel, stride)
    total = np.zeros((n,) + out_hw + (c,), x.dtype)
    count = np.zeros((1,) + out_hw + (1,), x.dtype)
    for (_, _, t), (_, _, o) in zip(_taps(xp, out_hw, kernel, stride),
                                    _taps(ones, out_hw, kernel, stride)):
        total += t
        count += o
    return total / count


def clamp_act(y: np.ndarray, act: str) -> np.ndarray:
    """A fused activation: ``none``, ``relu`` or ``relu6`` (the graph's clamp forms)."""
    if act == "none":
        return y
    if act == "relu":
        return np.maximum(y, 0)
    if act == "relu6":
        return np.clip(y, 0, 6)
    raise QuantizationError(f"unknown fused activation {act!r}; expected none, relu or relu6")


def _sigmoid(x):
    x = np.asarray(x)
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype if x.dtype.kind == "f"
                                                                 else np.float64)


def _silu(x):
    x = np.asarray(x)
    return x * _sigmoid(x)


def _hard_swish(x):
    x = np.asarray(x)
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


#: the float functions of the lookup-table ops (numpy, elementwise)
LUT_FUNCTIONS = {"silu": _silu, "sigmoid": _sigmoid, "hard_swish": _hard_swish}
