"""The int8 deployment graph: a small IR of frozen dataclasses, and the graph of a ModelSpec.

A :class:`Graph` is what runs on the microcontroller, one op per kernel call, in execution order:
batch-norm is already folded into the convolution before it, ReLU/ReLU6 are clamp ranges of the
op that produces them (``act``), and every other activation (SiLU, sigmoid, hard-swish) is a
256-entry lookup table op. Two routes give the same graph:

* :func:`graph_from_spec` builds it from a :class:`~tinyjax.spec.ModelSpec` in tens of
  microseconds, with no JAX (the search calls it for every candidate);
* ``tinyjax.codegen.trace`` reads it out of ``jax.make_jaxpr`` of the float model.

Tests assert the two are equal (``==`` on the frozen dataclasses) for every zoo model.

Conventions (shared by the tracer, the quantiser, the planner and the C emitter):

* Activation tensors are NHWC with N = 1: ``(1, H, W, C)``; the classifier's output is
  ``(1, classes)``. A global average pool outputs ``(1, 1, 1, C)`` and a dense op reads that as
  its flat input (no reshape op: it would move no byte).
* Every tensor except the graph input is named after the op that produces it; the input is
  ``"input"``.
* Op names are the Flax module path of the layer (``stem/conv``, ``blocks_1_0/conv_dw``,
  ``blocks_1_0/se/conv_reduce``, ``head/conv``, ``classifier``) for ops with weights; ops without
  weights are named from their scope: ``{conv}/{fn}`` for a lookup-table activation after
  ``{conv}`` (``blocks_1_0/conv_pw/silu``, ``blocks_1_0/se/conv_expand/sigmoid``),
  ``{block}/se/pool`` and ``{block}/se/mul`` inside squeeze-excite, ``{block}/add`` for a
  residual add (inputs: branch first, shortcut second), ``pool`` before the classifier.
* Weight layouts are CMSIS-NN's: conv ``OHWI`` ``(out, kh, kw, in)``, depthwise
  ``(1, kh, kw, C·ch_mult)``, dense ``(out, in)``; every conv, depthwise and dense op has an
  int32 bias of ``out`` entries (zero where the float layer had none) after BN folding.
* Padding is symmetric ``(pad_h, pad_w)`` as in CMSIS-NN's ``cmsis_nn_conv_params``; output sizes
  follow ``(in + 2·pad − kernel) // stride + 1``.

Op kinds and their attributes (``op.attrs``, a sorted tuple of ``(key, value)`` pairs):

=================  ============================================================================
``conv``           ``kernel (kh, kw)``, ``stride (sh, sw)``, ``padding (ph, pw)``, ``in_chs``,
                   ``out_chs``, ``act`` (``none`` | ``relu`` | ``relu6``)
``depthwise_conv`` ``kernel``, ``stride``, ``padding``, ``channels``, ``ch_mult``, ``act``
``dense``          ``in_features``, ``out_features``, ``act``
``add``            ``act``
``avg_pool``       ``kernel (kh, kw)``, ``stride (sh, sw)``, ``padding (ph, pw)``
``lut``            ``fn`` (``silu`` | ``sigmoid`` | ``hard_swish``)
``channel_mul``    (none): ``inputs[0]`` ``(1, H, W, C)`` times ``inputs[1]`` ``(1, 1, 1, C)``
``pad``            ``padding ((top, bottom), (left, right))``, filled with the zero point
``reshape``        (none): the output tensor's shape says it all
=================  ============================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tinyjax.codegen.numerics.floatref import LUT_FUNCTIONS
from tinyjax.codegen.numerics.quantmath import QuantInfo
from tinyjax.codegen.ops import OPS
from tinyjax.errors import GraphError
from tinyjax.layers import Layer, block_layers, head_layers, stem_layer
from tinyjax.shapes import conv_out_size

__all__ = [
    "ACTIVATIONS_CLAMP",
    "ACTIVATIONS_LUT",
    "Graph",
    "GraphError",
    "OP_KINDS",
    "Op",
    "QuantInfo",
    "Tensor",
    "graph_from_spec",
]

#: every op kind (the records of :data:`tinyjax.codegen.ops.OPS`)
OP_KINDS = tuple(OPS)
ACTIVATIONS_CLAMP = ("none", "relu", "relu6")   # fused into the producing op as a clamp range
ACTIVATIONS_LUT = tuple(LUT_FUNCTIONS)          # a 256-entry int8 table op
WEIGHTED_KINDS = tuple(k for k, rec in OPS.items() if rec.weighted)


@dataclass(frozen=True)
class Tensor:
    """An activation tensor: ``shape`` (NHWC with N = 1, or ``(1, C)``), int8 unless ``dtype``
    says otherwise, and its quantisation once the graph is quantised (``None`` before)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "int8"
    quant: QuantInfo | None = None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * _ITEMSIZE[self.dtype]


