"""The shared progress display: log lines off a terminal, a tqdm bar on one, ETA from the rate."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from tinyjax.progress import Progress


class Clock:
    """A settable clock (seconds)."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_stream_gets_one_line_per_update_with_step_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    progress = Progress("tinyjax.train", stream=out, clock=clock)
    progress.start(total=100, n=0)
    clock.t = 5.0
    progress.update(10, "loss 2.3000")
    clock.t = 10.0
    progress.update(20, "loss 2.1000")
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 2
    # 10 steps in 5 s: 2 steps/s, so 80 steps left take 40 s
    assert lines[1].startswith("tinyjax.train: step 20/100,")
    assert "2.00step/s" in lines[1] and "ETA 00:40" in lines[1] and lines[1].endswith("loss 2.1000")


@pytest.mark.parametrize("total, start, now, seconds, eta", [
    (598, 0, 40, 10.0, 139.5),       # 4 steps/s, 558 left
    (1000, 500, 750, 250.0, 250.0),  # resumed at 500: only this run's 250 steps make the rate
])
def test_known_total_and_rate_give_the_expected_eta(total, start, now, seconds, eta):
    clock = Clock()
    progress = Progress("x", stream=io.StringIO(), clock=clock)
    progress.start(total=total, n=start)
    clock.t = seconds
    progress.update(now)
    assert progress.eta_s == pytest.approx(eta)


def test_time_before_start_does_not_count_in_the_rate():
    clock, out = Clock(), io.StringIO()
    progress = Progress("train", stream=out, clock=clock)
    progress.status("compiling the train step...")
    clock.t = 60.0  # a minute of compilation
    progress.start(total=50, n=1)
    clock.t = 62.0
    progress.update(11)
    assert progress.eta_s == pytest.approx(39 / 5.0)
    assert out.getvalue().splitlines()[0] == "train: compiling the train step..."
    assert "ETA 00:07" in out.getvalue().splitlines()[1]


def test_status_before_any_step_is_a_plain_line_and_no_eta_is_invented():
    out = io.StringIO()
    progress = Progress("tinyjax.export", stream=out)
    progress.status("restoring checkpoint at step 20...")
    assert out.getvalue() == "tinyjax.export: restoring checkpoint at step 20...\n"
    assert progress.eta_s is None
    progress.start(total=10)
    assert progress.eta_s is None  # no step measured yet
    assert out.getvalue().count("\n") == 1  # starting draws no log line


def test_a_terminal_gets_a_redrawn_bar_and_status_lines_above_it():
    clock, out = Clock(), Terminal()
    progress = Progress("tinyjax.train", stream=out, clock=clock)
    progress.start(total=100, n=0)
    clock.t = 5.0
    progress.update(10, "loss 2.3")
    progress.status("step 10: eval top-1 0.5000")
    progress.close()
    text = out.getvalue()
    assert "\r" in text and "10/100" in text and "00:45" in text and "loss 2.3" in text
    assert "\rtinyjax.train: step 10: eval top-1 0.5000\n" in text  # the bar cleared first


def test_an_update_without_progress_still_logs_its_text():
    out = io.StringIO()
    progress = Progress("t", stream=out)
    progress.start(total=10, n=3)
    progress.update(3, "resumed")
    assert out.getvalue().splitlines()[-1].endswith("resumed")


def test_importing_the_display_loads_no_framework():
    code = ("import sys, tinyjax.progress; "
            "heavy = {'jax', 'tensorflow', 'torch', 'numpy'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_signal_handler_status_goes_straight_to_the_file_descriptor(tmp_path):
    with open(tmp_path / "log", "w") as f:
        progress = Progress("tinyjax.train", stream=f)
        f.write("buffered ")  # still in Python's buffer: the handler's line must not wait for it
        progress.status_from_signal_handler("SIGINT: saving a checkpoint")
        assert (tmp_path / "log").read_text() == "tinyjax.train: SIGINT: saving a checkpoint\n"
    Progress("t", stream=io.StringIO()).status_from_signal_handler("no descriptor: nothing")
