"""Fixtures of the data tests: one prepared copy of ``tinyjax_shapes`` per session, small configs."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shapes_dir() -> str:
    """A data_dir holding a freshly built ``tinyjax_shapes``: the session's temporary
    ``$TINYJAX_DATA_DIR`` (see ``tests/conftest.py``), so the dataset is drawn once per session
    for the data tests and the training CLI tests alike."""
    from tinyjax.data.embedded import ensure_prepared

    return ensure_prepared(os.environ["TINYJAX_DATA_DIR"])


@pytest.fixture
def shapes_cfg(shapes_dir):
    """The default data config on the session's copy, without RandAugment (faster to trace)."""
    from tinyjax.data.pipeline import default_data_config

    cfg = default_data_config()
    cfg.data_dir = shapes_dir
    cfg.randaugment_n = 0
    return cfg


@pytest.fixture
def image_folder(tmp_path):
    """A tiny image folder (see :func:`write_image_folder`): ``(root, colours per split)``."""
    root = tmp_path / "images"
    return root, write_image_folder(root)


def write_image_folder(root) -> dict[str, list[tuple[int, int, int]]]:
    """``root/{train,validation}/{blue,green,red}/img*``: solid-colour images, a distinct colour per
    file, of varied sizes and formats (RGB PNG, JPEG, RGBA PNG, greyscale PNG). Returns each split's
    colours in the order written (= sorted class folder, then sorted file name)."""
    Image = pytest.importorskip("PIL.Image")

    rng = np.random.default_rng(0)
    colours: dict[str, list] = {}
    sizes = [(20, 20), (24, 30), (40, 18), (33, 33)]  # (height, width), pixels
    for split, per_class in (("train", 4), ("validation", 2)):
        colours[split] = []
        for ci, cls in enumerate(("blue", "green", "red")):
            d = root / split / cls
            d.mkdir(parents=True)
            for j in range(per_class):
                colour = tuple(int(v) for v in rng.integers(0, 256, 3))
                if j == 3:
                    colour = (40 + 80 * ci,) * 3  # distinct greys
                h, w = sizes[j]
                img = Image.new("RGB", (w, h), colour)
                if j == 1:
                    img.save(d / f"img{j}.jpg", quality=100)  # JPEG: the decode_and_crop_jpeg path
                elif j == 2:
                    img.convert("RGBA").save(d / f"img{j}.png")  # 4 channels -> 3
                elif j == 3:
                    img.convert("L").save(d / f"img{j}.png")  # 1 channel -> 3
                else:
                    img.save(d / f"img{j}.png")
                colours[split].append(colour)
        (root / split / "notes.txt").write_text("a file beside the class folders is ignored")
    return colours
