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

from tinyjax.spec import ModelSpec


@dataclass(frozen=True)
class LayerStats:
    """One weight layer. Shapes are ``(H, W, C)``; ``groups == in C`` marks a depthwise conv."""

    name: str
    op: str  # "conv" | "dwconv" | "se_reduce" | "se_expand" | "dense"
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


def conv_out_size(size: int, kernel: int, stride: int) -> int:
    """Output size of a convolution with symmetric ``kernel // 2`` padding."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def count(spec: ModelSpec) -> ModelStats:
    """Count ``spec`` at its own resolution (batch 1)."""
    layers: list[LayerStats] = []

    def conv(name, op, h, w, cin, cout, k, s, groups=1, bias=False, bn=True):
        ho, wo = conv_out_size(h, k, s), conv_out_size(w, k, s)
        weights = cout * (cin // groups) * k * k
        params = weights + (cout if bias else 0) + (2 * cout if bn else 0)
        layers.append(LayerStats(name, op, (h, w, cin), (ho, wo, cout), k, s, groups, params,
                                 ho * wo * weights))
        return ho, wo

    h = w = spec.resolution
    h, w = conv("stem/conv", "conv", h, w, spec.in_chs, spec.stem.out_chs, spec.stem.kernel,
                spec.stem.stride)
    blocks = spec.resolved_blocks()
    for b in blocks:
        n = b.name
        if b.type == "ir":
            conv(f"{n}/conv_pw", "conv", h, w, b.in_chs, b.mid_chs, 1, 1)
        ho, wo = conv(f"{n}/conv_dw", "dwconv", h, w, b.mid_chs, b.mid_chs, b.kernel, b.stride,
                      groups=b.mid_chs)
        if b.se_chs:
            conv(f"{n}/se/conv_reduce", "se_reduce", 1, 1, b.mid_chs, b.se_chs, 1, 1, bias=True, bn=False)
            conv(f"{n}/se/conv_expand", "se_expand", 1, 1, b.se_chs, b.mid_chs, 1, 1, bias=True, bn=False)
        conv(f"{n}/conv_pwl" if b.type == "ir" else f"{n}/conv_pw", "conv", ho, wo, b.mid_chs,
             b.out_chs, 1, 1)
        h, w = ho, wo
    last = blocks[-1].out_chs
    if spec.head.out_chs is not None:
        conv("head/conv", "conv", h, w, last, spec.head.out_chs, 1, 1)
        last = spec.head.out_chs
    layers.append(LayerStats("classifier", "dense", (1, 1, last), (1, 1, spec.num_classes), 1, 1, 1,
                             last * spec.num_classes + spec.num_classes, last * spec.num_classes))
    return ModelStats(spec.name, spec.resolution, sum(x.params for x in layers),
                      sum(x.macs for x in layers), tuple(layers))
