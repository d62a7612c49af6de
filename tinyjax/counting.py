"""Parameters, MACs and per-layer activation sizes straight from a spec (no tracing, microseconds).

Conventions match timm/PyTorch so the numbers can be checked against them:

* ``params``: trainable parameters (conv and dense weights, biases, BatchNorm scale and shift;
  BatchNorm running statistics are buffers, not parameters).
* ``macs``: multiply-accumulates of convolutions (incl. the squeeze-excite 1×1 convs) and dense
  layers, bias adds excluded; equal to ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2.
  BatchNorm, activations, pooling and the SE channel multiply are not counted (as in the papers).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyjax.layers import POOLED_KINDS, model_layers
from tinyjax.spec import ModelSpec


@dataclass(frozen=True)
class LayerStats:
    """One weight layer. Shapes are ``(H, W, C)``; ``op`` is the layer's kind
    (:data:`tinyjax.layers.LAYER_KINDS`); ``groups == in C`` marks a depthwise conv."""

    name: str
    op: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int
    stride: int
    groups: int
    params: int
    macs: int

    @property
    def in_elems(self) -> int:
        h, w, c = self.in_shape
        return h * w * c

    @property
    def out_elems(self) -> int:
        h, w, c = self.out_shape
        return h * w * c


@dataclass(frozen=True)
class ModelStats:
    name: str
    resolution: int
    params: int
    macs: int
    layers: tuple[LayerStats, ...]

    @property
    def max_layer_io_elems(self) -> int:
        """Largest input+output activation (elements) of a single layer: a crude memory floor;
        the real SRAM peak comes from the memory planner."""
        return max(layer.in_elems + layer.out_elems for layer in self.layers)


def count(spec: ModelSpec) -> ModelStats:
    """Count ``spec`` at its own resolution (batch 1), layer by layer along
    :func:`tinyjax.layers.model_layers`."""
    layers: list[LayerStats] = []
    h = w = spec.resolution
    for layer in model_layers(spec):
        if layer.kind in POOLED_KINDS:   # SE convs and the classifier run on the pooled map
            in_hw = out_hw = (1, 1)
        else:
            in_hw, out_hw = (h, w), (layer.out_size(h), layer.out_size(w))
            h, w = out_hw
        bias = layer.out_chs if layer.bias else 0
        bn = 2 * layer.out_chs if layer.bn else 0      # BN scale and shift
        layers.append(LayerStats(layer.name, layer.kind, in_hw + (layer.in_chs,),
                                 out_hw + (layer.out_chs,), layer.kernel, layer.stride,
                                 layer.groups, layer.weight_count + bias + bn,
                                 layer.macs(*out_hw)))
    return ModelStats(spec.name, spec.resolution, sum(x.params for x in layers),
                      sum(x.macs for x in layers), tuple(layers))
