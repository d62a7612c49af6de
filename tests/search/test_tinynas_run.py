"""``python -m tinyjax.search`` (TinyNAS) end to end at smoke size, the README's commands with
``--config configs/search_embedded.py:runlocal`` (two widths, two resolutions, a few steps per
stage): the work directory's results and the exported C checked bit for bit; a rerun of the
finished search; kill -9 and Ctrl-C at three points, each followed by the same command, ending
with the uninterrupted run's results byte for byte and without redoing finished stages; the
refusal of a work directory that holds another search; and the command's ``--patch auto``,
``--reserve`` and ``--device`` forms.

Slow (``.ci/run`` runs this file as a slow target). The runs share a JAX compilation cache, so the
first one compiles and the later ones mostly read it, and the session's dataset folder."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kill9 import sigkill_when, signal_when

from tinyjax.spec import ModelSpec
from tinyjax.units import format_bytes, format_count

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KB = 1024
CONFIG = str(REPO / "configs/search_embedded.py:runlocal")
STAGES = ["stage1", "supernet", "evolution", "train", "export"]
# what a finished search writes that two runs of the same command must write byte for byte
SAME = ("stage1.json", "stage1.md", "evolution.json", "best_spec.json", "train.json", "export.json",
        "c/model_model.h", "c/model_model.c", "c/model_weights.c", "c/input.bin", "c/expected.bin")
# the log line each stage prints when it starts its work (stdout)
STARTS = {"stage1": "stage 1:", "supernet": "supernet:", "evolution": "evolution:", "train": "train:",
          "export": "export:"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    return dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
                JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def command(workdir: Path, *budget: str) -> list[str]:
    return [sys.executable, "-m", "tinyjax.search", *(budget or ("--budget", "320kB")), "--config",
            CONFIG, "--workdir", str(workdir)]


def search(env, workdir: Path, *budget: str) -> subprocess.CompletedProcess:
    r = subprocess.run(command(workdir, *budget), env=env, cwd=workdir.parent, capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def summary(workdir: Path) -> dict:
    return json.loads((workdir / "summary.json").read_text())


def started(stdout: str) -> list[str]:
    """The stages whose start line a run printed (finished stages print none)."""
    lines = stdout.splitlines()
    return [s for s, text in STARTS.items() if any(x.startswith(text) for x in lines)]


def files(workdir: Path, *, mtimes: bool = True) -> dict:
    """Every file under ``workdir``: its bytes' digest (and modification time), by relative path."""
    return {str(p.relative_to(workdir)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                          p.stat().st_mtime_ns if mtimes else None)
            for p in sorted(workdir.rglob("*")) if p.is_file()}


def best_line(stdout: str) -> str:
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("best: "), stdout[-2000:]
    return last


def assert_bit_exact_c(s: dict) -> None:
    assert s["c_images"] > 0 and s["c_bit_exact"] == s["c_images"], s


@pytest.fixture(scope="module")
def plain(tmp_path_factory, env):
    """The README's command, uninterrupted: (work directory, its CompletedProcess)."""
    workdir = tmp_path_factory.mktemp("search") / "plain"
    return workdir, search(env, workdir)


def test_search_end_to_end_writes_the_winner_its_bit_exact_c_and_the_summary(plain):
    workdir, r = plain
    s = summary(workdir)
    for key in ("macs", "params", "peak_sram_bytes", "flash_bytes", "top1_float", "top1_int8",
                "seconds_per_stage"):
        assert key in s, key
    assert s["peak_sram_bytes"] <= 320 * KB and s["flash_bytes"] <= 1024 * KB
    assert_bit_exact_c(s)
    assert set(s["seconds_per_stage"]) >= set(STAGES)
    assert json.loads((workdir / "state.json").read_text())["done"] == STAGES
    spec = ModelSpec.from_json((workdir / "best_spec.json").read_text())
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes

    assert peak_sram_bytes(spec, "cortex-m7") == s["peak_sram_bytes"]
    for name in ("stage1_cdf.png", "evolution.png", "pareto.png", "stage1.md", "summary.md",
                 "c/model_model.h", "c/model_model.c"):
        assert (workdir / name).is_file(), name
    assert started(r.stdout) == STAGES
    assert best_line(r.stdout) == (
        f"best: {format_count(s['macs'])} MACs, {s['params']:,} parameters, peak SRAM "
        f"{format_bytes(s['peak_sram_bytes'])}, flash {format_bytes(s['flash_bytes'])}; top-1 float "
        f"{s['top1_float']:.4f}, int8 {s['top1_int8']:.4f}; C bit-exact on "
        f"{s['c_images']}/{s['c_images']} images")
    assert "ETA" in r.stderr


