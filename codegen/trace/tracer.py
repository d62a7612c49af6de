"""The int8 deployment graph read out of ``jax.make_jaxpr`` of a float Flax model.

:func:`trace` lowers ``jax.make_jaxpr(model.apply)(variables, x)`` (inference, ``train=False``)
into the :class:`~tinyjax.codegen.graph.Graph` IR and returns the batch-norm-folded float weights
of every conv, depthwise conv and dense op, evaluated from the real variables. :func:`trace_graph`
needs no values and compiles nothing: it lowers the jaxpr of ``model.init_with_output(key, x)``
with abstract inputs, whose forward pass is the same inference function, tagging each variable
``init`` creates with its path as ``apply`` would see it (one trace instead of ``eval_shape`` of
``init`` plus a trace of ``apply``, where Flax re-derives every parameter's shape: about half the
time). For a :class:`~tinyjax.models.EfficientNet` the graph equals ``graph_from_spec(spec)``.

How the jaxpr is read:

* Nested jaxprs (``jit``, ``closed_call``, ``custom_jvp_call``, ``custom_vjp_call``, ``remat``) are
  inlined; inner name stacks are appended to the caller's.
* Every value is either a *constant* (computed from parameters and literals only; evaluated with
  numpy when values are known) or an *activation* (depends on the image); both are the symbolic
  values of :mod:`~tinyjax.codegen.trace.values`. Activations are kept as
  small lazy expressions over the output tensor of an op (per-channel affine maps, clamps,
  ``logistic``, shape views) and turned into a tensor only where a kernel reads them: then an
  affine chain folds into the weights and bias of the conv/depthwise/dense op that produced the
  tensor (inference BatchNorm, biases), and a ``[0, ∞)`` / ``[0, 6]`` clamp becomes the producing
  op's ``act``. Keeping them lazy is what lets ``x · logistic(x)`` (SiLU) and
  ``x · relu6(x + 3) / 6`` (hard-swish) be recognised as lookup-table ops.
* Each primitive on an activation goes to its handler in :mod:`~tinyjax.codegen.trace.handlers`
  (``conv_general_dilated``: conv or depthwise conv; ``dot_general``: 1×1 conv or dense;
  ``reduce_sum`` over H, W: global ``avg_pool``; products: ``channel_mul`` or a table; sums of
  two activations: ``add``; reshapes, squeezes and broadcasts that move no data: views).
* Names follow :mod:`tinyjax.codegen.graph`: a weighted op is named by the module path of its
  weight parameter; a lookup table ``{producer op}/{fn}``; pools, products and sums
  ``{scope}/pool``, ``{scope}/mul``, ``{scope}/add`` with the scope the equation's name stack minus
  the top module (the classifier's pool is just ``pool``).

Anything the IR cannot express raises :class:`LoweringError`, one line naming the layer, the
primitive and what to do. This module is the walker (``_Lowering``: inlining, materialisation,
folding into op records) and the public API; ``LoweringError`` and ``SUPPORTED`` are defined with
the handlers, which raise them, and re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyjax.codegen.graph import WEIGHTED_KINDS, Graph, Op, Tensor
from tinyjax.codegen.ops import OPS
from tinyjax.codegen.trace.handlers import _ACT_HINT, _HANDLERS, SUPPORTED, LoweringError, _fail
from tinyjax.codegen.trace.values import (
    _Affine,
    _Clamp,
    _compose,
    _Const,
    _evaluate,
    _Expr,
    _is_value,
    _Logistic,
    _Ref,
    _strip,
    _view,
)

__all__ = ["LoweringError", "SUPPORTED", "trace", "trace_graph"]

# Primitives whose sub-jaxpr is inlined, and the parameter that holds it.
_INLINE = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
           "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
           "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr", "remat2": "jaxpr",
           "checkpoint": "jaxpr"}
# Elementwise maths that would be an activation function without an int8 form here.
_MATH = ("tanh", "erf", "erfc", "exp", "exp2", "expm1", "log", "log1p", "integer_pow", "pow",
         "sqrt", "rsqrt", "cbrt", "abs", "sign", "sin", "cos", "tan", "atan", "asinh", "acosh",
         "atanh", "sinh", "cosh", "square", "reciprocal", "floor", "ceil", "round", "erf_inv")


# -- op records -----------------------------------------------------------------------------------

@dataclass
class _OpRec:
    """An op being built. ``open``: its output has not been read yet, so an affine map can still
    fold into the weights (weighted ops) and a clamp can still become its ``act``."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: dict[str, Any]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    open: bool = False

    def op(self) -> Op:
        return Op.make(self.name, self.kind, self.inputs, **self.attrs)


