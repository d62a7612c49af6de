"""The model zoo: names -> :class:`~tinyjax.spec.ModelSpec` with their default resolutions.

* TinyNet-A..E: EfficientNet-B0 twisted by the published (r, d, w) with TinyNet's rules.
* ``efficientnet_b0`` and the shrunk compound-scaled baselines ``efficientnet_bm1`` … ``bm4``
  (φ = −1 … −4, the models TinyNet is compared with).
* MobileNetV2 width multipliers 0.35 … 1.4, as timm builds them.
* The official MCUNet / ProxylessNAS model-zoo networks (converted from their net-config JSON; the
  test suite checks the conversion against the files in ``tests/reference/mcunet``). The official
  file names are accepted as aliases (``mcunet-320kb-1mb`` == ``mcunet_in3``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import NamedTuple

from tinyjax.errors import UnknownModelError
from tinyjax.scaling import EFFICIENTNET, MOBILENETV2, TINYNET, efficientnet_compound, scale
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec


def _stages(arch: list[str]) -> tuple[StageSpec, ...]:
    """One string per stage, block strings separated by spaces."""
    return tuple(StageSpec(tuple(BlockSpec.from_string(b) for b in s.split())) for s in arch)


EFFICIENTNET_B0_ARCH = [
    "ds_r1_k3_s1_e1_c16_se0.25",
    "ir_r2_k3_s2_e6_c24_se0.25",
    "ir_r2_k5_s2_e6_c40_se0.25",
    "ir_r3_k3_s2_e6_c80_se0.25",
    "ir_r3_k5_s1_e6_c112_se0.25",
    "ir_r4_k5_s2_e6_c192_se0.25",
    "ir_r1_k3_s1_e6_c320_se0.25",
]

MOBILENETV2_ARCH = [
    "ds_r1_k3_s1_c16",
    "ir_r2_k3_s2_e6_c24",
    "ir_r3_k3_s2_e6_c32",
    "ir_r4_k3_s2_e6_c64",
    "ir_r3_k3_s1_e6_c96",
    "ir_r3_k3_s2_e6_c160",
    "ir_r1_k3_s1_e6_c320",
]

# (r, d, w) as published in the TinyNet paper (and used by timm's tinynet_a..e).
TINYNET_RDW = {
    "tinynet_a": (0.86, 1.2, 1.0),
    "tinynet_b": (0.84, 1.1, 0.75),
    "tinynet_c": (0.825, 0.85, 0.54),
    "tinynet_d": (0.68, 0.695, 0.54),
    "tinynet_e": (0.475, 0.6, 0.51),
}

MOBILENETV2_WIDTHS = {"mobilenetv2_035": 0.35, "mobilenetv2_050": 0.5, "mobilenetv2_075": 0.75,
                      "mobilenetv2_100": 1.0, "mobilenetv2_140": 1.4}


def efficientnet_b0() -> ModelSpec:
    """EfficientNet-B0: the base of the Rubik's cube (SiLU, SE 0.25, stem 32, head 1280)."""
    return ModelSpec(name="efficientnet_b0", stem=StemSpec(32), stages=_stages(EFFICIENTNET_B0_ARCH),
                     head=HeadSpec(1280, dropout=0.2), resolution=224, act="silu")


def tinynet(r: float, d: float, w: float, name: str | None = None) -> ModelSpec:
    """A TinyNet: EfficientNet-B0 scaled by (r, d, w) with TinyNet's rules (round repeats, fixed
    stem, head ``max(1280, ·)``)."""
    return scale(efficientnet_b0(), r, d, w, rule=TINYNET, name=name or f"tinynet_r{r}_d{d}_w{w}")


def efficientnet_compound_scaled(phi: float, name: str | None = None) -> ModelSpec:
    """EfficientNet-B0 compound-scaled by φ (ceil repeats, scaled stem and head)."""
    r, d, w = efficientnet_compound(phi)
    return scale(efficientnet_b0(), r, d, w, rule=EFFICIENTNET, name=name or f"efficientnet_phi{phi}")


