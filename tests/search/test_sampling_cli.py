"""``python -m tinyjax.search.rubik.sampling`` end to end on the embedded dataset with a tiny base
network: killed with SIGKILL after its first model, then rerun, it finishes without retraining
that model and writes samples, frontier (and the formula when tinyjax.search.rubik is there)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from kill9 import sigkill_when
from sampling_support import REPO, TINY, TINY_OVERRIDES

from tinyjax.counting import count
from tinyjax.scaling import scale


def _command(tmp_path, workdir):
    base = tmp_path / "tiny.json"
    base.write_text(TINY.to_json())
    target = count(scale(TINY, 0.9, 1.0, 1.0)).macs
    return [sys.executable, "-m", "tinyjax.search.rubik.sampling", "--config",
            str(REPO / "configs/rubik_embedded.py"), "--base", str(base), "--targets", str(target),
            "--samples", "3", "--per-band", "3", "--tolerance", "0.3", "--workdir", str(workdir),
            "--config.resolution=16", *(f"--config.{o}" for o in TINY_OVERRIDES)]


@pytest.mark.slow
def test_sigkill_after_the_first_model_then_a_rerun_resumes_without_retraining(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    work = tmp_path / "w"
    cmd = _command(tmp_path, work)
    first = work / "results" / "model_000.json"
    sigkill_when(cmd, first.exists, tmp_path / "err1", env=env, cwd=tmp_path, timeout=600)
    assert not (work / "samples.json").exists()
    kept = first.read_bytes(), first.stat().st_mtime_ns
    metrics = (work / "models" / "model_000" / "metrics.jsonl").read_bytes()

    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 already trained" in out.stderr and "ETA" in out.stderr
    assert (first.read_bytes(), first.stat().st_mtime_ns) == kept
    assert (work / "models" / "model_000" / "metrics.jsonl").read_bytes() == metrics
    assert "[1/3 model_000]" not in out.stderr      # no training line of the first model
    samples = json.loads((work / "samples.json").read_text())
    assert [s["name"] for s in samples] == ["model_000", "model_001", "model_002"]
    assert all(0 <= s["top1"] <= 1 and s["steps"] == 4 for s in samples)
    front = json.loads((work / "frontier.json").read_text())
    assert len(front) == 3 and all(set(p) == {"macs", "r", "d", "w", "top1"} for p in front)
    has_rubik = importlib.util.find_spec("tinyjax.search.rubik") is not None
    assert (work / "formula.json").is_file() == has_rubik
