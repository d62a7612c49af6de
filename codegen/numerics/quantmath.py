"""Quantisation arithmetic shared by the op kinds: per-tensor activation quantisation, weight
scales, bias and Q31 multipliers, fused-activation clamps (TFLite int8 / CMSIS-NN v7 rules).

``real = scale · (q − zero_point)``. Activations: asymmetric per-tensor int8 whose range contains
0. Weights: symmetric int8 (``scale = max|w| / 127``, values in [-127, 127]). Biases: int32
``round(b / (s_in · s_w))``. Rescale factors ``s_in · s_w / s_out``: Q31 multiplier + shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyjax.codegen.numerics import fixedpoint
from tinyjax.errors import QuantizationError

__all__ = ["QuantInfo", "SIGMOID_QUANT", "activation_range", "choose_quant", "i32", "quant_bias",
           "rescale_multipliers", "symmetric_scale"]


@dataclass(frozen=True)
class QuantInfo:
    """Asymmetric per-tensor int8 quantisation: ``real = scale · (q − zero_point)``."""

    scale: float
    zero_point: int


#: TFLite's fixed output quantisation of LOGISTIC (sigmoid) in int8.
SIGMOID_QUANT = QuantInfo(1.0 / 256.0, -128)


def i32(v) -> np.ndarray:
    """An int32 numpy array (0-d for a scalar): how quantised parameters are stored."""
    return np.asarray(v, dtype=np.int32)


def choose_quant(lo: float, hi: float) -> QuantInfo:
    """Asymmetric int8 quantisation of the float range ``[lo, hi]`` widened to contain 0:
    ``scale = (hi − lo) / 255`` (float32), ``zero_point = round(−128 − lo / scale)``."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise QuantizationError(f"range [{lo}, {hi}] is not finite")
    if hi - lo <= 1e-12:       # a constant-zero tensor: any scale represents it
        hi = lo + 1.0
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(fixedpoint.round_half_away(fixedpoint.INT8_MIN - lo / scale))
    return QuantInfo(scale, max(fixedpoint.INT8_MIN, min(fixedpoint.INT8_MAX, zp)))


def activation_range(act: str, q: QuantInfo) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` for int8: the clamp ``[act_min, act_max]``
    of a fused ReLU / ReLU6 in the output's int8 domain."""
    lo, hi = fixedpoint.INT8_MIN, fixedpoint.INT8_MAX

    def code(real: float) -> int:
        return q.zero_point + int(fixedpoint.round_half_away(real / q.scale))

    if act == "none":
        return lo, hi
    if act == "relu":
        return max(lo, code(0.0)), hi
    if act == "relu6":
        return max(lo, code(0.0)), min(hi, code(6.0))
    raise QuantizationError(f"unknown fused activation {act!r}; expected none, relu or relu6")


def symmetric_scale(axis_max: np.ndarray) -> np.ndarray:
    """Symmetric int8 weight scale(s) ``max|w| / 127`` (float32); an all-zero channel gets 1/127."""
    s = np.where(axis_max > 0, axis_max / 127.0, 1.0 / 127.0)
    return s.astype(np.float32)


def quant_bias(b: np.ndarray, s_in: float, s_w: np.ndarray) -> np.ndarray:
    """int32 bias ``round_half_away(b / (s_in · s_w))``, saturated to int32."""
    q = fixedpoint.round_half_away(np.asarray(b, np.float64) / (np.float64(s_in) * s_w.astype(np.float64)))
    return np.clip(q, fixedpoint.INT32_MIN, fixedpoint.INT32_MAX).astype(np.int32)


def rescale_multipliers(real: np.ndarray, op_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Q31 ``(multiplier, shift)`` int32 arrays of the real rescale factors ``real``."""
    mult, shift = fixedpoint.quantize_multiplier_per_channel(real)
    if shift.size and shift.max() > 31:
        raise QuantizationError(f"op {op_name}: rescale factor {float(np.max(real)):.3g} is too "
                                "large for a Q31 multiplier (is the output range degenerate?)")
    return mult.astype(np.int32), shift.astype(np.int32)
