"""``python -m tinyjax.search --config configs/search_imagenet.py:runlocal`` end to end on a mocked
ImageNet (``tfds.testing.mock_data``: random JPEGs of random sizes, nothing read from disk or the
network), every process included: the search and the ``tinyjax.export`` it starts both see the
same mocked dataset through a ``sitecustomize`` that enters ``mock_data`` at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow_datasets")

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = 1000   # per split; the 100-class subset keeps about a tenth of them

SITECUSTOMIZE = f"""
import os
if os.environ.get("TINYJAX_TEST_MOCK_TFDS"):
    import tensorflow_datasets as tfds
    _MOCK = tfds.testing.mock_data(num_examples={EXAMPLES})   # kept: collected, it would unpatch
    _MOCK.__enter__()
"""


@pytest.mark.slow
def test_imagenet_search_runs_end_to_end_on_mocked_imagenet(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    workdir = tmp_path / "run"
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", TINYJAX_TEST_MOCK_TFDS="1",
               PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "tinyjax.search", "--budget", "320kB", "--workdir", str(workdir),
           "--config", str(REPO / "configs/search_imagenet.py:runlocal"),
           f"--config.data.data_dir={data_dir}"]
    r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]

    s = json.loads((workdir / "summary.json").read_text())
    assert s["peak_sram_bytes"] <= 320 * 1024
    assert s["c_bit_exact"] == s["c_images"] > 0      # the export saw the same mocked images
    spec = json.loads((workdir / "best_spec.json").read_text())
    assert spec["num_classes"] == 100                 # ImageNet-100: the head has 100 outputs
    assert 0.0 <= s["top1_float"] <= 1.0 and 0.0 <= s["top1_int8"] <= 1.0
    assert not (data_dir / "downloads").exists() and not list(data_dir.rglob("*.tfrecord*"))
