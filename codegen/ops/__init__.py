"""The op table: every op kind of the int8 graph, one record each (see :mod:`.base` for what a
record answers). ``OPS[op.kind]`` is how every pass asks about an op.

=================  ===================  =========================================================
kind               record (module)      what it is
=================  ===================  =========================================================
``conv``           ``Conv`` (conv)      convolution, OHWI int8 weights, per-channel requantisation
``depthwise_conv`` ``DepthwiseConv``    depthwise convolution, may run in place
``dense``          ``Dense`` (conv)     fully connected, per-tensor requantisation
``add``            ``Add`` (elementwise) residual add (left shift 20)
``channel_mul``    ``ChannelMul``       squeeze-excite gate, broadcast over H, W
``lut``            ``Lut``              256-entry table activation (silu, sigmoid, hard_swish)
``avg_pool``       ``AvgPool`` (pool)   average pool without requantisation
``pad``            ``Pad`` (layout)     zero-point padding
``reshape``        ``Reshape`` (layout) zero-copy view
=================  ===================  =========================================================

Adding a kind: write its record (a subclass of :class:`~.base.OpKind`) and list it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tinyjax.codegen.ops import conv, elementwise, layout, pool
from tinyjax.codegen.ops.base import KernelRow, OpKind, Shape

__all__ = ["OPS", "KernelRow", "OpKind", "Shape"]

OPS: Mapping[str, OpKind] = MappingProxyType(
    {k.name: k for module in (conv, elementwise, pool, layout) for k in module.KINDS})
