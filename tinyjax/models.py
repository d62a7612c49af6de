"""Flax Linen networks built from a :class:`~tinyjax.spec.ModelSpec`.

One module, :class:`EfficientNet`, builds every family in the zoo (TinyNet, EfficientNet,
MobileNetV2, MCUNet/ProxylessNAS), exactly as timm's ``EfficientNet`` class does: conv-BN-act
stem, depthwise-separable (``ds``) and inverted-residual (``ir``) blocks with optional
squeeze-excite, optional 1×1 conv-BN-act head, global average pool, dropout, linear classifier.

Parameter names are structural and stable, and mirror timm's so weights map one to one::

    stem/conv, stem/bn
    blocks_{stage}_{block}/{conv_pw, bn1, conv_dw, bn2, se/conv_reduce, se/conv_expand, conv_pwl, bn3}
    head/conv, head/bn, classifier

Usage (pure functions over variable pytrees)::

    model = create_model("tinynet_e")
    variables = model.init(jax.random.key(0), jnp.zeros((1, 106, 106, 3)))
    logits = model.apply(variables, images_nhwc)                       # eval: running BN stats
    logits, updates = model.apply(variables, x, train=True, mutable=["batch_stats"],
                                  rngs={"dropout": key})                  # train: batch BN stats
    stage_maps = model.apply(variables, x, features=True)                # backbone feature maps

The depthwise convolution's CPU implementation (k² shifted slices with a custom backward pass)
lives in :mod:`tinyjax.depthwise`; weight import from timm (``from_timm``) in
:mod:`tinyjax.timm_import`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tinyjax.depthwise import depthwise_conv_shifted
from tinyjax.layers import Layer, block_layers, head_layers, stem_layer
from tinyjax.spec import ModelSpec, ResolvedBlock

Dtype = Any

BN_MOMENTUM = 0.9  # == PyTorch momentum 0.1
BN_EPSILON = 1e-5

_ACTS: dict[str, Callable] = {
    "relu": nn.relu,
    "relu6": nn.relu6,
    "silu": nn.silu,
    "hard_swish": nn.hard_swish,
    "sigmoid": nn.sigmoid,   # the squeeze-excite gate
}


def _conv_init(fan_out: int):
    """timm's EfficientNet init: N(0, sqrt(2 / fan_out)), fan_out = k·k·out / groups."""
    std = math.sqrt(2.0 / fan_out)

    def init(key, shape, dtype=jnp.float32):
        return std * jax.random.normal(key, shape, dtype)

    return init


def _dense_init(fan_out: int):
    """timm's classifier init: U(-1/sqrt(fan_out), 1/sqrt(fan_out))."""
    bound = 1.0 / math.sqrt(fan_out)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _identity_init(key, shape, dtype=jnp.float32):
    del key
    return jnp.eye(shape[0], shape[1], dtype=dtype)


class PointwiseConv(nn.Module):
    """1×1 convolution without bias as a matrix product (kernel ``[1, 1, in, out]``, the layout of
    ``nn.Conv``). XLA's CPU backend runs its backward pass ≈3.5× faster than a 1×1 ``conv``."""

    features: int
    dtype: Dtype = jnp.float32
    use_bias: bool = False

    @nn.compact
    def __call__(self, x):
        cin = x.shape[-1]
        kernel = self.param("kernel", _conv_init(self.features), (1, 1, cin, self.features),
                            jnp.float32)
        y = jnp.einsum("nhwc,cd->nhwd", x.astype(self.dtype), kernel[0, 0].astype(self.dtype))
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


def transform_name(big: int, small: int) -> str:
    """The parameter name of the learned ``small²×small²`` kernel transform (OFA's naming)."""
    return f"{big}to{small}_matrix"


