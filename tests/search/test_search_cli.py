"""``python -m tinyjax.search``: the formula's network for a MACs target or a memory budget, and
one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

from tinyjax.cli import resolve_model
from tinyjax.counting import count
from tinyjax.errors import run_cli
from tinyjax.search.__main__ import main
from tinyjax.search.rubik.formula import builtin_points
from tinyjax.spec import ModelSpec


def cli(capsys, *args):
    rc = run_cli(main, list(args), prog="tinyjax.search")
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_flops_100M_prints_the_network_and_writes_a_spec_export_accepts(capsys, tmp_path):
    path = tmp_path / "rubik100m.json"
    rc, out, err = cli(capsys, "--flops", "100M", "--out", str(path))
    assert rc == 0, err
    for what in ("r ", "d ", "w ", "resolution 184 px", "params", "MACs", "stage 6: ir_r1_k3_s1_e6_c176"):
        assert what in out, what
    spec = ModelSpec.from_json(path.read_text())
    assert resolve_model(str(path)) == spec           # what export --spec and info read
    assert f"{count(spec).macs / 1e6:.2f}M counted" in out
    assert abs(count(spec).macs / 1e8 - 1) < 0.02


def test_train_takes_the_written_spec_file_as_config_spec(capsys, tmp_path):
    from ml_collections import ConfigDict

    from tinyjax.train.config import apply_overrides
    from tinyjax.train.run_setup import spec_from_config

    path = tmp_path / "rubik.json"
    assert cli(capsys, "--flops", "30M", "--out", str(path))[0] == 0
    cfg = apply_overrides(ConfigDict({"model": "tinynet_e", "spec": "", "resolution": 0, "dropout": -1.0}),
                          [f"spec={path}"])
    spec = spec_from_config(cfg, num_classes=10)
    assert spec == ModelSpec.from_json(path.read_text()).with_(num_classes=10)


def test_the_module_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "tinyjax.search", "--flops", "24M"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "resolution 10" in out.stdout


def test_budget_256kB_reports_the_fit_and_the_next_step(capsys, tmp_path):
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes

    path = tmp_path / "fit.json"
    rc, out, err = cli(capsys, "--method", "rubik", "--budget", "256kB", "--out", str(path))
    assert rc == 0, err
    assert "peak SRAM" in out and "does not fit" in out
    peak = peak_sram_bytes(ModelSpec.from_json(path.read_text()))
    assert peak <= 256 * 1024 and f"peak SRAM   {peak / 1024:.1f} kB" in out


@pytest.mark.parametrize("args, match", [
    (["--flops", "ten"], "cannot read a count 'ten'"),
    (["--flops", "0"], "must be positive"),
    (["--flops", "1K"], "closest network"),
    (["--method", "rubik", "--budget", "1kB"], "smallest peak it reaches is"),
    (["--method", "rubik", "--budget", "lots"], "cannot read a size 'lots'"),
    (["--method", "rubik", "--budget", "256kB", "--flash", "-1MB"], "must be positive, got '-1MB'"),
    (["--method", "rubik", "--device", "stm32f999"], "unknown device"),
    (["--method", "rubik", "--budget", "256kB", "--target", "m9"], "unknown target"),
    (["--budget", "256kB", "--flops", "10M"], "not both"),
    (["--method", "rubik", "--budget", "256kB", "--workdir", "w"], "--workdir applies to the TinyNAS"),
    (["--method", "rubik"], "needs --budget"),
    (["--method", "rubik", "--budget", "256kB", "--flops", "10M"], "not both"),
    ([], "nothing to do"),
    (["--flops", "10M", "--classes", "none"], "--classes must be a positive integer"),
    (["--flops", "100M", "--formula", "/nonexistent.json"], "cannot read formula"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, match):
    rc, out, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and match in lines[0], err
    assert not out


def test_refit_fits_a_workdir_frontier_saves_it_and_uses_it(capsys, tmp_path):
    pytest.importorskip("gpytorch")
    pts = [{"macs": m, "r": r, "d": d, "w": 0.5, "top1": 0.1} for m, r, d in builtin_points()]
    (tmp_path / "frontier.json").write_text(json.dumps(pts))
    (tmp_path / "samples.json").write_text(json.dumps(pts))
    rc, out, err = cli(capsys, "--refit", str(tmp_path), "--flops", "50M")
    assert rc == 0, err
    assert (tmp_path / "formula.json").is_file() and (tmp_path / "formula.png").stat().st_size > 10_000
    assert f"frontier of {tmp_path}" in out and "target      50.00M" in out
    rc, out2, err = cli(capsys, "--formula", str(tmp_path / "formula.json"), "--flops", "50M")
    assert rc == 0, err
    assert out2.split("target", 1)[1] == out.split("target", 1)[1]
