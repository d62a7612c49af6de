"""Weight import from timm: a timm/PyTorch EfficientNet state dict -> Flax variables.

:func:`from_timm` builds the zoo model of a timm name (:class:`tinyjax.models.EfficientNet`,
whose parameter names mirror timm's) and :func:`variables_from_timm` converts the state dict key
by key, shape by shape (OIHW -> HWIO kernels, ``[out, in]`` -> ``[in, out]`` dense, BatchNorm
weights and running statistics), raising :class:`WeightImportError` for anything that does not
fit. torch is never imported: tensors are read through ``.detach().cpu().numpy()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tinyjax.errors import WeightImportError
from tinyjax.models import EfficientNet

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
