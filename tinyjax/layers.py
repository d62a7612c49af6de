"""The weight layers of a network in execution order: the one walk of a spec's structure.

Counting (:mod:`tinyjax.counting`), the Flax model (:mod:`tinyjax.models`), the int8 graph
(``tinyjax.codegen.graph.graph_from_spec``) and batch-norm folding
(``tinyjax.codegen.quant.quantize.fold_batchnorm``) all read the layers from here, so a layer's name,
kind, channels, kernel, stride, padding, activation and BatchNorm are decided in one place.
Framework-free: no JAX, no numpy.

A block's layers, by type (``{n}`` is the block's name ``blocks_{stage}_{index}``)::

    ir:  {n}/conv_pw (pointwise, bn1, act) -> {n}/conv_dw (depthwise, bn2, act)
         -> [{n}/se/conv_reduce (se_reduce, act) -> {n}/se/conv_expand (se_expand, sigmoid)]
         -> {n}/conv_pwl (projection, bn3, linear)
    ds:  {n}/conv_dw (depthwise, bn1, act) -> [se] -> {n}/conv_pw (projection, bn2, linear)

The network: ``stem/conv`` (conv, ``stem/bn``), the blocks, ``head/conv`` (pointwise,
``head/bn``; absent when ``spec.head.out_chs`` is None), ``classifier`` (dense, bias). What is not
a weight layer is the consumer's to add: the squeeze-excite pool and gate multiply around the two
SE layers, the residual add of a block with ``has_skip``, the global pool before the classifier.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from tinyjax.shapes import conv_macs, conv_out_size
from tinyjax.spec import ModelSpec, ResolvedBlock

#: every layer kind, in the order a block runs them
LAYER_KINDS = ("conv", "pointwise", "depthwise", "se_reduce", "se_expand", "projection", "dense")
#: kinds that run on the pooled 1×1 map (the SE convs) or a flat vector (the classifier)
POOLED_KINDS = ("se_reduce", "se_expand", "dense")


class Layer(NamedTuple):
    """One weight layer (a NamedTuple: the search builds thousands of these a second).

    Attributes:
        name: the stable parameter path, e.g. ``blocks_1_0/conv_dw`` (timm's names).
        kind: one of :data:`LAYER_KINDS`.
        in_chs, out_chs: channels in and out.
        kernel: square kernel size (1 for pointwise, projection, SE and dense).
        stride: stride (the first block of a stage may stride).
        act: the activation after the (folded) BatchNorm: ``relu``, ``relu6``, ``silu``,
            ``hard_swish``, ``sigmoid`` (the SE gate), or ``None`` (linear).
        bn: the BatchNorm module's path that follows the layer (``blocks_1_0/bn2``), or ``None``.
        bias: whether the layer has its own bias parameter (SE convs, the classifier).
    """

    name: str
    kind: str
    in_chs: int
    out_chs: int
    kernel: int = 1
    stride: int = 1
    act: str | None = None
    bn: str | None = None
    bias: bool = False

    @property
    def padding(self) -> int:
        """Zero padding on each side: symmetric ``kernel // 2``."""
        return self.kernel // 2

    @property
    def groups(self) -> int:
        """Convolution groups: ``in_chs`` for a depthwise conv, else 1."""
        return self.in_chs if self.kind == "depthwise" else 1

    @property
    def weight_count(self) -> int:
        """Entries of the weight tensor (bias excluded)."""
        return self.out_chs * (self.in_chs // self.groups) * self.kernel * self.kernel

    @property
    def leaf(self) -> str:
        """The last part of :attr:`name`: the module's name inside its parent."""
        return self.name.rpartition("/")[2]

    def out_size(self, size: int) -> int:
        """Output height (or width) for an input of ``size`` pixels; 1 for pooled kinds."""
        if self.kind in POOLED_KINDS:
            return 1
        return conv_out_size(size, self.kernel, self.stride)

    def macs(self, out_h: int, out_w: int) -> int:
        """Multiply-accumulates for an ``out_h × out_w`` output map."""
        return conv_macs(out_h, out_w, self.out_chs, self.in_chs // self.groups, self.kernel,
                         self.kernel)


def stem_layer(spec: ModelSpec) -> Layer:
    """The stem convolution (conv-BN-act)."""
    s = spec.stem
    return Layer("stem/conv", "conv", spec.in_chs, s.out_chs, s.kernel, s.stride, spec.act,
                 "stem/bn")


@functools.lru_cache(maxsize=4096)
def block_layers(b: ResolvedBlock) -> tuple[Layer, ...]:
    """The layers of one resolved block in execution order (module docstring). Cached: a
    search meets the same blocks again and again, and the result is immutable."""
    n = b.name
    ir = b.type == "ir"
    layers = []
    if ir:
        layers.append(Layer(f"{n}/conv_pw", "pointwise", b.in_chs, b.mid_chs, 1, 1, b.act,
                            f"{n}/bn1"))
    layers.append(Layer(f"{n}/conv_dw", "depthwise", b.mid_chs, b.mid_chs, b.kernel, b.stride,
                        b.act, f"{n}/bn2" if ir else f"{n}/bn1"))
    if b.se_chs:
        layers.append(Layer(f"{n}/se/conv_reduce", "se_reduce", b.mid_chs, b.se_chs, act=b.act,
                            bias=True))
        layers.append(Layer(f"{n}/se/conv_expand", "se_expand", b.se_chs, b.mid_chs,
                            act="sigmoid", bias=True))
    layers.append(Layer(f"{n}/conv_pwl" if ir else f"{n}/conv_pw", "projection", b.mid_chs,
                        b.out_chs, bn=f"{n}/bn3" if ir else f"{n}/bn2"))
    return tuple(layers)


def head_layers(spec: ModelSpec, in_chs: int | None = None) -> tuple[Layer, ...]:
    """The head conv (if any) and the classifier. ``in_chs``: channels of the last block
    (computed from the spec when not given)."""
    if in_chs is None:
        in_chs = spec.resolved_blocks()[-1].out_chs
    out = []
    if spec.head.out_chs is not None:
        out.append(Layer("head/conv", "pointwise", in_chs, spec.head.out_chs, act=spec.act,
                         bn="head/bn"))
        in_chs = spec.head.out_chs
    out.append(Layer("classifier", "dense", in_chs, spec.num_classes, bias=True))
    return tuple(out)


def model_layers(spec: ModelSpec) -> tuple[Layer, ...]:
    """Every weight layer of ``spec`` in execution order."""
    blocks = spec.resolved_blocks()
    out = [stem_layer(spec)]
    for b in blocks:
        out.extend(block_layers(b))
    out.extend(head_layers(spec, blocks[-1].out_chs))
    return tuple(out)
