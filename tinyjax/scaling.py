"""Spec-to-spec scaling: TinyNet's Rubik's cube (r, d, w), EfficientNet compound scaling and
MobileNetV2 width multipliers, with the rounding rules timm uses (exact parity with its models).

Every function here maps a :class:`~tinyjax.spec.ModelSpec` to a new one; nothing is mutated.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from tinyjax.errors import SpecError
from tinyjax.spec import ModelSpec, StageSpec, make_divisible


@dataclass(frozen=True)
class ScalingRule:
    """How a family turns (d, w) into channels and repeats.

    ``depth_trunc``: ``"round"`` (TinyNet: ``max(1, round(n·d))``) or ``"ceil"`` (EfficientNet).
    ``fix_stem``: keep the stem's channels (TinyNet) instead of scaling them with ``w``.
    ``head_floor``: head = ``max(base_head, round_channels(base_head, w))`` (TinyNet, MobileNetV2);
    otherwise the head scales freely (EfficientNet, which shrinks it below 1280 for φ < 0).
    """

    name: str
    depth_trunc: str
    fix_stem: bool
    head_floor: bool


TINYNET = ScalingRule("tinynet", depth_trunc="round", fix_stem=True, head_floor=True)
EFFICIENTNET = ScalingRule("efficientnet", depth_trunc="ceil", fix_stem=False, head_floor=False)
MOBILENETV2 = ScalingRule("mobilenetv2", depth_trunc="ceil", fix_stem=False, head_floor=True)
RULES = {r.name: r for r in (TINYNET, EFFICIENTNET, MOBILENETV2)}


def round_channels(channels: int, multiplier: float, divisor: int = 8) -> int:
    """Scale a channel count by ``multiplier`` and round to ``divisor`` (timm's ``round_channels``).

    ``multiplier == 1`` returns ``channels`` unchanged, so scaling at w=1 is the identity for any
    spec (timm's rounding is also the identity there for its multiple-of-8 architectures).
    """
    if multiplier == 1.0:
        return channels
    return make_divisible(channels * multiplier, divisor)


def scale_stage_depth(repeats: list[int], multiplier: float, trunc: str) -> list[int]:
    """Scale the repeats of a stage's block definitions (timm's ``_scale_stage_depth``).

    The stage total is scaled (``round`` with a floor of 1, or ``ceil``), then handed out to the
    block definitions in reverse order, proportionally, each keeping at least one repeat.
    """
    if trunc not in ("round", "ceil"):
        raise SpecError(f"depth truncation must be 'round' or 'ceil', got {trunc!r}")
    total = sum(repeats)
    if trunc == "round":
        total_scaled = max(1, round(total * multiplier))
    else:
        total_scaled = int(math.ceil(total * multiplier))
    scaled = []
    for r in repeats[::-1]:
        rs = max(1, round(r / total * total_scaled))
        scaled.append(rs)
        total -= r
        total_scaled -= rs
    return scaled[::-1]


def _check_factor(name: str, v: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise SpecError(f"scaling factor {name} must be a positive number, got {v!r}")
    return float(v)


def scale(spec: ModelSpec, r: float = 1.0, d: float = 1.0, w: float = 1.0, *,
          rule: ScalingRule | str = TINYNET, name: str | None = None) -> ModelSpec:
    """Twist the Rubik's cube: resolution ×``r``, depth ×``d``, width ×``w``.

    Resolution becomes ``int(resolution·r)`` (TinyNet-A: int(224·0.86) = 192); repeats and
    channels follow ``rule`` (see :class:`ScalingRule`). ``scale(spec, 1, 1, 1)`` is ``spec``
    (up to ``name``).
    """
    r, d, w = _check_factor("r", r), _check_factor("d", d), _check_factor("w", w)
    if isinstance(rule, str):
        if rule not in RULES:
            raise SpecError(f"unknown scaling rule {rule!r}; expected one of {', '.join(RULES)}")
        rule = RULES[rule]
    stages = []
    for stage in spec.stages:
        reps = scale_stage_depth([b.repeats for b in stage.blocks], d, rule.depth_trunc)
        stages.append(StageSpec(tuple(
            dataclasses.replace(b, repeats=n, out_chs=round_channels(b.out_chs, w))
            for b, n in zip(stage.blocks, reps))))
    stem = spec.stem if rule.fix_stem else dataclasses.replace(
        spec.stem, out_chs=round_channels(spec.stem.out_chs, w))
    head = spec.head
    if head.out_chs is not None:
        scaled = round_channels(head.out_chs, w)
        head = dataclasses.replace(head, out_chs=max(head.out_chs, scaled) if rule.head_floor else scaled)
    # int(x + 1e-9): 224 * 0.5 must give 112 even where the float product lands just below.
    resolution = max(1, int(spec.resolution * r + 1e-9))
    return dataclasses.replace(spec, stem=stem, stages=tuple(stages), head=head,
                               resolution=resolution, name=name or spec.name)


def efficientnet_compound(phi: float) -> tuple[float, float, float]:
    """EfficientNet compound coefficients ``(r, d, w) = (1.15^φ, 1.2^φ, 1.1^φ)``.

    Negative φ gives the shrunk baselines TinyNet is compared with (EfficientNet-B−1 … −4).
    """
    return 1.15 ** phi, 1.2 ** phi, 1.1 ** phi