def elastic_kernel(kernel, matrices: dict, choices: tuple[int, ...], size: int):
    """OFA's elastic kernel: the ``size×size`` depthwise kernel of a supernet kernel ``[k, k, 1, C]``
    (``k = max(choices)``). Going down the ``choices`` one size at a time, the centre of the
    previous kernel is flattened per channel and mapped by the learned matrix
    ``matrices[transform_name(big, small)]`` (``out_j = Σ_i M[j, i] · in_i``, shared over
    channels, identity at init), so a small kernel is not forced to equal the centre of a large
    one. Returns ``[size, size, 1, C]``."""
    choices = tuple(sorted(choices, reverse=True))
    if size not in choices:
        raise ValueError(f"kernel {size} is not one of the elastic choices {choices}")
    for big, small in zip(choices, choices[1:]):
        if big == size:
            break
        lo = (big - small) // 2
        centre = kernel[lo:lo + small, lo:lo + small, 0, :]                 # [s, s, C]
        flat = centre.reshape(small * small, -1)
        flat = jnp.einsum("ji,ic->jc", matrices[transform_name(big, small)], flat)
        kernel = flat.reshape(small, small, 1, -1)
    return kernel


class DepthwiseConv(nn.Module):
    """Depthwise k×k conv without bias. Kernel ``[k, k, 1, C]`` (the layout of ``nn.Conv`` with
    ``feature_group_count=C``). ``impl``: ``"xla"`` (grouped convolution), ``"shifted"``
    (:func:`depthwise_conv_shifted`) or ``"auto"`` (shifted on CPU, xla on GPU/TPU).

    ``elastic_kernels`` (OFA's elastic kernel, ``max == kernel_size``): adds one learned transform
    per pair of consecutive sizes (``7to5_matrix`` [25, 25], ``5to3_matrix`` [9, 9], identity at
    init; see :func:`elastic_kernel`); the ``kernel_mask`` then picks the size, by its number of
    ones, instead of cropping the raw kernel."""

    features: int
    kernel_size: int
    stride: int = 1
    impl: str = "auto"
    dtype: Dtype = jnp.float32
    elastic_kernels: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, x, kernel_mask=None):
        """``kernel_mask`` ([k, k], optional) multiplies the kernel: a centred k'×k' window of
        ones is an elastic kernel of size k' (OFA's centre crop; with ``elastic_kernels``, the
        transformed k'×k' kernel)."""
        k = self.kernel_size
        kernel = self.param("kernel", _conv_init(k * k), (k, k, 1, self.features), jnp.float32)
        choices = tuple(sorted(self.elastic_kernels, reverse=True))
        if len(choices) > 1:
            if choices[0] != k:
                raise ValueError(f"elastic kernels {choices} must end at the kernel size {k}")
            matrices = {transform_name(b, s): self.param(transform_name(b, s), _identity_init,
                                                         (s * s, s * s), jnp.float32)
                        for b, s in zip(choices, choices[1:])}
        if len(choices) > 1 and kernel_mask is not None:
            # sum over the choices, weighted by a one-hot of the mask's size: vmap-friendly
            ones = jnp.sum(kernel_mask)
            full = kernel
            kernel = jnp.zeros_like(full)
            for c in choices:
                lo = (k - c) // 2
                small = elastic_kernel(full, matrices, choices, c)
                padded = jnp.pad(small, ((lo, lo), (lo, lo), (0, 0), (0, 0)))
                kernel = kernel + (ones == c * c).astype(kernel.dtype) * padded
        elif kernel_mask is not None:
            kernel = kernel * kernel_mask[:, :, None, None]
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        impl = self.impl
        if impl == "auto":
            impl = "shifted" if jax.default_backend() == "cpu" else "xla"
        if impl == "shifted":
            return depthwise_conv_shifted(x, kernel, self.stride)
        if impl != "xla":
            raise ValueError(f"unknown depthwise impl {impl!r}; expected auto, xla or shifted")
        p = k // 2
        return jax.lax.conv_general_dilated(
            x, kernel, (self.stride, self.stride), ((p, p), (p, p)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=self.features)


class _Layers:
    """Builds the Flax module of a :class:`~tinyjax.layers.Layer` (keeps dtype, the depthwise
    implementation and BatchNorm settings in one place)."""

    def __init__(self, dtype: Dtype, train: bool, dw_impl: str, elastic_kernels: tuple[int, ...] = ()):
        self.dtype, self.train, self.dw_impl = dtype, train, dw_impl
        self.elastic_kernels = elastic_kernels

    def conv(self, layer: Layer) -> nn.Module:
        """The convolution of ``layer``, named :attr:`Layer.leaf` (``conv_pw``, ``conv``, …)."""
        if layer.kind == "depthwise":
            return DepthwiseConv(layer.out_chs, layer.kernel, layer.stride, impl=self.dw_impl,
                                 dtype=self.dtype, elastic_kernels=self.elastic_kernels,
                                 name=layer.leaf)
        if layer.kernel == 1 and layer.stride == 1:
            return PointwiseConv(layer.out_chs, dtype=self.dtype, use_bias=layer.bias,
                                 name=layer.leaf)
        k, s, p = layer.kernel, layer.stride, layer.padding
        return nn.Conv(layer.out_chs, (k, k), (s, s), padding=((p, p), (p, p)),
                       use_bias=layer.bias, dtype=self.dtype,
                       kernel_init=_conv_init(k * k * layer.out_chs), name=layer.leaf)

    def bn(self, layer: Layer) -> nn.BatchNorm:
        """The BatchNorm after ``layer`` (named after the last part of ``layer.bn``)."""
        return nn.BatchNorm(use_running_average=not self.train, momentum=BN_MOMENTUM,
                            epsilon=BN_EPSILON, dtype=self.dtype,
                            name=layer.bn.rpartition("/")[2])

    def conv_bn_act(self, layer: Layer, x, kernel_mask=None):
        """``act(bn(conv(x)))`` as the layer says (no BN or activation where it has none)."""
        conv = self.conv(layer)
        x = conv(x, kernel_mask) if layer.kind == "depthwise" else conv(x)
        if layer.bn is not None:
            x = self.bn(layer)(x)
        return x if layer.act is None else _ACTS[layer.act](x)


class SqueezeExcite(nn.Module):
    """Global average pool, 1×1 conv reduce (bias) + act, 1×1 conv expand (bias), sigmoid gate:
    the ``se_reduce`` and ``se_expand`` layers of the walk."""

    reduce: Layer
    expand: Layer
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        L = _Layers(self.dtype, False, "auto")   # no BatchNorm or depthwise conv inside
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = L.conv_bn_act(self.expand, L.conv_bn_act(self.reduce, s))
        return x * s


def _drop_path(module: nn.Module, x, rate: float, train: bool):
    """Stochastic depth: drop the residual branch per sample with probability ``rate``."""
    if not train or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, (x.shape[0], 1, 1, 1))
    return x * mask.astype(x.dtype) / keep


