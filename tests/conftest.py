"""Shared fixtures: the steering repo's reference data and an importable timm."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MCUNET_CONFIGS = SHARED / "reference" / "mcunet"


@pytest.fixture(scope="session")
def mcunet_configs() -> Path:
    if not MCUNET_CONFIGS.is_dir():
        pytest.skip(f"reference net-configs not found at {MCUNET_CONFIGS} (shared/ beside the repo)")
    return MCUNET_CONFIGS


def import_timm():
    """timm 1.0.31 imports torchvision, whose only registry build is CUDA-linked and fails on CPU
    torch (``operator torchvision::nms does not exist``). Declaring the two op schemas first lets
    timm import; its model code never calls them."""
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw("torchvision::nms", "")
    except RuntimeError:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_timm.lib = lib  # the registration lives as long as this object
    import timm

    return timm


@pytest.fixture(scope="session")
def timm():
    return import_timm()
