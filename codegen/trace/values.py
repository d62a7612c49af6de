"""Symbolic values of the jaxpr lowering (:mod:`tinyjax.codegen.trace`) and constant evaluation.

Every jaxpr value the lowering meets is either a :class:`_Const` (computed from parameters and
literals only; its value is known when the variables' values are) or an :class:`_Expr`, an
*activation* (depends on the image), kept as a small lazy expression over the output tensor of an
op: :class:`_Ref` (the tensor itself), :class:`_View` (another shape, no data moved),
:class:`_Affine` (per-channel ``scale``/``shift``), :class:`_Clamp` and :class:`_Logistic`.
Helpers here build and compose them (``_scalar``, ``_cmap``, ``_view``, ``_compose``) and
evaluate constant equations with numpy (``_NUMPY``, ``_evaluate``). The primitive handlers that
create them live in :mod:`tinyjax.codegen.trace.handlers`; the walker that turns them into ops
in :mod:`tinyjax.codegen.trace`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_RTOL = 1e-6


# -- values ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Const:
    """A value computed from parameters and literals only.

    ``value`` is ``None`` while tracing abstractly (a parameter's value is not known); ``known``
    means it derives from literals alone, so it is the same in every trace (clamp bounds, the
    ``1/(H·W)`` of a mean); ``paths`` are the parameters it derives from."""

    shape: tuple[int, ...]
    value: np.ndarray | None
    known: bool
    paths: frozenset[tuple[str, ...]] = frozenset()


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

    shape: tuple[int, ...]
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

    src: _Expr | None = None


@dataclass(eq=False)
class _Affine(_Expr):
    """``src · scale + shift`` with per-channel (``(C,)``) or scalar (``()``) constants."""

    src: _Expr | None = None
    scale: _Const = field(default_factory=lambda: _scalar(1.0))
    shift: _Const = field(default_factory=lambda: _scalar(0.0))


@dataclass(eq=False)
class _Clamp(_Expr):
    """``min(max(src, lo), hi)``."""

    src: _Expr | None = None
    lo: float = -math.inf
    hi: float = math.inf


@dataclass(eq=False)
class _Logistic(_Expr):
    """``logistic(src)``: a sigmoid table, unless it turns out to be half of a SiLU."""

    src: _Expr | None = None


def _strip(e: _Expr) -> _Expr:
    while isinstance(e, _View):
        e = e.src
    return e

def _view(e: _Expr, shape: tuple[int, ...]) -> _Expr:
    return e if tuple(e.shape) == tuple(shape) else _View(tuple(shape), e.chans, e.prim, e.layer,
                                                          src=e)


def _compose(chain: list[_Affine]) -> tuple[_Const, _Const]:
    """One (scale, shift) for ``chain`` (outermost first)."""
    scale, shift = _scalar(1.0), _scalar(0.0)
    for a in reversed(chain):
        scale = _cmap(np.multiply, a.scale, scale)
        shift = _cmap(lambda s, b, c: s * b + c, a.scale, shift, a.shift)
    return scale, shift


# -- constant evaluation --------------------------------------------------------------------------

def _np_broadcast_in_dim(x: np.ndarray, shape: Sequence[int],
                         broadcast_dimensions: Sequence[int], **_: Any) -> np.ndarray:
    dims = list(broadcast_dimensions)
    expanded = [x.shape[dims.index(i)] if i in dims else 1 for i in range(len(shape))]
    return np.broadcast_to(x.reshape(expanded), tuple(shape))


_NUMPY: dict[str, Callable[..., np.ndarray]] = {
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


def _evaluate(eqn: Any, values: list[np.ndarray]) -> list[np.ndarray]:
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
