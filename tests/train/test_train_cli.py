"""``python -m tinyjax.train`` end to end on the embedded dataset: learning, kill -9, Ctrl-C and
resume, SIGTERM, NaN, bad checkpoints and bad input. Runs use a tiny network at 16x16 and share a
JAX compilation cache, so the identical programs of the resumed runs compile once. The fast
checks of the same CLI (first line, Ctrl-C, unknown model) are in ``test_train_cli_fast.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cli import REPO, Watched, args, metrics, run, saved_at, saved_steps

# End-to-end CLI runs take minutes each on 2 cores: the slow target (`pytest -m slow`).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, env):
    """The reference run: 30 steps without interruption; (final JSON line, work directory)."""
    work = tmp_path_factory.mktemp("uninterrupted") / "full"
    full = run(args(work), env)
    assert full.returncode == 0, full.stderr[-3000:]
    return json.loads(full.stdout.strip().splitlines()[-1]), work


def assert_same_final_eval(got, want):
    assert got["step"] == want["step"] == 30
    for key in ("eval_top1", "eval_top5", "eval_loss"):
        assert abs(got[key] - want[key]) <= 1e-6, (key, got, want)


def test_kill_9_then_rerun_resumes_and_ends_like_an_uninterrupted_run(tmp_path, env, uninterrupted):
    """Tolerance: exact up to 1e-6. The data pipeline restarts at the checkpointed step and the
    state (weights, BN statistics, optimiser, EMA, RNG) is restored bit for bit, so the resumed
    run executes the same float operations as the uninterrupted one."""
    want, full_work = uninterrupted

    work = tmp_path / "killed"
    proc = subprocess.Popen(args(work), env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if (work / "checkpoints" / "20").is_dir():  # killed between two checkpoints
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run(args(work), env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    assert_same_final_eval(json.loads(resumed.stdout.strip().splitlines()[-1]), want)
    lines = metrics(work)
    steps = [m["step"] for m in lines if "train_loss" in m]
    assert steps == sorted(set(steps)), "lines logged after the last checkpoint must not repeat"
    full_losses = [m["train_loss"] for m in metrics(full_work) if "train_loss" in m]
    assert [m["train_loss"] for m in lines if "train_loss" in m] == pytest.approx(full_losses, abs=1e-6)


def test_ctrl_c_saves_where_it_stopped_and_the_rerun_ends_like_an_uninterrupted_run(
        tmp_path, env, uninterrupted):
    want, full_work = uninterrupted
    work = tmp_path / "ctrl_c"
    p = Watched(args(work), env)
    p.wait_until(lambda: (work / "checkpoints" / "10").is_dir())
    p.proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    assert p.wait(timeout=60) == 130, p.stderr[-3000:]
    assert time.monotonic() - t < 10
    step, folder = saved_at(p.stderr, "SIGINT")
    assert 10 < step < 30 and folder == work / "checkpoints" / str(step)
    assert saved_steps(work)[-1] == step and "eval_top1" not in p.stdout

    resumed = run(args(work), env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {folder} (step {step})" in resumed.stderr
    assert_same_final_eval(json.loads(resumed.stdout.strip().splitlines()[-1]), want)
    evals = [m for m in metrics(work) if "eval_top1" in m]
    want_evals = [m for m in metrics(full_work) if "eval_top1" in m]
    assert [m["step"] for m in evals] == [m["step"] for m in want_evals]
    for got_m, want_m in zip(evals, want_evals):
        assert got_m == pytest.approx(want_m, abs=1e-6)


def test_a_second_ctrl_c_quits_at_once_and_keeps_the_last_complete_checkpoint(
        tmp_path, env, uninterrupted):
    """The second Ctrl-C usually lands inside the checkpoint save of the first: the process dies
    there (the default action), and the rerun resumes from the complete checkpoint before it."""
    want, _ = uninterrupted
    work = tmp_path / "ctrl_c_twice"
    p = Watched(args(work), env)
    p.wait_until(lambda: (work / "checkpoints" / "10").is_dir())
    p.proc.send_signal(signal.SIGINT)
    p.wait_until(lambda: "SIGINT: saving a checkpoint" in p.stderr, timeout=30)
    p.proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    code = p.wait(timeout=60)
    assert time.monotonic() - t < 2, "the second Ctrl-C must not wait for anything"
    assert code in (-signal.SIGINT, 130), p.stderr[-3000:]  # killed, or it had just finished
    last = saved_steps(work)[-1]
    assert last >= 10

    resumed = run(args(work), env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {work / 'checkpoints' / str(last)} (step {last})" in resumed.stderr
    assert_same_final_eval(json.loads(resumed.stdout.strip().splitlines()[-1]), want)


def test_sigterm_checkpoints_and_exits_cleanly_and_corrupt_checkpoints_are_named(tmp_path, env):
    work = tmp_path / "preempted"
    proc = subprocess.Popen(args(work, steps=400), env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and not (work / "checkpoints" / "10").is_dir():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM: saved a checkpoint at step" in err
    saved = max(int(p.name) for p in (work / "checkpoints").iterdir() if p.name.isdigit())
    assert saved >= 10 and saved < 400

    # Incompatible: another network in the same work directory.
    other = run([a for a in args(work, steps=400) if not a.startswith("--config.spec=")], env)
    assert other.returncode == 2
    assert "different configuration" in other.stderr and str(work / "checkpoints") in other.stderr

    # Corrupt: garbage in the array files of the latest checkpoint.
    latest = work / "checkpoints" / str(saved)
    for f in latest.rglob("*"):
        if f.is_file() and f.suffix not in (".json",) and "meta" not in f.parts:
            f.write_bytes(b"\x00garbage")
    bad = run(args(work, steps=400), env)
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert str(latest) in bad.stderr and "Traceback" not in bad.stderr


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, env):
    work = tmp_path / "nan"
    r = run(args(work, "--config.lr=1e30", "--config.warmup_epochs=0.0", steps=40), env)
    assert r.returncode == 2
    assert "loss became NaN/Inf at step" in r.stderr and "Traceback" not in r.stderr


def test_the_default_embedded_config_reaches_80_percent(tmp_path, env):
    """The acceptance run itself: the unmodified config (measured: 0.9133 in 2 min 34 s)."""
    work = tmp_path / "embedded"
    t0 = time.time()
    r = run([sys.executable, "-m", "tinyjax.train", "--config", str(REPO / "configs/train_embedded.py"),
             "--workdir", str(work)], env, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    final = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"eval top-1 {final['eval_top1']:.4f} in {time.time() - t0:.0f} s")
    assert final["eval_top1"] >= 0.80, final


@pytest.mark.parametrize("extra, message", [
    (["--config.data.name=no_such_dataset"], "no_such_dataset"),
    (["--config.batch_sise=3"], "unknown config key 'batch_sise'"),
    (["--config.optimizer=lamb"], "unknown optimizer"),
    (["--config.population.size=3", "--config.mesh.population=2"], "mesh.population must be -1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, env, extra, message):
    r = run(args(tmp_path / "w", *extra), env)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len([x for x in r.stderr.splitlines() if x.startswith("tinyjax.train: error")]) == 1
    assert not (tmp_path / "w").exists(), "a refused run must not leave a work directory"


def test_unwritable_workdir_is_exit_2(tmp_path, env):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        r = run(args(locked / "w"), env)
        assert r.returncode == 2 and "not writable" in r.stderr
    finally:
        locked.chmod(0o700)


def test_file_in_place_of_workdir_is_exit_2(tmp_path, env):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = run(args(blocker / "w"), env)
    assert r.returncode == 2 and "not writable" in r.stderr
