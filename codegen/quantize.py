"""Post-training int8 quantisation of a deployment graph, TFLite/CMSIS-NN style.

The pipeline, all plain functions over numpy arrays::

    graph = graph_from_spec(spec)
    params = fold_batchnorm(spec, variables)        # float weights in CMSIS layouts, BN folded
    ranges = calibrate(graph, params, batches)      # (lo, hi) of every tensor over float batches
    qmodel = quantize(graph, params, ranges)        # QuantizedModel(graph with QuantInfo, params)
    x_q = quantize_input(qmodel, images)            # int8 NHWC
    outs = tinyjax.codegen.interpreter.run_int8(qmodel, x_q)

What the quantised model holds, exactly as TFLite (int8 schema) and CMSIS-NN v7 define it:

* every activation tensor: asymmetric per-tensor int8 ``QuantInfo(scale, zero_point)``
  (``real = scale · (q − zero_point)``); its range always contains 0 and the zero point lies in
  [-128, 127]. Scales are float32 values (as in a ``.tflite`` file). Two tensors are *forced*:
  a sigmoid output is ``(1/256, −128)`` (TFLite's LOGISTIC), and an ``avg_pool`` / ``pad`` /
  ``reshape`` output shares its input's quantisation (``arm_avgpool_s8`` does not requantise);
* conv and depthwise: symmetric per-output-channel int8 weights (``scale = max|w| / 127``,
  values in [-127, 127]), int32 bias ``round(b / (s_in · s_w))``, and per-channel Q31
  ``multiplier`` + ``shift`` of ``s_in · s_w / s_out`` (``arm_convolve_wrapper_s8``'s
  ``cmsis_nn_per_channel_quant_params``);
* dense: ``arm_fully_connected_s8`` takes *per-tensor* parameters, so symmetric per-tensor int8
  weights (``filter_offset = 0``) and a scalar multiplier + shift;
* ReLU / ReLU6 fused into the producing op as the clamp ``[act_min, act_max]`` in the output's
  int8 domain (TFLite's ``CalculateActivationRangeQuantized``); SiLU / sigmoid / hard-swish are
  256-entry int8 tables (:func:`~tinyjax.codegen.intops.make_lut`);
* add: :func:`~tinyjax.codegen.intops.add_quant_params` (left shift 20); channel_mul (the
  squeeze-excite gate, broadcast over H, W): :func:`~tinyjax.codegen.intops.mul_quant_params`.

``QuantizedModel.params`` is a plain nested dict ``{op name: {field: numpy array}}``; integer
scalars are 0-d ``int32`` arrays. Fields by op kind:

==================  ==========================================================================
``conv``,           ``weight`` int8 (OHWI / ``(1, kh, kw, C)``), ``bias`` int32 ``[out]``,
``depthwise_conv``  ``multiplier``, ``shift`` int32 ``[out]``, ``weight_scale`` float32 ``[out]``,
                    ``input_offset`` (``−z_in``), ``output_offset`` (``z_out``), ``act_min``,
                    ``act_max``
``dense``           ``weight`` int8 ``(out, in)``, ``bias`` int32 ``[out]``, ``multiplier``,
                    ``shift``, ``weight_scale`` (0-d), ``input_offset``, ``filter_offset`` (0),
                    ``output_offset``, ``act_min``, ``act_max``
``add``             the :class:`~tinyjax.codegen.intops.AddParams` fields, ``act_min``, ``act_max``
``channel_mul``     the :class:`~tinyjax.codegen.intops.MulParams` fields, ``act_min``, ``act_max``
``lut``             ``table`` int8 ``[256]`` (entry ``q + 128``)
``avg_pool``        ``act_min``, ``act_max``
``pad``             ``pad_value`` (the input zero point)
``reshape``         (nothing)
==================  ==========================================================================

``weight_scale`` is not a CMSIS-NN argument; it is kept so the float simulation
(:func:`tinyjax.codegen.interpreter.run_fake_quant`) can dequantise the weights.

:class:`QuantizedModel` is a registered JAX pytree: its leaves are the arrays of ``params``
(the graph is static auxiliary data), so ``jax.tree_util.tree_map(f, qmodel)`` returns a
``QuantizedModel`` with the same graph; ``qmodel.params`` alone is an ordinary dict pytree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Tuple

import numpy as np

from tinyjax.codegen import intops
from tinyjax.codegen.graph import Graph, GraphError, Op, QuantInfo, graph_from_spec
from tinyjax.errors import TinyJaxError

__all__ = [
    "LUT_FUNCTIONS",
    "QuantizationError",
    "QuantizedModel",
    "activation_range",
    "calibrate",
    "choose_quant",
    "fold_batchnorm",
    "quantize",
    "quantize_input",
    "run_float",
]

#: TFLite's fixed output quantisation of LOGISTIC (sigmoid) in int8.
SIGMOID_QUANT = QuantInfo(1.0 / 256.0, -128)
#: ops whose output must share its input's quantisation (they move bytes, they do not rescale)
SAME_QUANT_KINDS = ("avg_pool", "pad", "reshape")


class QuantizationError(TinyJaxError, ValueError):
    """A graph, parameter set or range table the int8 quantiser cannot handle."""


# -- float activations ------------------------------------------------------------------------------

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


def _clamp_act(y: np.ndarray, act: str) -> np.ndarray:
    if act == "none":
        return y
    if act == "relu":
        return np.maximum(y, 0)
    if act == "relu6":
        return np.clip(y, 0, 6)
    raise QuantizationError(f"unknown fused activation {act!r}; expected none, relu or relu6")


# -- BN folding -------------------------------------------------------------------------------------

def _get(tree: Any, path: Tuple[str, ...], what: str) -> np.ndarray:
    node = tree
    for p in path:
        try:
            node = node[p]
        except (KeyError, TypeError):
            raise QuantizationError(f"the variables lack {'/'.join(path)} ({what}); are they the "
                                    "variables of this spec?") from None
    return np.asarray(node, dtype=np.float64)


def _bn_of(spec) -> Dict[str, str]:
    """Graph op name -> name of the BatchNorm module folded into it."""
    bn = {"stem/conv": "stem/bn", "head/conv": "head/bn"}
    for b in spec.resolved_blocks():
        n = b.name
        if b.type == "ir":
            bn.update({f"{n}/conv_pw": f"{n}/bn1", f"{n}/conv_dw": f"{n}/bn2",
                       f"{n}/conv_pwl": f"{n}/bn3"})
        else:
            bn.update({f"{n}/conv_dw": f"{n}/bn1", f"{n}/conv_pw": f"{n}/bn2"})
    return bn


def fold_batchnorm(spec, variables: Mapping[str, Any], bn_epsilon: float | None = None
                   ) -> Dict[str, Dict[str, np.ndarray]]:
    """Float weights of every conv / depthwise_conv / dense op of ``graph_from_spec(spec)``,
    with each BatchNorm folded into the conv before it.

    ``variables``: ``{"params": ..., "batch_stats": ...}`` of :class:`tinyjax.models.EfficientNet`
    (jax or numpy leaves). Returns ``{op name: {"weight": float32, "bias": float32 [out]}}`` in
    CMSIS-NN layouts: conv OHWI, depthwise ``(1, kh, kw, C)``, dense ``(out, in)``.
    ``w' = w · γ/√(σ² + ε)`` per output channel, ``b' = β + (b − μ) · γ/√(σ² + ε)``.
    """
    if bn_epsilon is None:
        from tinyjax.models import BN_EPSILON as bn_epsilon  # noqa: N811
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise QuantizationError("variables must be a mapping with 'params' (and 'batch_stats')")
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    graph = graph_from_spec(spec)
    bn_names = _bn_of(spec)
    out: Dict[str, Dict[str, np.ndarray]] = {}
    for op in graph.ops:
        if op.kind not in ("conv", "depthwise_conv", "dense"):
            continue
        path = tuple(op.name.split("/"))
        kernel = _get(params, path + ("kernel",), "kernel")
        n_out = op.out_channels
        try:
            bias = _get(params, path + ("bias",), "bias")
        except QuantizationError:
            bias = np.zeros(n_out)
        if op.kind == "dense":
            w = kernel.T                                   # [in, out] -> (out, in)
        elif op.kind == "conv":
            w = kernel.transpose(3, 0, 1, 2)               # HWIO -> OHWI
        else:
            w = kernel.transpose(2, 0, 1, 3)               # [k, k, 1, C] -> (1, k, k, C)
        if w.shape != op.weight_shape:
            raise QuantizationError(f"{op.name}: kernel of shape {kernel.shape} does not fit the "
                                    f"graph's {op.weight_shape}")
        if op.name in bn_names:
            bn = tuple(bn_names[op.name].split("/"))
            gamma = _get(params, bn + ("scale",), "BatchNorm scale")
            beta = _get(params, bn + ("bias",), "BatchNorm bias")
            mean = _get(stats, bn + ("mean",), "BatchNorm running mean")
            var = _get(stats, bn + ("var",), "BatchNorm running variance")
            k = gamma / np.sqrt(var + float(bn_epsilon))
            w = w * (k if op.kind == "depthwise_conv" else k.reshape((-1,) + (1,) * (w.ndim - 1)))
            bias = beta + (bias - mean) * k
        out[op.name] = {"weight": w.astype(np.float32), "bias": bias.astype(np.float32)}
    return out


# -- float kernels (shared by run_float and the fake-quantised simulation) ---------------------------

def _pad_hw(x: np.ndarray, ph: int, pw: int, oh: int, ow: int, kh: int, kw: int, sh: int, sw: int,
            value: float = 0.0) -> np.ndarray:
    n, h, w, c = x.shape
    need_h = max((oh - 1) * sh + kh, ph + h)
    need_w = max((ow - 1) * sw + kw, pw + w)
    xp = np.full((n, need_h, need_w, c), value, dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w] = x
    return xp


def _taps(xp, kh, kw, oh, ow, sh, sw):
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]


def _out_hw(op: Op, h: int, w: int) -> Tuple[int, int, int, int, int, int, int, int]:
    kh, kw = op.attr("kernel")
    sh, sw = op.attr("stride")
    ph, pw = op.attr("padding")
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1, kh, kw, sh, sw, ph, pw


def float_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, op: Op) -> np.ndarray:
    """Float conv, OHWI weights, symmetric zero padding, in ``x``'s float dtype."""
    n, h, wd, cin = x.shape
    oh, ow, kh, kw, sh, sw, ph, pw = _out_hw(op, h, wd)
    cout = w.shape[0]
    w = w.astype(x.dtype)
    if kh == kw == 1 and ph == pw == 0:
        y = x[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw, :] @ w[:, 0, 0, :].T
    else:
        xp = _pad_hw(x, ph, pw, oh, ow, kh, kw, sh, sw)
        patches = np.stack([t for _, _, t in _taps(xp, kh, kw, oh, ow, sh, sw)], axis=3)
        y = (patches.reshape(n * oh * ow, kh * kw * cin) @ w.reshape(cout, -1).T).reshape(
            n, oh, ow, cout)
    return y + b.astype(x.dtype)


