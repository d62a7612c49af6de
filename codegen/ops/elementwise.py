"""The elementwise op kinds: ``add`` (residual), ``channel_mul`` (squeeze-excite gate) and ``lut``
(a 256-entry table activation). Each may write its output over an input whose last reader it is.

* ``add`` (``act``): ``arm_elementwise_add_s8`` with TFLite's parameters, left shift 20 (inputs:
  branch first, shortcut second; the planner prefers overwriting the shortcut). Flash: 12 int32
  (two input offsets, multipliers and shifts; left shift; output offset, multiplier, shift; the
  activation clamp) = 48 bytes.
* ``channel_mul``: ``inputs[0]`` ``(1, H, W, C)`` times the gate ``inputs[1]`` ``(1, 1, 1, C)``,
  ``tjx_channel_mul_s8``. Flash: 7 int32 = 28 bytes.
* ``lut`` (``fn``: ``silu`` | ``sigmoid`` | ``hard_swish``): ``tjx_lut_s8``, one int8 entry per int8
  input (256 bytes of flash). A sigmoid's output quantisation is TFLite's fixed ``(1/256, −128)``.
"""

from __future__ import annotations

import numpy as np

from tinyjax.codegen.numerics import fixedpoint, floatref, pointwise
from tinyjax.codegen.numerics.fakequant import fake_requantize, requant_right_shift
from tinyjax.codegen.numerics.quantmath import SIGMOID_QUANT, activation_range, i32
from tinyjax.codegen.ops.base import OpKind, scalar
from tinyjax.errors import GraphError, QuantizationError


class Add(OpKind):
    name = "add"
    patch = "pointwise"

    def infer_shape(self, op, in_shapes, declared=None):
        if in_shapes[0] != in_shapes[1]:
            raise GraphError(f"op {op.name}: adds {in_shapes[0]} and {in_shapes[1]}")
        return tuple(in_shapes[0])

    def run_float(self, op, ins, params, out_shape):
        return floatref.clamp_act(ins[0] + ins[1], op.attr("act", "none"))

    def quantize(self, op, q_ins, q_out, params):
        (q1, q2) = q_ins
        p = pointwise.add_quant_params(q1.scale, q1.zero_point, q2.scale, q2.zero_point,
                                    q_out.scale, q_out.zero_point)
        act_min, act_max = activation_range(op.attr("act", "none"), q_out)
        return {**{f: i32(v) for f, v in p._asdict().items()},
                "act_min": i32(act_min), "act_max": i32(act_max)}

    def run_int8(self, op, p, ins, out_shape):
        fields = {f: scalar(p[f]) for f in pointwise.AddParams._fields}
        return pointwise.elementwise_add_s8(ins[0], ins[1], **fields, act_min=scalar(p["act_min"]),
                                         act_max=scalar(p["act_max"]))

    def fake_quant(self, sim, op, p, ins, out_shape):
        # Each input, in steps of its own grid, is rescaled to the common grid
        # 2·max(s1, s2)·2^-L with that rescale's double rounding; the sum of the two rounded
        # values is rescaled to the output with its double rounding; clamp.
        a_name, b_name = op.inputs
        s1, s2, s_out = sim.scale(a_name), sim.scale(b_name), sim.scale(op.output)
        left = np.float64(2.0 ** scalar(p["left_shift"]))
        twice_max = 2.0 * max(s1, s2)
        r1, r2, r_out = s1 / twice_max, s2 / twice_max, twice_max / (left * s_out)
        a = fake_requantize(sim.steps(a_name, ins[0]) * left * r1, requant_right_shift(r1))
        c = fake_requantize(sim.steps(b_name, ins[1]) * left * r2, requant_right_shift(r2))
        n = fake_requantize((a + c) * r_out, requant_right_shift(r_out))
        return sim.out(op.output, n, scalar(p["act_min"]), scalar(p["act_max"]))

    def in_place_inputs(self, op, prefer_shortcut=True):
        return (op.inputs[1], op.inputs[0]) if prefer_shortcut else tuple(op.inputs)

    def kernel(self, op, in_shape, out_shape, path, in_place=False):
        return "arm_elementwise_add_s8", "arm_elementwise_add_s8", 0

    def flash_bytes(self, op):
        return 12 * 4

    def c_call(self, op, p, c):
        a, b = op.inputs
        v = {f: scalar(p[f]) for f in pointwise.AddParams._fields}
        size = c.size_of(op.output)
        return (f"arm_elementwise_add_s8({c.ptr(a)}, {c.ptr(b)}, {v['in1_offset']}, {v['in1_mult']}, "
                f"{v['in1_shift']}, {v['in2_offset']}, {v['in2_mult']}, {v['in2_shift']}, {v['left_shift']}, "
                f"{c.ptr(op.output)}, {v['out_offset']}, {v['out_mult']}, {v['out_shift']}, "
                f"{scalar(p['act_min'])}, {scalar(p['act_max'])}, {size})")


