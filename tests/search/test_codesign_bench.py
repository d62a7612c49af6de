"""benchmarks/codesign.py (MCUNet's Figure A): which MobileNetV2 each planner fits, the row of a
planner that fits none, one training for a network both planners pick, and the table (training
and the searches stubbed, fast)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from sampling_support import REPO

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.plan.graph_plan import plan_graph
from tinyjax.codegen.targets import flash_bytes
from tinyjax.search.tinynas.run import Budget
from tinyjax.zoo import mobilenetv2

spec = importlib.util.spec_from_file_location("codesign", REPO / "benchmarks/codesign.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

KB, MB = 1024, 1024 * 1024


def test_mbv2_resolutions_are_the_embedded_datasets_up_to_the_spaces_largest():
    assert bench.mbv2_resolutions((48, 64)) == (32, 48, 64)
    assert bench.mbv2_resolutions((40, 48)) == (32, 40, 48)


@pytest.mark.parametrize("in_place", [False, True])
def test_scaled_mbv2_takes_the_most_macs_whose_plan_fits_under_its_planner(in_place):
    budget = Budget(32 * KB, MB, "cortex-m7", in_place=in_place)
    got, peak, _ = bench.scaled_mbv2(budget, 10, (32, 48, 64))
    # 32 kB: in place, 48 px fits (31.5 kB); layer by layer 48 px needs 33.75 kB, so 32 px
    assert got.name == ("mbv2_w0.5_r48" if in_place else "mbv2_w0.5_r32")
    assert peak == plan_graph(graph_from_spec(got), "cortex-m7", verify=False, in_place=in_place).peak_bytes
    assert peak <= 32 * KB
    # the next width needs more flash than 1 MB (its SRAM would fit at 32 px)
    bigger = graph_from_spec(mobilenetv2(0.75).with_(resolution=got.resolution, num_classes=10))
    assert flash_bytes(bigger) > MB


def test_a_budget_no_mbv2_fits_is_a_row_not_an_exit(monkeypatch, capsys, tmp_path):
    # 14 kB: MobileNetV2 at 32 px needs 14.0 kB in place and 15.0 kB layer by layer
    assert bench.scaled_mbv2(Budget(14 * KB, MB, "cortex-m7", in_place=False), 10, (32, 48)) is None
    trained = []

    def fake_train(cfg, spec, workdir):
        trained.append(workdir.name)
        return 0.5, [{"step": 600, "top1": 0.5}]

    def fake_search(cfg, budget, run, log):
        run.mkdir(parents=True)
        winner = mobilenetv2(0.35).with_(resolution=32, num_classes=10, name="winner")
        (run / "best_spec.json").write_text(winner.to_json())
        (run / "train").mkdir()
        (run / "train" / "metrics.jsonl").write_text(json.dumps({"step": 600, "eval_top1": 0.7}) + "\n")
        return {"peak_sram_bytes": 13 * KB, "top1_float": 0.7}

    monkeypatch.setattr(bench, "train", fake_train)
    monkeypatch.setattr("tinyjax.search.tinynas.run.run_search", fake_search)
    assert bench.main(["--budget", "14kB", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows[0].startswith("| MbV2 + layer-by-layer | no MobileNetV2 of widths")
    assert rows[1].startswith("| MbV2 + tinyjax planner | 32 |")
    assert "| 0.5000 | 600: 0.500 |" in rows[1]
    assert rows[3].startswith("| TinyNAS + tinyjax planner (co-design) | 32 |")
    assert "600: 0.700" in rows[3]
    assert trained == ["mbv2_w0.5_r32"]
    saved = json.loads((tmp_path / "codesign.json").read_text())
    assert [r["fits"] for r in saved] == [False, True, True, True]


def test_a_network_both_planners_pick_is_trained_once(monkeypatch, capsys, tmp_path):
    trained = []

    def fake_train(cfg, spec, workdir):
        trained.append(workdir.name)
        return 0.5, []

    def no_search(*args, **kwargs):
        raise SystemExit(7)

    monkeypatch.setattr(bench, "train", fake_train)
    monkeypatch.setattr("tinyjax.search.tinynas.run.run_search", no_search)
    with pytest.raises(SystemExit):
        bench.main(["--budget", "320kB", "--workdir", str(tmp_path)])
    # at 320 kB both planners fit MobileNetV2 0.5 x 64 px (0.75 needs over 1 MB of flash): one work
    # directory, trained for both rows
    assert trained == ["mbv2_w0.5_r64", "mbv2_w0.5_r64"]