class Block(nn.Module):
    """One ``ds`` or ``ir`` block, as fixed by :class:`~tinyjax.spec.ResolvedBlock`; its layers
    are :func:`tinyjax.layers.block_layers`."""

    block: ResolvedBlock
    drop_path_rate: float = 0.0
    dtype: Dtype = jnp.float32
    dw_impl: str = "auto"
    elastic_kernels: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, x, train: bool = False, mask: dict | None = None):
        """``mask`` (a sub-network of a weight-sharing supernet, see :func:`subnet_masks`):
        ``mid`` [mid_chs] zeroes unused middle channels, ``kernel`` [k, k] crops the depthwise
        kernel (or picks its transformed size, with ``elastic_kernels``), ``keep`` (scalar)
        switches a residual block off (the block becomes the identity)."""
        b = self.block
        L = _Layers(self.dtype, train, self.dw_impl, self.elastic_kernels)
        mask = mask or {}
        mid = mask.get("mid")
        shortcut = x
        layers = iter(block_layers(b))
        for layer in layers:
            if layer.kind == "se_reduce":
                x = SqueezeExcite(layer, next(layers), dtype=self.dtype, name="se")(x)
                continue
            x = L.conv_bn_act(layer, x, mask.get("kernel"))
            if mid is not None and layer.kind in ("pointwise", "depthwise"):  # the middle maps
                x = x * mid.astype(x.dtype)
        if b.has_skip:
            x = _drop_path(self, x, self.drop_path_rate, train)
            if "keep" in mask:
                x = x * mask["keep"].astype(x.dtype)
            x = x + shortcut
        return x