def mobilenetv2(width: float, name: str | None = None) -> ModelSpec:
    """MobileNetV2 (ReLU6, no SE) at a width multiplier, as timm's ``_gen_mobilenet_v2`` builds it."""
    base = ModelSpec(name="mobilenetv2_100", stem=StemSpec(32), stages=_stages(MOBILENETV2_ARCH),
                     head=HeadSpec(1280, dropout=0.2), resolution=224, act="relu6")
    return scale(base, w=width, rule=MOBILENETV2, name=name or f"mobilenetv2_w{width}")


class _NetConfigEntry(NamedTuple):
    official: str  # the model-zoo net-config file, without ".json"
    resolution: int
    stem: int
    head: int | None
    dropout: float
    stages: tuple[str, ...]

    def spec(self, name: str) -> ModelSpec:
        return ModelSpec(name=name, stem=StemSpec(self.stem), stages=_stages(list(self.stages)),
                         head=HeadSpec(self.head, dropout=self.dropout), resolution=self.resolution,
                         act="relu6")


_NET_CONFIGS = {
    'mcunet_in0': _NetConfigEntry(
        'mcunet-10fps_imagenet', resolution=48, stem=24, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c16',
        'ir_r1_k5_s2_e4_c16 ir_r1_k3_s1_e3_c16 ir_r1_k3_s1_e4_c16',
        'ir_r1_k7_s2_e5_c24 ir_r1_k5_s1_e4_c24 ir_r1_k5_s1_e5_c24',
        'ir_r1_k7_s2_e5_c48 ir_r1_k5_s1_e4_c48',
        'ir_r1_k3_s1_e5_c56 ir_r1_k5_s1_e4_c56 ir_r1_k3_s1_e5_c56',
        'ir_r1_k3_s2_e6_c112 ir_r1_k5_s1_e4_c112',
        'ir_r1_k3_s1_e6_c192',
    )),
    'mcunet_in1': _NetConfigEntry(
        'mcunet-5fps_imagenet', resolution=96, stem=16, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c8',
        'ir_r1_k3_s2_e4_c16 ir_r1_k3_s1_e3_c16',
        'ir_r1_k7_s2_e3_c24 ir_r1_k3_s1_e5_c24',
        'ir_r1_k3_s2_e5_c40 ir_r1_k7_s1_e4_c40',
        'ir_r1_k5_s1_e4_c48 ir_r1_k3_s1_e3_c48 ir_r1_k3_s1_e4_c48',
        'ir_r1_k7_s2_e5_c96 ir_r1_k5_s1_e4_c96 ir_r1_k5_s1_e4_c96',
        'ir_r1_k3_s1_e6_c160',
    )),
    'mcunet_in2': _NetConfigEntry(
        'mcunet-256kb-1mb_imagenet', resolution=160, stem=16, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c8',
        'ir_r1_k5_s2_e3_c16 ir_r1_k7_s1_e6_c16 ir_r1_k3_s1_e5_c16 ir_r1_k5_s1_e5_c16',
        'ir_r1_k3_s2_e5_c24 ir_r1_k7_s1_e6_c24 ir_r1_k5_s1_e6_c24',
        'ir_r1_k7_s2_e4_c40 ir_r1_k5_s1_e5_c40',
        'ir_r1_k3_s1_e5_c48 ir_r1_k5_s1_e5_c48 ir_r1_k3_s1_e4_c48',
        'ir_r1_k5_s2_e6_c96 ir_r1_k5_s1_e4_c96 ir_r1_k5_s1_e3_c96 ir_r1_k3_s1_e4_c96',
        'ir_r1_k5_s1_e5_c160',
    )),
    'mcunet_in3': _NetConfigEntry(
        'mcunet-320kb-1mb_imagenet', resolution=176, stem=16, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c8',
        'ir_r1_k7_s2_e3_c16 ir_r1_k3_s1_e5_c16 ir_r1_k7_s1_e5_c16 ir_r1_k5_s1_e4_c16',
        'ir_r1_k5_s2_e5_c24 ir_r1_k5_s1_e5_c24 ir_r1_k5_s1_e5_c24',
        'ir_r1_k3_s2_e5_c40 ir_r1_k7_s1_e6_c40 ir_r1_k5_s1_e4_c40',
        'ir_r1_k5_s1_e5_c48 ir_r1_k7_s1_e5_c48 ir_r1_k3_s1_e5_c48',
        'ir_r1_k3_s2_e6_c96 ir_r1_k7_s1_e5_c96 ir_r1_k3_s1_e4_c96',
        'ir_r1_k7_s1_e5_c160',
    )),
    'mcunet_in4': _NetConfigEntry(
        'mcunet-512kb-2mb_imagenet', resolution=160, stem=32, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c16',
        'ir_r1_k7_s2_e3_c24 ir_r1_k3_s1_e5_c24 ir_r1_k5_s1_e4_c24',
        'ir_r1_k7_s2_e5_c40 ir_r1_k3_s1_e4_c40 ir_r1_k7_s1_e4_c40',
        'ir_r1_k7_s2_e3_c80 ir_r1_k3_s1_e3_c80 ir_r1_k7_s1_e3_c80',
        'ir_r1_k3_s1_e4_c96 ir_r1_k5_s1_e3_c96 ir_r1_k5_s1_e3_c96',
        'ir_r1_k7_s2_e4_c192 ir_r1_k7_s1_e3_c192 ir_r1_k5_s1_e3_c192',
        'ir_r1_k5_s1_e4_c320',
    )),
    'mcunet_in2_int4': _NetConfigEntry(
        'mcunet-256kb-1mb-int4_imagenet', resolution=160, stem=32, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c16',
        'ir_r1_k7_s2_e3_c24 ir_r1_k3_s1_e6_c24 ir_r1_k5_s1_e5_c24 ir_r1_k7_s1_e3_c24',
        'ir_r1_k7_s2_e5_c40 ir_r1_k5_s1_e3_c40 ir_r1_k7_s1_e4_c40',
        'ir_r1_k3_s2_e5_c72 ir_r1_k7_s1_e4_c72',
        'ir_r1_k5_s1_e6_c88 ir_r1_k5_s1_e4_c88 ir_r1_k7_s1_e3_c88',
        'ir_r1_k3_s2_e5_c176 ir_r1_k5_s1_e4_c176',
        'ir_r1_k5_s1_e4_c288',
    )),
    'mcunet_in3_int4': _NetConfigEntry(
        'mcunet-320kb-1mb-int4_imagenet', resolution=176, stem=32, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c16',
        'ir_r1_k7_s2_e3_c24 ir_r1_k5_s1_e6_c24 ir_r1_k5_s1_e6_c24',
        'ir_r1_k7_s2_e4_c40 ir_r1_k3_s1_e4_c40 ir_r1_k7_s1_e4_c40 ir_r1_k5_s1_e4_c40',
        'ir_r1_k7_s2_e4_c72 ir_r1_k7_s1_e6_c72 ir_r1_k5_s1_e4_c72',
        'ir_r1_k5_s1_e3_c88 ir_r1_k5_s1_e3_c88 ir_r1_k7_s1_e4_c88',
        'ir_r1_k3_s2_e5_c176 ir_r1_k3_s1_e3_c176',
        'ir_r1_k7_s1_e4_c288',
    )),
    'mcunet_in4_int4': _NetConfigEntry(
        'mcunet-512kb-2mb-int4_imagenet', resolution=192, stem=48, head=None, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c24',
        'ir_r1_k7_s2_e3_c40 ir_r1_k3_s1_e5_c40 ir_r1_k3_s1_e5_c40 ir_r1_k3_s1_e5_c40',
        'ir_r1_k5_s2_e6_c64 ir_r1_k7_s1_e4_c64 ir_r1_k5_s1_e5_c64',
        'ir_r1_k7_s2_e5_c120 ir_r1_k7_s1_e4_c120 ir_r1_k3_s1_e4_c120',
        'ir_r1_k5_s1_e4_c144 ir_r1_k3_s1_e4_c144 ir_r1_k7_s1_e3_c144',
        'ir_r1_k3_s2_e5_c288 ir_r1_k7_s1_e3_c288',
        'ir_r1_k5_s1_e4_c480',
    )),
    'mcunet_mbv2_w035': _NetConfigEntry(
        'mbv2-w0.35-r144_imagenet', resolution=144, stem=16, head=448, dropout=0.2, stages=(
        'ds_r1_k3_s1_e1_c8',
        'ir_r1_k3_s2_e6_c8 ir_r1_k3_s1_e6_c8',
        'ir_r1_k3_s2_e6_c16 ir_r1_k3_s1_e6_c16 ir_r1_k3_s1_e6_c16',
        'ir_r1_k3_s2_e6_c24 ir_r1_k3_s1_e6_c24 ir_r1_k3_s1_e6_c24 ir_r1_k3_s1_e6_c24',
        'ir_r1_k3_s1_e6_c32 ir_r1_k3_s1_e6_c32 ir_r1_k3_s1_e6_c32',
        'ir_r1_k3_s2_e6_c56 ir_r1_k3_s1_e6_c56 ir_r1_k3_s1_e6_c56',
        'ir_r1_k3_s1_e6_c112',
    )),
    'mcunet_mbv2_w03': _NetConfigEntry(
        'mbv2-w0.3-r80_imagenet', resolution=80, stem=16, head=384, dropout=0.2, stages=(
        'ds_r1_k3_s1_e1_c8',
        'ir_r1_k3_s2_e6_c8 ir_r1_k3_s1_e6_c8',
        'ir_r1_k3_s2_e6_c16 ir_r1_k3_s1_e6_c16 ir_r1_k3_s1_e6_c16',
        'ir_r1_k3_s2_e6_c24 ir_r1_k3_s1_e6_c24 ir_r1_k3_s1_e6_c24 ir_r1_k3_s1_e6_c24',
        'ir_r1_k3_s1_e6_c32 ir_r1_k3_s1_e6_c32 ir_r1_k3_s1_e6_c32',
        'ir_r1_k3_s2_e6_c48 ir_r1_k3_s1_e6_c48 ir_r1_k3_s1_e6_c48',
        'ir_r1_k3_s1_e6_c96',
    )),
    'mcunet_proxyless_w03': _NetConfigEntry(
        'proxyless-w0.3-r176_imagenet', resolution=176, stem=16, head=384, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c8',
        'ir_r1_k5_s2_e3_c16 ir_r1_k3_s1_e3_c16',
        'ir_r1_k7_s2_e3_c16 ir_r1_k3_s1_e3_c16 ir_r1_k5_s1_e3_c16 ir_r1_k5_s1_e3_c16',
        'ir_r1_k7_s2_e6_c24 ir_r1_k5_s1_e3_c24 ir_r1_k5_s1_e3_c24 ir_r1_k5_s1_e3_c24',
        'ir_r1_k5_s1_e6_c32 ir_r1_k5_s1_e3_c32 ir_r1_k5_s1_e3_c32 ir_r1_k5_s1_e3_c32',
        'ir_r1_k7_s2_e6_c64 ir_r1_k7_s1_e6_c64 ir_r1_k7_s1_e3_c64 ir_r1_k7_s1_e3_c64',
        'ir_r1_k7_s1_e6_c96',
    )),
    'mcunet_proxyless_w025': _NetConfigEntry(
        'proxyless-w0.25-r112_imagenet', resolution=112, stem=8, head=320, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c8_noskip',
        'ir_r1_k5_s2_e3_c8 ir_r1_k3_s1_e3_c8',
        'ir_r1_k7_s2_e3_c16 ir_r1_k3_s1_e3_c16 ir_r1_k5_s1_e3_c16 ir_r1_k5_s1_e3_c16',
        'ir_r1_k7_s2_e6_c24 ir_r1_k5_s1_e3_c24 ir_r1_k5_s1_e3_c24 ir_r1_k5_s1_e3_c24',
        'ir_r1_k5_s1_e6_c24_noskip ir_r1_k5_s1_e3_c24 ir_r1_k5_s1_e3_c24 ir_r1_k5_s1_e3_c24',
        'ir_r1_k7_s2_e6_c48 ir_r1_k7_s1_e6_c48 ir_r1_k7_s1_e3_c48 ir_r1_k7_s1_e3_c48',
        'ir_r1_k7_s1_e6_c80',
    )),
    'proxylessnas_mobile': _NetConfigEntry(
        'proxyless_mobile', resolution=224, stem=32, head=1280, dropout=0.0, stages=(
        'ds_r1_k3_s1_e1_c16',
        'ir_r1_k5_s2_e3_c32 ir_r1_k3_s1_e3_c32',
        'ir_r1_k7_s2_e3_c40 ir_r1_k3_s1_e3_c40 ir_r1_k5_s1_e3_c40 ir_r1_k5_s1_e3_c40',
        'ir_r1_k7_s2_e6_c80 ir_r1_k5_s1_e3_c80 ir_r1_k5_s1_e3_c80 ir_r1_k5_s1_e3_c80',
        'ir_r1_k5_s1_e6_c96 ir_r1_k5_s1_e3_c96 ir_r1_k5_s1_e3_c96 ir_r1_k5_s1_e3_c96',
        'ir_r1_k7_s2_e6_c192 ir_r1_k7_s1_e6_c192 ir_r1_k7_s1_e3_c192 ir_r1_k7_s1_e3_c192',
        'ir_r1_k7_s1_e6_c320',
    )),
}