def _layer_of(name_stack: Any) -> tuple[str, str]:
    """(scope, layer) of a name stack: the scope drops the top module and any part that is not a
    module name (an einsum spec); the layer is what messages call it (never empty)."""
    parts = [p for p in str(name_stack).split("/") if p]
    scope = "/".join(p for p in parts[1:] if p.isidentifier())
    return scope, scope or (parts[0] if parts else "<top>")


# -- the lowering ---------------------------------------------------------------------------------

class _Lowering:
    """Walks a jaxpr once, building op records in program order."""

    def __init__(self, input_shape: tuple[int, ...], with_values: bool,
                 tags: dict[Any, tuple[str, ...]] | None = None):
        self.with_values = with_values
        self.tags = tags or {}
        self.shapes: dict[str, tuple[int, ...]] = {"input": input_shape}
        self.ops: list[_OpRec] = []
        self.producer: dict[str, _OpRec] = {}
        self.memo: dict[int, tuple[_Expr, str]] = {}   # id -> (expression, kept alive; tensor)
        self.graph: Graph | None = None

    # ---- jaxpr walking ----
    def run(self, jaxpr: Any, consts: Sequence[Any], args: Sequence[Any], stack: Any) -> list[Any]:
        from jax.extend.core import Literal

        env: dict[Any, Any] = {}

        def write(var: Any, value: Any) -> None:
            path = self.tags.get(var)
            if path is not None:   # a variable created by ``init``: a parameter, value unknown
                value = _Const(tuple(var.aval.shape), None, False, frozenset([path]))
            env[var] = value

        for var, c in zip(jaxpr.constvars, consts):
            write(var, _Const(tuple(np.shape(c)), np.asarray(c), True))
        for var, a in zip(jaxpr.invars, args):
            write(var, a)

        def read(v: Any) -> Any:
            if isinstance(v, Literal):
                return _Const(tuple(np.shape(v.val)), np.asarray(v.val, v.aval.dtype), True)
            return env[v]

        for eqn in jaxpr.eqns:
            ns = stack + eqn.source_info.name_stack if stack is not None \
                else eqn.source_info.name_stack
            outs = self.equation(eqn, [read(v) for v in eqn.invars], ns)
            for var, out in zip(eqn.outvars, outs):
                if type(var).__name__ != "DropVar":
                    write(var, out)
        return [read(v) for v in jaxpr.outvars]

    def equation(self, eqn: Any, ins: list[Any], ns: Any) -> list[Any]:
        prim = eqn.primitive.name
        if prim in _INLINE:
            sub = eqn.params.get(_INLINE[prim])
            if sub is not None:
                if hasattr(sub, "consts"):
                    return self.run(sub.jaxpr, sub.consts, ins, ns)
                return self.run(sub, (), ins, ns)
        if all(isinstance(v, _Const) for v in ins):
            return self.constant(eqn, ins)
        scope, layer = _layer_of(ns)
        handler = _HANDLERS.get(prim)
        if handler is None:
            if prim in _MATH:
                raise _fail(layer, prim, "on an activation has no int8 form", _ACT_HINT)
            raise _fail(layer, prim, "has no int8 op")
        out_shape = tuple(eqn.outvars[0].aval.shape)
        return [handler(self, eqn, ins, out_shape, scope, layer)]

    def constant(self, eqn: Any, ins: list[_Const]) -> list[_Const]:
        known = all(c.known for c in ins)
        paths = frozenset().union(*(c.paths for c in ins))
        values = None
        if all(c.value is not None for c in ins):
            values = _evaluate(eqn, [c.value for c in ins])
        return [_Const(tuple(v.aval.shape), None if values is None else values[i], known, paths)
                for i, v in enumerate(eqn.outvars)]

    # ---- op records ----
    def _unique(self, name: str) -> str:
        if name not in self.producer and name != "input":
            return name
        k = 1
        while f"{name}_{k}" in self.producer:
            k += 1
        return f"{name}_{k}"

    def emit(self, name: str, kind: str, inputs: Sequence[str], shape: tuple[int, ...],
             open_: bool, weight: np.ndarray | None = None, **attrs: Any) -> _Ref:
        name = self._unique(name)
        rec = _OpRec(name, kind, tuple(inputs), tuple(shape), attrs, open=open_)
        if kind in WEIGHTED_KINDS and self.with_values:
            rec.weight = np.asarray(weight, np.float32)
            rec.bias = np.zeros(Op.make(name, kind, (), **attrs).out_channels, np.float32)
        self.ops.append(rec)
        self.producer[name] = rec
        self.shapes[name] = tuple(shape)
        return _Ref(tuple(shape), shape[-1], kind, name, tensor=name)

    def lut(self, tensor: str, fn: str, out_shape: tuple[int, ...]) -> _Expr:
        producer = self.producer.get(tensor)
        ref = self.emit(f"{producer.name if producer else tensor}/{fn}", "lut", [tensor],
                        self.shapes[tensor], False, fn=fn)
        return _view(ref, out_shape)

    # ---- materialisation ----
    def tensor(self, e: _Expr) -> str:
        """The tensor an activation expression is, folding and fusing into its producer."""
        e = _strip(e)
        if id(e) in self.memo:
            return self.memo[id(e)][1]
        if isinstance(e, _Ref):
            t = self.finalise(e.tensor, None, "none", e)
        elif isinstance(e, _Logistic):
            t = _strip(self.lut(self.tensor(e.src), "sigmoid", e.shape)).tensor
        else:
            t = self._fold(e)
        self.memo[id(e)] = (e, t)
        return t

    def _fold(self, e: _Expr) -> str:
        """An ``[affine*] ∘ [clamp] ∘ affine* ∘ base`` chain: the inner affines fold into the op
        that wrote ``base``, the clamp becomes its ``act``, the outer part must be the identity."""
        outer: list[_Affine] = []
        while isinstance(e, _Affine):
            outer.append(e)
            e = _strip(e.src)
        act, clamp, inner = "none", None, outer
        if isinstance(e, _Clamp):
            clamp, inner = e, []
            act = _act_of(e)
            e = _strip(e.src)
            while isinstance(e, _Affine):
                inner.append(e)
                e = _strip(e.src)
            scale, shift = _compose(outer)
            if not (_is_value(scale, 1.0) and _is_value(shift, 0.0)):
                a = outer[0]
                raise _fail(a.layer, a.prim, "scales or shifts the output of a clamp, which cannot "
                            "fold into a conv", "apply the activation last")
        scale, shift = _compose(inner)
        affine = None if _is_value(scale, 1.0) and _is_value(shift, 0.0) else (scale, shift)
        base = e.tensor if isinstance(e, _Ref) else self.tensor(e)
        where = clamp or (inner[0] if inner else e)
        return self.finalise(base, affine, act, where)

    def finalise(self, tensor: str, affine: tuple[_Const, _Const] | None, act: str,
                 where: _Expr) -> str:
        """Close the op that wrote ``tensor``, folding ``affine`` and fusing ``act`` into it."""
        rec = self.producer.get(tensor)
        if rec is None or not rec.open:
            if affine is None and act == "none":
                return tensor
            what = f"the activation {act}" if affine is None else "a per-channel scale/shift"
            kind = "the graph input" if rec is None else f"a {rec.kind} op ({rec.name})"
            hint = ("fold it into the conv before the activation" if affine is not None else
                    "put the clamp right after a conv, depthwise conv, dense or add")
            if rec is not None and rec.open is False and rec.kind in WEIGHTED_KINDS + ("add",):
                kind += " whose output is already used elsewhere or already activated"
            raise _fail(where.layer, where.prim, f"applies {what} to {kind}, which int8 cannot "
                        f"fuse", hint)
        if affine is not None and rec.kind not in WEIGHTED_KINDS:
            raise _fail(where.layer, where.prim, f"scales/shifts the output of {rec.kind} "
                        f"{rec.name}, which has no weights to fold it into",
                        "scale before the add, or inside a conv")
        if affine is not None and rec.weight is not None:
            self._fold_into(rec, *affine)
        rec.attrs["act"] = act
        rec.open = False
        return tensor

    def _fold_into(self, rec: _OpRec, scale: _Const, shift: _Const) -> None:
        n = rec.bias.shape[0]
        a = np.broadcast_to(np.asarray(scale.value, np.float32), (n,))
        c = np.broadcast_to(np.asarray(shift.value, np.float32), (n,))
        rec.weight = rec.weight * OPS[rec.kind].per_channel(a, rec.weight.ndim)
        rec.bias = rec.bias * a + c

    def finish(self, outs: Sequence[Any]) -> Graph:
        names = []
        for o in outs:
            if not isinstance(o, _Expr):
                raise LoweringError("the model's output does not depend on its input image; "
                                    "nothing to lower")
            names.append(self.tensor(o))
        for rec in self.ops:
            rec.open = False
        tensors = (Tensor("input", self.shapes["input"]),) + tuple(
            Tensor(r.name, r.shape) for r in self.ops)
        return Graph(tensors, tuple(r.op() for r in self.ops), ("input",), tuple(names))

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return {r.name: {"weight": np.ascontiguousarray(r.weight, np.float32),
                         "bias": np.asarray(r.bias, np.float32)}
                for r in self.ops if r.kind in WEIGHTED_KINDS}