def test_rerunning_a_finished_search_prints_its_result_and_redoes_nothing(plain, env):
    workdir, first = plain
    before = files(workdir, mtimes=False)
    r = search(env, workdir)
    assert started(r.stdout) == [] and "compiling" not in r.stderr, r.stdout
    assert best_line(r.stdout) == best_line(first.stdout)
    after = files(workdir, mtimes=False)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {"state.json", "summary.json", "summary.md"}, changed   # the seconds only


def test_kill_9_and_ctrl_c_then_the_same_command_ends_like_the_uninterrupted_run(plain, env, tmp_path):
    """Interrupted three times, each run resumes where the last one stopped: kill -9 while the
    supernet trains, Ctrl-C during the evolution, Ctrl-C while the winner trains; the last run
    finishes with the uninterrupted run's files byte for byte."""
    want, _ = plain
    workdir = tmp_path / "interrupted"
    cmd = command(workdir)

    def run_logs(name):
        return (tmp_path / f"{name}.out").read_text(), (tmp_path / f"{name}.err").read_text()

    # 1. kill -9 once the supernet has saved a checkpoint
    sigkill_when(cmd, lambda: any(p.name.isdigit() for p in (workdir / "supernet").rglob("*")),
                 tmp_path / "1.err", env=env, cwd=tmp_path, timeout=1800)
    assert not (workdir / "evolution.json").exists()
    stage1 = (workdir / "stage1.json").read_bytes()

    # 2. Ctrl-C once the evolution has saved its first generation: the supernet resumed from its
    # checkpoint, stage 1 was not run again
    code = signal_when(cmd, lambda out, err: (workdir / "evolution.json").is_file(), tmp_path / "2",
                       sig=signal.SIGINT, env=env, cwd=tmp_path, timeout=1800)
    out, err = run_logs("2")
    assert code == 130 and "tinyjax.search: interrupted" in err.splitlines(), err[-3000:]
    assert "Traceback" not in err
    assert started(out) == ["supernet", "evolution"], out
    assert f"resuming from {workdir / 'supernet' / 'checkpoints'}" in err
    assert (workdir / "stage1.json").read_bytes() == stage1
    assert json.loads((workdir / "state.json").read_text())["done"] == ["stage1", "supernet"]

    # 3. Ctrl-C while the winner's training compiles: it saves a checkpoint at the next step and
    # stops; the evolution went on from its saved generation, the supernet was not trained again
    code = signal_when(cmd, lambda out, err: "[train]: compiling the train step" in err.read_text(),
                       tmp_path / "3", sig=signal.SIGINT, env=env, cwd=tmp_path, timeout=1800)
    out, err = run_logs("3")
    # 130 like the other stages and tinyjax.train: the shell's convention for Ctrl-C, not an error
    assert code == 130, err[-3000:]
    assert "tinyjax.search: training stopped by SIGINT at step" in err, err[-3000:]
    assert "rerun the same command to resume" in err and "error:" not in err, err[-3000:]
    assert started(out) == ["evolution", "train"], out
    assert "compiling the supernet step" not in err and "[evolution]: generation 1/" not in err, err
    step = int(err.split("SIGINT: saved a checkpoint at step ")[1].split()[0])
    assert f"in {workdir / 'train' / 'checkpoints' / str(step)};" in err
    assert json.loads((workdir / "state.json").read_text())["done"] == ["stage1", "supernet", "evolution"]
    finished = {k: v for k, v in files(workdir).items()
                if k.startswith(("stage1", "supernet/", "evolution", "pareto"))}

    # 4. the same command again: the training resumes from that step, then the export
    r = search(env, workdir)
    assert started(r.stdout) == ["train", "export"], r.stdout
    assert f"resuming from {workdir / 'train' / 'checkpoints' / str(step)} (step {step})" in r.stderr
    assert {k: v for k, v in files(workdir).items() if k in finished} == finished
    assert json.loads((workdir / "state.json").read_text())["done"] == STAGES
    for name in SAME:
        assert (workdir / name).read_bytes() == (want / name).read_bytes(), name
    got, ref = summary(workdir), summary(want)
    for key in ("arch", "macs", "params", "peak_sram_bytes", "flash_bytes", "top1_holdout_supernet",
                "top1_float", "top1_int8", "c_bit_exact", "c_images", "candidates_scored"):
        assert got[key] == ref[key], key


