"""The float simulation's rounding rules: CMSIS-NN's kernels modelled in real arithmetic.

The op kinds' ``fake_quant`` methods (:mod:`tinyjax.codegen.ops`) compute each op's exact real
result from dequantised values and round it where and how the deployed kernel rounds, with the
helpers here; ``interpreter.run_fake_quant`` runs them over a graph (its docstring says why the
rounding must be modelled). Nothing here reads an integer multiplier: the right shifts are
derived from the real rescale factors.
"""

from __future__ import annotations

import numpy as np

from tinyjax.codegen.numerics import fixedpoint

__all__ = ["Simulation", "fake_requantize", "requant_right_shift"]


def requant_right_shift(real) -> np.ndarray:
    """The right shift ``max(-shift, 0)`` that the quantiser's Q31 encoding of the real rescale
    factor ``real`` gets (:func:`~tinyjax.codegen.numerics.fixedpoint.quantize_multiplier`: ``real = m·2^e``
    with ``0.5 <= m < 1``, ``shift = e``, or ``e + 1`` when ``m·2^31`` rounds up to ``2^31``; a
    factor below ``2^-32`` encodes as zero with shift 0). Derived from the real number only:
    the simulation never reads the integer multiplier. int64, the shape of ``real``."""
    r = np.asarray(real, np.float64)
    frac, e = np.frexp(r)
    e = e.astype(np.int64) + (np.floor(np.abs(frac) * 2.0 ** 31 + 0.5) == 2.0 ** 31)
    e = np.where((e < -31) | (r == 0.0), 0, e)
    return np.maximum(-e, 0)


def fake_requantize(v, right_shift) -> np.ndarray:
    """CMSIS-NN's default (double) rounding of the real value ``v``, in output steps, to an integer.

    ``arm_nn_requantize(acc, mult, shift)`` computes ``doubling_high_mult`` — ``acc·mult / 2^31``
    rounded half *up* — which is ``v`` on a grid of ``2^-right_shift`` output steps
    (``right_shift = max(-shift, 0)``), then ``divide_by_power_of_two`` rounds that to an integer
    half *away from zero*. So: ``round_half_away(floor(v·2^r + 0.5) / 2^r)``; with ``r = 0``
    (a left-shift multiplier) a single round half up. float64 integers out (broadcast).
    """
    g = np.exp2(np.asarray(right_shift, np.float64))
    high = np.floor(np.asarray(v, np.float64) * g + 0.5)
    return fixedpoint.round_half_away(high / g)


class Simulation:
    """The quantisation of a model's tensors, as the float simulation reads it: scales, values in
    grid steps, and the final ``+ zero point, clamp, dequantise`` of an op's output."""

    def __init__(self, qmodel) -> None:
        self.qmodel = qmodel

    def scale(self, name: str) -> np.float64:
        return np.float64(self.qmodel.quant(name).scale)

    def zero_point(self, name: str) -> int:
        return self.qmodel.quant(name).zero_point

    def steps(self, name: str, x: np.ndarray) -> np.ndarray:
        """``x / scale`` of tensor ``name``: the value in steps of its grid (``q − zero_point``),
        snapped to the integer it is (simulated tensors lie on their grid; this drops float noise
        so that exact ties stay exact)."""
        return np.rint(np.asarray(x, np.float64) / self.scale(name))

    def out(self, name: str, n: np.ndarray, act_min: int = fixedpoint.INT8_MIN,
            act_max: int = fixedpoint.INT8_MAX) -> np.ndarray:
        """Integer-valued ``n`` (steps from the zero point) -> + zero point, clamp, dequantise."""
        z = self.zero_point(name)
        q = np.clip(n + z, act_min, act_max)
        return (q - np.float64(z)) * self.scale(name)

    def fake(self, name: str, y: np.ndarray, act_min: int = fixedpoint.INT8_MIN,
             act_max: int = fixedpoint.INT8_MAX) -> np.ndarray:
        """Quantise float values once (round half away from zero, as TFLite's quantiser and the
        lookup tables do), clamp, dequantise."""
        n = fixedpoint.round_half_away(np.asarray(y, np.float64) / self.scale(name))
        return self.out(name, n, act_min, act_max)