def float_depthwise(x: np.ndarray, w: np.ndarray, b: np.ndarray, op: Op) -> np.ndarray:
    n, h, wd, c = x.shape
    oh, ow, kh, kw, sh, sw, ph, pw = _out_hw(op, h, wd)
    m = op.attr("ch_mult", 1)
    if m > 1:
        x = np.repeat(x, m, axis=3)
    xp = _pad_hw(x, ph, pw, oh, ow, kh, kw, sh, sw)
    w = w.astype(x.dtype)
    y = np.zeros((n, oh, ow, c * m), x.dtype)
    for i, j, t in _taps(xp, kh, kw, oh, ow, sh, sw):
        y += t * w[0, i, j]
    return y + b.astype(x.dtype)


def float_avg_pool(x: np.ndarray, op: Op) -> np.ndarray:
    """Average over the cells inside the input (padding is not counted, as in arm_avgpool_s8)."""
    n, h, wd, c = x.shape
    oh, ow, kh, kw, sh, sw, ph, pw = _out_hw(op, h, wd)
    if (kh, kw, ph, pw) == (h, wd, 0, 0) and oh == ow == 1:
        return x.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(x.dtype)
    xp = _pad_hw(x, ph, pw, oh, ow, kh, kw, sh, sw)
    ones = _pad_hw(np.ones((1, h, wd, 1), x.dtype), ph, pw, oh, ow, kh, kw, sh, sw)
    total = np.zeros((n, oh, ow, c), x.dtype)
    count = np.zeros((1, oh, ow, 1), x.dtype)
    for (_, _, t), (_, _, o) in zip(_taps(xp, kh, kw, oh, ow, sh, sw),
                                    _taps(ones, kh, kw, oh, ow, sh, sw)):
        total += t
        count += o
    return total / count