_ITEMSIZE = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4}


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Op:
    """One kernel call: ``kind`` (one of :data:`OP_KINDS`), activation tensor names in and out,
    and attributes as a sorted tuple of pairs (hashable; read them with :meth:`attr`)."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, name: str, kind: str, inputs: Iterable[str], outputs: Iterable[str] = (),
             **attrs: Any) -> Op:
        """``Op.make("stem/conv", "conv", ["input"], kernel=(3, 3), ...)``; the output defaults to
        a tensor named like the op."""
        outputs = tuple(outputs) or (name,)
        return cls(name, kind, tuple(inputs), outputs,
                   tuple(sorted((k, _freeze(v)) for k, v in attrs.items())))

    def attr(self, key: str, default: Any = ...) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        if default is ...:
            raise KeyError(f"op {self.name} ({self.kind}) has no attribute {key!r}")
        return default

    @property
    def attr_dict(self) -> dict[str, Any]:
        return dict(self.attrs)

    @property
    def output(self) -> str:
        return self.outputs[0]

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        """The int8 weight tensor's shape in CMSIS-NN layout, or ``None`` for ops without one."""
        rec = OPS.get(self.kind)
        return None if rec is None else rec.weight_shape(self)

    @property
    def out_channels(self) -> int | None:
        """Entries of the bias (and of the per-channel multiplier/shift) of a weighted op."""
        rec = OPS.get(self.kind)
        return None if rec is None else rec.out_channels(self)


@dataclass(frozen=True)
class Graph:
    """Tensors and ops in execution order. ``inputs``/``outputs`` name graph tensors."""

    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...] = ("input",)
    outputs: tuple[str, ...] = ()
    _index: Mapping[str, Tensor] = field(default=None, init=False, repr=False, compare=False,
                                         hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {t.name: t for t in self.tensors})

    def tensor(self, name: str) -> Tensor:
        try:
            return self._index[name]
        except KeyError:
            raise GraphError(f"no tensor named {name!r} in the graph") from None

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise GraphError(f"no op named {name!r} in the graph")

    def producers(self) -> dict[str, int]:
        """Tensor name -> index of the op that writes it (graph inputs are absent)."""
        return {t: i for i, op in enumerate(self.ops) for t in op.outputs}

    def consumers(self) -> dict[str, tuple[int, ...]]:
        """Tensor name -> indices of the ops that read it, in execution order."""
        out: dict[str, list] = {t.name: [] for t in self.tensors}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                out[t].append(i)
        return {k: tuple(v) for k, v in out.items()}

    def with_quant(self, quant: Mapping[str, QuantInfo]) -> Graph:
        """The same graph with every named tensor's quantisation set."""
        missing = [t.name for t in self.tensors if t.name not in quant]
        if missing:
            raise GraphError(f"no quantisation for tensor(s) {', '.join(missing[:5])}")
        tensors = tuple(Tensor(t.name, t.shape, t.dtype, quant[t.name]) for t in self.tensors)
        return Graph(tensors, self.ops, self.inputs, self.outputs)

    def without_quant(self) -> Graph:
        return Graph(tuple(Tensor(t.name, t.shape, t.dtype) for t in self.tensors), self.ops,
                     self.inputs, self.outputs)

    def validate(self) -> Graph:
        """Check names are unique, every input is defined before it is read, kinds and attributes
        are known, and each op's output shape follows from its inputs. Returns ``self``."""
        names = [t.name for t in self.tensors]
        if len(set(names)) != len(names):
            raise GraphError("tensor names are not unique")
        op_names = [op.name for op in self.ops]
        if len(set(op_names)) != len(op_names):
            raise GraphError("op names are not unique")
        defined = set(self.inputs)
        for op in self.ops:
            for t in op.inputs:
                if t not in defined:
                    raise GraphError(f"op {op.name} reads {t!r} before it is written")
            expected = infer_shape(op, [self.tensor(t).shape for t in op.inputs],
                                   self.tensor(op.output).shape)
            for t in op.outputs:
                if t in defined:
                    raise GraphError(f"tensor {t!r} is written twice")
                if self.tensor(t).shape != expected:
                    raise GraphError(f"op {op.name}: output {t} has shape {self.tensor(t).shape}, "
                                     f"its inputs give {expected}")
                defined.add(t)
        for t in self.outputs:
            if t not in defined:
                raise GraphError(f"graph output {t!r} is never written")
        return self

    def macs(self, op: Op) -> int:
        """Multiply-accumulates of one op (0 for ops without weights)."""
        return OPS[op.kind].macs(op, self.tensor(op.output).shape)

    def total_macs(self) -> int:
        return sum(self.macs(op) for op in self.ops)


