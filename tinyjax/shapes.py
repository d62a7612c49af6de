"""Integer shape arithmetic, written once: output sizes, MACs, alignment.

Counting, the Flax model, the int8 graph, the kernel table and the memory planner all call these,
so a formula cannot drift between them.
"""

from __future__ import annotations


def conv_out_size(size: int, kernel: int, stride: int, padding: int | None = None,
                  dilation: int = 1) -> int:
    """Output size (pixels) of a convolution or pooling window along one axis.

    ``padding`` is the zero padding on *each* side; ``None`` means the symmetric ``kernel // 2``
    of every layer in this project (timm's EfficientNet, not TF's 'SAME'). May be < 1 when the
    input is too small; callers decide whether that is an error.
    """
    if padding is None:
        padding = kernel // 2
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_macs(out_h: int, out_w: int, out_chs: int, in_chs_per_group: int, kernel_h: int,
              kernel_w: int) -> int:
    """Multiply-accumulates of a convolution: every output element sums ``in_chs_per_group ·
    kernel_h · kernel_w`` products. A depthwise conv has one input channel per group; a dense
    layer is a 1×1 convolution on a 1×1 map."""
    return out_h * out_w * out_chs * in_chs_per_group * kernel_h * kernel_w


def align_up(n: int, alignment: int) -> int:
    """``n`` rounded up to a multiple of ``alignment`` (both positive; bytes or elements)."""
    return -(-n // alignment) * alignment
