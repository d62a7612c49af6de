"""Fixed-point arithmetic of TFLite / CMSIS-NN (v7, default build): int8 quantisation and
requantisation.

The scalar rules every int8 kernel shares: float <-> int8 quantisation (float side only), the
Q31 ``multiplier`` + ``shift`` of a real scale (TFLite ``QuantizeMultiplier``), and
``arm_nn_requantize`` with the default double rounding (``doubling_high_mult`` then
``divide_by_power_of_two``).  The CMSIS-NN-exact kernels built on them live in
:mod:`tinyjax.codegen.numerics.intops`, which re-exports these names.

Conventions
-----------
* ``multiplier`` is a Q31 ``int32``; ``shift`` an ``int32`` exponent, positive meaning left
  shift.  Real scale = ``multiplier * 2**(shift - 31)``.  Per-channel parameters broadcast on
  the last axis.
* All integer arithmetic is done in ``int64`` numpy arrays that emulate the ``int32`` C
  arithmetic exactly (no floating point in any integer path).  ``val << shift`` inside
  :func:`requantize` wraps to ``int32`` like the two's-complement hardware does.
* Right shifts of negative numbers are arithmetic (numpy's ``>>`` on signed integers is
  arithmetic too).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "INT8_MIN",
    "INT8_MAX",
    "INT32_MIN",
    "INT32_MAX",
    "round_half_away",
    "quantize",
    "dequantize",
    "quantize_multiplier",
    "quantize_multiplier_per_channel",
    "doubling_high_mult",
    "divide_by_power_of_two",
    "requantize",
]

INT8_MIN = -128
INT8_MAX = 127
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_I64 = np.int64


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------


def _as_int_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    return arr.astype(_I64, copy=False)


def _wrap32(v: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to the int32 range (kept as int64)."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


# ----------------------------------------------------------------------------------------
# float <-> int8 helpers (float side only; not part of the integer path)
# ----------------------------------------------------------------------------------------


def round_half_away(x) -> np.ndarray:
    """Round to nearest integer, ties away from zero (C ``round``/``TfLiteRound``). float64 out."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize(x, scale, zero_point, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> np.ndarray:
    """Quantise a float array: ``clamp(round_half_away(x / scale) + zero_point, qmin, qmax)``.

    ``scale``/``zero_point`` may be scalars or per-channel arrays broadcasting on the last axis.
    Returns ``int8`` (for the default range) or ``int32`` otherwise.
    """
    q = round_half_away(np.asarray(x, np.float64) / np.asarray(scale, np.float64))
    q = q + np.asarray(zero_point, np.float64)
    q = np.clip(q, qmin, qmax).astype(_I64)
    if qmin >= INT8_MIN and qmax <= INT8_MAX:
        return q.astype(np.int8)
    return q.astype(np.int32)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """``(q - zero_point) * scale`` as float64 (per-channel parameters broadcast on the last axis)."""
    q = np.asarray(q).astype(np.float64)
    return (q - np.asarray(zero_point, np.float64)) * np.asarray(scale, np.float64)