def infer_shape(op: Op, in_shapes, declared: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The output shape of ``op`` given its input shapes (``declared``: the output tensor's
    stated shape, which a reshape needs). Raises :class:`GraphError`."""
    rec = OPS.get(op.kind)
    if rec is None:
        raise GraphError(f"op {op.name}: unknown kind {op.kind!r}; known kinds: "
                         f"{', '.join(OP_KINDS)}")
    return rec.infer_shape(op, in_shapes, declared)


def _op(name: str, kind: str, inputs: tuple[str, ...], attrs: tuple[tuple[str, Any], ...]) -> Op:
    """An :class:`Op` whose fields are already normalised (sorted attrs, tuples), built without
    the frozen dataclass's per-field ``object.__setattr__`` calls: graph_from_spec is on the
    search's per-candidate path. Equal (``==``) to ``Op(name, kind, inputs, (name,), attrs)``."""
    op = object.__new__(Op)
    op.__dict__.update(name=name, kind=kind, inputs=inputs, outputs=(name,), attrs=attrs)
    return op


def _tensor(name: str, shape: tuple[int, ...]) -> Tensor:
    t = object.__new__(Tensor)
    t.__dict__.update(name=name, shape=shape, dtype="int8", quant=None)
    return t


@functools.lru_cache(maxsize=8192)
def _layer_ops(layer: Layer, x: str, in_shape: tuple[int, ...]) -> tuple[tuple[Op, Tensor], ...]:
    """The op (conv, depthwise or dense) of one weight layer of the walk reading tensor ``x`` of
    ``in_shape``, with its output tensor, and for an activation without a clamp form its
    lookup-table op. Memoised: ops and tensors are immutable, and a search builds the same
    layer on the same input again and again (graph_from_spec is on its per-candidate path, so
    attrs are built already sorted and frozen, without Op.make's normalisation)."""
    n, h, w, c = in_shape
    act = layer.act or "none"
    fused = act if act in ACTIVATIONS_CLAMP else "none"
    if layer.kind == "dense":
        op = _op(layer.name, "dense", (x,), (("act", fused), ("in_features", c * h * w),
                                             ("out_features", layer.out_chs)))
        out_shape: tuple[int, ...] = (n, layer.out_chs)
    else:
        k, s, p = layer.kernel, layer.stride, layer.padding
        oh, ow = conv_out_size(h, k, s, p), conv_out_size(w, k, s, p)
        if oh < 1 or ow < 1:
            raise GraphError(f"op {layer.name}: a {h}x{w} input is too small for kernel {k}x{k}")
        if layer.kind == "depthwise":
            attrs = (("act", fused), ("ch_mult", 1), ("channels", c), ("kernel", (k, k)),
                     ("padding", (p, p)), ("stride", (s, s)))
            op = _op(layer.name, "depthwise_conv", (x,), attrs)
        else:
            attrs = (("act", fused), ("in_chs", c), ("kernel", (k, k)),
                     ("out_chs", layer.out_chs), ("padding", (p, p)), ("stride", (s, s)))
            op = _op(layer.name, "conv", (x,), attrs)
        out_shape = (n, oh, ow, layer.out_chs)
    out = ((op, _tensor(layer.name, out_shape)),)
    if act in ACTIVATIONS_CLAMP:
        return out
    if act not in ACTIVATIONS_LUT:
        raise GraphError(f"{layer.name}: activation {act!r} has no int8 form; use relu, relu6, "
                         f"silu, sigmoid or hard_swish")
    lut = f"{layer.name}/{act}"
    return out + ((_op(lut, "lut", (layer.name,), (("fn", act),)), _tensor(lut, out_shape)),)


@functools.lru_cache(maxsize=4096)
def _global_pool(name: str, x: str, in_shape: tuple[int, ...]) -> tuple[Op, Tensor]:
    n, h, w, c = in_shape
    op = _op(name, "avg_pool", (x,), (("kernel", (h, w)), ("padding", (0, 0)), ("stride", (1, 1))))
    return op, _tensor(name, (n, 1, 1, c))


class _Builder:
    def __init__(self, shape: tuple[int, ...]):
        self.tensors = [Tensor("input", shape)]
        self.ops = []
        self.shapes = {"input": shape}

    def add(self, op: Op, shape: tuple[int, ...] | None = None) -> str:
        if shape is None:
            shape = infer_shape(op, [self.shapes[t] for t in op.inputs])
        return self.put(op, _tensor(op.outputs[0], shape))

    def put(self, op: Op, tensor: Tensor) -> str:
        self.ops.append(op)
        self.tensors.append(tensor)
        self.shapes[tensor.name] = tensor.shape
        return tensor.name

    def layer(self, x: str, layer: Layer) -> str:
        for op, tensor in _layer_ops(layer, x, self.shapes[x]):
            x = self.put(op, tensor)
        return x

    def global_pool(self, x: str, name: str) -> str:
        return self.put(*_global_pool(name, x, self.shapes[x]))


def graph_from_spec(spec, resolution: int | None = None) -> Graph:
    """The int8 deployment graph of ``spec`` at ``resolution`` (default: the spec's own): the
    weight layers of :mod:`tinyjax.layers`' walk, plus the squeeze-excite pool and gate multiply,
    residual adds and the global pool before the classifier."""
    r = int(resolution or spec.resolution)
    g = _Builder((1, r, r, spec.in_chs))
    x = g.layer("input", stem_layer(spec))
    blocks = spec.resolved_blocks()
    for b in blocks:
        shortcut = x
        layers = iter(block_layers(b))
        for layer in layers:
            if layer.kind == "se_reduce":
                s = g.global_pool(x, f"{b.name}/se/pool")
                s = g.layer(g.layer(s, layer), next(layers))          # reduce, expand
                x = g.add(_op(f"{b.name}/se/mul", "channel_mul", (x, s), ()), g.shapes[x])
            else:
                x = g.layer(x, layer)
        if b.has_skip:
            x = g.add(_op(f"{b.name}/add", "add", (x, shortcut), (("act", "none"),)), g.shapes[x])
    for layer in head_layers(spec, blocks[-1].out_chs):
        if layer.kind == "dense":
            x = g.global_pool(x, "pool")
        x = g.layer(x, layer)
    return Graph(tuple(g.tensors), tuple(g.ops), ("input",), (x,))
