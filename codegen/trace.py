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
  numpy when values are known) or an *activation* (depends on the image). Activations are kept as
  small lazy expressions over the output tensor of an op (per-channel affine maps, clamps,
  ``logistic``, shape views) and turned into a tensor only where a kernel reads them: then an
  affine chain folds into the weights and bias of the conv/depthwise/dense op that produced the
  tensor (inference BatchNorm, biases), and a ``[0, ∞)`` / ``[0, 6]`` clamp becomes the producing
  op's ``act``. Keeping them lazy is what lets ``x · logistic(x)`` (SiLU) and
  ``x · relu6(x + 3) / 6`` (hard-swish) be recognised as lookup-table ops.
* ``conv_general_dilated`` is a conv (``feature_group_count`` 1) or a depthwise conv
  (``feature_group_count`` = channels); ``dot_general`` of a 4-D activation with a
  ``[Cin, Cout]`` constant is a 1×1 conv, of a 2-D activation a dense op; ``reduce_sum`` over H, W
  is a global ``avg_pool`` (the division by H·W cancels its scale); the product of a ``(1,H,W,C)``
  activation and a ``(1,1,1,C)`` one is ``channel_mul``; the sum of two activations is ``add``.
  Reshapes, squeezes and broadcasts that move no data are views.
* Names follow :mod:`tinyjax.codegen.graph`: a weighted op is named by the module path of its
  weight parameter; a lookup table ``{producer op}/{fn}``; pools, products and sums
  ``{scope}/pool``, ``{scope}/mul``, ``{scope}/add`` with the scope the equation's name stack minus
  the top module (the classifier's pool is just ``pool``).

Anything the IR cannot express raises :class:`LoweringError`, one line naming the layer, the
primitive and what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from tinyjax.codegen.graph import Graph, Op, Tensor
from tinyjax.errors import TinyJaxError

__all__ = ["LoweringError", "trace", "trace_graph"]

SUPPORTED = ("tinyjax.codegen lowers conv, depthwise conv, dense, add, average pool, relu/relu6 "
             "clamps, silu/sigmoid/hard-swish tables and squeeze-excite")
_ACT_HINT = "use relu, relu6, silu, sigmoid or hard_swish"

# Primitives whose sub-jaxpr is inlined, and the parameter that holds it.
_INLINE = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
           "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
           "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr", "remat2": "jaxpr",
           "checkpoint": "jaxpr"}
# Shape-only primitives: on an activation they are views (when they move no data).
_VIEWS = ("reshape", "squeeze", "expand_dims", "broadcast_in_dim", "convert_element_type", "copy",
          "copy_p", "reduce_precision")
# Elementwise maths that would be an activation function without an int8 form here.
_MATH = ("tanh", "erf", "erfc", "exp", "exp2", "expm1", "log", "log1p", "integer_pow", "pow",
         "sqrt", "rsqrt", "cbrt", "abs", "sign", "sin", "cos", "tan", "atan", "asinh", "acosh",
         "atanh", "sinh", "cosh", "square", "reciprocal", "floor", "ceil", "round", "erf_inv")
_WEIGHTED = ("conv", "depthwise_conv", "dense")
_RTOL = 1e-6


class LoweringError(TinyJaxError, ValueError):
    """A network (layer, primitive) that the int8 graph IR cannot express."""


# -- values ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Const:
    """A value computed from parameters and literals only.

    ``value`` is ``None`` while tracing abstractly (a parameter's value is not known); ``known``
    means it derives from literals alone, so it is the same in every trace (clamp bounds, the
    ``1/(H·W)`` of a mean); ``paths`` are the parameters it derives from."""

    shape: Tuple[int, ...]
    value: Optional[np.ndarray]
    known: bool
    paths: FrozenSet[Tuple[str, ...]] = frozenset()


def _scalar(v: float) -> _Const:
    return _Const((), np.asarray(v, np.float32), True)


def _cmap(fn: Callable[..., np.ndarray], *cs: _Const) -> _Const:
    """``fn`` of the values (``None`` if one is unknown); known if all are."""
    values = [c.value for c in cs]
    value = None if any(v is None for v in values) else np.asarray(fn(*values), np.float32)
    shape = tuple(np.broadcast_shapes(*(c.shape for c in cs)))
    return _Const(shape, value, all(c.known for c in cs), frozenset().union(*(c.paths for c in cs)))


