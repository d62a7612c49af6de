"""The integer reference interpreter (the golden model of the generated C) and its float twin.

:func:`run_int8` executes a :class:`~tinyjax.codegen.quantize.QuantizedModel` op by op with the
CMSIS-NN-exact kernels of :mod:`tinyjax.codegen.intops`, one kernel call per op, with exactly the
arguments the generated C passes to ``arm_convolve_wrapper_s8`` & co.: int8 in, int8 out, int32
accumulators, the default (double-rounding) requantisation, padding by the input zero point,
``arm_avgpool_s8``'s rounding, ``arm_elementwise_add_s8`` with left shift 20. The C output must
equal it bit for bit.

:func:`run_fake_quant` is the float simulation of the same quantised model, the way a
quantisation-aware training graph computes it: weights and biases dequantised from their
integers, float arithmetic, each tensor quantised to its int8 grid and dequantised again
(clamps and lookup-table functions applied in float before that). It differs from
:func:`run_int8` only by the rounding of the fixed-point rescaling, i.e. by at most one step of
the output grid on a small fraction of elements.
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

__all__ = ["dequantize_tensor", "fake_quant_op", "predict", "run_fake_quant", "run_int8"]


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

def _fake(qmodel: QuantizedModel, name: str, y: np.ndarray, act_min: int = intops.INT8_MIN,
          act_max: int = intops.INT8_MAX) -> np.ndarray:
    info = qmodel.quant(name)
    q = intops.quantize(y, info.scale, info.zero_point)
    q = np.clip(q, act_min, act_max)
    return intops.dequantize(q, info.scale, info.zero_point)


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


def fake_quant_op(qmodel: QuantizedModel, op: Op, ins) -> np.ndarray:
    """One op of the float simulation: float64 inputs (already on their int8 grids) -> the
    dequantised output."""
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
    elif k == "add":
        y = ins[0] + ins[1]
    elif k == "channel_mul":
        y = ins[0] * ins[1]
    elif k == "avg_pool":
        y = float_avg_pool(ins[0], op)
    elif k == "lut":
        fn = op.attr("fn")
        if fn not in LUT_FUNCTIONS:
            raise QuantizationError(f"op {op.name}: no lookup table for {fn!r}")
        y = LUT_FUNCTIONS[fn](ins[0])
    elif k == "pad":
        return float_pad(ins[0], op)             # zero point == real 0: stays on the grid
    elif k == "reshape":
        return ins[0].reshape((ins[0].shape[0],) + tuple(qmodel.graph.tensor(op.output).shape[1:]))
    else:
        raise QuantizationError(f"op {op.name}: the float simulation cannot run kind {k!r}")
    return _fake(qmodel, op.output, np.asarray(y, np.float64), *clamp)


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
