"""Architecture as data: frozen, hashable model specs and timm's block-string notation.

A :class:`ModelSpec` describes a deployable EfficientNet/MobileNet-family network completely
(stem, stages of blocks, head, classifier, input resolution). It imports no framework: the Flax
model, the MAC/parameter counter and the compiler's graph builder all read the same spec, through
:meth:`ModelSpec.resolved_blocks`, which fixes every block's input, middle and output channels.

Block strings follow timm's notation, e.g. ``ir_r2_k3_s2_e6_c24_se0.25``:

=========  ==========================================================
token      meaning
=========  ==========================================================
``ds``     depthwise-separable block (dw conv, [SE], pw conv, no pw act)
``ir``     inverted residual (pw expand, dw conv, [SE], pw project)
``rN``     repeats of the block within its stage
``kN``     depthwise kernel size
``sN``     stride of the first repeat
``eX``     expansion ratio (``ir``; ``ds`` accepts ``e1``)
``cN``     output channels
``seX``    squeeze-excite ratio, relative to the block's *input* channels
``noskip`` no residual even where shapes allow one
``nXX``    activation override: ``nre`` relu, ``nr6`` relu6, ``nsw`` silu, ``nhs`` hard-swish
=========  ==========================================================
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from tinyjax.errors import SpecError

ACTIVATIONS = ("relu", "relu6", "silu", "hard_swish")
_ACT_ALIASES = {"swish": "silu", "h_swish": "hard_swish", "hswish": "hard_swish"}
_ACT_TOKENS = {"re": "relu", "r6": "relu6", "sw": "silu", "hs": "hard_swish"}
_TOKEN_OF_ACT = {v: k for k, v in _ACT_TOKENS.items()}
BLOCK_TYPES = ("ds", "ir")


def canonical_act(name: str | None, where: str = "act") -> str | None:
    """Normalise an activation name (``swish`` -> ``silu``); ``None`` passes through."""
    if name is None:
        return None
    name = _ACT_ALIASES.get(name.lower(), name.lower())
    if name not in ACTIVATIONS:
        raise SpecError(f"{where}: unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return name


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor`` as timm does (never below ``round_limit``·value)."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class BlockSpec:
    """One block definition of a stage, possibly repeated ``repeats`` times.

    ``out_chs`` are concrete channels (already scaled). ``se`` is timm's ratio relative to the
    block input channels (0 = no squeeze-excite). ``act=None`` uses the model's activation.
    """

    type: str
    kernel: int
    stride: int
    out_chs: int
    expand: float = 1.0
    se: float = 0.0
    repeats: int = 1
    act: str | None = None
    skip: bool = True

    def __post_init__(self):
        if self.type not in BLOCK_TYPES:
            raise SpecError(f"block type {self.type!r} is not supported; expected one of {BLOCK_TYPES}")
        for name in ("kernel", "stride", "out_chs", "repeats"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError(f"block {name} must be a positive integer, got {v!r}")
        if self.kernel % 2 == 0:
            raise SpecError(f"block kernel must be odd (symmetric padding), got {self.kernel}")
        if not isinstance(self.expand, (int, float)) or self.expand <= 0:
            raise SpecError(f"block expand ratio must be > 0, got {self.expand!r}")
        if self.type == "ds" and self.expand != 1:
            raise SpecError(f"a ds block has no expansion (e1), got e{self.expand}")
        if not isinstance(self.se, (int, float)) or not 0 <= self.se <= 1:
            raise SpecError(f"block se ratio must be in [0, 1], got {self.se!r}")
        object.__setattr__(self, "expand", float(self.expand))
        object.__setattr__(self, "se", float(self.se))
        object.__setattr__(self, "act", canonical_act(self.act, "block act"))

    @classmethod
    def from_string(cls, text: str) -> BlockSpec:
        """Decode one timm block string, e.g. ``ir_r2_k3_s2_e6_c24_se0.25``."""
        if not isinstance(text, str) or not text:
            raise SpecError(f"block string must be a non-empty string, got {text!r}")
        btype, *ops = text.split("_")
        if btype not in BLOCK_TYPES:
            raise SpecError(f"block string {text!r}: block type {btype!r} is not one of {BLOCK_TYPES}")
        opts: dict[str, str] = {}
        skip, act = True, None
        for op in ops:
            if op == "noskip":
                skip = False
            elif op == "skip":
                skip = True
            elif op.startswith("se"):
                opts["se"] = op[2:]
            elif op.startswith("n") and len(op) > 1:
                if op[1:] not in _ACT_TOKENS:
                    raise SpecError(f"block string {text!r}: unknown activation token {op!r} "
                                    f"(use n{', n'.join(_ACT_TOKENS)})")
                act = _ACT_TOKENS[op[1:]]
            elif op[:1] in ("r", "k", "s", "e", "c") and len(op) > 1:
                opts[op[0]] = op[1:]
            else:
                raise SpecError(f"block string {text!r}: unknown token {op!r}")
        for required in ("r", "k", "s", "c"):
            if required not in opts:
                raise SpecError(f"block string {text!r}: missing token {required}N")
        if btype == "ir" and "e" not in opts:
            raise SpecError(f"block string {text!r}: an ir block needs an expansion token eN")
        def num(key: str, kind, default=None):
            if key not in opts:
                return default
            try:
                return kind(opts[key])
            except ValueError:
                raise SpecError(f"token '{key}{opts[key]}' needs "
                                f"{'an integer' if kind is int else 'a number'}") from None

        try:
            return cls(type=btype, repeats=num("r", int), kernel=num("k", int), stride=num("s", int),
                       expand=num("e", float, 1.0), out_chs=num("c", int), se=num("se", float, 0.0),
                       act=act, skip=skip)
        except SpecError as e:
            raise SpecError(f"block string {text!r}: {e}") from None

    def to_string(self) -> str:
        """Encode as a timm block string (inverse of :meth:`from_string`)."""
        parts = [self.type, f"r{self.repeats}", f"k{self.kernel}", f"s{self.stride}",
                 f"e{_fmt_num(self.expand)}", f"c{self.out_chs}"]
        if self.se:
            parts.append(f"se{_fmt_num(self.se)}")
        if not self.skip:
            parts.append("noskip")
        if self.act is not None:
            parts.append("n" + _TOKEN_OF_ACT[self.act])
        return "_".join(parts)

    def __str__(self) -> str:
        return self.to_string()


@dataclass(frozen=True)
class StemSpec:
    """Conv-BN-act stem: ``kernel``×``kernel`` convolution, stride ``stride``, ``out_chs`` channels."""

    out_chs: int = 32
    kernel: int = 3
    stride: int = 2

    def __post_init__(self):
        for name in ("out_chs", "kernel", "stride"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError(f"stem {name} must be a positive integer, got {v!r}")


@dataclass(frozen=True)
class StageSpec:
    """A stage: block definitions run in order (each expanded ``repeats`` times); only the first
    repeat of the first definition may stride."""

    blocks: tuple[BlockSpec, ...]

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks:
            raise SpecError("a stage needs at least one block")
        # A stage runs at one resolution: only its first block may stride (timm's builder forces
        # stride 1 on the others; rejecting beats silently changing the network).
        for i, b in enumerate(self.blocks[1:], 1):
            if b.stride != 1:
                raise SpecError(f"block {i} of a stage ({b}) has stride {b.stride}; only the first "
                                "block of a stage may stride: start a new stage there")

    @property
    def depth(self) -> int:
        return sum(b.repeats for b in self.blocks)


@dataclass(frozen=True)
class HeadSpec:
    """1×1 conv-BN-act head (``out_chs=None``: none, as in MCUNet), global average pool,
    dropout ``dropout``, linear classifier."""

    out_chs: int | None = 1280
    dropout: float = 0.2

    def __post_init__(self):
        if self.out_chs is not None and (not isinstance(self.out_chs, int) or self.out_chs < 1):
            raise SpecError(f"head out_chs must be a positive integer or null, got {self.out_chs!r}")
        if not 0 <= self.dropout < 1:
            raise SpecError(f"head dropout must be in [0, 1), got {self.dropout!r}")


@dataclass(frozen=True)
class ResolvedBlock:
    """A single block with every channel count fixed; what layers are built and counted from.

    ``index`` is the global block index (timm's ``block_idx``, used for the drop-path schedule);
    ``name`` is the stable structural name ``blocks_{stage}_{block}``.
    """

    stage: int
    index_in_stage: int
    index: int
    type: str
    in_chs: int
    mid_chs: int
    out_chs: int
    kernel: int
    stride: int
    se_chs: int
    act: str
    has_skip: bool

    @property
    def name(self) -> str:
        return f"blocks_{self.stage}_{self.index_in_stage}"


@dataclass(frozen=True)
class ModelSpec:
    """A whole network. Frozen and hashable: usable as a cache or jit static key.

    ``resolution`` is the square input size in pixels (it belongs to a deployable model: it sets
    memory). ``act`` is the default activation of stem, blocks and head.
    """

    name: str
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec = HeadSpec()
    resolution: int = 224
    num_classes: int = 1000
    in_chs: int = 3
    act: str = "silu"

    def __post_init__(self):
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "act", canonical_act(self.act))
        if not self.stages:
            raise SpecError("a model needs at least one stage")
        for name in ("resolution", "num_classes", "in_chs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError(f"{name} must be a positive integer, got {v!r}")

    # -- derived structure ---------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return sum(s.depth for s in self.stages)

    @property
    def num_features(self) -> int:
        """Channels entering the classifier."""
        if self.head.out_chs is not None:
            return self.head.out_chs
        return self.resolved_blocks()[-1].out_chs

    def resolved_blocks(self) -> tuple[ResolvedBlock, ...]:
        """Expand repeats and fix all channels, exactly as timm's EfficientNetBuilder does.

        Inverted-residual middle channels are ``make_divisible(in·expand, 8)``; SE channels are
        ``round(mid · se / expand)`` (timm computes SE width from the block input).
        """
        return _resolve(self)

    def with_(self, **changes: Any) -> ModelSpec:
        """A copy with fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "in_chs": self.in_chs,
            "act": self.act,
            "stem": dataclasses.asdict(self.stem),
            "stages": [[b.to_string() for b in s.blocks] for s in self.stages],
            "head": dataclasses.asdict(self.head),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Any) -> ModelSpec:
        """Build from :meth:`to_dict` output; errors name the offending field."""
        return _spec_from_dict(d)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"not valid JSON: {e}") from None
        return cls.from_dict(d)