def _is_value(c: _Const, target: float) -> bool:
    """Whether ``c`` is known to be ``target`` in every element."""
    return c.known and c.value is not None and bool(np.allclose(c.value, target, rtol=_RTOL,
                                                                atol=_RTOL * 1e-1))


@dataclass(eq=False)
class _Expr:
    """An activation: ``shape`` as the jaxpr sees it, ``chans`` the channels of the tensor below,
    ``prim``/``layer`` the equation that made it (for messages)."""

    shape: Tuple[int, ...]
    chans: int
    prim: str
    layer: str


@dataclass(eq=False)
class _Ref(_Expr):
    """The output tensor of an op (or the graph input), as the op wrote it."""

    tensor: str = ""


@dataclass(eq=False)
class _View(_Expr):
    """``src`` seen with another shape (a reshape/squeeze/broadcast that moves no data)."""

    src: Optional[_Expr] = None


@dataclass(eq=False)
class _Affine(_Expr):
    """``src · scale + shift`` with per-channel (``(C,)``) or scalar (``()``) constants."""

    src: Optional[_Expr] = None
    scale: _Const = field(default_factory=lambda: _scalar(1.0))
    shift: _Const = field(default_factory=lambda: _scalar(0.0))


@dataclass(eq=False)
class _Clamp(_Expr):
    """``min(max(src, lo), hi)``."""

    src: Optional[_Expr] = None
    lo: float = -math.inf
    hi: float = math.inf


@dataclass(eq=False)
class _Logistic(_Expr):
    """``logistic(src)``: a sigmoid table, unless it turns out to be half of a SiLU."""

    src: Optional[_Expr] = None


def _strip(e: _Expr) -> _Expr:
    while isinstance(e, _View):
        e = e.src
    return e


# -- op records -----------------------------------------------------------------------------------

@dataclass
class _OpRec:
    """An op being built. ``open``: its output has not been read yet, so an affine map can still
    fold into the weights (weighted ops) and a clamp can still become its ``act``."""

    name: str
    kind: str
    inputs: Tuple[str, ...]
    shape: Tuple[int, ...]
    attrs: Dict[str, Any]
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    open: bool = False

    def op(self) -> Op:
        return Op.make(self.name, self.kind, self.inputs, **self.attrs)


def _fail(layer: str, prim: str, problem: str, hint: str = SUPPORTED) -> LoweringError:
    return LoweringError(f"layer {layer}: primitive '{prim}' {problem}; {hint}")


def _layer_of(name_stack: Any) -> Tuple[str, str]:
    """(scope, layer) of a name stack: the scope drops the top module and any part that is not a
    module name (an einsum spec); the layer is what messages call it (never empty)."""
    parts = [p for p in str(name_stack).split("/") if p]
    scope = "/".join(p for p in parts[1:] if p.isidentifier())
    return scope, scope or (parts[0] if parts else "<top>")


def _join(scope: str, leaf: str) -> str:
    return f"{scope}/{leaf}" if scope else leaf


# -- constant evaluation --------------------------------------------------------------------------

def _np_broadcast_in_dim(x: np.ndarray, shape: Sequence[int],
                         broadcast_dimensions: Sequence[int], **_: Any) -> np.ndarray:
    dims = list(broadcast_dimensions)
    expanded = [x.shape[dims.index(i)] if i in dims else 1 for i in range(len(shape))]
    return np.broadcast_to(x.reshape(expanded), tuple(shape))


_NUMPY: Dict[str, Callable[..., np.ndarray]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "max": np.maximum,
    "min": np.minimum,
    "neg": np.negative,
    "sqrt": np.sqrt,
    "rsqrt": lambda a: 1.0 / np.sqrt(a),
    "reshape": lambda a, new_sizes, dimensions=None, **_: (
        a.reshape(new_sizes) if dimensions is None else None),
    "squeeze": lambda a, dimensions: np.squeeze(a, tuple(dimensions)),
    "expand_dims": lambda a, dimensions: np.expand_dims(a, tuple(dimensions)),
    "broadcast_in_dim": _np_broadcast_in_dim,
    "convert_element_type": lambda a, new_dtype, **_: a.astype(new_dtype),
    "transpose": lambda a, permutation: np.transpose(a, permutation),
    "copy": lambda a: a,
    "copy_p": lambda a: a,
}


