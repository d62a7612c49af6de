"""Flax Linen networks built from a :class:`~tinyjax.spec.ModelSpec`, and weight import from timm.

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
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tinyjax.errors import TinyJaxError
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


def _shifted_sum(xp: jax.Array, kernel: jax.Array, stride: int, out_hw: tuple[int, int]) -> jax.Array:
    """``Σ_ab xp[:, s·i + a, s·j + b, :] · kernel[a, b, 0, :]`` over the k×k taps."""
    k = kernel.shape[0]
    n, _, _, c = xp.shape
    ho, wo = out_hw
    out = None
    for a in range(k):
        for b in range(k):
            patch = jax.lax.slice(xp, (0, a, b, 0),
                                  (n, a + stride * (ho - 1) + 1, b + stride * (wo - 1) + 1, c),
                                  (1, stride, stride, 1))
            term = patch * kernel[a, b, 0]
            out = term if out is None else out + term
    return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def depthwise_conv_shifted(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """Depthwise conv (symmetric ``k // 2`` padding) as k² strided slices, multiplied and summed.

    The same op as ``lax.conv_general_dilated(..., feature_group_count=C)``, several times faster
    on XLA's CPU backend (see REFERENCES.md). The backward pass is written out the same way
    (input gradient: the flipped kernel slid over the zero-dilated output gradient; kernel
    gradient: k² products reduced over N, H, W) because differentiating the slices would pad and
    add k² full-size arrays, 30× slower than the forward pass.
    ``x``: [N, H, W, C]; ``kernel``: [k, k, 1, C].
    """
    return _dw_forward(x, kernel, stride)[0]


def _dw_forward(x, kernel, stride):
    k = kernel.shape[0]
    p = k // 2
    _, h, w, _ = x.shape
    out_hw = ((h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1)
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return _shifted_sum(xp, kernel, stride, out_hw), (x, kernel)


#: Bytes of one block of images in the depthwise backward pass (see :func:`_dw_backward`).
DW_BLOCK_BYTES = 2 << 20


def _batch_block(n: int, bytes_per_image: int) -> int:
    """The largest divisor of ``n`` whose images take at most :data:`DW_BLOCK_BYTES` (at least 1)."""
    best = 1
    for d in range(1, n + 1):
        if n % d == 0 and d * bytes_per_image <= DW_BLOCK_BYTES:
            best = d
    return best


def _dw_backward_block(stride, x, kernel, g):
    """Input and kernel gradients of one block of images (see :func:`_dw_backward`)."""
    k = kernel.shape[0]
    p = k // 2
    n, h, w, c = x.shape
    ho, wo = g.shape[1:3]
    # kernel gradient: Σ_{n,i,j} xp[n, s·i + a, s·j + b, c] · g[n, i, j, c]
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    taps = []
    for a in range(k):
        for b in range(k):
            patch = jax.lax.slice(xp, (0, a, b, 0),
                                  (n, a + stride * (ho - 1) + 1, b + stride * (wo - 1) + 1, c),
                                  (1, stride, stride, 1))
            taps.append(jnp.sum(patch * g, axis=(0, 1, 2)))
    dkernel = jnp.stack(taps).reshape(k, k, 1, c)
    # input gradient: dxp[u] = Σ_a gd[u − a] · w[a], gd = g dilated by the stride; as a
    # correlation with the flipped kernel over gd padded by k − 1 (then crop the padding p).
    hp, wp = h + 2 * p, w + 2 * p
    zero = jnp.zeros((), g.dtype)
    gd = jax.lax.pad(g, zero, ((0, 0, 0),
                               (k - 1, hp - (stride * (ho - 1) + 1), stride - 1),
                               (k - 1, wp - (stride * (wo - 1) + 1), stride - 1),
                               (0, 0, 0)))
    dxp = _shifted_sum(gd, kernel[::-1, ::-1], 1, (hp, wp))
    return dxp[:, p:p + h, p:p + w, :], dkernel


def _dw_backward(stride, residuals, g):
    """Both gradients are k² passes over the activations, bound by memory bandwidth on a CPU.
    Running them over blocks of images (``lax.map``) keeps each block's activations in cache
    across the k² passes: 3–6× faster than one pass over the whole batch on XLA's CPU backend
    (measured on TinyNet-A at 192 px, batch 32: a training step took 3.1 s instead of 7.0 s).
    The block size, :data:`DW_BLOCK_BYTES`, was the best of 0.25–16 MiB there."""
    x, kernel = residuals
    n = x.shape[0]
    block = _batch_block(n, x[0].size * x.dtype.itemsize)
    if block == n:
        dx, dkernel = _dw_backward_block(stride, x, kernel, g)
    else:
        blocks = (x.reshape((n // block, block) + x.shape[1:]),
                  g.reshape((n // block, block) + g.shape[1:]))
        dx, dkernel = jax.lax.map(lambda xg: _dw_backward_block(stride, xg[0], kernel, xg[1]),
                                  blocks)
        dx, dkernel = dx.reshape(x.shape), jnp.sum(dkernel, axis=0)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


depthwise_conv_shifted.defvjp(_dw_forward, _dw_backward)


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
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(self.dtype)
        return y


class DepthwiseConv(nn.Module):
    """Depthwise k×k conv without bias. Kernel ``[k, k, 1, C]`` (the layout of ``nn.Conv`` with
    ``feature_group_count=C``). ``impl``: ``"xla"`` (grouped convolution), ``"shifted"``
    (:func:`depthwise_conv_shifted`) or ``"auto"`` (shifted on CPU, xla on GPU/TPU)."""

    features: int
    kernel_size: int
    stride: int = 1
    impl: str = "auto"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, kernel_mask=None):
        """``kernel_mask`` ([k, k], optional) multiplies the kernel: a centred k'×k' window of
        ones is an elastic kernel of size k' (OFA's centre crop)."""
        k = self.kernel_size
        kernel = self.param("kernel", _conv_init(k * k), (k, k, 1, self.features), jnp.float32)
        if kernel_mask is not None:
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

    def __init__(self, dtype: Dtype, train: bool, dw_impl: str):
        self.dtype, self.train, self.dw_impl = dtype, train, dw_impl

    def conv(self, layer: Layer) -> nn.Module:
        """The convolution of ``layer``, named :attr:`Layer.leaf` (``conv_pw``, ``conv``, …)."""
        if layer.kind == "depthwise":
            return DepthwiseConv(layer.out_chs, layer.kernel, layer.stride, impl=self.dw_impl,
                                 dtype=self.dtype, name=layer.leaf)
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

    @nn.compact
    def __call__(self, x, train: bool = False, mask: dict | None = None):
        """``mask`` (a sub-network of a weight-sharing supernet, see :func:`subnet_masks`):
        ``mid`` [mid_chs] zeroes unused middle channels, ``kernel`` [k, k] crops the depthwise
        kernel, ``keep`` (scalar) switches a residual block off (the block becomes the identity)."""
        b = self.block
        L = _Layers(self.dtype, train, self.dw_impl)
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
    """

    spec: ModelSpec
    drop_path_rate: float = 0.0
    dtype: Dtype = jnp.float32
    dw_impl: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool = False, features: bool = False, masks: dict | None = None):
        spec = self.spec
        x = x.astype(self.dtype)
        x = ConvBNAct(stem_layer(spec), dtype=self.dtype, name="stem")(x, train)
        blocks = spec.resolved_blocks()
        stage_maps = []
        for b in blocks:
            rate = self.drop_path_rate * b.index / len(blocks)
            x = Block(b, rate, dtype=self.dtype, dw_impl=self.dw_impl, name=b.name)(
                x, train, None if masks is None else masks.get(b.name))
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
        elif leaf_name == "kernel":  # the classifier
            bound = 1.0 / math.sqrt(shape[-1])
            value = rng.uniform(-bound, bound, shape)
        elif leaf_name in ("scale", "var"):
            value = np.ones(shape)
        else:  # biases, BN shift, running mean
            value = np.zeros(shape)
        return jnp.asarray(value, leaf.dtype)

    return {coll: jax.tree_util.tree_map_with_path(draw, tree) for coll, tree in shapes.items()}


