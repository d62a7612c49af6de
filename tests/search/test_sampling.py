"""The sampler's fast parts: MACs targets, rejection sampling on counted MACs, the frontier's bands,
result files and the CLI's one-line errors. Training runs are in ``test_sampling_cli.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyjax.counting import count
from tinyjax.errors import run_cli
from tinyjax.search.rubik import sampling
from tinyjax.search.rubik.sampling import SamplingError, frontier, parse_macs, read_results, sample_models
from tinyjax.zoo import efficientnet_b0

CONFIG = str(Path(__file__).resolve().parents[2] / "configs/train_embedded.py")


@pytest.mark.parametrize("text, macs", [("30M", 30_000_000), ("1.5G", 1_500_000_000),
                                        ("400k", 400_000), ("123456", 123_456), (" 2.5M ", 2_500_000)])
def test_macs_targets_read_with_decimal_units(text, macs):
    assert parse_macs(text) == macs


@pytest.mark.parametrize("text", ["ten", "30X", "", "-5M", "0", "0M"])
def test_a_bad_target_is_refused(text):
    with pytest.raises(SamplingError, match="target"):
        parse_macs(text)


def test_every_sample_is_within_tolerance_of_its_target_by_the_exact_count():
    base = efficientnet_b0().with_(num_classes=10, resolution=64)
    targets = [3_000_000, 6_000_000]
    samples = sample_models(base, targets, 8, tolerance=0.04, seed=1)
    assert [s.target for s in samples] == targets * 4          # dealt round-robin
    for s in samples:
        assert count(s.spec).macs == s.macs
        assert abs(s.macs / s.target - 1) <= 0.04
        assert 0.5 <= min(s.r, s.d, s.w) and max(s.r, s.d, s.w) <= 1.0
        assert s.spec.resolution == int(64 * s.r + 1e-9)
    assert len({s.spec.with_(name="") for s in samples}) == 8   # no network twice
    again = sample_models(base, targets, 8, tolerance=0.04, seed=1)
    assert [(s.r, s.d, s.w) for s in again] == [(s.r, s.d, s.w) for s in samples]


def test_an_unreachable_target_says_so():
    base = efficientnet_b0().with_(num_classes=10, resolution=64)
    with pytest.raises(SamplingError, match="no new network within 5% of 500M"):
        sample_models(base, [500_000_000], 1, max_draws=200)


def _result(name, macs, top1, target=100):
    return {"name": name, "target": target, "macs": macs, "params": 1, "r": 0.5, "d": 0.6,
            "w": 0.7, "resolution": 32, "top1": top1, "top1_seeds": [top1]}


def test_the_frontier_keeps_the_best_of_each_target_band():
    results = [_result("a", 98, 0.5), _result("b", 103, 0.7), _result("c", 101, 0.7),
               _result("d", 200, 0.9, 200), _result("e", 195, 0.1, 200)]
    front = frontier(results, [100, 200], 0.05, per_band=2)
    # band 100: c and b tie on top-1, fewer MACs first in rank; band 200: both
    assert [(p["macs"], p["top1"]) for p in front] == [(101, 0.7), (103, 0.7), (195, 0.1), (200, 0.9)]
    assert set(front[0]) == {"macs", "r", "d", "w", "top1"}
    assert [p["macs"] for p in frontier(results, [100, 200], 0.05, per_band=1)] == [101, 200]


def test_a_corrupt_result_file_is_named_with_what_to_do(tmp_path):
    (tmp_path / "model_000.json").write_text(json.dumps(_result("model_000", 1, 0.5)))
    assert list(read_results(tmp_path)) == ["model_000"]
    (tmp_path / "model_001.json").write_text('{"name": "model_001", "top1": ')
    with pytest.raises(SamplingError, match=r"model_001.json is corrupt .*delete it"):
        read_results(tmp_path)


@pytest.mark.parametrize("extra, message", [
    (["--targets", "ten"], "MACs target 'ten': cannot read a count"),
    (["--targets", "3M", "--samples", "0"], "--samples must be at least 1"),
    (["--targets", "3M", "--base", "tinynet_z"], "unknown model 'tinynet_z'"),
    (["--targets", "3M", "--r", "1.0"], "--r must be two numbers"),
])
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    argv = ["--workdir", str(tmp_path / "w"), "--config", CONFIG, *extra]
    assert run_cli(sampling.main, argv, prog=sampling.PROG) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "w").exists()


def test_a_population_gets_as_many_host_devices_unless_the_flag_is_set(monkeypatch):
    import os

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1")
    sampling.host_devices_for(1)
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_foo=1"
    sampling.host_devices_for(3)
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_foo=1 --xla_force_host_platform_device_count=3"
    sampling.host_devices_for(5)
    assert os.environ["XLA_FLAGS"].endswith("count=3")
