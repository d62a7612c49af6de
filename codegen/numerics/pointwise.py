"""Integer reference of the pointwise kernels with CMSIS-NN (v7, default build, int8) semantics:
``arm_elementwise_add_s8``, ``arm_elementwise_mul_s8`` (with TFLite's parameter derivation:
:func:`add_quant_params`, :func:`mul_quant_params`) and tinyjax's own 256-entry lookup tables
(:func:`make_lut`, :func:`lut_s8`) for activations without a CMSIS-NN kernel.

The conventions are :mod:`tinyjax.codegen.numerics.intops`'s (``int64`` arrays emulating ``int32``
C arithmetic exactly, ``input_offset = -zero_point``, shifts positive to the left).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from tinyjax.codegen.numerics.fixedpoint import (
    INT8_MAX,
    INT8_MIN,
    _as_int_array,
    _check_fits32,
    _check_int8_values,
    _finish,
    _wrap32,
    quantize_multiplier,
    requantize,
    round_half_away,
)

__all__ = [
    "DEFAULT_ADD_LEFT_SHIFT",
    "AddParams",
    "add_quant_params",
    "MulParams",
    "mul_quant_params",
    "elementwise_add_s8",
    "elementwise_mul_s8",
    "lut_s8",
    "make_lut",
]

#: TFLite's (and ``arm_elementwise_add_s8``'s) left shift for int8 ADD.
DEFAULT_ADD_LEFT_SHIFT = 20

_I64 = np.int64


# ----------------------------------------------------------------------------------------
# elementwise
# ----------------------------------------------------------------------------------------


class AddParams(NamedTuple):
    """Keyword arguments of :func:`elementwise_add_s8` (besides the inputs and clamps)."""

    in1_offset: int
    in1_mult: int
    in1_shift: int
    in2_offset: int
    in2_mult: int
    in2_shift: int
    left_shift: int
    out_offset: int
    out_mult: int
    out_shift: int


def add_quant_params(s1: float, z1: int, s2: float, z2: int, s_out: float, z_out: int,
                     left_shift: int = DEFAULT_ADD_LEFT_SHIFT) -> AddParams:
    """TFLite int8 ADD parameters: ``twice_max = 2*max(s1, s2)``; ``real_in1 = s1/twice_max``;
    ``real_in2 = s2/twice_max``; ``real_out = twice_max / (2**left_shift * s_out)``; each through
    :func:`quantize_multiplier`.  Offsets: ``in*_offset = -z*``, ``out_offset = z_out``.
    Use as ``elementwise_add_s8(a, b, **p._asdict(), act_min=..., act_max=...)``.
    """
    twice_max = 2.0 * max(float(s1), float(s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / (float(1 << left_shift) * float(s_out)))
    return AddParams(-int(z1), m1, sh1, -int(z2), m2, sh2, int(left_shift), int(z_out), mo, sho)


class MulParams(NamedTuple):
    """Keyword arguments of :func:`elementwise_mul_s8` (besides the inputs and clamps)."""

    in1_offset: int
    in2_offset: int
    out_offset: int
    out_mult: int
    out_shift: int


def mul_quant_params(s1: float, z1: int, s2: float, z2: int, s_out: float, z_out: int) -> MulParams:
    """TFLite int8 MUL parameters: ``real = s1*s2/s_out`` through :func:`quantize_multiplier`."""
    m, sh = quantize_multiplier(float(s1) * float(s2) / float(s_out))
    return MulParams(-int(z1), -int(z2), int(z_out), m, sh)


def elementwise_add_s8(
    in1,
    in2,
    in1_offset: int,
    in1_mult: int,
    in1_shift: int,
    in2_offset: int,
    in2_mult: int,
    in2_shift: int,
    left_shift: int,
    out_offset: int,
    out_mult: int,
    out_shift: int,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
) -> np.ndarray:
    """``arm_elementwise_add_s8`` equivalent (inputs broadcast numpy-style; CMSIS needs equal sizes).

    ``a = requantize((in1 + in1_offset) << left_shift, in1_mult, in1_shift)``, same for ``b``;
    ``out = clamp(requantize(a + b, out_mult, out_shift) + out_offset)``.  Returns int8.
    """
    a = _as_int_array(in1, "in1")
    b = _as_int_array(in2, "in2")
    _check_int8_values(a, "in1")
    _check_int8_values(b, "in2")
    ls = int(left_shift)
    if not 0 <= ls <= 31:
        raise ValueError("left_shift must be within [0, 31]")
    a = _wrap32((a + int(in1_offset)) << ls)
    b = _wrap32((b + int(in2_offset)) << ls)
    a = requantize(a, in1_mult, in1_shift).astype(_I64)
    b = requantize(b, in2_mult, in2_shift).astype(_I64)
    s = a + b
    _check_fits32(s, "add")
    return _finish(s, out_mult, out_shift, out_offset, act_min, act_max)


def elementwise_mul_s8(
    in1,
    in2,
    in1_offset: int,
    in2_offset: int,
    out_offset: int,
    out_mult: int,
    out_shift: int,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
) -> np.ndarray:
    """``arm_elementwise_mul_s8`` equivalent with numpy broadcasting (e.g. SE: ``[N,H,W,C] * [N,1,1,C]``).

    ``out = clamp(requantize((in1 + in1_offset) * (in2 + in2_offset), out_mult, out_shift) + out_offset)``.
    """
    a = _as_int_array(in1, "in1")
    b = _as_int_array(in2, "in2")
    _check_int8_values(a, "in1")
    _check_int8_values(b, "in2")
    prod = (a + int(in1_offset)) * (b + int(in2_offset))
    _check_fits32(prod, "mul")
    return _finish(prod, out_mult, out_shift, out_offset, act_min, act_max)


# ----------------------------------------------------------------------------------------
# look-up tables
# ----------------------------------------------------------------------------------------


def lut_s8(x, table) -> np.ndarray:
    """``table[x + 128]`` for int8 ``x`` and an int8 ``[256]`` table.  Returns int8, shape of x."""
    x = _as_int_array(x, "x")
    _check_int8_values(x, "x")
    t = np.asarray(table)
    if t.shape != (256,):
        raise ValueError("table must have 256 entries")
    return t.astype(np.int8)[x + 128]


def make_lut(fn: Callable, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """Build an int8[256] table: entry ``q + 128`` is
    ``clamp(round_half_away(fn((q - in_zp) * in_scale) / out_scale) + out_zp, -128, 127)``.

    ``fn`` maps a float64 array to a float array (a scalar function is applied elementwise if
    it does not accept arrays).
    """
    codes = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.float64)
    real_in = (codes - float(in_zp)) * float(in_scale)
    try:
        y = np.asarray(fn(real_in), dtype=np.float64)
        if y.shape != real_in.shape:
            raise ValueError
    except Exception:  # scalar-only function
        y = np.array([float(fn(float(v))) for v in real_in], dtype=np.float64)
    q = round_half_away(y / float(out_scale)) + float(out_zp)
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)
