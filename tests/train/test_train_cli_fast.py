"""The everyday behaviour of ``python -m tinyjax.train`` that the default suite checks (one short
run each): the first line comes at once, an ETA once steps run, Ctrl-C saves and exits, and an
unknown model is refused before anything is created. The long end-to-end runs (resume equals an
uninterrupted run, a second Ctrl-C) are in ``test_train_cli.py`` (slow)."""

from __future__ import annotations

import re
import signal
import time

from cli import Watched, args, metrics, run, saved_at, saved_steps


def test_first_line_at_once_eta_while_stepping_and_ctrl_c_saves_where_it_stopped(tmp_path, env):
    work = tmp_path / "w"
    p = Watched(args(work, steps=400), env)
    p.wait_until(lambda: p.lines)
    first_s, first = p.lines[0]
    assert first_s < 2.0, f"first line after {first_s:.1f} s: {first}"
    assert first.startswith("tinyjax.train: loading")

    p.wait_until(lambda: (work / "checkpoints" / "10").is_dir())
    p.proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    assert p.wait(timeout=60) == 130, p.stderr[-3000:]
    assert time.monotonic() - t < 10, "Ctrl-C must save and exit within seconds"

    assert re.search(r"step \d+/400, .*ETA \d\d:\d\d", p.stderr), p.stderr[-3000:]
    step, folder = saved_at(p.stderr, "SIGINT")
    assert folder == work / "checkpoints" / str(step) and saved_steps(work)[-1] == step >= 10
    assert metrics(work)[-1]["step"] == step  # the steps since the last window are logged too


def test_an_unknown_model_is_one_line_exit_2_and_creates_no_work_directory(tmp_path, env):
    r = run(args(tmp_path / "w", "--config.spec=", "--config.model=tinynet_z"), env)
    assert r.returncode == 2, r.stderr[-3000:]
    errors = [x for x in r.stderr.splitlines() if x.startswith("tinyjax.train: error")]
    assert len(errors) == 1 and "unknown model 'tinynet_z'" in errors[0], r.stderr[-3000:]
    assert "Traceback" not in r.stderr and not (tmp_path / "w").exists()
