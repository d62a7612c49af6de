"""Shared fixtures: a hermetic HOME, the MCUNet reference net-configs and an importable timm."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_SESSION: dict = {}


def pytest_configure(config):
    """Tests write only into the repository and the temp dir. For the session (and every
    subprocess it starts), HOME is an empty temporary folder, and the places tools write under
    HOME by default point at temporary folders too: the embedded dataset (generated once per
    session, shared by the data and training tests), matplotlib's font cache, Keras's config.
    :func:`home_stays_empty` then fails the session if anything still lands in HOME. Set before
    collection, because test modules import TensorFlow (which writes ~/.keras) when collected."""
    root = Path(tempfile.mkdtemp(prefix="tinyjax-tests-"))
    env = {"HOME": root / "home", "TINYJAX_DATA_DIR": root / "tensorflow_datasets",
           "MPLCONFIGDIR": root / "matplotlib", "KERAS_HOME": root / "keras",
           "XDG_CACHE_HOME": root / "cache", "XDG_CONFIG_HOME": root / "config"}
    env["HOME"].mkdir()
    _SESSION.update(root=root, home=env["HOME"], saved={k: os.environ.get(k) for k in env})
    os.environ.update({k: str(v) for k, v in env.items()})


def pytest_unconfigure(config):
    if not _SESSION:
        return
    for key, value in _SESSION["saved"].items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(_SESSION["root"], ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def home_stays_empty():
    """After the last test: nothing was written into HOME (by the tests or their subprocesses)."""
    yield
    home = _SESSION["home"]
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert not written, (f"the tests wrote into HOME ({home}): {', '.join(written[:8])}; write "
                         "into tmp_path, or point the tool at a temporary folder in conftest.py")

REPO = Path(__file__).resolve().parents[1]
#: the official MCUNet model-zoo net-configs, carried by the repository (see its NOTICE.md)
MCUNET_CONFIGS = REPO / "tests" / "reference" / "mcunet"


@pytest.fixture(scope="session")
def mcunet_configs() -> Path:
    """The folder of the official net-configs; the repository carries them, so a missing one is a
    broken checkout (an error), never a skip."""
    files = sorted(MCUNET_CONFIGS.glob("*.json"))
    assert len(files) == 13, f"expected the 13 MCUNet net-configs in {MCUNET_CONFIGS}, found {len(files)}"
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