def _act_of(c: _Clamp) -> str:
    if c.lo == 0.0 and c.hi == math.inf:
        return "relu"
    if c.lo == 0.0 and c.hi == 6.0:
        return "relu6"
    raise _fail(c.layer, c.prim, f"clamps to [{c.lo:g}, {c.hi:g}], which is neither relu nor relu6",
                _ACT_HINT)


# -- public API -----------------------------------------------------------------------------------

def _prepare(model: Any, resolution: int | None, in_chs: int | None) -> tuple[Any, Any]:
    """The model with XLA depthwise convs, and the abstract input image."""
    import jax
    import jax.numpy as jnp

    spec = getattr(model, "spec", None)
    r = resolution or getattr(spec, "resolution", None)
    if r is None:
        raise LoweringError("pass resolution=: the model has no spec to take it from")
    c = in_chs or getattr(spec, "in_chs", 3)
    if hasattr(model, "dw_impl"):
        model = model.clone(dw_impl="xla")
    return model, jax.ShapeDtypeStruct((1, int(r), int(r), int(c)), jnp.float32)


def _keys(path: Sequence[Any]) -> tuple[str, ...]:
    """``("params", "stem", "conv", "kernel")`` from a pytree key path."""
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _image(x: Any) -> _Ref:
    shape = tuple(x.shape)
    return _Ref(shape, shape[-1], "input", "input", tensor="input")


