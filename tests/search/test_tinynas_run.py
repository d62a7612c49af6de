"""``python -m tinyjax.search --budget 320kB`` end to end with the smoke-test config (two widths,
two resolutions, a few steps per stage): the work directory's results, the exported C checked
bit for bit, and kill -9 during the supernet's training followed by the same command finishing
with the result of an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kill9 import sigkill_when

from tinyjax.spec import ModelSpec

REPO = Path(__file__).resolve().parents[2]
BUDGET = 320 * 1024


def _command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "tinyjax.search", "--budget", "320kB", "--workdir", str(workdir),
            "--config", str(REPO / "configs/search_embedded.py:runlocal")]


def _env():
    return dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")


def _result(workdir: Path) -> dict:
    s = json.loads((workdir / "summary.json").read_text())
    return {"spec": (workdir / "best_spec.json").read_text(),
            **{k: s[k] for k in ("arch", "macs", "params", "peak_sram_bytes", "flash_bytes",
                                 "top1_holdout_supernet", "top1_float", "top1_int8")}}


def _supernet_checkpoint(workdir: Path) -> bool:
    return any(p.is_dir() and p.name.isdigit() for p in (workdir / "supernet").rglob("*"))


@pytest.mark.slow
def test_search_end_to_end_then_kill_9_in_the_supernet_and_resume(tmp_path):
    plain = tmp_path / "plain"
    r = subprocess.run(_command(plain), env=_env(), cwd=tmp_path, capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((plain / "summary.json").read_text())
    for key in ("macs", "params", "peak_sram_bytes", "flash_bytes", "top1_float", "top1_int8",
                "seconds_per_stage"):
        assert key in s, key
    assert s["peak_sram_bytes"] <= BUDGET and s["c_bit_exact"] == s["c_images"] > 0
    assert set(s["seconds_per_stage"]) >= {"stage1", "supernet", "evolution", "train", "export"}
    spec = ModelSpec.from_json((plain / "best_spec.json").read_text())
    from tinyjax.codegen.memory import peak_sram_bytes

    assert peak_sram_bytes(spec, "cortex-m7") == s["peak_sram_bytes"]
    for name in ("stage1_cdf.png", "evolution.png", "pareto.png", "stage1.md", "summary.md",
                 "c/model_model.h", "c/model_model.c"):
        assert (plain / name).is_file(), name
    assert "ETA" in r.stderr

    killed = tmp_path / "killed"
    sigkill_when(_command(killed), lambda: _supernet_checkpoint(killed), tmp_path / "err", env=_env(),
                 cwd=tmp_path, timeout=3600)
    assert not (killed / "summary.json").exists()
    r = subprocess.run(_command(killed), env=_env(), cwd=tmp_path, capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stderr
    assert _result(killed) == _result(plain)
