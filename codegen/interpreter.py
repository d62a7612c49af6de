"""The integer reference interpreter (the golden model of the generated C) and its float twin.

:func:`run_int8` executes a :class:`~tinyjax.codegen.quantize.QuantizedModel` op by op with the
CMSIS-NN-exact kernels of :mod:`tinyjax.codegen.intops`, one kernel call per op, with exactly the
arguments the generated C passes to ``arm_convolve_wrapper_s8`` & co.: int8 in, int8 out, int32
accumulators, the default (double-rounding) requantisation, padding by the input zero point,
``arm_avgpool_s8``'s rounding, ``arm_elementwise_add_s8`` with left shift 20. The C output must
equal it bit for bit.

:func:`run_fake_quant` is the float simulation of the same quantised model: the float model
(dequantised weights and biases, float64 arithmetic, real-valued scales) with the *rounding rules
of the deployed kernels*. Every tensor lies on its int8 grid (it is quantised, clamped and
dequantised again), and each op rounds where and how its CMSIS-NN kernel rounds:

* conv / depthwise / dense: the float64 convolution sum of dequantised inputs and weights (plus
  the dequantised bias) is divided by the output scale, giving the exact real value ``v`` in
  output steps. CMSIS-NN's default requantisation rounds it twice: ``doubling_high_mult``
  rounds ``acc·M/2^31`` half up, i.e. ``v`` to a grid of ``2^-r`` steps, and
  ``divide_by_power_of_two`` rounds that half away from zero (:func:`fake_requantize`). The
  right shift ``r`` is the one the quantiser's Q31 encoding of the real factor
  ``s_in·s_w/s_out`` has (:func:`requant_right_shift`, derived from the real factor); the
  integer multiplier itself is never read. Then + zero point, the fused ReLU clamp, dequantise.
* add (``arm_elementwise_add_s8``, the op's ``left_shift`` ``L``, 20): each input, in steps of its own grid,
  is rescaled to the common grid ``2·max(s1, s2)·2^-L`` (real factor ``s_i / (2·max)``, times
  ``2^L``) with that rescale's double rounding; the sum of the two rounded values is rescaled to
  the output (real factor ``2·max / (2^L·s_out)``) with its double rounding; clamp.
* channel_mul (squeeze-excite gate): ``x·g / s_out`` with the double rounding of the real
  factor ``s_x·s_g/s_out``.
* avg_pool (``arm_avgpool_s8``, no rescale): the mean over the window cells inside the input of
  the stored codes ``q`` (zero point included) rounded half away from zero — not the mean of the
  real values: the two differ on ties whenever the zero point is not 0.
* lut: the float function of the (exactly dequantised) input, quantised once, half away from
  zero — what the table entry holds. Input quantisation: once, half away from zero. pad /
  reshape: exact.

Why: the integer model rounds every rescale twice and the average in the code domain; a float
simulation that rounds the exact real value once lands one step away on ~0.3% of elements, and
end to end those steps cascade through a deep network. With the kernels' rounding rules the
simulation differs from :func:`run_int8` only where the Q31 approximation of a real multiplier
(relative error ≤ 2^-31) or float64 summation noise moves a value across a rounding boundary —
on the test models and batches, nowhere at all. It stays independent of the integer path: real
scales instead of Q31 multipliers, float sums instead of int32 accumulators, no
:mod:`~tinyjax.codegen.intops` kernel; it is still the float model up to quantisation (tests
check its predictions and error against :func:`~tinyjax.codegen.quantize.run_float`).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import numpy as np

from tinyjax.codegen import intops
from tinyjax.codegen.graph import Graph, Op
from tinyjax.codegen.quantize import (
    LUT_FUNCTIONS,
    QuantizationError,
    QuantizedModel,
    float_avg_pool,
    float_conv,
    float_depthwise,
    float_pad,
    quantize_input,
)

__all__ = ["dequantize_tensor", "fake_quant_op", "fake_requantize", "predict", "requant_right_shift",
           "run_fake_quant", "run_int8"]


def _s(v) -> int:
    return int(np.asarray(v))


def _check(qmodel: QuantizedModel, x: np.ndarray, dtype) -> None:
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationError("expected a QuantizedModel (from tinyjax.codegen.quantize.quantize)")
    want = qmodel.graph.tensor(qmodel.graph.inputs[0]).shape
    if x.ndim != len(want) or tuple(x.shape[1:]) != tuple(want[1:]):
        raise QuantizationError(f"input of shape {tuple(x.shape)} does not fit the graph's "
                                f"(N,{','.join(map(str, want[1:]))})")
    if dtype is np.int8 and x.dtype != np.int8:
        raise QuantizationError(f"run_int8 takes an int8 input, got {x.dtype} (use quantize_input)")


def _op_int8(graph: Graph, op: Op, p: Mapping[str, np.ndarray], ins) -> np.ndarray:
    k = op.kind
    if k == "conv":
        return intops.conv_s8(ins[0], p["weight"], p["bias"], _s(p["input_offset"]),
                              _s(p["output_offset"]), p["multiplier"], p["shift"],
                              stride=op.attr("stride"), padding=op.attr("padding"),
                              act_min=_s(p["act_min"]), act_max=_s(p["act_max"]))
    if k == "depthwise_conv":
        return intops.depthwise_conv_s8(ins[0], p["weight"], p["bias"], _s(p["input_offset"]),
                                        _s(p["output_offset"]), p["multiplier"], p["shift"],
                                        ch_mult=op.attr("ch_mult", 1), stride=op.attr("stride"),
                                        padding=op.attr("padding"), act_min=_s(p["act_min"]),
                                        act_max=_s(p["act_max"]))
    if k == "dense":
        x = ins[0].reshape(ins[0].shape[0], -1)
        return intops.fully_connected_s8(x, p["weight"], p["bias"], _s(p["input_offset"]),
                                         _s(p["filter_offset"]), _s(p["output_offset"]),
                                         _s(p["multiplier"]), _s(p["shift"]),
                                         act_min=_s(p["act_min"]), act_max=_s(p["act_max"]))
    if k == "avg_pool":
        return intops.avgpool_s8(ins[0], op.attr("kernel"), op.attr("stride"), op.attr("padding"),
                                 act_min=_s(p["act_min"]), act_max=_s(p["act_max"]))
    if k == "add":
        fields = {f: _s(p[f]) for f in intops.AddParams._fields}
        return intops.elementwise_add_s8(ins[0], ins[1], **fields, act_min=_s(p["act_min"]),
                                         act_max=_s(p["act_max"]))
    if k == "channel_mul":
        fields = {f: _s(p[f]) for f in intops.MulParams._fields}
        return intops.elementwise_mul_s8(ins[0], ins[1], **fields, act_min=_s(p["act_min"]),
                                         act_max=_s(p["act_max"]))
    if k == "lut":
        return intops.lut_s8(ins[0], p["table"])
    if k == "pad":
        (t, b), (l, r) = op.attr("padding")
        return np.pad(ins[0], ((0, 0), (t, b), (l, r), (0, 0)),
                      constant_values=np.int8(_s(p["pad_value"])))
    if k == "reshape":
        return ins[0].reshape((ins[0].shape[0],) + tuple(graph.tensor(op.output).shape[1:]))
    raise QuantizationError(f"op {op.name}: the integer interpreter cannot run kind {k!r}")


def run_int8(qmodel: QuantizedModel, x_int8) -> Dict[str, np.ndarray]:
    """Run the quantised graph on an int8 NHWC batch (any N). Returns ``{tensor name: int8
    array}`` for every tensor, the input included; ``out[qmodel.graph.outputs[0]]`` are the int8
    logits ``(N, classes)`` (dequantise with :func:`dequantize_tensor`)."""
    x = np.asarray(x_int8)
    _check(qmodel, x, np.int8)
    graph = qmodel.graph
    env: Dict[str, np.ndarray] = {graph.inputs[0]: x}
    for op in graph.ops:
        y = _op_int8(graph, op, qmodel.params[op.name], [env[t] for t in op.inputs])
        env[op.output] = np.asarray(y, dtype=np.int8)
    return env


def dequantize_tensor(qmodel: QuantizedModel, name: str, q) -> np.ndarray:
    """Float values (float64) of the int8 codes ``q`` of tensor ``name``."""
    info = qmodel.quant(name)
    return intops.dequantize(q, info.scale, info.zero_point)


def predict(qmodel: QuantizedModel, x_float) -> np.ndarray:
    """Float images -> :func:`quantize_input` -> :func:`run_int8` -> dequantised logits."""
    out = run_int8(qmodel, quantize_input(qmodel, x_float))
    name = qmodel.graph.outputs[0]
    return dequantize_tensor(qmodel, name, out[name])


# -- the float simulation -------------------------------------------------------------------------

def requant_right_shift(real) -> np.ndarray:
    """The right shift ``max(-shift, 0)`` that the quantiser's Q31 encoding of the real rescale
    factor ``real`` gets (:func:`~tinyjax.codegen.intops.quantize_multiplier`: ``real = m·2^e``
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
    return intops.round_half_away(high / g)


def _steps(qmodel: QuantizedModel, name: str, x: np.ndarray) -> np.ndarray:
    """``x / scale`` of tensor ``name``: the value in steps of its grid (``q − zero_point``),
    snapped to the integer it is (simulated tensors lie on their grid; this drops float noise
    so that exact ties stay exact)."""
    return np.rint(np.asarray(x, np.float64) / np.float64(qmodel.quant(name).scale))


def _out(qmodel: QuantizedModel, name: str, n: np.ndarray, act_min: int = intops.INT8_MIN,
         act_max: int = intops.INT8_MAX) -> np.ndarray:
    """Integer-valued ``n`` (steps from the zero point) -> + zero point, clamp, dequantise."""
    info = qmodel.quant(name)
    q = np.clip(n + info.zero_point, act_min, act_max)
    return (q - np.float64(info.zero_point)) * np.float64(info.scale)


def _fake(qmodel: QuantizedModel, name: str, y: np.ndarray, act_min: int = intops.INT8_MIN,
          act_max: int = intops.INT8_MAX) -> np.ndarray:
    """Quantise float values once (round half away from zero, as TFLite's quantiser and the
    lookup tables do), clamp, dequantise."""
    info = qmodel.quant(name)
    n = intops.round_half_away(np.asarray(y, np.float64) / np.float64(info.scale))
    return _out(qmodel, name, n, act_min, act_max)


def _dequant_weights(qmodel: QuantizedModel, op: Op, p) -> tuple:
    s_in = np.float64(qmodel.quant(op.inputs[0]).scale)
    s_w = np.asarray(p["weight_scale"], np.float64)
    w = np.asarray(p["weight"], np.float64)
    if op.kind == "conv":
        w = w * s_w.reshape(-1, 1, 1, 1)
    else:
        w = w * s_w
    b = np.asarray(p["bias"], np.float64) * s_in * s_w
    return w, b


def _scale(qmodel: QuantizedModel, name: str) -> np.float64:
    return np.float64(qmodel.quant(name).scale)


def fake_quant_op(qmodel: QuantizedModel, op: Op, ins) -> np.ndarray:
    """One op of the float simulation: float64 inputs (already on their int8 grids) -> the
    dequantised output (see the module docstring for what each kind models)."""
    p = qmodel.params[op.name]
    k = op.kind
    clamp = (_s(p["act_min"]), _s(p["act_max"])) if "act_min" in p else ()
    if k in ("conv", "depthwise_conv", "dense"):
        w, b = _dequant_weights(qmodel, op, p)
        if k == "conv":
            y = float_conv(ins[0], w, b, op)
        elif k == "depthwise_conv":
            y = float_depthwise(ins[0], w, b, op)
        else:
            y = ins[0].reshape(ins[0].shape[0], -1) @ w.T + b
        s_out = _scale(qmodel, op.output)
        real = _scale(qmodel, op.inputs[0]) * np.asarray(p["weight_scale"], np.float64) / s_out
        n = fake_requantize(y / s_out, requant_right_shift(real))
        return _out(qmodel, op.output, n, *clamp)
    if k == "add":
        s1, s2 = _scale(qmodel, op.inputs[0]), _scale(qmodel, op.inputs[1])
        s_out = _scale(qmodel, op.output)
        left = np.float64(2.0 ** _s(p["left_shift"]))
        twice_max = 2.0 * max(s1, s2)
        r1, r2, r_out = s1 / twice_max, s2 / twice_max, twice_max / (left * s_out)
        # each input rescaled to the common 2^-left_shift · twice_max grid, with its own rounding
        a = fake_requantize(_steps(qmodel, op.inputs[0], ins[0]) * left * r1, requant_right_shift(r1))
        c = fake_requantize(_steps(qmodel, op.inputs[1], ins[1]) * left * r2, requant_right_shift(r2))
        n = fake_requantize((a + c) * r_out, requant_right_shift(r_out))
        return _out(qmodel, op.output, n, *clamp)
    if k == "channel_mul":
        s_out = _scale(qmodel, op.output)
        real = _scale(qmodel, op.inputs[0]) * _scale(qmodel, op.inputs[1]) / s_out
        n = fake_requantize(ins[0] * ins[1] / s_out, requant_right_shift(real))
        return _out(qmodel, op.output, n, *clamp)
    if k == "avg_pool":
        # arm_avgpool_s8 averages the stored codes q (zero point included), half away from zero
        z = qmodel.quant(op.inputs[0]).zero_point
        mean_q = float_avg_pool(_steps(qmodel, op.inputs[0], ins[0]) + z, op)
        return _out(qmodel, op.output, intops.round_half_away(mean_q) - z, *clamp)
    if k == "lut":
        fn = op.attr("fn")
        if fn not in LUT_FUNCTIONS:
            raise QuantizationError(f"op {op.name}: no lookup table for {fn!r}")
        x = _steps(qmodel, op.inputs[0], ins[0]) * _scale(qmodel, op.inputs[0])
        return _fake(qmodel, op.output, LUT_FUNCTIONS[fn](x), *clamp)
    if k == "pad":
        return float_pad(ins[0], op)             # zero point == real 0: stays on the grid
    if k == "reshape":
        return ins[0].reshape((ins[0].shape[0],) + tuple(qmodel.graph.tensor(op.output).shape[1:]))
    raise QuantizationError(f"op {op.name}: the float simulation cannot run kind {k!r}")


def run_fake_quant(qmodel: QuantizedModel, x_float,
                   inputs: Optional[Mapping[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
    """Float (float64) simulation of the quantised model on float NHWC images.

    Returns ``{tensor name: dequantised float array}`` for every tensor. With ``inputs`` (e.g.
    the dequantised tensors of :func:`run_int8`), each op reads those instead of the values
    the simulation computed itself: an op-by-op comparison with the same inputs.
    """
    x = np.asarray(x_float, np.float64)
    _check(qmodel, x, None)
    graph = qmodel.graph
    env: Dict[str, np.ndarray] = {graph.inputs[0]: _fake(qmodel, graph.inputs[0], x)}
    for op in graph.ops:
        src = env if inputs is None else inputs
        ins = [np.asarray(src[t], np.float64) for t in op.inputs]
        env[op.output] = fake_quant_op(qmodel, op, ins)
    return env