def float_pad(x: np.ndarray, op: Op, value: float = 0.0) -> np.ndarray:
    (t, b), (l, r) = op.attr("padding")
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _reshape(x: np.ndarray, graph: Graph, op: Op) -> np.ndarray:
    return x.reshape((x.shape[0],) + tuple(graph.tensor(op.output).shape[1:]))


def _check_input(graph: Graph, x: np.ndarray) -> None:
    want = graph.tensor(graph.inputs[0]).shape
    if x.ndim != len(want) or tuple(x.shape[1:]) != tuple(want[1:]):
        raise QuantizationError(f"input of shape {tuple(x.shape)} does not fit the graph's "
                                f"(N,{','.join(map(str, want[1:]))})")


def _weights(params: Mapping[str, Any], op: Op) -> Tuple[np.ndarray, np.ndarray]:
    if op.name not in params:
        raise QuantizationError(f"no parameters for op {op.name}")
    p = params[op.name]
    w = np.asarray(p["weight"])
    if tuple(w.shape) != op.weight_shape:
        raise QuantizationError(f"{op.name}: weight of shape {w.shape}, the graph expects "
                                f"{op.weight_shape}")
    b = p.get("bias")
    b = np.zeros(op.out_channels) if b is None else np.asarray(b)
    return w, b


