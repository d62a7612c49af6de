"""Random networks of the MCUNet and TinyNet families, one per seed (deterministic, so a failing
seed can be rerun alone).

* MCUNet: the TinyNAS space on the ProxylessNAS/MobileNetV2 backbone: a width multiplier, then per
  stage 1-3 inverted-residual blocks with kernel {3, 5, 7} and expansion {3, 4, 5, 6}; ReLU6, no
  SE, no head conv; small resolutions (the C is checked, not accuracy).
* TinyNet: EfficientNet-B0 twisted by random (r, d, w) with TinyNet's rules: SE, SiLU (a lookup
  table), head conv.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tinyjax.scaling import round_channels
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec
from tinyjax.zoo import tinynet

#: ProxylessNAS backbone: (channels, stride) of its stages after the first depthwise-separable one
MCUNET_STAGES = ((24, 2), (40, 2), (80, 2), (96, 1), (192, 2), (320, 1))


def mcunet_spec(seed: int) -> ModelSpec:
    rng = np.random.default_rng(seed)
    w = float(rng.choice([0.2, 0.3, 0.4, 0.5]))
    n_stages = int(rng.integers(2, len(MCUNET_STAGES) + 1))
    stages = [StageSpec((BlockSpec("ds", 3, 1, round_channels(16, w), act=None),))]
    for chs, stride in MCUNET_STAGES[:n_stages]:
        blocks = tuple(BlockSpec("ir", int(rng.choice([3, 5, 7])), stride if i == 0 else 1,
                                 round_channels(chs, w), expand=float(rng.choice([3, 4, 5, 6])))
                       for i in range(int(rng.integers(1, 4))))
        stages.append(StageSpec(blocks))
    return ModelSpec(name=f"mcunet_seed{seed}", stem=StemSpec(round_channels(32, w), 3, 2),
                     stages=tuple(stages),
                     head=HeadSpec(None, dropout=0.0), resolution=int(rng.choice([32, 48, 64])),
                     num_classes=int(rng.choice([10, 17])), act="relu6")


def tinynet_spec(seed: int) -> ModelSpec:
    rng = np.random.default_rng(10_000 + seed)
    r, d, w = (round(float(rng.uniform(0.1, 0.3)), 3), round(float(rng.uniform(0.1, 0.5)), 3),
               round(float(rng.uniform(0.1, 0.4)), 3))
    spec = tinynet(r, d, w, name=f"tinynet_seed{seed}")
    return dataclasses.replace(spec, num_classes=int(rng.choice([10, 17])),
                               head=dataclasses.replace(spec.head, out_chs=int(rng.choice([64, 128]))))


FAMILIES = {"mcunet": mcunet_spec, "tinynet": tinynet_spec}