# -- weight import from timm ----------------------------------------------------------------------

class WeightImportError(TinyJaxError, ValueError):
    """A state dict that does not fit the model (missing/unexpected key, wrong shape)."""


_BN_FIELDS = {"weight": ("params", "scale"), "bias": ("params", "bias"),
              "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _timm_key_to_flax(key: str) -> tuple[str, tuple[str, ...]] | None:
    """Map a timm EfficientNet state-dict key to (collection, flax path); None = ignored buffer."""
    if key.endswith("num_batches_tracked"):
        return None
    m = re.fullmatch(r"blocks\.(\d+)\.(\d+)\.(.+)", key)
    if m:
        prefix: tuple[str, ...] = (f"blocks_{m.group(1)}_{m.group(2)}",)
        rest = m.group(3)
    else:
        top = {"conv_stem": "stem.conv", "bn1": "stem.bn", "conv_head": "head.conv", "bn2": "head.bn"}
        first, _, leaf = key.partition(".")
        if first == "classifier":
            return ("params", ("classifier", {"weight": "kernel", "bias": "bias"}[leaf]))
        if first not in top:
            raise WeightImportError(f"unexpected key {key!r} in the state dict")
        prefix, rest = (), f"{top[first]}.{leaf}"
    *mods, leaf = rest.split(".")
    if mods[-1].startswith("bn"):
        if leaf not in _BN_FIELDS:
            raise WeightImportError(f"unexpected BatchNorm entry {key!r}")
        coll, name = _BN_FIELDS[leaf]
        return coll, prefix + tuple(mods) + (name,)
    return "params", prefix + tuple(mods) + ({"weight": "kernel", "bias": "bias"}[leaf],)


def _to_numpy(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):  # a torch tensor; torch itself is not imported here
        t = t.detach().cpu().float().numpy()
    return np.asarray(t, dtype=np.float32)


def _convert(value: np.ndarray, path: tuple[str, ...]) -> np.ndarray:
    if path[-1] == "kernel" and value.ndim == 4:  # OIHW -> HWIO ([C,1,k,k] -> [k,k,1,C] for dw)
        return value.transpose(2, 3, 1, 0)
    if path[-1] == "kernel" and value.ndim == 2:  # Linear [out, in] -> Dense [in, out]
        return value.T
    return value


def variables_from_timm(model: EfficientNet, state_dict: Mapping[str, Any]) -> dict:
    """Convert a timm state dict to Flax variables for ``model`` (checked key by key, shape by shape)."""
    r = model.spec.resolution
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, r, r, model.spec.in_chs)))
    expected = {(coll,) + tuple(getattr(k, "key", k) for k in path): leaf.shape
                for coll in shapes
                for path, leaf in jax.tree_util.tree_flatten_with_path(shapes[coll])[0]}
    out: dict = {}
    seen = set()
    for key, tensor in state_dict.items():
        target = _timm_key_to_flax(key)
        if target is None:
            continue
        coll, path = target
        full = (coll,) + path
        if full not in expected:
            raise WeightImportError(f"state dict key {key!r} has no place in {model.spec.name} "
                                    f"(would be {'/'.join(full)}); is it the right model?")
        value = _convert(_to_numpy(tensor), path)
        if value.shape != expected[full]:
            raise WeightImportError(f"{key!r}: shape {tuple(value.shape)} after conversion, "
                                    f"{model.spec.name} expects {expected[full]}")
        node = out.setdefault(coll, {})
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = jnp.asarray(value)
        seen.add(full)
    missing = sorted("/".join(k) for k in set(expected) - seen)
    if missing:
        raise WeightImportError(f"the state dict lacks {len(missing)} entries, e.g. {missing[0]}")
    return out


def from_timm(name: str, state_dict: Mapping[str, Any], **kwargs) -> tuple[EfficientNet, dict]:
    """A zoo model and its variables from a timm/PyTorch state dict (``.pth`` or ``.safetensors``).

    ``state_dict`` maps timm's keys to torch tensors or numpy arrays. The number of classes is read
    from the classifier weights, so fine-tuned heads import too. Returns ``(model, variables)``;
    ``model.apply(variables, images_nhwc)`` gives timm's logits (eval mode).
    """
    from tinyjax.zoo import TIMM_MODELS, get_spec

    if name not in TIMM_MODELS:
        raise WeightImportError(f"{name!r} has no timm counterpart; timm models in the zoo: "
                                f"{', '.join(TIMM_MODELS)}")
    spec = get_spec(name)
    if "classifier.weight" in state_dict:
        spec = spec.with_(num_classes=int(_to_numpy(state_dict["classifier.weight"]).shape[0]))
    model = EfficientNet(spec, **kwargs)
    return model, variables_from_timm(model, state_dict)