# ----------------------------------------------------------------------------------------
# multiplier / shift
# ----------------------------------------------------------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    Returns ``(multiplier, shift)``: ``multiplier`` is a Q31 int32 with ``|q|`` in ``[0.5, 1)``
    (``[2**30, 2**31)``), ``shift`` an int (positive = left shift).  ``real == 0`` and values
    whose exponent is below -31 give ``(0, 0)``.
    """
    real = float(real)
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real):
        raise ValueError(f"cannot quantise multiplier {real}")
    q, exponent = math.frexp(real)  # real = q * 2**exponent, 0.5 <= |q| < 1
    scaled = q * float(1 << 31)  # exact: power-of-two scaling
    q_fixed = int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))
    if q_fixed == (1 << 31):  # TFLite only renormalises the positive overflow
        q_fixed //= 2
        exponent += 1
    if exponent < -31:
        return 0, 0
    if q_fixed > INT32_MAX:  # cannot happen after the halving above; mirrors TFLite's check
        raise ValueError("multiplier overflow")
    return int(q_fixed), int(exponent)


def quantize_multiplier_per_channel(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`quantize_multiplier`: returns ``(int32 multipliers, int32 shifts)``."""
    r = np.asarray(reals, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError("multipliers must be finite")
    q, e = np.frexp(r)
    scaled = q * float(1 << 31)
    q_fixed = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(_I64)
    e = e.astype(_I64)
    full = q_fixed == (1 << 31)
    q_fixed = np.where(full, q_fixed // 2, q_fixed)
    e = np.where(full, e + 1, e)
    tiny = (e < -31) | (r == 0.0)
    q_fixed = np.where(tiny, 0, q_fixed)
    e = np.where(tiny, 0, e)
    return q_fixed.astype(np.int32), e.astype(np.int32)


# ----------------------------------------------------------------------------------------
# requantisation primitives (vectorised; scalars give 0-d arrays)
# ----------------------------------------------------------------------------------------


def doubling_high_mult(a, b) -> np.ndarray:
    """``(int32)(((int64)a*b + (1<<30)) >> 31)``; ``a == b == INT32_MIN`` saturates to INT32_MAX.

    ``a`` and ``b`` are int32 values (any integer array/scalar, broadcast).  Returns int32.
    """
    a = _as_int_array(a, "a")
    b = _as_int_array(b, "b")
    return _doubling_high_mult64(a, b).astype(np.int32)


def _doubling_high_mult64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # |a*b| <= 2**62 so the int64 product never overflows.
    res = (a * b + (1 << 30)) >> 31
    sat = (a == INT32_MIN) & (b == INT32_MIN)
    if np.any(sat):
        res = np.where(sat, INT32_MAX, res)
    return res


def divide_by_power_of_two(val, exponent) -> np.ndarray:
    """``arm_nn_divide_by_power_of_two``: ``val / 2**exponent`` rounded half away from zero.

    ``exponent`` in ``[0, 31]``; int32 in, int32 out (broadcast).
    """
    v = _as_int_array(val, "val")
    e = _as_int_array(exponent, "exponent")
    return _divide_by_pot64(v, e).astype(np.int32)


def _divide_by_pot64(v: np.ndarray, e: np.ndarray) -> np.ndarray:
    if e.size and (e.min() < 0 or e.max() > 31):
        raise ValueError("exponent must be within [0, 31]")
    mask = (np.int64(1) << e) - 1
    remainder = v & mask
    threshold = (mask >> 1) + (v < 0)
    return (v >> e) + (remainder > threshold)


def requantize(val, multiplier, shift) -> np.ndarray:
    """CMSIS-NN ``arm_nn_requantize`` (default, double-rounding build).

    ``divide_by_power_of_two(doubling_high_mult(val << max(shift, 0), multiplier), max(-shift, 0))``

    ``val``: int32 values of any shape; ``multiplier`` (Q31 int32) and ``shift`` (int32, positive =
    left) are scalars or arrays broadcasting against ``val`` (per-channel: shape ``[C]`` on the
    last axis).  The left shift wraps to int32 like the C code.  Returns int32.
    """
    v = _as_int_array(val, "val")
    m = _as_int_array(multiplier, "multiplier")
    s = _as_int_array(shift, "shift")
    if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
        raise OverflowError("requantize input does not fit int32")
    if m.size and (m.min() < INT32_MIN or m.max() > INT32_MAX):
        raise ValueError("multiplier does not fit int32")
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    if left.size and left.max() > 31:
        raise ValueError("left shift must be <= 31")
    shifted = _wrap32(v << left)
    high = _doubling_high_mult64(shifted, m)
    return _divide_by_pot64(high, right).astype(np.int32)


# -- checks and the common ending of the integer kernels (intops, pointwise) --------------------

def _check_act(act_min: int, act_max: int) -> tuple[int, int]:
    act_min, act_max = int(act_min), int(act_max)
    if not (INT8_MIN <= act_min <= act_max <= INT8_MAX):
        raise ValueError(f"bad activation range [{act_min}, {act_max}] for int8")
    return act_min, act_max


def _check_int8_values(arr: np.ndarray, name: str) -> None:
    if arr.size and (arr.min() < INT8_MIN or arr.max() > INT8_MAX):
        raise ValueError(f"{name} has values outside the int8 range")


def _check_fits32(acc: np.ndarray, what: str) -> None:
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise OverflowError(f"{what} accumulator overflows int32 (the C kernel would wrap)")


def _finish(acc: np.ndarray, multiplier, shift, output_offset: int, act_min: int, act_max: int) -> np.ndarray:
    """requantize -> + output_offset -> clamp -> int8."""
    act_min, act_max = _check_act(act_min, act_max)
    out = requantize(acc, multiplier, shift).astype(_I64) + int(output_offset)
    return np.clip(out, act_min, act_max).astype(np.int8)