def run_float(graph: Graph, params: Mapping[str, Any], x) -> Dict[str, np.ndarray]:
    """Float32 forward pass of ``graph`` with float ``params`` (:func:`fold_batchnorm`).

    ``x``: float NHWC batch of any N (graph shapes say N = 1). Returns ``{tensor name: array}``
    for every tensor, the input included; the logits are ``out[graph.outputs[0]]``.
    """
    x = np.asarray(x, dtype=np.float32)
    _check_input(graph, x)
    env: Dict[str, np.ndarray] = {graph.inputs[0]: x}
    for op in graph.ops:
        ins = [env[t] for t in op.inputs]
        k = op.kind
        if k in ("conv", "depthwise_conv", "dense"):
            w, b = _weights(params, op)
            if k == "conv":
                y = float_conv(ins[0], w, b, op)
            elif k == "depthwise_conv":
                y = float_depthwise(ins[0], w, b, op)
            else:
                y = ins[0].reshape(ins[0].shape[0], -1) @ w.astype(np.float32).T + b.astype(np.float32)
            y = _clamp_act(y, op.attr("act"))
        elif k == "add":
            y = _clamp_act(ins[0] + ins[1], op.attr("act", "none"))
        elif k == "avg_pool":
            y = float_avg_pool(ins[0], op)
        elif k == "lut":
            y = LUT_FUNCTIONS[_lut_fn(op)](ins[0])
        elif k == "channel_mul":
            y = ins[0] * ins[1]
        elif k == "pad":
            y = float_pad(ins[0], op)
        elif k == "reshape":
            y = _reshape(ins[0], graph, op)
        else:
            raise QuantizationError(f"op {op.name}: kind {k!r} has no float implementation")
        env[op.output] = np.asarray(y, dtype=np.float32)
    return env