_REGISTRY: dict[str, Callable[[], ModelSpec]] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, fn: Callable[[], ModelSpec]) -> None:
    """Add a zoo entry (a zero-argument function returning the spec)."""
    _REGISTRY[name] = fn


for _name, (_r, _d, _w) in TINYNET_RDW.items():
    register(_name, lambda r=_r, d=_d, w=_w, n=_name: tinynet(r, d, w, name=n))
register("efficientnet_b0", efficientnet_b0)
for _phi in (1, 2, 3, 4):
    register(f"efficientnet_bm{_phi}",
             lambda p=_phi: efficientnet_compound_scaled(-p, name=f"efficientnet_bm{p}"))
for _name, _w in MOBILENETV2_WIDTHS.items():
    register(_name, lambda w=_w, n=_name: mobilenetv2(w, name=n))
for _name, _entry in _NET_CONFIGS.items():
    register(_name, lambda e=_entry, n=_name: e.spec(n))
    _ALIASES[_entry.official] = _name
    _ALIASES[_entry.official.removesuffix("_imagenet")] = _name

TIMM_MODELS = tuple(TINYNET_RDW) + ("efficientnet_b0",) + tuple(MOBILENETV2_WIDTHS)
"""Zoo entries that timm also defines (same name): parity-tested against timm, importable with
:func:`tinyjax.timm_import.from_timm`."""


def list_models() -> list[str]:
    """All zoo names, in registration order."""
    return list(_REGISTRY)


def get_spec(name: str, resolution: int | None = None) -> ModelSpec:
    """The spec of zoo model ``name`` (or an official MCUNet file name), optionally at another
    input resolution. Unknown names raise :class:`UnknownModelError` naming the closest ones."""
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY) + list(_ALIASES), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else "see `python -m tinyjax.info --list`"
        raise UnknownModelError(f"unknown model {name!r}; {hint}")
    spec = _REGISTRY[key]()
    if resolution is not None:
        spec = spec.with_(resolution=resolution)
    return spec
