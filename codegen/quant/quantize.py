"""Post-training int8 quantisation of a deployment graph, TFLite/CMSIS-NN style.

The pipeline, all plain functions over numpy arrays::

    graph = graph_from_spec(spec)
    params = fold_batchnorm(spec, variables)        # float weights in CMSIS layouts, BN folded
    ranges = calibrate(graph, params, batches)      # (lo, hi) of every tensor over float batches
    qmodel = quantize(graph, params, ranges)        # QuantizedModel(graph with QuantInfo, params)
    x_q = quantize_input(qmodel, images)            # int8 NHWC
    outs = tinyjax.codegen.quant.interpreter.run_int8(qmodel, x_q)

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
  256-entry int8 tables (:func:`~tinyjax.codegen.numerics.pointwise.make_lut`);
* add: :func:`~tinyjax.codegen.numerics.pointwise.add_quant_params` (left shift 20); channel_mul (the
  squeeze-excite gate, broadcast over H, W): :func:`~tinyjax.codegen.numerics.pointwise.mul_quant_params`.

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
``add``             :class:`~tinyjax.codegen.numerics.pointwise.AddParams` fields, ``act_min``, ``act_max``
``channel_mul``     :class:`~tinyjax.codegen.numerics.pointwise.MulParams` fields, ``act_min``, ``act_max``
``lut``             ``table`` int8 ``[256]`` (entry ``q + 128``)
``avg_pool``        ``act_min``, ``act_max``
``pad``             ``pad_value`` (the input zero point)
``reshape``         (nothing)
==================  ==========================================================================

Each op kind's parameters come from its record in the op table (:mod:`tinyjax.codegen.ops`);
this module runs the passes: BN folding, the float forward pass, calibration, quantisation.

``weight_scale`` is not a CMSIS-NN argument; it is kept so the float simulation
(:func:`tinyjax.codegen.quant.interpreter.run_fake_quant`) can dequantise the weights.

:class:`QuantizedModel` is a registered JAX pytree: its leaves are the arrays of ``params``
(the graph is static auxiliary data), so ``jax.tree_util.tree_map(f, qmodel)`` returns a
``QuantizedModel`` with the same graph; ``qmodel.params`` alone is an ordinary dict pytree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyjax.codegen.graph import Graph, QuantInfo, graph_from_spec
from tinyjax.codegen.numerics import fixedpoint
from tinyjax.codegen.numerics.quantmath import choose_quant
from tinyjax.codegen.ops import OPS
from tinyjax.errors import GraphError, QuantizationError
from tinyjax.layers import model_layers

__all__ = [
    "QuantizationError",
    "QuantizedModel",
    "calibrate",
    "fold_batchnorm",
    "quantize",
    "quantize_input",
    "quantize_variables",
    "run_float",
]


# -- BN folding -------------------------------------------------------------------------------------

def _get(tree: Any, path: tuple[str, ...], what: str) -> np.ndarray:
    node = tree
    for p in path:
        try:
            node = node[p]
        except (KeyError, TypeError):
            raise QuantizationError(f"the variables lack {'/'.join(path)} ({what}); are they the "
                                    "variables of this spec?") from None
    return np.asarray(node, dtype=np.float64)


def fold_batchnorm(spec, variables: Mapping[str, Any], bn_epsilon: float | None = None
                   ) -> dict[str, dict[str, np.ndarray]]:
    """Float weights of every conv / depthwise_conv / dense op of ``graph_from_spec(spec)``,
    with each BatchNorm folded into the conv before it (which BatchNorm follows which layer is
    :func:`tinyjax.layers.model_layers`' ``bn``).

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
    bn_of = {layer.name: layer.bn for layer in model_layers(spec) if layer.bn}
    out: dict[str, dict[str, np.ndarray]] = {}
    for op in graph.ops:
        rec = OPS[op.kind]
        if not rec.weighted:
            continue
        path = tuple(op.name.split("/"))
        kernel = _get(params, path + ("kernel",), "kernel")
        try:
            bias = _get(params, path + ("bias",), "bias")
        except QuantizationError:
            bias = np.zeros(op.out_channels)
        w = rec.from_flax(kernel)
        if w.shape != op.weight_shape:
            raise QuantizationError(f"{op.name}: kernel of shape {kernel.shape} does not fit the "
                                    f"graph's {op.weight_shape}")
        if op.name in bn_of:
            bn = tuple(bn_of[op.name].split("/"))
            gamma = _get(params, bn + ("scale",), "BatchNorm scale")
            beta = _get(params, bn + ("bias",), "BatchNorm bias")
            mean = _get(stats, bn + ("mean",), "BatchNorm running mean")
            var = _get(stats, bn + ("var",), "BatchNorm running variance")
            k = gamma / np.sqrt(var + float(bn_epsilon))
            w = w * rec.per_channel(k, w.ndim)
            bias = beta + (bias - mean) * k
        out[op.name] = {"weight": w.astype(np.float32), "bias": bias.astype(np.float32)}
    return out


# -- the float forward pass -------------------------------------------------------------------------

def _check_input(graph: Graph, x: np.ndarray) -> None:
    want = graph.tensor(graph.inputs[0]).shape
    if x.ndim != len(want) or tuple(x.shape[1:]) != tuple(want[1:]):
        raise QuantizationError(f"input of shape {tuple(x.shape)} does not fit the graph's "
                                f"(N,{','.join(map(str, want[1:]))})")


def _record(op):
    rec = OPS.get(op.kind)
    if rec is None:
        raise QuantizationError(f"op {op.name}: unknown kind {op.kind!r}")
    return rec


def run_float(graph: Graph, params: Mapping[str, Any], x) -> dict[str, np.ndarray]:
    """Float32 forward pass of ``graph`` with float ``params`` (:func:`fold_batchnorm`).

    ``x``: float NHWC batch of any N (graph shapes say N = 1). Returns ``{tensor name: array}``
    for every tensor, the input included; the logits are ``out[graph.outputs[0]]``.
    """
    x = np.asarray(x, dtype=np.float32)
    _check_input(graph, x)
    env: dict[str, np.ndarray] = {graph.inputs[0]: x}
    for op in graph.ops:
        y = _record(op).run_float(op, [env[t] for t in op.inputs], params.get(op.name),
                                  graph.tensor(op.output).shape)
        env[op.output] = np.asarray(y, dtype=np.float32)
    return env


# -- calibration ------------------------------------------------------------------------------------

def calibrate(graph: Graph, params: Mapping[str, Any], batches: Iterable[Any],
              method: str = "minmax", percentile: float = 99.99
              ) -> dict[str, tuple[float, float]]:
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
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
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


# -- quantisation ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantizedModel:
    """A quantised graph (every tensor has a :class:`QuantInfo`) and its int8/int32 parameters
    (``{op name: {field: numpy array}}``, see the module docstring). A JAX pytree whose leaves
    are the parameter arrays."""

    graph: Graph
    params: dict[str, dict[str, np.ndarray]]

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


def _tensor_quant(graph: Graph, ranges: Mapping[str, tuple[float, float]]) -> dict[str, QuantInfo]:
    """Every tensor's quantisation: calibrated, forced by its kernel (a sigmoid's), or its
    input's (ops that do not rescale)."""
    quant: dict[str, QuantInfo] = {}

    def from_range(name: str) -> QuantInfo:
        if name not in ranges:
            raise QuantizationError(f"no calibrated range for tensor {name!r}")
        lo, hi = ranges[name]
        return choose_quant(lo, hi)

    for name in graph.inputs:
        quant[name] = from_range(name)
    for op in graph.ops:
        rec = _record(op)
        q = quant[op.inputs[0]] if rec.same_quant else rec.forced_quant(op) or from_range(op.output)
        for t in op.outputs:
            quant[t] = q
    return quant


def quantize(graph: Graph, params: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]]
             ) -> QuantizedModel:
    """Quantise ``graph`` with float ``params`` (:func:`fold_batchnorm`) and calibrated
    ``ranges`` (:func:`calibrate`). See the module docstring for what the result holds."""
    quant = _tensor_quant(graph, ranges)
    qparams: dict[str, dict[str, np.ndarray]] = {}
    for op in graph.ops:
        qparams[op.name] = _record(op).quantize(op, [quant[t] for t in op.inputs],
                                                quant[op.output], params.get(op.name))
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
    return fixedpoint.quantize(x, q.scale, q.zero_point)


def quantize_variables(spec, variables: Mapping[str, Any], batches: Iterable[Any],
                       method: str = "minmax", percentile: float = 99.99) -> QuantizedModel:
    """The whole pipeline for a Flax model's ``variables`` (``{"params", "batch_stats"}`` of
    ``EfficientNet(spec)``): :func:`graph_from_spec`, :func:`fold_batchnorm`, :func:`calibrate`
    over the float NHWC ``batches`` (``method``, ``percentile``), :func:`quantize`."""
    graph = graph_from_spec(spec)
    params = fold_batchnorm(spec, variables)
    ranges = calibrate(graph, params, batches, method=method, percentile=percentile)
    return quantize(graph, params, ranges)