def _lut_fn(op: Op) -> str:
    fn = op.attr("fn")
    if fn not in LUT_FUNCTIONS:
        raise QuantizationError(f"op {op.name}: no lookup table for {fn!r}; expected one of "
                                f"{', '.join(LUT_FUNCTIONS)}")
    return fn


# -- calibration ------------------------------------------------------------------------------------

def calibrate(graph: Graph, params: Mapping[str, Any], batches: Iterable[Any],
              method: str = "minmax", percentile: float = 99.99
              ) -> Dict[str, Tuple[float, float]]:
    """Float range ``(lo, hi)`` of every tensor of ``graph`` over float NHWC ``batches``.

    ``method="minmax"``: the smallest and largest value seen. ``"percentile"``: per batch the
    ``100 − percentile`` and ``percentile`` percentiles of each tensor, averaged over batches
    (the minimum and maximum are the limits of what is averaged; with one batch it is the
    exact percentile). A batch may be an array or a dict with an ``"image"`` entry.
    """
    if method not in ("minmax", "percentile"):
        raise QuantizationError(f"unknown calibration method {method!r}; use minmax or percentile")
    if not 50.0 < float(percentile) <= 100.0:
        raise QuantizationError(f"percentile must be within (50, 100], got {percentile}")
    lo: Dict[str, float] = {}
    hi: Dict[str, float] = {}
    count = 0
    for batch in batches:
        if isinstance(batch, Mapping):
            batch = batch["image"]
        env = run_float(graph, params, batch)
        for name, v in env.items():
            if method == "minmax":
                a, b = float(v.min()), float(v.max())
                lo[name] = min(lo.get(name, a), a)
                hi[name] = max(hi.get(name, b), b)
            else:
                a, b = np.percentile(v, [100.0 - percentile, percentile])
                lo[name] = lo.get(name, 0.0) + float(a)
                hi[name] = hi.get(name, 0.0) + float(b)
        count += 1
    if count == 0:
        raise QuantizationError("calibration needs at least one batch")
    if method == "percentile":
        return {k: (lo[k] / count, hi[k] / count) for k in lo}
    return {k: (lo[k], hi[k]) for k in lo}


# -- quantisation -----------------------------------------------------------------------------------

def _f32(v: float) -> float:
    return float(np.float32(v))


def choose_quant(lo: float, hi: float) -> QuantInfo:
    """Asymmetric int8 quantisation of the float range ``[lo, hi]`` widened to contain 0:
    ``scale = (hi − lo) / 255`` (float32), ``zero_point = round(−128 − lo / scale)``."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise QuantizationError(f"range [{lo}, {hi}] is not finite")
    if hi - lo <= 1e-12:       # a constant-zero tensor: any scale represents it
        hi = lo + 1.0
    scale = _f32((hi - lo) / 255.0)
    zp = int(intops.round_half_away(intops.INT8_MIN - lo / scale))
    return QuantInfo(scale, max(intops.INT8_MIN, min(intops.INT8_MAX, zp)))


def activation_range(act: str, q: QuantInfo) -> Tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` for int8: the clamp ``[act_min, act_max]``
    of a fused ReLU / ReLU6 in the output's int8 domain."""
    lo, hi = intops.INT8_MIN, intops.INT8_MAX

    def code(real: float) -> int:
        return q.zero_point + int(intops.round_half_away(real / q.scale))

    if act == "none":
        return lo, hi
    if act == "relu":
        return max(lo, code(0.0)), hi
    if act == "relu6":
        return max(lo, code(0.0)), min(hi, code(6.0))
    raise QuantizationError(f"unknown fused activation {act!r}; expected none, relu or relu6")


