"""The MCUNet (TinyNAS) search space: a width multiplier and a resolution pick a *space*; inside
it, a kernel and an expansion ratio per block and a depth per stage pick a *sub-network*.

The backbone is ProxylessNAS/MobileNetV2's (docs/papers.md): a 3×3 stride-2 stem of 32·w channels
(``stem_stride=1``: stride 1, for inputs already as small as a late feature map of ImageNet's),
one depthwise-separable block (16·w, stride ``first_stride``, 1), five elastic stages of widths
24, 40, 80, 96, 192 (·w) and strides ``stage_strides`` (2, 2, 2, 1, 2) with 2–4 blocks each, and
one last block of 320·w channels; ReLU6, no squeeze-excite and no 1×1 head conv before the
classifier (as the released MCUNet models). ``base_channels``, ``stage_strides`` (any number of
stages) and ``min_channels`` shape other spaces (the embedded config's). Channels are
``make_divisible(c·w, 8)``, at least ``min_channels``. Per inverted-residual block: kernel
{3, 5, 7}, expansion {3, 4, 6}; depth per elastic stage {2, 3, 4}, keeping the first blocks (OFA's
elastic depth).

An :class:`Arch` is the list of these choices (the genes the evolution mutates); blocks beyond a
stage's depth carry the supernet's largest choice, so two archs that build the same network are
equal. :meth:`SearchSpace.spec` builds the sub-network's :class:`~tinyjax.spec.ModelSpec` (what is
counted, planned, fine-tuned and exported); :meth:`SearchSpace.masks` selects the same network
inside the supernet (:meth:`SearchSpace.supernet_spec`), with identical channel counts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec, make_divisible

__all__ = ["Arch", "SearchSpace", "WIDTHS", "RESOLUTIONS", "BASE_WIDTHS", "BASE_CHANNELS", "STAGE_STRIDES"]

WIDTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)          # width multipliers of stage 1
RESOLUTIONS = tuple(range(48, 225, 16))                            # 48, 64, ..., 224 (12)
STEM_WIDTH, FIRST_BLOCK_WIDTH, LAST_BLOCK_WIDTH = 32, 16, 320
BASE_WIDTHS = (24, 40, 80, 96, 192)                                # the elastic stages
BASE_CHANNELS = (STEM_WIDTH, FIRST_BLOCK_WIDTH, *BASE_WIDTHS, LAST_BLOCK_WIDTH)
STAGE_STRIDES = (2, 2, 2, 1, 2)
LAST_STRIDE = 1


@dataclass(frozen=True)
class Arch:
    """One sub-network: ``kernels`` and ``expands`` per inverted-residual block of the supernet (all
    elastic stages' blocks at their maximal depth, then the last block), ``depths`` per elastic
    stage. Frozen and hashable (a cache key); :meth:`to_dict` / :meth:`from_dict` for JSON."""

    kernels: tuple[int, ...]
    expands: tuple[float, ...]
    depths: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"kernels": list(self.kernels), "expands": list(self.expands), "depths": list(self.depths)}

    @classmethod
    def from_dict(cls, d: dict) -> Arch:
        return cls(tuple(int(k) for k in d["kernels"]), tuple(float(e) for e in d["expands"]),
                   tuple(int(x) for x in d["depths"]))

    def key(self) -> str:
        """A short stable text of the arch (file names, logs): ``k…|e…|d…``."""
        return ("k" + "".join(str(k) for k in self.kernels) + "-e"
                + "".join(f"{e:g}" for e in self.expands) + "-d" + "".join(str(d) for d in self.depths))


@dataclass(frozen=True)
class SearchSpace:
    """A (width, resolution) space of the MCUNet backbone for ``num_classes`` outputs."""

    width: float
    resolution: int
    num_classes: int = 1000
    kernels: tuple[int, ...] = (3, 5, 7)
    expands: tuple[float, ...] = (3.0, 4.0, 6.0)
    depths: tuple[int, ...] = (2, 3, 4)
    dropout: float = 0.0
    stem_stride: int = 2       # MCUNet's; 1 keeps small inputs' resolution through the stem
    first_stride: int = 1      # the depthwise-separable block's (MCUNet's: 1)
    stage_strides: tuple[int, ...] = STAGE_STRIDES   # the first block's of each elastic stage
    min_channels: int = 8      # no layer narrower (TF MobileNet's min_depth); a multiple of 8
    base_channels: tuple[int, ...] = BASE_CHANNELS   # before ×width: stem, first block, stages, last

    def __post_init__(self):
        if not 0 < self.width <= 4:
            raise ValueError(f"width multiplier must be in (0, 4], got {self.width}")
        if not isinstance(self.resolution, int) or self.resolution < 16:
            raise ValueError(f"resolution must be an integer ≥ 16, got {self.resolution!r}")
        for name in ("kernels", "expands", "depths"):
            v = tuple(sorted(getattr(self, name)))
            if not v:
                raise ValueError(f"{name} needs at least one choice")
            object.__setattr__(self, name, v)
        object.__setattr__(self, "expands", tuple(float(e) for e in self.expands))
        if any(k % 2 == 0 or k < 1 for k in self.kernels):
            raise ValueError(f"kernels must be odd, got {self.kernels}")
        if self.depths[0] < 1:
            raise ValueError(f"depths must be ≥ 1, got {self.depths}")
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride!r}")
        if self.first_stride not in (1, 2):
            raise ValueError(f"first_stride must be 1 or 2, got {self.first_stride!r}")
        strides = tuple(int(x) for x in self.stage_strides)
        if not strides or any(x not in (1, 2) for x in strides):
            raise ValueError(f"stage_strides needs one stride of 1 or 2 per elastic stage, got "
                             f"{tuple(self.stage_strides)!r}")
        object.__setattr__(self, "stage_strides", strides)
        base = tuple(int(x) for x in self.base_channels)
        if len(base) != len(strides) + 3 or min(base) < 1:
            raise ValueError(f"base_channels needs {len(strides) + 3} positive channel counts (stem, "
                             f"first block, {len(strides)} stages, last block), got "
                             f"{tuple(self.base_channels)!r}")
        object.__setattr__(self, "base_channels", base)
        if not isinstance(self.min_channels, int) or self.min_channels < 8 or self.min_channels % 8:
            raise ValueError(f"min_channels must be a multiple of 8, got {self.min_channels!r}")

    # -- structure ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """``tinynas_w<w>_r<r>``, then ``_s1`` for a stride-1 stem and ``_st<first>-<stages>`` for
        block strides other than MCUNet's (e.g. ``_st2-22111``), ``_c<n>`` for ``min_channels``
        above 8."""
        strides = "" if not self._custom_strides else \
            f"_st{self.first_stride}-" + "".join(str(x) for x in self.stage_strides)
        return (f"tinynas_w{self.width:g}_r{self.resolution}"
                + ("_s1" if self.stem_stride == 1 else "") + strides
                + (f"_c{self.min_channels}" if self.min_channels != 8 else "")
                + ("" if self.base_channels == BASE_CHANNELS else
                   "_b" + "-".join(str(x) for x in self.base_channels)))

    @property
    def _custom_strides(self) -> bool:
        return self.first_stride != 1 or self.stage_strides != STAGE_STRIDES

    @property
    def max_depth(self) -> int:
        return self.depths[-1]

    @property
    def num_stages(self) -> int:
        """Elastic stages (the last block is a stage of its own, never skipped)."""
        return len(self.stage_strides)

    @property
    def num_blocks(self) -> int:
        """Inverted-residual blocks of the supernet: elastic stages at maximal depth + the last."""
        return self.num_stages * self.max_depth + 1

    def channels(self, base: int) -> int:
        return make_divisible(base * self.width, 8, min_value=self.min_channels)

    def block_slots(self) -> list[tuple[int, int]]:
        """``(elastic stage, index in stage)`` of every gene position; the last block is
        ``(num_stages, 0)``."""
        slots = [(s, j) for s in range(self.num_stages) for j in range(self.max_depth)]
        return slots + [(self.num_stages, 0)]

    # -- archs -------------------------------------------------------------------------------
    def canonical(self, arch: Arch) -> Arch:
        """``arch`` with the blocks its depths skip set to the largest choices (checks shapes)."""
        n = self.num_blocks
        if len(arch.kernels) != n or len(arch.expands) != n or len(arch.depths) != self.num_stages:
            raise ValueError(f"an arch of {self.name} has {n} kernels and expansions and "
                             f"{self.num_stages} depths, got {len(arch.kernels)}, {len(arch.expands)}, "
                             f"{len(arch.depths)}")
        ks, es = list(arch.kernels), list(arch.expands)
        for i, (s, j) in enumerate(self.block_slots()):
            if s < self.num_stages and j >= arch.depths[s]:
                ks[i], es[i] = self.kernels[-1], self.expands[-1]
            elif ks[i] not in self.kernels or float(es[i]) not in self.expands:
                raise ValueError(f"block {i}: kernel {ks[i]} / expansion {es[i]} is not a choice of "
                                 f"{self.kernels} / {self.expands}")
        for d in arch.depths:
            if d not in self.depths:
                raise ValueError(f"depth {d} is not a choice of {self.depths}")
        return Arch(tuple(ks), tuple(float(e) for e in es), tuple(arch.depths))

    def sample(self, rng: random.Random) -> Arch:
        """A uniformly random sub-network (every choice independent)."""
        n = self.num_blocks
        return self.canonical(Arch(tuple(rng.choice(self.kernels) for _ in range(n)),
                                   tuple(rng.choice(self.expands) for _ in range(n)),
                                   tuple(rng.choice(self.depths) for _ in range(self.num_stages))))

    def largest(self) -> Arch:
        n = self.num_blocks
        return Arch((self.kernels[-1],) * n, (self.expands[-1],) * n, (self.depths[-1],) * self.num_stages)

    def smallest(self) -> Arch:
        n = self.num_blocks
        return self.canonical(Arch((self.kernels[0],) * n, (self.expands[0],) * n,
                                   (self.depths[0],) * self.num_stages))

    # -- networks ----------------------------------------------------------------------------
    def spec(self, arch: Arch | None = None, name: str | None = None) -> ModelSpec:
        """The sub-network ``arch`` as a ModelSpec (the supernet itself when ``arch`` is None)."""
        arch = self.largest() if arch is None else self.canonical(arch)
        stem_c, first_c, *widths, last_c = self.base_channels
        stages = [StageSpec((BlockSpec("ds", 3, self.first_stride, self.channels(first_c)),))]
        slots = self.block_slots()
        for s, (base, stride) in enumerate(zip(widths, self.stage_strides)):
            blocks = [BlockSpec("ir", arch.kernels[i], stride if j == 0 else 1, self.channels(base),
                                expand=arch.expands[i])
                      for i, (ss, j) in enumerate(slots) if ss == s and j < arch.depths[s]]
            stages.append(StageSpec(tuple(blocks)))
        stages.append(StageSpec((BlockSpec("ir", arch.kernels[-1], LAST_STRIDE,
                                           self.channels(last_c), expand=arch.expands[-1]),)))
        stem = StemSpec(self.channels(stem_c), 3, self.stem_stride)
        return ModelSpec(name=name or self.name, stem=stem, stages=tuple(stages),
                         head=HeadSpec(None, dropout=self.dropout), resolution=self.resolution,
                         num_classes=self.num_classes, act="relu6")

    def supernet_spec(self) -> ModelSpec:
        """The weight-sharing supernet: every block at the largest kernel, expansion and depth."""
        return self.spec(None, name=self.name + "_supernet")

    def masks(self, arch: Arch) -> dict:
        """``tinyjax.models.subnet_masks`` of the supernet that select ``arch`` (same channels as
        :meth:`spec`: middle channels ``make_divisible(in·e, 8)``, kernels centre-cropped, skipped
        blocks switched off)."""
        from tinyjax.models import subnet_masks

        arch = self.canonical(arch)
        sup = self.supernet_spec()
        names = [b.name for b in sup.resolved_blocks() if b.type == "ir"]
        kernels = dict(zip(names, arch.kernels))
        expands = dict(zip(names, arch.expands))
        # stage 0 is the ds block; elastic stages are 1..num_stages; the last block is never skipped
        depths = (1, *arch.depths, 1)
        return subnet_masks(sup, kernels, expands, depths)

    def to_dict(self) -> dict:
        return {"width": self.width, "resolution": self.resolution, "num_classes": self.num_classes,
                "kernels": list(self.kernels), "expands": list(self.expands), "depths": list(self.depths),
                "dropout": self.dropout, **({} if self.stem_stride == 2 else {"stem_stride": 1}),
                **({} if not self._custom_strides else
                   {"first_stride": self.first_stride, "stage_strides": list(self.stage_strides)}),
                **({} if self.min_channels == 8 else {"min_channels": self.min_channels}),
                **({} if self.base_channels == BASE_CHANNELS else
                   {"base_channels": list(self.base_channels)})}

    @classmethod
    def from_dict(cls, d: dict) -> SearchSpace:
        return cls(float(d["width"]), int(d["resolution"]), int(d.get("num_classes", 1000)),
                   tuple(d.get("kernels", (3, 5, 7))), tuple(d.get("expands", (3, 4, 6))),
                   tuple(d.get("depths", (2, 3, 4))), float(d.get("dropout", 0.0)),
                   int(d.get("stem_stride", 2)), int(d.get("first_stride", 1)),
                   tuple(d.get("stage_strides", STAGE_STRIDES)), int(d.get("min_channels", 8)),
                   tuple(d.get("base_channels", BASE_CHANNELS)))


def grid(widths: Sequence[float] = WIDTHS, resolutions: Sequence[int] = RESOLUTIONS,
         num_classes: int = 1000) -> list[SearchSpace]:
    """The stage-1 candidates: every (width, resolution) pair, widths outermost."""
    return [SearchSpace(w, r, num_classes) for w in widths for r in resolutions]
