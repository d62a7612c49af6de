"""The integer reference interpreter (the golden model of the generated C) and its float twin.

:func:`run_int8` executes a :class:`~tinyjax.codegen.quant.quantize.QuantizedModel` op by op with the
CMSIS-NN-exact kernels of :mod:`tinyjax.codegen.numerics.intops`, one kernel call per op, with exactly the
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

Each op kind's integer kernel call and its simulation are methods of its record in the op table
(:mod:`tinyjax.codegen.ops`, ``run_int8`` and ``fake_quant``); the rounding helpers are in
:mod:`tinyjax.codegen.numerics.fakequant`. This module runs them over a graph.

Why: the integer model rounds every rescale twice and the average in the code domain; a float
simulation that rounds the exact real value once lands one step away on ~0.3% of elements, and
end to end those steps cascade through a deep network. With the kernels' rounding rules the
simulation differs from :func:`run_int8` only where the Q31 approximation of a real multiplier
(relative error ≤ 2^-31) or float64 summation noise moves a value across a rounding boundary —
on the test models and batches, nowhere at all. It stays independent of the integer path: real
scales instead of Q31 multipliers, float sums instead of int32 accumulators, no
:mod:`~tinyjax.codegen.numerics.intops` kernel; it is still the float model up to quantisation (tests
check its predictions and error against :func:`~tinyjax.codegen.quant.quantize.run_float`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tinyjax.codegen.graph import Op
from tinyjax.codegen.numerics import fixedpoint
from tinyjax.codegen.numerics.fakequant import Simulation, fake_requantize, requant_right_shift
from tinyjax.codegen.ops import OPS
from tinyjax.codegen.quant.quantize import QuantizedModel, quantize_input
from tinyjax.errors import QuantizationError

__all__ = ["dequantize_tensor", "fake_quant_op", "fake_requantize", "predict", "requant_right_shift",
           "run_fake_quant", "run_int8", "run_int8_patched"]


def _check(qmodel: QuantizedModel, x: np.ndarray, dtype) -> None:
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationError("expected a QuantizedModel (from tinyjax.codegen.quant.quantize.quantize)")
    want = qmodel.graph.tensor(qmodel.graph.inputs[0]).shape
    if x.ndim != len(want) or tuple(x.shape[1:]) != tuple(want[1:]):
        raise QuantizationError(f"input of shape {tuple(x.shape)} does not fit the graph's "
                                f"(N,{','.join(map(str, want[1:]))})")
    if dtype is np.int8 and x.dtype != np.int8:
        raise QuantizationError(f"run_int8 takes an int8 input, got {x.dtype} (use quantize_input)")


def _record(op: Op):
    rec = OPS.get(op.kind)
    if rec is None:
        raise QuantizationError(f"op {op.name}: the interpreter cannot run kind {op.kind!r}")
    return rec


def run_int8(qmodel: QuantizedModel, x_int8) -> dict[str, np.ndarray]:
    """Run the quantised graph on an int8 NHWC batch (any N). Returns ``{tensor name: int8
    array}`` for every tensor, the input included; ``out[qmodel.graph.outputs[0]]`` are the int8
    logits ``(N, classes)`` (dequantise with :func:`dequantize_tensor`)."""
    x = np.asarray(x_int8)
    _check(qmodel, x, np.int8)
    graph = qmodel.graph
    env: dict[str, np.ndarray] = {graph.inputs[0]: x}
    for op in graph.ops:
        y = _record(op).run_int8(op, qmodel.params[op.name], [env[t] for t in op.inputs],
                                 graph.tensor(op.output).shape)
        env[op.output] = np.asarray(y, dtype=np.int8)
    return env


def run_int8_patched(qmodel: QuantizedModel, x_int8, schedule) -> dict[str, np.ndarray]:
    """:func:`run_int8` with a patch schedule (:class:`tinyjax.codegen.plan.patch.PatchSchedule`, or a
    ``PatchPlan``): the stage's ops run once per patch on their regions, each call exactly the
    generated C's (a windowed op with the padding inside the patch and the patch's output dims, an
    add reading its inputs' sub-rectangles); the stage output map is filled patch by patch and the
    rest runs layer by layer. Returns the whole tensors (the input, the stage output and every
    later tensor): they must equal :func:`run_int8`'s bit for bit. The image ``x_int8`` is only
    read, a region per patch, as the C reads the caller's image in either input mode
    (``PatchPlan.input_mode``): the arithmetic does not depend on where the image lives."""
    sch = getattr(schedule, "schedule", schedule)
    x = np.asarray(x_int8)
    _check(qmodel, x, np.int8)
    graph = qmodel.graph
    if sch.graph.ops != graph.ops:
        raise QuantizationError("the patch schedule is not one of this model's graph")
    x_in, y = graph.inputs[0], sch.output
    y_full = np.zeros((x.shape[0],) + graph.tensor(y).shape[1:], np.int8)
    for i, j in sch.patches():
        y0, y1, x0, x1 = sch.region(x_in, i, j)
        env = {x_in: x[:, y0:y1, x0:x1]}
        for op in sch.stage_ops:
            oy0, oy1, ox0, ox1 = sch.region(op.output, i, j)
            ins = []
            for t in op.inputs:
                a = env[t]
                if OPS[op.kind].patch == "pointwise":       # the output's sub-rectangle
                    ty0, _, tx0, _ = sch.region(t, i, j)
                    a = a[:, oy0 - ty0:oy1 - ty0, ox0 - tx0:ox1 - tx0]
                ins.append(a)
            out_shape = (x.shape[0], oy1 - oy0, ox1 - ox0, graph.tensor(op.output).shape[3])
            env[op.output] = np.asarray(_record(op).run_int8(
                sch.patch_op(op, i, j), qmodel.params[op.name], ins, out_shape), np.int8)
        y0, y1, x0, x1 = sch.region(y, i, j)
        y_full[:, y0:y1, x0:x1] = env[y]
    env = {x_in: x, y: y_full}
    for op in graph.ops[sch.n:]:
        out = _record(op).run_int8(op, qmodel.params[op.name], [env[t] for t in op.inputs],
                                   graph.tensor(op.output).shape)
        env[op.output] = np.asarray(out, dtype=np.int8)
    return env


def dequantize_tensor(qmodel: QuantizedModel, name: str, q) -> np.ndarray:
    """Float values (float64) of the int8 codes ``q`` of tensor ``name``."""
    info = qmodel.quant(name)
    return fixedpoint.dequantize(q, info.scale, info.zero_point)


def predict(qmodel: QuantizedModel, x_float) -> np.ndarray:
    """Float images -> :func:`quantize_input` -> :func:`run_int8` -> dequantised logits."""
    out = run_int8(qmodel, quantize_input(qmodel, x_float))
    name = qmodel.graph.outputs[0]
    return dequantize_tensor(qmodel, name, out[name])


# -- the float simulation -------------------------------------------------------------------------

def fake_quant_op(qmodel: QuantizedModel, op: Op, ins) -> np.ndarray:
    """One op of the float simulation: float64 inputs (already on their int8 grids) -> the
    dequantised output (see the module docstring for what each kind models)."""
    return _fake_op(Simulation(qmodel), op, ins)


def _fake_op(sim: Simulation, op: Op, ins) -> np.ndarray:
    qmodel = sim.qmodel
    return _record(op).fake_quant(sim, op, qmodel.params[op.name], ins,
                                  qmodel.graph.tensor(op.output).shape)


def run_fake_quant(qmodel: QuantizedModel, x_float,
                   inputs: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Float (float64) simulation of the quantised model on float NHWC images.

    Returns ``{tensor name: dequantised float array}`` for every tensor. With ``inputs`` (e.g.
    the dequantised tensors of :func:`run_int8`), each op reads those instead of the values
    the simulation computed itself: an op-by-op comparison with the same inputs.
    """
    x = np.asarray(x_float, np.float64)
    _check(qmodel, x, None)
    graph = qmodel.graph
    sim = Simulation(qmodel)
    env: dict[str, np.ndarray] = {graph.inputs[0]: sim.fake(graph.inputs[0], x)}
    for op in graph.ops:
        src = env if inputs is None else inputs
        ins = [np.asarray(src[t], np.float64) for t in op.inputs]
        env[op.output] = _fake_op(sim, op, ins)
    return env