def _resolve(spec: ModelSpec) -> tuple[ResolvedBlock, ...]:
    out: list[ResolvedBlock] = []
    in_chs = spec.stem.out_chs
    index = 0
    for s, stage in enumerate(spec.stages):
        j = 0
        for b in stage.blocks:
            for r in range(b.repeats):
                stride = b.stride if r == 0 else 1
                if b.type == "ir":
                    mid = make_divisible(in_chs * b.expand)
                else:
                    mid = in_chs
                # timm: rd_ratio = se / expand, rd = round(mid * rd_ratio) -- keep the float order.
                se_chs = round(mid * (b.se / b.expand)) if b.se else 0
                has_skip = stride == 1 and in_chs == b.out_chs and b.skip
                # Built without the frozen dataclass's 13 object.__setattr__ calls (this runs
                # for every search candidate); equal to ResolvedBlock(stage=s, ...).
                rb = object.__new__(ResolvedBlock)
                rb.__dict__.update(
                    stage=s, index_in_stage=j, index=index, type=b.type, in_chs=in_chs, mid_chs=mid,
                    out_chs=b.out_chs, kernel=b.kernel, stride=stride, se_chs=se_chs,
                    act=b.act or spec.act, has_skip=has_skip)
                out.append(rb)
                in_chs = b.out_chs
                index += 1
                j += 1
    return tuple(out)


