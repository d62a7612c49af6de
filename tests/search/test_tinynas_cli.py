"""``python -m tinyjax.search --budget SIZE``: the TinyNAS search's command line. Bad input is one
line and exit code 2, before any work and without touching the work directory."""

import json

import pytest

from tinyjax.errors import run_cli
from tinyjax.search.__main__ import main


def cli(capsys, *args):
    rc = run_cli(main, list(args), prog="tinyjax.search")
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("args, match", [
    (["--budget", "lots"], "cannot read a size 'lots'"),
    (["--budget", "320kB", "--flash", "-1MB"], "must be positive, got '-1MB'"),
    (["--device", "stm32f999"], "unknown device"),
    (["--budget", "320kB", "--target", "m9"], "unknown target"),
    (["--budget", "320kB", "--reserve", "400kB"], "leaves no SRAM"),
    (["--budget", "320kB", "--out", "x.json"], "belong to the Rubik's-cube formula"),
    (["--budget", "320kB", "--config", "/nonexistent.py"], "/nonexistent.py"),
    (["--budget", "320kB", "--config.stage1.nope=1"], "unknown config key 'stage1.nope'"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, match):
    wd = tmp_path / "wd"
    rc, out, err = cli(capsys, *args, "--workdir", str(wd))
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and match in lines[0], err
    assert not wd.exists()


def test_budget_below_the_smallest_network_names_its_peak_and_exits_2(capsys, tmp_path):
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes
    from tinyjax.search.tinynas.stages import _spaces
    from tinyjax.train.config import load_config

    # the default config's narrowest, lowest-resolution space: its smallest sub-network
    space = min(_spaces(load_config("configs/search_embedded.py")), key=lambda s: (s.width, s.resolution))
    peak = peak_sram_bytes(space.spec(space.smallest()), "cortex-m7")
    rc, out, err = cli(capsys, "--budget", "8kB", "--workdir", str(tmp_path / "wd"))
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert "smallest network" in lines[0] and f"{peak:,} B" in lines[0], lines[0]
    # one byte below the smallest peak is refused, the peak itself is not refused by this check
    from tinyjax.search.tinynas.run import Budget
    from tinyjax.search.tinynas.stages import check_reachable

    cfg = load_config("configs/search_embedded.py")
    check_reachable(cfg, Budget(peak, 2**20, "cortex-m7"))
    with pytest.raises(Exception, match="smallest network"):
        check_reachable(cfg, Budget(peak - 1, 2**20, "cortex-m7"))


def test_a_winner_over_the_budget_is_never_exported():
    """The verified plan decides: one byte below a network's peak stops the search."""
    import random

    from tinyjax.search.tinynas.evolution import MemoryCheck
    from tinyjax.search.tinynas.run import SearchError
    from tinyjax.search.tinynas.space import SearchSpace
    from tinyjax.search.tinynas.stages import verified_winner

    space = SearchSpace(0.3, 96, 10)
    arch = space.sample(random.Random(1))
    fit = MemoryCheck(space, 2**30).verify(arch)
    assert verified_winner(MemoryCheck(space, fit.peak_sram_bytes, 2**30), arch) == fit.__class__(
        True, fit.peak_sram_bytes, fit.flash_bytes, fit.macs, fit.params)
    with pytest.raises(SearchError, match="nothing is exported"):
        verified_winner(MemoryCheck(space, fit.peak_sram_bytes - 1, 2**30), arch)
    with pytest.raises(SearchError, match="nothing is exported"):
        verified_winner(MemoryCheck(space, 2**30, fit.flash_bytes - 1), arch)


def test_a_finished_search_rerun_neither_trains_nor_exports_again(tmp_path, monkeypatch):
    """Rerunning a finished search reads the winner's training and export results back instead of
    restoring the checkpoint and rebuilding the C (minutes of derived work)."""
    from types import SimpleNamespace

    from tinyjax.search.tinynas import export as search_export
    from tinyjax.search.tinynas import stages as tinynas_stages
    from tinyjax.search.tinynas.run import WorkDir
    from tinyjax.search.tinynas.space import SearchSpace
    from tinyjax.train import trainer
    from tinyjax.train.config import load_config

    calls = []

    def fake_train(cfg, workdir, progress=None):
        calls.append("train")
        return SimpleNamespace(preempted=False, final_eval={"eval_top1": 0.25}, step=4)

    def fake_export(train_dir, out, budget, vectors, calibration, log):
        calls.append("export")
        return {"top1_int8": 0.5, "bit_exact": 8, "images": 8, "firmware": {"text": 1, "data": 0, "bss": 2}}

    monkeypatch.setattr(trainer, "train_and_evaluate", fake_train)
    monkeypatch.setattr(search_export, "export_and_check", fake_export)
    cfg = load_config("configs/search_embedded.py:runlocal")
    space = SearchSpace(0.3, 48, 10)
    import random

    best = {"spec": space.spec(space.sample(random.Random(0)))}
    for run in range(2):
        wd = WorkDir(tmp_path / "wd", {"fingerprint": 1})
        trained = tinynas_stages.train(cfg, space, best, wd, log=lambda m: None)
        exported = tinynas_stages.export(cfg, None, wd, log=lambda m: None)
        assert trained == {"top1_float": 0.25, "steps": 4, "finetune": "inherit", "evals": []}
        assert exported["bit_exact"] == 8 and exported["firmware"] == {"text": 1, "data": 0, "bss": 2}
        assert calls == ["train", "export"], run    # the second run called neither


def test_reopen_refuses_a_folder_without_a_finished_supernet(tmp_path):
    from tinyjax.errors import SearchError
    from tinyjax.search.tinynas.reopen import reopen

    with pytest.raises(SearchError, match="holds no readable search"):
        reopen(tmp_path / "nothing")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "state.json").write_text(json.dumps({"fingerprint": {}, "done": ["stage1"]}))
    with pytest.raises(SearchError, match="has not finished its supernet stage"):
        reopen(tmp_path / "w")
