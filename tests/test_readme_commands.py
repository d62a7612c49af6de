"""The README's command lines run as a user runs them, one after the other, each a separate
``python -m`` process: the formula's network for 100M MACs, its report and its C checked on the
host (default suite); the embedded training at smoke size (``configs/train_embedded.py:runlocal``),
the export of its checkpoint for a board, checked on the host, and its class-activation maps
(slow: ``.ci/run`` runs it). The TinyNAS commands, their resume after kill -9 and Ctrl-C and the
refused work directory are in ``tests/search/test_tinynas_run.py``; the training's kill -9 and
Ctrl-C resume in ``tests/train/test_train_cli.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from toolchain_gate import require_tools

from tinyjax.counting import count
from tinyjax.spec import ModelSpec

REPO = Path(__file__).resolve().parents[1]
BUILD_AND_CHECK = "build and check on this machine: "


def cli(cwd: Path, module: str, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, capture_output=True,
                       text=True, timeout=timeout,
                       env=dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, f"{module} {args}: exit {r.returncode}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    return r


def build_and_check(cwd: Path, export_stdout: str, images: int) -> None:
    """Run the build-and-check command the export printed last: the C must reproduce the integer
    reference's outputs on every test vector."""
    last = export_stdout.strip().splitlines()[-1]
    assert last.startswith(BUILD_AND_CHECK), last
    r = subprocess.run(["bash", "-c", last[len(BUILD_AND_CHECK):]], cwd=cwd, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"{images} images, {images} bit-exact, 0 failed" in r.stdout, r.stdout


@pytest.mark.slow   # four subprocesses and a C build (.ci/run's training target runs it)
def test_a_network_for_100M_macs_its_report_and_its_c_checked_on_the_host(tmp_path):
    """python -m tinyjax.search --flops 100M --out rubik100m.json; python -m tinyjax.info
    rubik100m.json --json; python -m tinyjax.export --spec rubik100m.json --out c_out; and the
    build-and-check command the export prints (measured: 11 s on 2 cores)."""
    require_tools("gcc", "make")
    r = cli(tmp_path, "tinyjax.search", "--flops", "100M", "--out", "rubik100m.json")
    assert "resolution 184 px" in r.stdout and r.stdout.strip().splitlines()[-1] == "wrote rubik100m.json"
    spec = ModelSpec.from_json((tmp_path / "rubik100m.json").read_text())
    assert abs(count(spec).macs / 1e8 - 1) < 0.02

    report = json.loads(cli(tmp_path, "tinyjax.info", "rubik100m.json", "--json").stdout)
    assert (report["name"], report["resolution"]) == (spec.name, 184)
    assert (report["macs"], report["params"]) == (count(spec).macs, count(spec).params)

    r = cli(tmp_path, "tinyjax.export", "--spec", "rubik100m.json", "--out", "c_out")
    memory = next(x for x in r.stdout.splitlines() if x.startswith("memory (cortex-m7):"))
    assert f"({report['peak_sram_bytes']:,} B;" in memory and f"({report['flash_bytes']:,} B," in memory
    assert "RANDOM WEIGHTS" in r.stdout
    build_and_check(tmp_path, r.stdout, 1)


@pytest.mark.slow
def test_train_at_smoke_size_then_export_its_checkpoint_for_a_board_and_its_activation_maps(tmp_path):
    """python -m tinyjax.train --config configs/train_embedded.py:runlocal --workdir W; python -m
    tinyjax.export --checkpoint W --out E --device stm32f746 and the build-and-check command it
    prints; python -m tinyjax.train.cam --workdir W --out cam.png (measured: 50 s on 2 cores)."""
    require_tools("gcc", "make")
    work, out, cam = tmp_path / "embedded", tmp_path / "export", tmp_path / "cam.png"
    r = cli(REPO, "tinyjax.train", "--config", "configs/train_embedded.py:runlocal", "--workdir", work)
    final = json.loads(r.stdout.strip().splitlines()[-1])
    assert final["step"] == 20 and 0.0 <= final["eval_top1"] <= 1.0, final
    for name in ("checkpoints/20", "spec.json", "config.json", "metrics.jsonl"):
        assert (work / name).exists(), name
    evals = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines() if "eval_top1" in x]
    assert [e["step"] for e in evals] == [20] and evals[0]["eval_top1"] == final["eval_top1"]

    r = cli(REPO, "tinyjax.export", "--checkpoint", work, "--out", out, "--device", "stm32f746")
    assert f"weights of step 20 of {work}" in r.stdout and "fits stm32f746" in r.stdout, r.stdout
    assert "RANDOM WEIGHTS" not in r.stdout
    build_and_check(REPO, r.stdout, 1)

    r = cli(REPO, "tinyjax.train.cam", "--workdir", work, "--out", cam)
    assert f"wrote {cam}" in r.stderr + r.stdout
    assert cam.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