@dataclass(frozen=True)
class QuantizedModel:
    """A quantised graph (every tensor has a :class:`QuantInfo`) and its int8/int32 parameters
    (``{op name: {field: numpy array}}``, see the module docstring). A JAX pytree whose leaves
    are the parameter arrays."""

    graph: Graph
    params: Dict[str, Dict[str, np.ndarray]]

    def quant(self, tensor: str) -> QuantInfo:
        return self.graph.tensor(tensor).quant

    def tree_flatten(self):
        return (self.params,), self.graph

    @classmethod
    def tree_unflatten(cls, graph, children):
        return cls(graph, children[0])


def _register_pytree() -> None:
    import jax

    jax.tree_util.register_pytree_node(QuantizedModel, QuantizedModel.tree_flatten,
                                       QuantizedModel.tree_unflatten)


_register_pytree()


def _i32(v) -> np.ndarray:
    return np.asarray(v, dtype=np.int32)


def _symmetric(w: np.ndarray, axis_max: np.ndarray) -> np.ndarray:
    """Symmetric int8 scale(s) ``max|w| / 127`` (float32); an all-zero channel gets 1/127."""
    s = np.where(axis_max > 0, axis_max / 127.0, 1.0 / 127.0)
    return s.astype(np.float32)


def _quant_bias(b: np.ndarray, s_in: float, s_w: np.ndarray) -> np.ndarray:
    q = intops.round_half_away(np.asarray(b, np.float64) / (np.float64(s_in) * s_w.astype(np.float64)))
    return np.clip(q, intops.INT32_MIN, intops.INT32_MAX).astype(np.int32)


def _multipliers(real: np.ndarray, op: Op) -> Tuple[np.ndarray, np.ndarray]:
    mult, shift = intops.quantize_multiplier_per_channel(real)
    if shift.size and shift.max() > 31:
        raise QuantizationError(f"op {op.name}: rescale factor {float(np.max(real)):.3g} is too "
                                "large for a Q31 multiplier (is the output range degenerate?)")
    return mult, shift


def _tensor_quant(graph: Graph, ranges: Mapping[str, Tuple[float, float]]) -> Dict[str, QuantInfo]:
    quant: Dict[str, QuantInfo] = {}

    def from_range(name: str) -> QuantInfo:
        if name not in ranges:
            raise QuantizationError(f"no calibrated range for tensor {name!r}")
        lo, hi = ranges[name]
        return choose_quant(lo, hi)

    for name in graph.inputs:
        quant[name] = from_range(name)
    for op in graph.ops:
        if op.kind in SAME_QUANT_KINDS:
            q = quant[op.inputs[0]]
        elif op.kind == "lut" and op.attr("fn") == "sigmoid":
            q = SIGMOID_QUANT
        else:
            q = from_range(op.output)
        for t in op.outputs:
            quant[t] = q
    return quant