class ConvBNAct(nn.Module):
    """The stem or the head: one conv-BN-act :class:`~tinyjax.layers.Layer`."""

    layer: Layer
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        return _Layers(self.dtype, train, "auto").conv_bn_act(self.layer, x)


class EfficientNet(nn.Module):
    """The network of a spec. ``drop_path_rate`` grows linearly with the block index (timm).

    ``__call__(x, train=False, features=False, masks=None)``: ``x`` is NHWC; returns logits
    ``[N, classes]`` (float32), or with ``features=True`` a tuple of each stage's output map (a
    backbone). ``masks`` selects a sub-network of the spec taken as a weight-sharing supernet
    (:func:`subnet_masks`); the arrays can carry a leading axis for ``vmap``.

    ``elastic_kernels`` (e.g. ``(3, 5, 7)``; default ``()``: none, the plain tree): the
    inverted-residual blocks whose kernel is the largest choice get OFA's learned kernel
    transforms (:class:`DepthwiseConv`), and their kernel masks select transformed kernels.
    """

    spec: ModelSpec
    drop_path_rate: float = 0.0
    dtype: Dtype = jnp.float32
    dw_impl: str = "auto"
    elastic_kernels: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, x, train: bool = False, features: bool = False, masks: dict | None = None):
        spec = self.spec
        x = x.astype(self.dtype)
        x = ConvBNAct(stem_layer(spec), dtype=self.dtype, name="stem")(x, train)
        blocks = spec.resolved_blocks()
        stage_maps = []
        for b in blocks:
            rate = self.drop_path_rate * b.index / len(blocks)
            elastic = (self.elastic_kernels if b.type == "ir" and self.elastic_kernels
                       and b.kernel == max(self.elastic_kernels) else ())
            x = Block(b, rate, dtype=self.dtype, dw_impl=self.dw_impl, elastic_kernels=tuple(elastic),
                      name=b.name)(x, train, None if masks is None else masks.get(b.name))
            if b.index + 1 == len(blocks) or blocks[b.index + 1].stage != b.stage:
                stage_maps.append(x)
        if features:
            return tuple(stage_maps)
        *head, classifier = head_layers(spec, blocks[-1].out_chs)
        for layer in head:
            x = ConvBNAct(layer, dtype=self.dtype, name="head")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(spec.head.dropout, deterministic=not train)(x)
        x = nn.Dense(classifier.out_chs, dtype=self.dtype,
                     kernel_init=_dense_init(classifier.out_chs), name=classifier.name)(x)
        return x.astype(jnp.float32)


def subnet_masks(spec: ModelSpec, kernels: dict[str, int] | None = None,
                 expands: dict[str, float] | None = None,
                 depths: tuple[int, ...] | None = None) -> dict:
    """Masks that turn ``spec`` (a supernet) into one of its sub-networks, OFA-style.

    ``kernels[name]``: a smaller odd depthwise kernel for block ``name`` (centre crop);
    ``expands[name]``: a smaller expansion ratio (the first ``make_divisible(in·e)`` middle
    channels stay); ``depths[s]``: keep the first ``depths[s]`` blocks of stage ``s`` (the others
    must be residual, so switching them off leaves the identity). Blocks not named keep their
    full size. Returns ``{block name: {"mid", "kernel", "keep"}}`` of float32 numpy arrays.
    """
    from tinyjax.spec import make_divisible

    kernels, expands = kernels or {}, expands or {}
    out = {}
    for b in spec.resolved_blocks():
        k = kernels.get(b.name, b.kernel)
        if k > b.kernel or k % 2 == 0:
            raise ValueError(f"{b.name}: kernel {k} must be odd and at most {b.kernel}")
        lo = (b.kernel - k) // 2
        kmask = np.zeros((b.kernel, b.kernel), np.float32)
        kmask[lo:lo + k, lo:lo + k] = 1.0
        mid = b.mid_chs
        if b.name in expands:
            if b.type != "ir":
                raise ValueError(f"{b.name}: only inverted-residual blocks have an expansion ratio")
            mid = make_divisible(b.in_chs * expands[b.name])
            if mid > b.mid_chs:
                raise ValueError(f"{b.name}: expansion {expands[b.name]} exceeds the supernet's")
        mmask = (np.arange(b.mid_chs) < mid).astype(np.float32)
        keep = 1.0
        if depths is not None and b.index_in_stage >= depths[b.stage]:
            if not b.has_skip:
                raise ValueError(f"{b.name} has no residual connection, so it cannot be skipped")
            keep = 0.0
        out[b.name] = {"mid": mmask, "kernel": kmask, "keep": np.float32(keep)}
    return out