# -- JSON validation with field paths -------------------------------------------------------------

def _field(d: dict, key: str, path: str, kind, default=dataclasses.MISSING):
    if key not in d:
        if default is dataclasses.MISSING:
            raise SpecError(f"{path}.{key}: missing required field".lstrip("."))
        return default
    v = d[key]
    ok = (v is None and default is None) or (
        isinstance(v, kind) and not (isinstance(v, bool) and kind in (int, (int, float))))
    if not ok:
        want = getattr(kind, "__name__", None) or " or ".join(k.__name__ for k in kind)
        raise SpecError(f"{path}.{key}: expected {want}, got {v!r}".lstrip("."))
    return v


def _spec_from_dict(d: Any) -> ModelSpec:
    if not isinstance(d, dict):
        raise SpecError(f"model spec must be a JSON object, got {type(d).__name__}")
    known = {"name", "resolution", "num_classes", "in_chs", "act", "stem", "stages", "head"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise SpecError(f"{unknown[0]}: unknown field (expected {', '.join(sorted(known))})")
    stem_d = _field(d, "stem", "", dict, {})
    head_d = _field(d, "head", "", dict, {})
    stages_l = _field(d, "stages", "", list)
    stem = StemSpec(out_chs=_field(stem_d, "out_chs", "stem", int, 32),
                    kernel=_field(stem_d, "kernel", "stem", int, 3),
                    stride=_field(stem_d, "stride", "stem", int, 2))
    head = HeadSpec(out_chs=_field(head_d, "out_chs", "head", int, None) if "out_chs" in head_d
                    else 1280,
                    dropout=float(_field(head_d, "dropout", "head", (int, float), 0.2)))
    stages = []
    for i, st in enumerate(stages_l):
        if not isinstance(st, list) or not st:
            raise SpecError(f"stages[{i}]: expected a non-empty list of block strings, got {st!r}")
        blocks = []
        for j, bs in enumerate(st):
            try:
                blocks.append(BlockSpec.from_string(bs))
            except SpecError as e:
                raise SpecError(f"stages[{i}][{j}]: {e}") from None
        stages.append(StageSpec(tuple(blocks)))
    act = canonical_act(_field(d, "act", "", str, "silu"))
    return ModelSpec(name=_field(d, "name", "", str, "custom"), stem=stem, stages=tuple(stages),
                     head=head, resolution=_field(d, "resolution", "", int, 224),
                     num_classes=_field(d, "num_classes", "", int, 1000),
                     in_chs=_field(d, "in_chs", "", int, 3), act=act)