def _lower_apply(model: Any, variables: Any, x: Any) -> _Lowering:
    """Lower ``make_jaxpr(model.apply)(variables, x)`` with the variables' values."""
    import jax

    def apply(v, image):
        return model.apply(v, image)

    abstract = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype),
                                      variables)
    closed = jax.make_jaxpr(apply)(abstract, x)
    leaves, _ = jax.tree_util.tree_flatten_with_path(variables)
    args: list[Any] = [_Const(tuple(np.shape(leaf)), np.asarray(leaf), False,
                              frozenset([_keys(path)])) for path, leaf in leaves]
    lowering = _Lowering(tuple(x.shape), with_values=True)
    lowering.graph = lowering.finish(lowering.run(closed.jaxpr, closed.consts,
                                                  args + [_image(x)], None))
    return lowering


def _lower_abstract(model: Any, x: Any) -> _Lowering:
    """Lower the jaxpr of ``model.init_with_output(key, x)`` without any values.

    One trace instead of two (``eval_shape(model.init)`` for the variables' shapes, then
    ``make_jaxpr(model.apply)``): Flax re-derives every parameter's shape in ``apply``, which makes
    a second trace cost as much as the first. The forward pass of ``init`` is the inference
    function (``train=False``); the equations that draw initial values are constant and never
    evaluated, and each variable's jaxpr value is tagged with its path, exactly as the ``apply``
    inputs would be.
    """
    import jax
    from jax.extend.core import Var

    def init_apply(key, image):
        return model.init_with_output(key, image)

    closed, (_, var_shapes) = jax.make_jaxpr(init_apply, return_shape=True)(
        jax.random.key(0), x)
    leaves, _ = jax.tree_util.tree_flatten_with_path(var_shapes)
    n_out = len(closed.jaxpr.outvars) - len(leaves)
    tags = {var: _keys(path) for var, (path, _) in zip(closed.jaxpr.outvars[n_out:], leaves)
            if isinstance(var, Var)}
    lowering = _Lowering(tuple(x.shape), with_values=False, tags=tags)
    key = _Const((), None, False)
    outs = lowering.run(closed.jaxpr, closed.consts, [key, _image(x)], None)
    lowering.graph = lowering.finish(outs[:n_out])
    return lowering


def trace_graph(model: Any, resolution: int | None = None, *,
                in_chs: int | None = None) -> Graph:
    """The int8 deployment graph of a Flax ``model`` (inference), read from its jaxpr.

    Needs no parameter values and compiles nothing. ``resolution`` defaults to
    ``model.spec.resolution``; ``in_chs`` (input channels) to ``model.spec.in_chs`` or 3.
    Raises :class:`LoweringError` for anything the int8 graph cannot express.
    """
    model, x = _prepare(model, resolution, in_chs)
    return _lower_abstract(model, x).graph


def trace(model: Any, variables: Any, resolution: int | None = None, *,
          in_chs: int | None = None) -> tuple[Graph, dict[str, dict[str, np.ndarray]]]:
    """The graph of :func:`trace_graph` and the float parameters of its weighted ops.

    ``params[op name] = {"weight", "bias"}`` (float32) with every per-channel affine map after
    the op (inference BatchNorm, biases) folded in; layouts are CMSIS-NN's: conv OHWI
    ``(out, kh, kw, in)``, depthwise ``(1, kh, kw, C)``, dense ``(out, in)``.
    """
    model, x = _prepare(model, resolution, in_chs)
    lowering = _lower_apply(model, variables, x)
    return lowering.graph, lowering.params()