def build_model(spec: ModelSpec, **kwargs) -> EfficientNet:
    """The Flax module of ``spec`` (keyword arguments go to :class:`EfficientNet`)."""
    return EfficientNet(spec, **kwargs)


def create_model(name: str, resolution: int | None = None, num_classes: int | None = None,
                 **kwargs) -> EfficientNet:
    """A zoo model by name (timm's ``create_model`` without weights)."""
    from tinyjax.zoo import get_spec

    spec = get_spec(name, resolution)
    if num_classes is not None:
        spec = spec.with_(num_classes=num_classes)
    return EfficientNet(spec, **kwargs)


def init_variables(model: EfficientNet, key: jax.Array | int = 0, batch: int = 1) -> dict:
    """``{'params', 'batch_stats'}`` for ``model``, drawn on the host with numpy.

    Same tree, shapes and distributions as ``model.init`` (timm's EfficientNet init: conv kernels
    N(0, 2/fan_out), classifier U(±1/sqrt(out)), zero biases, BN scale 1 / shift 0, running
    mean 0 / var 1), but without compiling an XLA program of a few hundred RNG calls: on a 2-core
    CPU ``jax.jit(model.init)`` of mcunet_in0 took 16 s to compile, this takes about one second
    (the cost of tracing shapes). ``key`` is an int seed or a JAX key (its data seeds numpy).
    """
    if not isinstance(key, int):
        key = int(np.asarray(jax.random.key_data(key)).ravel()[-1])
    r = model.spec.resolution
    shapes = jax.eval_shape(model.init, jax.random.key(0),
                            jnp.zeros((batch, r, r, model.spec.in_chs), jnp.float32))
    rng = np.random.default_rng(key)

    def draw(path, leaf):
        names = [getattr(p, "key", str(p)) for p in path]
        shape, leaf_name = leaf.shape, names[-1]
        if leaf_name == "kernel" and len(shape) == 4:
            kh, kw, _, out = shape
            fan_out = kh * kw * (1 if names[-2] == "conv_dw" else out)
            value = rng.standard_normal(shape) * math.sqrt(2.0 / fan_out)
        elif leaf_name.endswith("_matrix"):  # the elastic kernel transforms start as identity
            value = np.eye(shape[0], shape[1])
        elif leaf_name == "kernel":  # the classifier
            bound = 1.0 / math.sqrt(shape[-1])
            value = rng.uniform(-bound, bound, shape)
        elif leaf_name in ("scale", "var"):
            value = np.ones(shape)
        else:  # biases, BN shift, running mean
            value = np.zeros(shape)
        return jnp.asarray(value, leaf.dtype)

    return {coll: jax.tree_util.tree_map_with_path(draw, tree) for coll, tree in shapes.items()}


def __getattr__(name: str):
    """Names that moved out of this module still resolve, with a DeprecationWarning
    (:data:`tinyjax._moved.MOVED_ATTRIBUTES`)."""
    from tinyjax import _moved

    return _moved.moved_attribute(__name__, name)