def _evaluate(eqn: Any, values: List[np.ndarray]) -> List[np.ndarray]:
    """The outputs of a constant equation: numpy for the usual few, JAX otherwise."""
    out = None
    fn = _NUMPY.get(eqn.primitive.name)
    if fn is not None and len(eqn.outvars) == 1:
        try:
            out = [fn(*values, **eqn.params)]
        except TypeError:
            out = None
        if out is not None and out[0] is None:
            out = None
    if out is None:
        res = eqn.primitive.bind(*values, **eqn.params)
        out = list(res) if eqn.primitive.multiple_results else [res]
    return [np.asarray(o, dtype=v.aval.dtype) for o, v in zip(out, eqn.outvars)]


# -- the lowering ---------------------------------------------------------------------------------

class _Lowering:
    """Walks a jaxpr once, building op records in program order."""

    def __init__(self, input_shape: Tuple[int, ...], with_values: bool,
                 tags: Optional[Dict[Any, Tuple[str, ...]]] = None):
        self.with_values = with_values
        self.tags = tags or {}
        self.shapes: Dict[str, Tuple[int, ...]] = {"input": input_shape}
        self.ops: List[_OpRec] = []
        self.producer: Dict[str, _OpRec] = {}
        self.memo: Dict[int, Tuple[_Expr, str]] = {}   # id -> (expression, kept alive; tensor)
        self.graph: Optional[Graph] = None

    # ---- jaxpr walking ----
    def run(self, jaxpr: Any, consts: Sequence[Any], args: Sequence[Any], stack: Any) -> List[Any]:
        from jax.extend.core import Literal

        env: Dict[Any, Any] = {}

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

    def equation(self, eqn: Any, ins: List[Any], ns: Any) -> List[Any]:
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

    def constant(self, eqn: Any, ins: List[_Const]) -> List[_Const]:
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

    def emit(self, name: str, kind: str, inputs: Sequence[str], shape: Tuple[int, ...],
             open_: bool, weight: Optional[np.ndarray] = None, **attrs: Any) -> _Ref:
        name = self._unique(name)
        rec = _OpRec(name, kind, tuple(inputs), tuple(shape), attrs, open=open_)
        if kind in _WEIGHTED and self.with_values:
            rec.weight = np.asarray(weight, np.float32)
            rec.bias = np.zeros(Op.make(name, kind, (), **attrs).out_channels, np.float32)
        self.ops.append(rec)
        self.producer[name] = rec
        self.shapes[name] = tuple(shape)
        return _Ref(tuple(shape), shape[-1], kind, name, tensor=name)

    def lut(self, tensor: str, fn: str, out_shape: Tuple[int, ...]) -> _Expr:
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
        outer: List[_Affine] = []
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

    def finalise(self, tensor: str, affine: Optional[Tuple[_Const, _Const]], act: str,
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
            if rec is not None and rec.open is False and rec.kind in _WEIGHTED + ("add",):
                kind += " whose output is already used elsewhere or already activated"
            raise _fail(where.layer, where.prim, f"applies {what} to {kind}, which int8 cannot "
                        f"fuse", hint)
        if affine is not None and rec.kind not in _WEIGHTED:
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
        if rec.kind == "depthwise_conv":
            rec.weight = rec.weight * a
        else:
            rec.weight = rec.weight * a.reshape((n,) + (1,) * (rec.weight.ndim - 1))
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

    def params(self) -> Dict[str, Dict[str, np.ndarray]]:
        return {r.name: {"weight": np.ascontiguousarray(r.weight, np.float32),
                         "bias": np.asarray(r.bias, np.float32)}
                for r in self.ops if r.kind in _WEIGHTED}


def _view(e: _Expr, shape: Tuple[int, ...]) -> _Expr:
    return e if tuple(e.shape) == tuple(shape) else _View(tuple(shape), e.chans, e.prim, e.layer,
                                                          src=e)


def _compose(chain: List[_Affine]) -> Tuple[_Const, _Const]:
    """One (scale, shift) for ``chain`` (outermost first)."""
    scale, shift = _scalar(1.0), _scalar(0.0)
    for a in reversed(chain):
        scale = _cmap(np.multiply, a.scale, scale)
        shift = _cmap(lambda s, b, c: s * b + c, a.scale, shift, a.shift)
    return scale, shift


def _act_of(c: _Clamp) -> str:
    if c.lo == 0.0 and c.hi == math.inf:
        return "relu"
    if c.lo == 0.0 and c.hi == 6.0:
        return "relu6"
    raise _fail(c.layer, c.prim, f"clamps to [{c.lo:g}, {c.hi:g}], which is neither relu nor relu6",
                _ACT_HINT)


def _module_name(weight: _Const, scope: str) -> str:
    """The module path of the parameter a weight comes from (``stem/conv``); else the scope."""
    if len(weight.paths) == 1:
        (path,) = weight.paths
        return "/".join(path[1:-1]) or "/".join(path)
    return scope or "layer"


# -- handlers: (lowering, eqn, inputs, out_shape, scope, layer) -> activation ----------------------

def _per_channel(c: _Const, x: _Expr, out_shape: Tuple[int, ...], prim: str, layer: str) -> _Const:
    """``c`` as a per-channel vector ``(C,)`` or a scalar ``()`` for activation ``x``."""
    ok = (len(c.shape) <= len(x.shape) and tuple(out_shape) == tuple(x.shape)
          and all(d == 1 for d in c.shape[:-1]))
    last = c.shape[-1] if c.shape else 1
    if not ok or (last != 1 and not (last == x.shape[-1] == x.chans)):
        raise _fail(layer, prim, f"combines an activation {x.shape} with a constant {c.shape} that "
                    f"is not per-channel", "only per-channel scales and shifts fold into a conv")
    vec_shape = (last,) if last != 1 else ()
    value = None if c.value is None else np.asarray(c.value, np.float32).reshape(vec_shape)
    return _Const(vec_shape, value, c.known, c.paths)


def _affine(x: _Expr, scale: _Const, shift: _Const, prim: str, layer: str) -> _Expr:
    if _is_value(scale, 1.0) and _is_value(shift, 0.0):
        return x
    return _Affine(x.shape, x.chans, prim, layer, src=x, scale=scale, shift=shift)


def _bound(c: _Const, prim: str, layer: str) -> float:
    if not c.known or c.value is None or c.value.size != 1:
        raise _fail(layer, prim, "clamps to a bound that is not a literal scalar", _ACT_HINT)
    return float(np.asarray(c.value).reshape(()))


def _clamp(x: _Expr, lo: float, hi: float, prim: str, layer: str) -> _Expr:
    s = _strip(x)
    if isinstance(s, _Clamp):
        lo, hi, x = max(lo, s.lo), min(hi, s.hi), s.src
    return _Clamp(x.shape, x.chans, prim, layer, src=x, lo=lo, hi=hi)


def _h_elementwise(L: _Lowering, eqn: Any, ins: List[Any], out: Tuple[int, ...], scope: str,
                   layer: str) -> _Expr:
    prim = eqn.primitive.name
    if prim == "neg":
        return _affine(ins[0], _scalar(-1.0), _scalar(0.0), prim, layer)
    if prim == "logistic":
        x = ins[0]
        return _Logistic(x.shape, x.chans, prim, layer, src=x)
    if prim == "clamp":
        lo, x, hi = ins
        if not isinstance(x, _Expr) or isinstance(lo, _Expr) or isinstance(hi, _Expr):
            raise _fail(layer, prim, "clamps with bounds that depend on the input")
        return _clamp(x, _bound(lo, prim, layer), _bound(hi, prim, layer), prim, layer)
    a, b = ins
    if isinstance(a, _Expr) and isinstance(b, _Expr):
        if prim == "add":
            return _add(L, a, b, out, scope, layer)
        if prim == "mul":
            return _mul(L, a, b, out, scope, layer)
        raise _fail(layer, prim, "of two activations has no int8 op")
    x, c, x_first = (a, b, True) if isinstance(a, _Expr) else (b, a, False)
    if prim in ("max", "min"):
        v = _bound(c, prim, layer)
        return _clamp(x, v, math.inf, prim, layer) if prim == "max" else \
            _clamp(x, -math.inf, v, prim, layer)
    v = _per_channel(c, x, out, prim, layer)
    one, zero = _scalar(1.0), _scalar(0.0)
    if prim == "add":
        return _affine(x, one, v, prim, layer)
    if prim == "mul":
        return _affine(x, v, zero, prim, layer)
    if prim == "sub":
        return _affine(x, one, _cmap(np.negative, v), prim, layer) if x_first else \
            _affine(x, _scalar(-1.0), v, prim, layer)
    if prim == "div" and x_first:
        return _affine(x, _cmap(lambda t: 1.0 / t, v), zero, prim, layer)
    raise _fail(layer, prim, "with the activation as divisor has no int8 op")


def _add(L: _Lowering, a: _Expr, b: _Expr, out: Tuple[int, ...], scope: str, layer: str) -> _Expr:
    ta, tb = L.tensor(a), L.tensor(b)
    if L.shapes[ta] != L.shapes[tb] or tuple(a.shape) != tuple(b.shape):
        raise _fail(layer, "add", f"adds activations of shapes {a.shape} and {b.shape}",
                    "only same-shape residual adds are lowered")
    ref = L.emit(_join(scope, "add"), "add", [ta, tb], L.shapes[ta], True, act="none")
    return _view(ref, out)


def _hard_swish_gate(x: _Expr, g: _Expr) -> Optional[float]:
    """``k`` if ``g`` is ``k · clamp(x + 3, 0, 6)`` (then ``x · g`` is ``6k · hard_swish(x)``)."""
    g, k = _strip(g), 1.0
    if isinstance(g, _Affine) and _is_value(g.shift, 0.0) and g.scale.known \
            and g.scale.value is not None and g.scale.value.size == 1:
        k = float(np.asarray(g.scale.value).reshape(()))
        g = _strip(g.src)
    if not (isinstance(g, _Clamp) and g.lo == 0.0 and g.hi == 6.0):
        return None
    inner = _strip(g.src)
    if isinstance(inner, _Affine) and _is_value(inner.scale, 1.0) and _is_value(inner.shift, 3.0) \
            and _strip(inner.src) is _strip(x):
        return k
    return None


def _mul(L: _Lowering, a: _Expr, b: _Expr, out: Tuple[int, ...], scope: str, layer: str) -> _Expr:
    for x, g in ((a, b), (b, a)):
        sg = _strip(g)
        if isinstance(sg, _Logistic) and _strip(sg.src) is _strip(x):
            return L.lut(L.tensor(x), "silu", out)
        k = _hard_swish_gate(x, g)
        if k is not None:
            y = L.lut(L.tensor(x), "hard_swish", out)
            return _affine(y, _scalar(6.0 * k), _scalar(0.0), "mul", layer)
    ta, tb = L.tensor(a), L.tensor(b)
    sa, sb = L.shapes[ta], L.shapes[tb]
    for (x, sx, ex), (g, sg_) in (((ta, sa, a), (tb, sb)), ((tb, sb, b), (ta, sa))):
        if len(sx) == 4 and tuple(sg_) == (1, 1, 1, sx[3]) and tuple(ex.shape) == tuple(sx):
            ref = L.emit(_join(scope, "mul"), "channel_mul", [x, g], sx, False)
            return _view(ref, out)
    raise _fail(layer, "mul", f"multiplies activations of shapes {a.shape} and {b.shape}",
                "only x · gate with a (1, 1, 1, C) gate (squeeze-excite) is lowered")


def _h_view(L: _Lowering, eqn: Any, ins: List[Any], out: Tuple[int, ...], scope: str,
            layer: str) -> _Expr:
    prim = eqn.primitive.name
    x = ins[0]
    if not isinstance(x, _Expr) or any(isinstance(v, _Expr) for v in ins[1:]):
        raise _fail(layer, prim, "with an input-dependent shape has no int8 op")
    if prim == "reshape" and eqn.params.get("dimensions") is not None:
        raise _fail(layer, prim, "transposes data", "keep activations NHWC")
    if prim == "convert_element_type" and not _is_float(eqn.params["new_dtype"]):
        raise _fail(layer, prim, f"casts an activation to {eqn.params['new_dtype']}",
                    "the float model should stay in floating point")
    return _view(x, out)


def _is_float(dtype: Any) -> bool:
    import jax.numpy as jnp

    return bool(jnp.issubdtype(dtype, jnp.floating))


def _h_transpose(L: _Lowering, eqn: Any, ins: List[Any], out: Tuple[int, ...], scope: str,
                 layer: str) -> _Expr:
    perm = tuple(eqn.params["permutation"])
    if perm != tuple(range(len(perm))):
        raise _fail(layer, "transpose", "moves activation data", "keep activations NHWC")
    return ins[0]


def _weights(ins: List[Any], prim: str, layer: str) -> Tuple[_Expr, _Const]:
    x, w = ins[0], ins[1]
    if not isinstance(x, _Expr) or not isinstance(w, _Const):
        raise _fail(layer, prim, "needs the activation as its first operand and constant weights "
                    "as its second", "compute weights from parameters only")
    return x, w


def _h_conv(L: _Lowering, eqn: Any, ins: List[Any], out: Tuple[int, ...], scope: str,
            layer: str) -> _Expr:
    prim, p = "conv_general_dilated", eqn.params
    x, w = _weights(ins, prim, layer)
    dn = p["dimension_numbers"]
    nhwc = (0, 3, 1, 2)
    if tuple(dn.lhs_spec) != nhwc or tuple(dn.out_spec) != nhwc or len(w.shape) != 4:
        raise _fail(layer, prim, "is not a 2-D NHWC convolution", "use NHWC inputs and outputs")
    if any(d != 1 for d in tuple(p["lhs_dilation"]) + tuple(p["rhs_dilation"])):
        raise _fail(layer, prim, f"has dilation lhs={tuple(p['lhs_dilation'])} "
                    f"rhs={tuple(p['rhs_dilation'])}", "use dilation 1")
    pads = tuple(tuple(q) for q in p["padding"])
    if any(lo != hi or lo < 0 for lo, hi in pads):
        raise _fail(layer, prim, f"has asymmetric padding {pads}",
                    "use symmetric padding (kernel // 2 per side, as CMSIS-NN)")
    if p["batch_group_count"] != 1:
        raise _fail(layer, prim, "has batch_group_count != 1")
    o_dim, i_dim, h_dim, w_dim = dn.rhs_spec
    kh, kw, n_out, n_in = w.shape[h_dim], w.shape[w_dim], w.shape[o_dim], w.shape[i_dim]
    t = L.tensor(x)
    if L.shapes[t] != tuple(x.shape):
        raise _fail(layer, prim, f"reads a broadcast or reshaped activation {x.shape}")
    c = x.shape[3]
    ohwi = None if w.value is None else np.transpose(w.value, (o_dim, h_dim, w_dim, i_dim))
    groups = p["feature_group_count"]
    common = dict(kernel=(kh, kw), stride=tuple(int(s) for s in p["window_strides"]),
                  padding=(pads[0][0], pads[1][0]), act="none")
    name = _module_name(w, scope)
    if groups == 1 and n_in == c:
        return L.emit(name, "conv", [t], out, True, ohwi, in_chs=c, out_chs=n_out, **common)
    if groups == c and n_in == 1 and n_out % c == 0:
        dw = None if ohwi is None else np.transpose(ohwi, (3, 1, 2, 0))
        return L.emit(name, "depthwise_conv", [t], out, True, dw, channels=c,
                      ch_mult=n_out // c, **common)
    raise _fail(layer, prim, f"is a grouped convolution ({groups} groups of {c} channels)",
                "use a full or a depthwise convolution")


def _h_dot(L: _Lowering, eqn: Any, ins: List[Any], out: Tuple[int, ...], scope: str,
           layer: str) -> _Expr:
    prim = "dot_general"
    x, w = _weights(ins, prim, layer)
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    if lb or rb or tuple(lc) != (len(x.shape) - 1,) or len(w.shape) != 2 or len(rc) != 1:
        raise _fail(layer, prim, f"contracts {tuple(lc)} x {tuple(rc)} of shapes {x.shape} and "
                    f"{w.shape}", "multiply the last axis of an activation by a [in, out] matrix")
    oi = None if w.value is None else (w.value.T if rc[0] == 0 else w.value)
    n_in, n_out = w.shape[rc[0]], w.shape[1 - rc[0]]
    t = L.tensor(x)
    shape = L.shapes[t]
    name = _module_name(w, scope)
    if len(x.shape) == 4 and tuple(x.shape) == shape:
        weight = None if oi is None else oi[:, None, None, :]
        return L.emit(name, "conv", [t], out, True, weight, kernel=(1, 1), stride=(1, 1),
                      padding=(0, 0), in_chs=n_in, out_chs=n_out, act="none")
    if len(x.shape) == 2 and x.shape[0] == 1 and int(np.prod(shape[1:])) == n_in:
        ref = L.emit(name, "dense", [t], (1, n_out), True, oi, in_features=n_in,
                     out_features=n_out, act="none")
        return _view(ref, out)
    raise _fail(layer, prim, f"multiplies an activation of shape {x.shape}",
                "use a (1, H, W, C) activation (1x1 conv) or a (1, F) one (dense)")


def _h_reduce_sum(L: _Lowering, eqn: Any, ins: List[Any], out: Tuple[int, ...], scope: str,
                  layer: str) -> _Expr:
    x = ins[0]
    axes = tuple(eqn.params["axes"])
    if len(x.shape) != 4 or axes != (1, 2):
        raise _fail(layer, "reduce_sum", f"reduces axes {axes} of {x.shape}, not a global pool",
                    "only the mean over H and W (global average pool) is lowered")
    t = L.tensor(x)
    if L.shapes[t] != tuple(x.shape):
        raise _fail(layer, "reduce_sum", f"reduces a broadcast or reshaped activation {x.shape}")
    _, h, w, c = x.shape
    ref = L.emit(_join(scope, "pool"), "avg_pool", [t], (1, 1, 1, c), False, kernel=(h, w),
                 stride=(1, 1), padding=(0, 0))
    return _affine(_view(ref, out), _scalar(float(h * w)), _scalar(0.0), "reduce_sum", layer)


_HANDLERS: Dict[str, Callable[..., _Expr]] = {
    **{p: _h_elementwise for p in ("add", "sub", "mul", "div", "neg", "max", "min", "clamp",
                                   "logistic")},
    **{p: _h_view for p in _VIEWS},
    "transpose": _h_transpose,
    "conv_general_dilated": _h_conv,
    "dot_general": _h_dot,
    "reduce_sum": _h_reduce_sum,
}


# -- public API -----------------------------------------------------------------------------------

def _prepare(model: Any, resolution: Optional[int], in_chs: Optional[int]) -> Tuple[Any, Any]:
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


def _keys(path: Sequence[Any]) -> Tuple[str, ...]:
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
    args: List[Any] = [_Const(tuple(np.shape(leaf)), np.asarray(leaf), False,
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


def trace_graph(model: Any, resolution: Optional[int] = None, *,
                in_chs: Optional[int] = None) -> Graph:
    """The int8 deployment graph of a Flax ``model`` (inference), read from its jaxpr.

    Needs no parameter values and compiles nothing. ``resolution`` defaults to
    ``model.spec.resolution``; ``in_chs`` (input channels) to ``model.spec.in_chs`` or 3.
    Raises :class:`LoweringError` for anything the int8 graph cannot express.
    """
    model, x = _prepare(model, resolution, in_chs)
    return _lower_abstract(model, x).graph


def trace(model: Any, variables: Any, resolution: Optional[int] = None, *,
          in_chs: Optional[int] = None) -> Tuple[Graph, Dict[str, Dict[str, np.ndarray]]]:
    """The graph of :func:`trace_graph` and the float parameters of its weighted ops.

    ``params[op name] = {"weight", "bias"}`` (float32) with every per-channel affine map after
    the op (inference BatchNorm, biases) folded in; layouts are CMSIS-NN's: conv OHWI
    ``(out, kh, kw, in)``, depthwise ``(1, kh, kw, C)``, dense ``(out, in)``.
    """
    model, x = _prepare(model, resolution, in_chs)
    lowering = _lower_apply(model, variables, x)
    return lowering.graph, lowering.params()