def quantize(graph: Graph, params: Mapping[str, Any], ranges: Mapping[str, Tuple[float, float]]
             ) -> QuantizedModel:
    """Quantise ``graph`` with float ``params`` (:func:`fold_batchnorm`) and calibrated
    ``ranges`` (:func:`calibrate`). See the module docstring for what the result holds."""
    quant = _tensor_quant(graph, ranges)
    qparams: Dict[str, Dict[str, np.ndarray]] = {}
    for op in graph.ops:
        k = op.kind
        q_in = quant[op.inputs[0]]
        q_out = quant[op.output]
        if k in ("conv", "depthwise_conv", "dense"):
            w, b = _weights(params, op)
            w = np.asarray(w, np.float64)
            act_min, act_max = activation_range(op.attr("act", "none"), q_out)
            if k == "dense":
                s_w = _symmetric(w, np.abs(w).max())
                real = np.float64(q_in.scale) * np.float64(s_w) / np.float64(q_out.scale)
                mult, shift = _multipliers(np.asarray([real]), op)
                qw = np.clip(intops.round_half_away(w / np.float64(s_w)), -127, 127).astype(np.int8)
                qparams[op.name] = {
                    "weight": qw, "bias": _quant_bias(b, q_in.scale, np.asarray(s_w)),
                    "multiplier": _i32(mult[0]), "shift": _i32(shift[0]),
                    "weight_scale": np.asarray(s_w, np.float32),
                    "input_offset": _i32(-q_in.zero_point), "filter_offset": _i32(0),
                    "output_offset": _i32(q_out.zero_point),
                    "act_min": _i32(act_min), "act_max": _i32(act_max)}
                continue
            if k == "conv":
                s_w = _symmetric(w, np.abs(w).reshape(w.shape[0], -1).max(axis=1))
                scale_b = s_w.reshape(-1, 1, 1, 1).astype(np.float64)
            else:
                s_w = _symmetric(w, np.abs(w).reshape(-1, w.shape[3]).max(axis=0))
                scale_b = s_w.astype(np.float64)
            real = np.float64(q_in.scale) * s_w.astype(np.float64) / np.float64(q_out.scale)
            mult, shift = _multipliers(real, op)
            qw = np.clip(intops.round_half_away(w / scale_b), -127, 127).astype(np.int8)
            qparams[op.name] = {
                "weight": qw, "bias": _quant_bias(b, q_in.scale, s_w),
                "multiplier": mult.astype(np.int32), "shift": shift.astype(np.int32),
                "weight_scale": s_w,
                "input_offset": _i32(-q_in.zero_point), "output_offset": _i32(q_out.zero_point),
                "act_min": _i32(act_min), "act_max": _i32(act_max)}
        elif k == "add":
            q2 = quant[op.inputs[1]]
            p = intops.add_quant_params(q_in.scale, q_in.zero_point, q2.scale, q2.zero_point,
                                        q_out.scale, q_out.zero_point)
            act_min, act_max = activation_range(op.attr("act", "none"), q_out)
            qparams[op.name] = {**{f: _i32(v) for f, v in p._asdict().items()},
                                "act_min": _i32(act_min), "act_max": _i32(act_max)}
        elif k == "channel_mul":
            q2 = quant[op.inputs[1]]
            p = intops.mul_quant_params(q_in.scale, q_in.zero_point, q2.scale, q2.zero_point,
                                        q_out.scale, q_out.zero_point)
            qparams[op.name] = {**{f: _i32(v) for f, v in p._asdict().items()},
                                "act_min": _i32(intops.INT8_MIN), "act_max": _i32(intops.INT8_MAX)}
        elif k == "lut":
            fn = LUT_FUNCTIONS[_lut_fn(op)]
            qparams[op.name] = {"table": intops.make_lut(fn, q_in.scale, q_in.zero_point,
                                                         q_out.scale, q_out.zero_point)}
        elif k == "avg_pool":
            qparams[op.name] = {"act_min": _i32(intops.INT8_MIN), "act_max": _i32(intops.INT8_MAX)}
        elif k == "pad":
            qparams[op.name] = {"pad_value": _i32(q_in.zero_point)}
        elif k == "reshape":
            qparams[op.name] = {}
        else:
            raise QuantizationError(f"op {op.name}: the int8 quantiser cannot handle kind {k!r}")
    try:
        qgraph = graph.with_quant(quant)
    except GraphError as e:
        raise QuantizationError(str(e)) from None
    return QuantizedModel(qgraph, qparams)


def quantize_input(qmodel: QuantizedModel, x) -> np.ndarray:
    """Float NHWC images -> int8 with the quantisation of the graph input."""
    x = np.asarray(x)
    _check_input(qmodel.graph, x)
    q = qmodel.quant(qmodel.graph.inputs[0])
    return intops.quantize(x, q.scale, q.zero_point)