class ChannelMul(OpKind):
    name = "channel_mul"

    def infer_shape(self, op, in_shapes, declared=None):
        x, g = in_shapes
        if tuple(g) != (x[0], 1, 1, x[3]):
            raise GraphError(f"op {op.name}: gate {g} does not match {x}")
        return tuple(x)

    def run_float(self, op, ins, params, out_shape):
        return ins[0] * ins[1]

    def quantize(self, op, q_ins, q_out, params):
        (q1, q2) = q_ins
        p = pointwise.mul_quant_params(q1.scale, q1.zero_point, q2.scale, q2.zero_point,
                                    q_out.scale, q_out.zero_point)
        return {**{f: i32(v) for f, v in p._asdict().items()},
                "act_min": i32(fixedpoint.INT8_MIN), "act_max": i32(fixedpoint.INT8_MAX)}

    def run_int8(self, op, p, ins, out_shape):
        fields = {f: scalar(p[f]) for f in pointwise.MulParams._fields}
        return pointwise.elementwise_mul_s8(ins[0], ins[1], **fields, act_min=scalar(p["act_min"]),
                                         act_max=scalar(p["act_max"]))

    def fake_quant(self, sim, op, p, ins, out_shape):
        # x·g / s_out with the double rounding of the real factor s_x·s_g/s_out
        s_out = sim.scale(op.output)
        real = sim.scale(op.inputs[0]) * sim.scale(op.inputs[1]) / s_out
        n = fake_requantize(ins[0] * ins[1] / s_out, requant_right_shift(real))
        return sim.out(op.output, n, scalar(p["act_min"]), scalar(p["act_max"]))

    def in_place_inputs(self, op, prefer_shortcut=True):
        return op.inputs[:1]

    def kernel(self, op, in_shape, out_shape, path, in_place=False):
        return "tjx_channel_mul_s8", "tjx_channel_mul_s8", 0

    def flash_bytes(self, op):
        return 7 * 4

    def c_call(self, op, p, c):
        x, g = op.inputs
        v = {f: scalar(p[f]) for f in pointwise.MulParams._fields}
        return (f"tjx_channel_mul_s8({c.ptr(x)}, {c.ptr(g)}, {v['in1_offset']}, {v['in2_offset']}, "
                f"{c.ptr(op.output)}, {v['out_offset']}, {v['out_mult']}, {v['out_shift']}, "
                f"{scalar(p['act_min'])}, {scalar(p['act_max'])}, {c.dims_of(x)})")


class Lut(OpKind):
    name = "lut"
    patch = "pointwise"

    @staticmethod
    def function(op, error=QuantizationError):
        fn = op.attr("fn")
        if fn not in floatref.LUT_FUNCTIONS:
            raise error(f"op {op.name}: no lookup table for {fn!r}; expected one of "
                        f"{', '.join(floatref.LUT_FUNCTIONS)}")
        return floatref.LUT_FUNCTIONS[fn]

    def infer_shape(self, op, in_shapes, declared=None):
        self.function(op, GraphError)
        return tuple(in_shapes[0])

    def forced_quant(self, op):
        return SIGMOID_QUANT if op.attr("fn") == "sigmoid" else None

    def run_float(self, op, ins, params, out_shape):
        return self.function(op)(ins[0])

    def quantize(self, op, q_ins, q_out, params):
        q_in = q_ins[0]
        return {"table": pointwise.make_lut(self.function(op), q_in.scale, q_in.zero_point,
                                         q_out.scale, q_out.zero_point)}

    def run_int8(self, op, p, ins, out_shape):
        return pointwise.lut_s8(ins[0], p["table"])

    def fake_quant(self, sim, op, p, ins, out_shape):
        # the function of the exactly dequantised input, quantised once (the table entry)
        x = sim.steps(op.inputs[0], ins[0]) * sim.scale(op.inputs[0])
        return sim.fake(op.output, self.function(op)(x))

    def in_place_inputs(self, op, prefer_shortcut=True):
        return op.inputs[:1]

    def kernel(self, op, in_shape, out_shape, path, in_place=False):
        return "tjx_lut_s8", "tjx_lut_s8", 0

    def flash_bytes(self, op):
        return 256

    def c_call(self, op, p, c):
        table = c.array("table", p["table"], "int8_t")
        x = op.inputs[0]
        return f"tjx_lut_s8({c.ptr(x)}, {table}, {c.ptr(op.output)}, {c.size_of(x)})"


KINDS = (Add(), ChannelMul(), Lut())
