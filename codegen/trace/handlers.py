"""Primitive handlers of the jaxpr lowering: one jaxpr equation on activations -> an activation.

Each handler ``(lowering, eqn, inputs, out_shape, scope, layer) -> activation`` reads one
equation whose inputs include an activation (:mod:`tinyjax.codegen.trace.values`) and either
returns a lazy expression (per-channel affine maps, clamps, ``logistic``, views) or asks the
lowering (the walker :class:`tinyjax.codegen.trace._Lowering`, passed in) to materialise its
inputs and emit an op. :data:`_HANDLERS` maps primitive names to handlers. What the int8 IR
cannot express raises :class:`LoweringError` (:func:`_fail`), defined here so that the handlers
need not import the walker; :mod:`tinyjax.codegen.trace` re-exports it with :data:`SUPPORTED`.

* ``conv_general_dilated`` is a conv (``feature_group_count`` 1) or a depthwise conv
  (``feature_group_count`` = channels); ``dot_general`` of a 4-D activation with a
  ``[Cin, Cout]`` constant is a 1×1 conv, of a 2-D activation a dense op; ``reduce_sum`` over H, W
  is a global ``avg_pool`` (the division by H·W cancels its scale); the product of a ``(1,H,W,C)``
  activation and a ``(1,1,1,C)`` one is ``channel_mul`` (or a SiLU / hard-swish table); the sum
  of two activations is ``add``. Reshapes, squeezes and broadcasts that move no data are views.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinyjax.codegen.trace.values import (
    _Affine,
    _Clamp,
    _cmap,
    _Const,
    _Expr,
    _is_value,
    _Logistic,
    _scalar,
    _strip,
    _view,
)
from tinyjax.errors import LoweringError

SUPPORTED = ("tinyjax.codegen lowers conv, depthwise conv, dense, add, average pool, relu/relu6 "
             "clamps, silu/sigmoid/hard-swish tables and squeeze-excite")
_ACT_HINT = "use relu, relu6, silu, sigmoid or hard_swish"
# Shape-only primitives: on an activation they are views (when they move no data).
_VIEWS = ("reshape", "squeeze", "expand_dims", "broadcast_in_dim", "convert_element_type", "copy",
          "copy_p", "reduce_precision")

#: The walker (:class:`tinyjax.codegen.trace._Lowering`), passed to every handler; not imported:
#: :mod:`tinyjax.codegen.trace` imports this module.
_Lowering = Any


def _fail(layer: str, prim: str, problem: str, hint: str = SUPPORTED) -> LoweringError:
    return LoweringError(f"layer {layer}: primitive '{prim}' {problem}; {hint}")


def _join(scope: str, leaf: str) -> str:
    return f"{scope}/{leaf}" if scope else leaf


def _module_name(weight: _Const, scope: str) -> str:
    """The module path of the parameter a weight comes from (``stem/conv``); else the scope."""
    if len(weight.paths) == 1:
        (path,) = weight.paths
        return "/".join(path[1:-1]) or "/".join(path)
    return scope or "layer"


# -- handlers: (lowering, eqn, inputs, out_shape, scope, layer) -> activation ----------------------

def _per_channel(c: _Const, x: _Expr, out_shape: tuple[int, ...], prim: str, layer: str) -> _Const:
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


def _h_elementwise(L: _Lowering, eqn: Any, ins: list[Any], out: tuple[int, ...], scope: str,
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


def _add(L: _Lowering, a: _Expr, b: _Expr, out: tuple[int, ...], scope: str, layer: str) -> _Expr:
    ta, tb = L.tensor(a), L.tensor(b)
    if L.shapes[ta] != L.shapes[tb] or tuple(a.shape) != tuple(b.shape):
        raise _fail(layer, "add", f"adds activations of shapes {a.shape} and {b.shape}",
                    "only same-shape residual adds are lowered")
    ref = L.emit(_join(scope, "add"), "add", [ta, tb], L.shapes[ta], True, act="none")
    return _view(ref, out)


def _hard_swish_gate(x: _Expr, g: _Expr) -> float | None:
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


def _mul(L: _Lowering, a: _Expr, b: _Expr, out: tuple[int, ...], scope: str, layer: str) -> _Expr:
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


def _h_view(L: _Lowering, eqn: Any, ins: list[Any], out: tuple[int, ...], scope: str,
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


def _h_transpose(L: _Lowering, eqn: Any, ins: list[Any], out: tuple[int, ...], scope: str,
                 layer: str) -> _Expr:
    perm = tuple(eqn.params["permutation"])
    if perm != tuple(range(len(perm))):
        raise _fail(layer, "transpose", "moves activation data", "keep activations NHWC")
    return ins[0]


def _weights(ins: list[Any], prim: str, layer: str) -> tuple[_Expr, _Const]:
    x, w = ins[0], ins[1]
    if not isinstance(x, _Expr) or not isinstance(w, _Const):
        raise _fail(layer, prim, "needs the activation as its first operand and constant weights "
                    "as its second", "compute weights from parameters only")
    return x, w


def _h_conv(L: _Lowering, eqn: Any, ins: list[Any], out: tuple[int, ...], scope: str,
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


def _h_dot(L: _Lowering, eqn: Any, ins: list[Any], out: tuple[int, ...], scope: str,
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


def _h_reduce_sum(L: _Lowering, eqn: Any, ins: list[Any], out: tuple[int, ...], scope: str,
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


_HANDLERS: dict[str, Callable[..., _Expr]] = {
    **{p: _h_elementwise for p in ("add", "sub", "mul", "div", "neg", "max", "min", "clamp",
                                   "logistic")},
    **{p: _h_view for p in _VIEWS},
    "transpose": _h_transpose,
    "conv_general_dilated": _h_conv,
    "dot_general": _h_dot,
    "reduce_sum": _h_reduce_sum,
}
