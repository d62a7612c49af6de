"""Load ProxylessNAS / MCUNet "net-config" JSON (the official model zoo's format) into a ModelSpec.

The format is a flat list of ``MobileInvertedResidualBlock`` entries, each a
``mobile_inverted_conv`` (``MBInvertedConvLayer`` or ``ZeroLayer``) and a ``shortcut``
(``IdentityLayer`` or null), with ``first_conv``, an optional ``feature_mix_layer`` and a
``classifier``. Mapping onto :class:`~tinyjax.spec.ModelSpec`:

* ``ZeroLayer`` blocks (with an identity shortcut, so the block is the identity) are dropped.
* ``expand_ratio == 1`` is a ``ds`` block (dw conv, pw-linear conv), anything else an ``ir`` block.
* A block without a shortcut starts a new stage (stride or width changes); residual blocks join
  the current stage. A shortcut-free block whose shapes would allow one is marked ``noskip``.
* ``feature_mix_layer`` becomes the 1×1 head; without it the head is absent.

Errors name the offending field, e.g. ``blocks[3].mobile_inverted_conv.kernel_size``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinyjax.errors import SpecError
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec, canonical_act, make_divisible


def is_net_config(d: Any) -> bool:
    """Whether a decoded JSON object looks like a ProxylessNAS/MCUNet net-config."""
    return isinstance(d, dict) and "blocks" in d and "first_conv" in d


def _get(d: Any, key: str, path: str, kind=int, default: Any = ...):
    if not isinstance(d, dict):
        raise SpecError(f"{path}: expected an object, got {d!r}")
    if key not in d:
        if default is ...:
            raise SpecError(f"{path}.{key}: missing required field")
        return default
    v = d[key]
    # OFA-style configs store some values as one-element lists ([48]).
    if isinstance(v, list) and len(v) == 1 and kind is not list:
        v = v[0]
    if v is None and default is None:
        return None
    if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise SpecError(f"{path}.{key}: expected an integer, got {d[key]!r}")
    if kind is float and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise SpecError(f"{path}.{key}: expected a number, got {d[key]!r}")
    if kind is str and not isinstance(v, str):
        raise SpecError(f"{path}.{key}: expected a string, got {d[key]!r}")
    return v


def _act(d: dict, path: str) -> str:
    name = _get(d, "act_func", path, str, "relu6")
    try:
        return canonical_act(name)
    except SpecError:
        raise SpecError(f"{path}.act_func: unsupported activation {name!r} "
                        "(supported: relu, relu6, h_swish, swish)") from None


def spec_from_net_config(config: dict, name: str = "net_config",
                         resolution: int | None = None) -> ModelSpec:
    """Convert a decoded net-config JSON object. ``resolution`` overrides the config's own
    ``resolution`` field (224 if it has none)."""
    if not is_net_config(config):
        raise SpecError("not a net-config: expected an object with 'first_conv' and 'blocks'")
    fc = config["first_conv"]
    stem = StemSpec(out_chs=_get(fc, "out_channels", "first_conv"),
                    kernel=_get(fc, "kernel_size", "first_conv"),
                    stride=_get(fc, "stride", "first_conv"))
    in_chs = _get(fc, "in_channels", "first_conv", int, 3)
    model_act = _act(fc, "first_conv")

    stages: list[list[BlockSpec]] = []
    prev_out = stem.out_chs
    blocks = config["blocks"]
    if not isinstance(blocks, list) or not blocks:
        raise SpecError("blocks: expected a non-empty list")
    for i, blk in enumerate(blocks):
        path = f"blocks[{i}]"
        conv = _get(blk, "mobile_inverted_conv", path, dict)
        cpath = f"{path}.mobile_inverted_conv"
        kind = _get(conv, "name", cpath, str)
        shortcut = _get(blk, "shortcut", path, dict, None)
        if shortcut is not None and _get(shortcut, "name", f"{path}.shortcut", str) != "IdentityLayer":
            raise SpecError(f"{path}.shortcut.name: only IdentityLayer shortcuts are supported, "
                            f"got {shortcut['name']!r}")
        if kind == "ZeroLayer":
            if shortcut is None:
                raise SpecError(f"{path}: a ZeroLayer without a shortcut outputs zeros; "
                                "such a network is not supported")
            continue
        if kind != "MBInvertedConvLayer":
            raise SpecError(f"{cpath}.name: unsupported layer {kind!r} (expected MBInvertedConvLayer "
                            "or ZeroLayer)")
        cin = _get(conv, "in_channels", cpath)
        if cin != prev_out:
            raise SpecError(f"{cpath}.in_channels: {cin} does not match the previous layer's "
                            f"{prev_out} output channels")
        out = _get(conv, "out_channels", cpath)
        k = _get(conv, "kernel_size", cpath)
        stride = _get(conv, "stride", cpath)
        expand = _get(conv, "expand_ratio", cpath, float)
        if _get(conv, "use_se", cpath, bool, False):
            raise SpecError(f"{cpath}.use_se: squeeze-excite in net-configs is not supported")
        mid = _get(conv, "mid_channels", cpath, int, None)
        if expand != 1 and mid is not None and mid != make_divisible(cin * expand):
            raise SpecError(f"{cpath}.mid_channels: {mid} differs from make_divisible({cin}×{expand}) "
                            f"= {make_divisible(cin * expand)}; custom middle widths are not supported")
        act = _act(conv, cpath)
        shapes_allow_skip = stride == 1 and cin == out
        if shortcut is not None and not shapes_allow_skip:
            raise SpecError(f"{path}.shortcut: an identity shortcut needs stride 1 and equal channels "
                            f"(got stride {stride}, {cin}->{out})")
        try:
            block = BlockSpec(type="ds" if expand == 1 else "ir", kernel=k, stride=stride, out_chs=out,
                              expand=expand, act=None if act == model_act else act,
                              skip=shortcut is not None or not shapes_allow_skip)
        except SpecError as e:
            raise SpecError(f"{cpath}: {e}") from None
        if shortcut is None or not stages:
            stages.append([])
        stages[-1].append(block)
        prev_out = out

    fmix = config.get("feature_mix_layer")
    head_chs = None
    if fmix is not None:
        if _get(fmix, "kernel_size", "feature_mix_layer", int, 1) != 1:
            raise SpecError("feature_mix_layer.kernel_size: only a 1x1 feature-mix layer is supported")
        head_chs = _get(fmix, "out_channels", "feature_mix_layer")
        prev_out = head_chs
    cls = _get(config, "classifier", "", dict)
    in_features = _get(cls, "in_features", "classifier")
    if in_features != prev_out:
        raise SpecError(f"classifier.in_features: {in_features} does not match the {prev_out} "
                        "channels before it")
    dropout = float(_get(cls, "dropout_rate", "classifier", float, 0.0))
    if resolution is None:
        resolution = _get(config, "resolution", "", int, 224)
    return ModelSpec(name=name, stem=stem, stages=tuple(StageSpec(tuple(s)) for s in stages),
                     head=HeadSpec(out_chs=head_chs, dropout=dropout), resolution=resolution,
                     num_classes=_get(cls, "out_features", "classifier"), in_chs=in_chs,
                     act=model_act)


def read_json(path: Path) -> Any:
    """Decode a JSON file; an unreadable or malformed file is a :class:`SpecError` naming it."""
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: not valid JSON ({e})") from None


def load_net_config(path: str | Path, name: str | None = None,
                    resolution: int | None = None) -> ModelSpec:
    """Read a net-config JSON file (e.g. ``mcunet-320kb-1mb_imagenet.json``)."""
    path = Path(path)
    config = read_json(path)
    return spec_from_net_config(config, name=name or path.stem.removesuffix("_imagenet"),
                                resolution=resolution)
