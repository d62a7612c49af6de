"""Op kinds that move bytes without arithmetic: ``pad`` and ``reshape``. Both keep their input's
quantisation and put nothing in flash.

* ``pad`` (``padding ((top, bottom), (left, right))``): ``tjx_pad_s8``, new cells hold the input
  zero point (real 0).
* ``reshape``: a zero-copy view; the output tensor's shape says it all, so a reshape's shape is
  checked (same size), not inferred.
"""

from __future__ import annotations

import numpy as np

from tinyjax.codegen.numerics.quantmath import i32
from tinyjax.codegen.ops.base import OpKind, scalar
from tinyjax.errors import GraphError


class Pad(OpKind):
    name = "pad"
    same_quant = True

    def infer_shape(self, op, in_shapes, declared=None):
        (top, bottom), (left, right) = op.attr("padding")
        n, h, w, c = in_shapes[0]
        return (n, h + top + bottom, w + left + right, c)

    @staticmethod
    def _pad(op, x, value):
        (top, bottom), (left, right) = op.attr("padding")
        return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)

    def run_float(self, op, ins, params, out_shape):
        return self._pad(op, ins[0], 0.0)

    def quantize(self, op, q_ins, q_out, params):
        return {"pad_value": i32(q_ins[0].zero_point)}

    def run_int8(self, op, p, ins, out_shape):
        return self._pad(op, ins[0], np.int8(scalar(p["pad_value"])))

    def fake_quant(self, sim, op, p, ins, out_shape):
        return self._pad(op, ins[0], 0.0)     # zero point == real 0: stays on the grid

    def kernel(self, op, in_shape, out_shape, path, in_place=False):
        return "tjx_pad_s8", "tjx_pad_s8", 0

    def c_call(self, op, p, c):
        (top, bottom), (left, right) = op.attr("padding")
        before = c.static("cmsis_nn_tile", {"w": left, "h": top})
        after = c.static("cmsis_nn_tile", {"w": right, "h": bottom})
        x, y = op.inputs[0], op.output
        return (f"tjx_pad_s8({c.dims_of(x)}, {c.ptr(x)}, {before}, {after}, {scalar(p['pad_value'])}, "
                f"{c.dims_of(y)}, {c.ptr(y)})")


class Reshape(OpKind):
    name = "reshape"
    same_quant = True
    view = True

    def infer_shape(self, op, in_shapes, declared=None):
        if declared is None:
            raise GraphError(f"op {op.name}: a reshape's shape comes from its output tensor")
        if int(np.prod(in_shapes[0])) != int(np.prod(declared)):
            raise GraphError(f"op {op.name}: reshapes {tuple(in_shapes[0])} to {tuple(declared)}")
        return tuple(declared)

    @staticmethod
    def _view(x, out_shape):
        return x.reshape((x.shape[0],) + tuple(out_shape[1:]))

    def run_float(self, op, ins, params, out_shape):
        return self._view(ins[0], out_shape)

    def quantize(self, op, q_ins, q_out, params):
        return {}

    def run_int8(self, op, p, ins, out_shape):
        return self._view(ins[0], out_shape)

    def fake_quant(self, sim, op, p, ins, out_shape):
        return self._view(ins[0], out_shape)

    def kernel(self, op, in_shape, out_shape, path, in_place=False):
        return None, None, 0

    def c_call(self, op, p, c):
        return None      # the output is the input's bytes


KINDS = (Pad(), Reshape())