def test_a_work_directory_holding_another_search_is_refused_and_left_unchanged(plain, env):
    workdir, _ = plain
    before = files(workdir)
    for other in (("--budget", "256kB"), ("--budget", "320kB", "--config.evolution.seed=1")):
        r = subprocess.run(command(workdir, *other), env=env, cwd=workdir.parent, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 2, r.stderr[-3000:]
        assert r.stderr.strip().splitlines() == [
            f"tinyjax.search: error: {workdir} holds a search with another budget or config; use a "
            "new --workdir, or the same arguments to resume it"], r.stderr[-3000:]
        assert files(workdir) == before


def test_patch_auto_fits_a_network_whose_layer_by_layer_peak_is_over_the_budget(tmp_path, env):
    """28 kB: every 64-px network of the smoke space needs at least 32 kB layer by layer, so the
    winner there runs its first blocks patch by patch, and its C (the patch loop) is bit-exact."""
    workdir = tmp_path / "patch"
    r = search(env, workdir, "--budget", "28kB", "--patch", "auto")
    s = summary(workdir)
    assert s["budget"]["patch"] is True and s["budget"]["sram_bytes"] == 28 * KB
    assert s["space"]["resolution"] == 64
    assert s["peak_sram_bytes"] <= 28 * KB < s["layer_peak_sram_bytes"], s
    assert s["patch_stage_ops"] > 0 and s["patches_per_side"] >= 2 and 0 <= s["patch_mac_overhead"] <= 0.15
    assert_bit_exact_c(s)
    assert (f"patch-based inference: first {s['patch_stage_ops']} ops in {s['patches_per_side']}x"
            f"{s['patches_per_side']} patches") in r.stdout
    assert "patch schedule" in (workdir / "summary.md").read_text()


def test_reserve_takes_its_sram_off_the_budget(plain, tmp_path, env):
    """60 kB with 32 kB reserved leaves 28 kB: the uninterrupted run's winner (peak 32 kB, which
    60 kB would hold) no longer fits, and the search picks the 48-px space."""
    want, _ = plain
    assert 28 * KB < summary(want)["peak_sram_bytes"] <= 60 * KB
    workdir = tmp_path / "reserve"
    r = search(env, workdir, "--budget", "60kB", "--reserve", "32kB", "--target", "cortex-m4",
               "--flash", "1MB")
    assert r.stdout.startswith("TinyNAS under 60.0 kB SRAM, 32.0 kB of it kept for the application, "
                               "1.00 MB flash, cortex-m4"), r.stdout
    s = summary(workdir)
    assert s["budget"] == {"sram_bytes": 28 * KB, "flash_bytes": 1024 * KB, "target": "cortex-m4",
                           "reserve_bytes": 32 * KB, "device": None, "in_place": True}
    assert s["space"]["resolution"] == 48 and s["peak_sram_bytes"] <= 28 * KB
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes

    spec = ModelSpec.from_json((workdir / "best_spec.json").read_text())
    assert peak_sram_bytes(spec, "cortex-m4") == s["peak_sram_bytes"]
    assert_bit_exact_c(s)
    assert "(+32.0 kB reserved)" in (workdir / "summary.md").read_text()


def test_device_gives_the_boards_sram_and_flash(plain, tmp_path, env):
    """stm32h743: 512 kB of SRAM and 2 MB of flash. Everything in the smoke space fits both that
    and the uninterrupted run's budget, so the search finds the same network."""
    from tinyjax.devices import get_device

    want, _ = plain
    board = get_device("stm32h743")
    workdir = tmp_path / "h743"
    r = search(env, workdir, "--device", "stm32h743")
    assert r.stdout.startswith("TinyNAS under 512.0 kB SRAM, 2.00 MB flash, cortex-m7 (stm32h743)"), r.stdout
    s = summary(workdir)
    assert s["budget"] == {"sram_bytes": board.sram_bytes, "flash_bytes": board.flash_bytes,
                           "target": board.core, "reserve_bytes": 0, "device": "stm32h743",
                           "in_place": True}
    assert s["peak_sram_bytes"] <= board.sram_bytes and s["flash_bytes"] <= board.flash_bytes
    assert_bit_exact_c(s)
    ref = summary(want)
    assert (s["arch"], s["macs"], s["peak_sram_bytes"]) == (ref["arch"], ref["macs"], ref["peak_sram_bytes"])


def test_finetune_scratch_trains_from_a_random_init_and_inherit_is_the_default(env, plain, tmp_path):
    """The default (``--finetune inherit``, the largest sub-network trained alone first and
    in-place distillation): the winner's own weights (cut out of the supernet, BN recalibrated)
    are written and are where its training starts, at half the scratch recipe's learning rate;
    the summary says how it was trained, the supernet's largest and smallest held-out scores and
    the evolution's best per generation. ``--finetune scratch`` (the co-design benchmark's) trains
    the winner from a random init with the scratch recipe, as the search did before."""
    from flax import serialization

    workdir = tmp_path / "scratch"
    r = subprocess.run(command(workdir) + ["--finetune", "scratch"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    s, plain_s = summary(workdir), summary(plain[0])
    assert s["finetune"] == "scratch" and plain_s["finetune"] == "inherit"
    assert "first its largest sub-network alone, 2 steps" in plain[1].stdout
    assert "the largest teaches the others (in-place distillation)" in plain[1].stdout
    assert (plain[0] / "supernet_largest").is_dir()
    assert "train: the winner fine-tuned from its inherited weights" in plain[1].stdout
    assert "train: the winner from scratch" in r.stdout
    for summary_ in (s, plain_s):
        for key in ("top1_supernet_largest", "top1_supernet_smallest"):
            assert 0.0 <= summary_[key] <= 1.0, key
        assert len(summary_["evolution_best_per_generation"]) == 3   # runlocal: generations 0, 1, 2
    assert "evolution: held-out top-1 of the supernet's largest sub-network" in r.stdout
    assert "(BN recalibrated," in r.stdout
    assert plain_s["finetune_evals"] and plain_s["finetune_evals"][-1]["step"] == 4
    inherited = serialization.msgpack_restore((plain[0] / "winner_inherited.msgpack").read_bytes())
    assert set(inherited) == {"params", "batch_stats"}
    config = json.loads((workdir / "train" / "config.json").read_text())
    plain_config = json.loads((plain[0] / "train" / "config.json").read_text())
    assert plain_config["model_init"] == str(plain[0] / "winner_inherited.msgpack")
    assert config["model_init"] == ""
    assert plain_config["lr"] == pytest.approx(config["lr"] / 2)
    assert_bit_exact_c(s)


def test_reopen_scores_the_winner_as_the_evolution_did(plain, tmp_path):
    """``search.tinynas.reopen`` (the benchmarks' view of a finished search) reads the supernet
    from its checkpoints and scores the evolution's winner exactly as the evolution did."""
    from tinyjax.search.tinynas.reopen import reopen

    s = reopen(plain[0])
    arch, scored = s.winner()
    evolution = json.loads((plain[0] / "evolution.json").read_text())
    assert scored == len(evolution["records"]) and arch.to_dict() == summary(plain[0])["arch"]
    assert s.score([arch]) == [pytest.approx(summary(plain[0])["top1_holdout_supernet"], abs=1e-6)]
    assert s.check(arch).fits


def test_reopen_scores_on_the_validation_split_with_the_same_inherited_weights(plain):
    """``Reopened.score_validation`` (``benchmarks/supernet_rank.py``'s second column): the same
    inherited weights and BN recalibration as the evolution's score, on every validation image at
    the search's resolution instead of the held-out training images."""
    from tinyjax.data.embedded import SPLIT_SIZES
    from tinyjax.search.tinynas.reopen import reopen

    s = reopen(plain[0])
    arch, _ = s.winner()
    smallest = s.space.smallest()
    val = s.score_validation([arch, smallest])
    evaluator = s._validation_evaluator
    assert evaluator.num_val == SPLIT_SIZES["validation"] != len(s.data["holdout"][0])
    assert evaluator.val.shape[2] == s.data["holdout"][0].shape[1]   # the search's resolution
    for top1 in val:     # a count of correct images out of the whole split
        assert 0.0 <= top1 <= 1.0 and abs(top1 * evaluator.num_val - round(top1 * evaluator.num_val)) < 1e-3
    assert s.score_validation([smallest]) == [val[1]]   # cached evaluator, same answer
