"""The sampler's run over a work directory, with training replaced by a stand-in (fast): what is
finished is never retrained, a stopped model leaves no result, the frontier and the formula are
written, and a changed experiment is refused."""

from __future__ import annotations

import io
import json
import sys
import types

import pytest
from sampling_support import TINY

from tinyjax.search.rubik import sampling
from tinyjax.search.rubik.sampling import SamplingError, run_sampling, sample_models

BASE = TINY.with_(resolution=32)
TARGETS = [300_000, 500_000]


@pytest.fixture
def trained(monkeypatch):
    """Training replaced: top-1 grows with r; records which models were trained."""
    calls = []

    def train(cfg, sample, workdir, progress):
        calls.append(sample.name)
        if sample.name in stop_at:
            return None, "SIGINT"
        return {**sample.describe(), "top1": sample.r, "top1_seeds": [sample.r], "steps": 1}, None

    stop_at: set[str] = set()
    monkeypatch.setattr(sampling, "train_sample", train)
    return calls, stop_at


@pytest.fixture
def fake_rubik(monkeypatch):
    """A stand-in for tinyjax.search.rubik.formula (fit_formula, plot_fit, Formula.save) recording
    its calls."""
    seen = {}

    class Formula:
        def save(self, path):
            path.write_text(json.dumps({"points": seen["points"]}))

    def fit_formula(points, base, source=""):
        seen["points"], seen["base"] = points, base
        return Formula()

    def plot_fit(formula, path, frontier, samples):
        seen["plot"] = (frontier, samples)
        path.write_bytes(b"png")

    module = types.ModuleType("tinyjax.search.rubik.formula")
    module.fit_formula, module.plot_fit, module.Formula = fit_formula, plot_fit, Formula
    monkeypatch.setitem(sys.modules, "tinyjax.search.rubik.formula", module)
    return seen


def _run(workdir, samples, plan=None):
    plan = plan or {"models": [s.describe() for s in samples]}
    err = io.StringIO()
    code = run_sampling(None, workdir, BASE, samples, TARGETS, 0.1, 2, plan, stream=err)
    return code, err.getvalue()


def test_a_rerun_trains_only_what_is_missing_and_writes_frontier_and_formula(tmp_path, trained,
                                                                              fake_rubik):
    calls, stop_at = trained
    samples = sample_models(BASE, TARGETS, 6, tolerance=0.1, d_range=(0.5, 1.5), w_range=(0.5, 1.5))
    stop_at.add("model_002")
    code, err = _run(tmp_path, samples)
    assert code == 130 and calls == ["model_000", "model_001", "model_002"]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["model_000.json",
                                                                         "model_001.json"]
    assert "SIGINT: stopped; run the same command again to resume" in err
    assert not (tmp_path / "frontier.json").exists()

    stop_at.clear()
    calls.clear()
    code, err = _run(tmp_path, samples)
    assert code == 0 and calls == ["model_002", "model_003", "model_004", "model_005"]
    assert "2 already trained" in err and "ETA" in err
    everything = json.loads((tmp_path / "samples.json").read_text())
    assert [x["name"] for x in everything] == [s.name for s in samples]
    front = json.loads((tmp_path / "frontier.json").read_text())
    assert len(front) == 4 and all(set(p) == {"macs", "r", "d", "w", "top1"} for p in front)
    for t in TARGETS:   # the two best (largest r, by the stand-in) of each band
        band = sorted((s for s in samples if s.target == t), key=lambda s: -s.r)[:2]
        assert {s.macs for s in band} <= {p["macs"] for p in front}
    assert fake_rubik["points"] == [(p["macs"], p["r"], p["d"]) for p in front]
    assert fake_rubik["base"] == BASE and fake_rubik["plot"] == (front, everything)
    assert (tmp_path / "formula.json").is_file() and (tmp_path / "formula.png").is_file()

    calls.clear()
    assert _run(tmp_path, samples)[0] == 0 and calls == []    # all done: nothing retrained


def test_other_sampling_settings_in_the_same_workdir_are_refused(tmp_path, trained, fake_rubik):
    samples = sample_models(BASE, TARGETS, 2, tolerance=0.1, d_range=(0.5, 1.5), w_range=(0.5, 1.5))
    assert _run(tmp_path, samples, {"seed": 0})[0] == 0
    with pytest.raises(SamplingError, match=r"other sampling settings \(seed differ\)"):
        _run(tmp_path, samples, {"seed": 1})
