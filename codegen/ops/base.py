"""What an op kind is: the interface every record of the op table implements.

A kind answers, for an :class:`~tinyjax.codegen.graph.Op` of that kind, every question a pass
asks: output shape, weights, MACs, float result, quantised parameters, integer result (the
CMSIS-NN-exact golden model), float simulation of the deployed rounding, kernel and scratch on a
target, flash bytes, and which inputs it may overwrite. Passes iterate a graph and ask the table;
none keeps its own ``if op.kind == …`` chain, so adding an op kind is one new record.

Shapes are tuples (NHWC with N = 1, or ``(1, features)``); byte counts are bytes. Arrays are numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinyjax.errors import GraphError
from tinyjax.shapes import conv_out_size

Shape = tuple[int, ...]
#: ``(function, call, scratch_bytes)``: the function doing the work (``None`` for a zero-copy
#: view), what the generated C calls (a CMSIS-NN wrapper, or the function), the scratch it needs.
KernelRow = tuple[str | None, str | None, int]


class OpKind:
    """One op kind. Subclasses set :attr:`name` and override what applies to them.

    Class attributes:
        name: the kind, as ``Op.kind`` spells it.
        weighted: int8 weights, int32 bias and requantisation (conv, depthwise, dense).
        same_quant: the output keeps the input's quantisation (the op moves or averages codes and
            does not rescale: ``arm_avgpool_s8``, pad, reshape).
        view: the output is its input's bytes seen with another shape (no kernel call).
        needs_scratch: its kernel may ask for a scratch buffer on some path or mode (False: the
            planner never asks :meth:`kernel`, which saves it a lookup per op).
        patch: how an output region maps to input regions, for patch-based inference
            (:mod:`tinyjax.codegen.plan.patch`): ``"window"`` (a sliding window: ``kernel``,
            ``stride``, ``padding`` attributes; the kernel runs on a sub-region with the padding
            that falls inside it), ``"pointwise"`` (the same region of every input), ``None``
            (the op needs its whole input: it ends a patch stage).
    """

    name: str = ""
    weighted: bool = False
    same_quant: bool = False
    view: bool = False
    needs_scratch: bool = False
    patch: str | None = None

    # -- the graph ------------------------------------------------------------------------------
    def infer_shape(self, op, in_shapes: Sequence[Shape], declared: Shape | None = None) -> Shape:
        """The output shape from the input shapes (``declared``: the output tensor's shape as the
        graph states it, which only a reshape needs). Raises :class:`GraphError`."""
        raise NotImplementedError

    def weight_shape(self, op) -> Shape | None:
        """The int8 weight tensor's shape in CMSIS-NN layout, or ``None``."""
        return None

    def out_channels(self, op) -> int | None:
        """Entries of the bias (and per-channel multiplier/shift) of a weighted op, else None."""
        return None

    def macs(self, op, out_shape: Shape) -> int:
        """Multiply-accumulates of one op (0 for ops without weights)."""
        return 0

    # -- float and integer semantics ------------------------------------------------------------
    def run_float(self, op, ins: Sequence[np.ndarray], params: Mapping[str, Any],
                  out_shape: Shape) -> np.ndarray:
        """The float result (``params``: the op's float ``weight``/``bias`` if weighted)."""
        raise NotImplementedError

    def forced_quant(self, op):
        """A fixed output quantisation (``QuantInfo``) the kernel imposes, or ``None``: then the
        output is calibrated (or shares its input's, for :attr:`same_quant` kinds)."""
        return None

    def quantize(self, op, q_ins: Sequence[Any], q_out, params: Mapping[str, Any]
                 ) -> dict[str, np.ndarray]:
        """The op's int8/int32 parameters (``quantize`` module docstring lists them by kind)
        given its tensors' ``QuantInfo`` and its float parameters."""
        raise NotImplementedError

    def run_int8(self, op, p: Mapping[str, np.ndarray], ins: Sequence[np.ndarray],
                 out_shape: Shape) -> np.ndarray:
        """The integer result: exactly what the generated C's kernel call writes."""
        raise NotImplementedError

    def fake_quant(self, sim, op, p: Mapping[str, np.ndarray], ins: Sequence[np.ndarray],
                   out_shape: Shape) -> np.ndarray:
        """The float simulation of :meth:`run_int8` (``sim``: a ``fakequant.Simulation``): the
        dequantised output from float64 inputs that lie on their int8 grids."""
        raise NotImplementedError

    # -- deployment -----------------------------------------------------------------------------
    def in_place_inputs(self, op, prefer_shortcut: bool = True) -> tuple[str, ...]:
        """Inputs whose bytes the output may overwrite (the kernel supports it), in the order the
        planner should try them; ``()`` when the kernel never runs in place."""
        return ()

    def kernel(self, op, in_shape: Shape, out_shape: Shape, path: str, in_place: bool = False
               ) -> KernelRow:
        """The kernel on a CMSIS-NN code ``path`` (``"dsp"``, ``"mve"``, ``"plain"``)."""
        raise NotImplementedError

    def flash_bytes(self, op) -> int:
        """Constant bytes of the op in flash (weights, biases, requantisation parameters)."""
        return 0

    def c_call(self, op, p: Mapping[str, np.ndarray], c) -> str | None:
        """The C expression of the op's kernel call in the generated ``<prefix>_model.c`` (an
        ``arm_cmsis_nn_status``), or ``None`` for a view, which calls nothing.

        ``p``: the op's quantised parameters. ``c``: the writer of the call
        (:class:`tinyjax.codegen.emit.CallWriter`): ``c.ptr(tensor)`` is the tensor's address
        in the arena, ``c.dims(shape)`` / ``c.tile(pair)`` / ``c.static(ctype, init)`` the
        address of a ``static const`` object of the model file, ``c.array(field, values,
        ctype)`` the name of a constant array in flash (``<prefix>_weights.c``),
        ``c.context()`` the address of the op's scratch ``cmsis_nn_context`` and ``c.in_place``
        whether the plan runs the op over its input.
        """
        raise NotImplementedError(f"no C call for op kind {self.name!r}")


def scalar(v) -> int:
    """A 0-d parameter array as a Python int."""
    return int(np.asarray(v))


def window_hw(op, h: int, w: int) -> tuple[int, int]:
    """Output ``(out_h, out_w)`` of a windowed op (conv, depthwise, avg_pool) on an ``h × w``
    input, from its ``kernel``, ``stride`` and ``padding`` attributes."""
    (kh, kw), (sh, sw), (ph, pw) = op.attr("kernel"), op.attr("stride"), op.attr("padding")
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise GraphError(f"op {op.name}: a {h}x{w} input is too small for kernel {kh}x{kw}")
    return oh, ow
