"""The ``avg_pool`` op kind: ``kernel (kh, kw)``, ``stride (sh, sw)``, ``padding (ph, pw)``.

``arm_avgpool_s8`` averages the stored int8 codes (zero point included) over the window cells
inside the input, rounding half away from zero, and does not requantise: the output keeps the
input's quantisation. The global pools before the classifier and inside squeeze-excite are
avg_pools whose window is the whole map. Flash: 4 int32 (input offset, output offset,
multiplier, shift) = 16 bytes; scratch on DSP: one int32 row of sums, ``4 · C`` bytes.
"""

from __future__ import annotations

from tinyjax.codegen.numerics import fixedpoint, floatref, intops
from tinyjax.codegen.numerics.quantmath import i32
from tinyjax.codegen.ops.base import OpKind, scalar, window_hw


class AvgPool(OpKind):
    name = "avg_pool"
    patch = "window"
    same_quant = True
    needs_scratch = True

    def infer_shape(self, op, in_shapes, declared=None):
        n, h, w, c = in_shapes[0]
        return (n,) + window_hw(op, h, w) + (c,)

    def _pool(self, op, x):
        return floatref.avg_pool(x, op.attr("kernel"), op.attr("stride"), op.attr("padding"))

    def run_float(self, op, ins, params, out_shape):
        return self._pool(op, ins[0])

    def quantize(self, op, q_ins, q_out, params):
        return {"act_min": i32(fixedpoint.INT8_MIN), "act_max": i32(fixedpoint.INT8_MAX)}

    def run_int8(self, op, p, ins, out_shape):
        return intops.avgpool_s8(ins[0], op.attr("kernel"), op.attr("stride"), op.attr("padding"),
                                 act_min=scalar(p["act_min"]), act_max=scalar(p["act_max"]),
                                 out_hw=out_shape[1:3])

    def fake_quant(self, sim, op, p, ins, out_shape):
        # the mean of the stored codes q (zero point included), half away from zero: not the
        # mean of the real values, which differs on ties whenever the zero point is not 0
        z = sim.zero_point(op.inputs[0])
        mean_q = self._pool(op, sim.steps(op.inputs[0], ins[0]) + z)
        return sim.out(op.output, fixedpoint.round_half_away(mean_q) - z, scalar(p["act_min"]),
                       scalar(p["act_max"]))

    def kernel(self, op, in_shape, out_shape, path, in_place=False):
        # arm_avgpool_s8_get_buffer_size(output_x, ch_src): DSP ch_src · sizeof(int32_t)
        # (a row of int32 sums), MVE and plain C 0.
        return "arm_avgpool_s8", "arm_avgpool_s8", 4 * in_shape[3] if path == "dsp" else 0

    def flash_bytes(self, op):
        return 4 * 4

    def c_call(self, op, p, c):
        params = c.static("cmsis_nn_pool_params", {
            "stride": c.tile(op.attr("stride")), "padding": c.tile(op.attr("padding")),
            "activation": f"{{.min = {scalar(p['act_min'])}, .max = {scalar(p['act_max'])}}}"})
        kh, kw = op.attr("kernel")
        x, y = op.inputs[0], op.output
        return (f"arm_avgpool_s8({c.context()}, {params}, {c.dims_of(x)}, {c.ptr(x)}, "
                f"{c.dims((1, kh, kw, 1))}, {c.dims_of(y)}, {c.ptr(y)})")


KINDS = (AvgPool(),)
