"""benchmarks/rubik_vs_compound.py: φ matched on the counted MACs, and its table (training stubbed,
fast); the ``--quick`` run itself trains six EfficientNet-sized networks (slow)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from sampling_support import REPO

from tinyjax.counting import count
from tinyjax.zoo import efficientnet_b0, efficientnet_compound_scaled

spec = importlib.util.spec_from_file_location("rubik_vs_compound", REPO / "benchmarks/rubik_vs_compound.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.parametrize("target", [12_000_000, 50_000_000])
def test_phi_lands_on_the_count_step_nearest_the_target(target):
    phi = bench.compound_phi(target)
    macs = count(efficientnet_compound_scaled(phi)).macs
    grid = [count(efficientnet_compound_scaled(p)).macs for p in np.linspace(-8, 0, 120)]
    assert abs(macs / target - 1) <= min(abs(m / target - 1) for m in grid) + 1e-9
    assert phi < 0


def test_the_table_has_a_row_per_target_with_mean_std_and_difference(monkeypatch, capsys, tmp_path):
    nets = {"rubik": (efficientnet_b0().with_(resolution=96), "r=0.43 d=0.5 w=0.5"),
            "compound": (efficientnet_b0().with_(resolution=80), "phi=-5.000")}
    monkeypatch.setattr(bench, "networks", lambda t: nets)
    top1 = {"rubik": [0.60, 0.62, 0.64], "compound": [0.50, 0.50, 0.50]}
    monkeypatch.setattr(bench, "train_seeds",
                        lambda cfg, spec, workdir, seeds: np.array(top1[workdir.name.split("_")[1]]))
    monkeypatch.setenv("XLA_FLAGS", "")     # main sets the host device count: undone after the test
    assert bench.main(["--quick", "--workdir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and [x.split()[0] for x in lines[2:]] == ["12M", "24M", "50M"]
    assert "62.00 ± 1.63" in lines[2] and "50.00 ± 0.00" in lines[2] and lines[2].endswith("+12.00")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tinyjax.search.rubik") is None,
                    reason="needs tinyjax.search.rubik (the built-in formula)")
def test_the_quick_run_trains_both_networks_at_three_targets(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks/rubik_vs_compound.py"), "--quick",
                          "--targets", "6M,8M,10M", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    rows = lines[next(i for i, x in enumerate(lines) if x.startswith("---")) + 1:]
    assert [r.split()[0] for r in rows] == ["6M", "8M", "10M"]
    assert all("±" in r for r in rows)
