"""Kill -9 at a chosen moment: the resume tests' shared way of interrupting a command."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def sigkill_when(cmd: list[str], ready: Callable[[], bool], stderr_path: Path, *, env: dict,
                 cwd: Path, timeout: float) -> None:
    """Run ``cmd`` (stderr into ``stderr_path``) until ``ready()`` holds, then SIGKILL it; fails if
    the command ends first or ``timeout`` seconds pass."""
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, stderr_path.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_when(cmd: list[str], ready: Callable[[Path, Path], bool], log: Path, *, sig: int, env: dict,
                cwd: Path, timeout: float) -> int:
    """Run ``cmd`` (stdout into ``log.out``, stderr into ``log.err``) until ``ready(out, err)``
    holds, send it ``sig`` (e.g. SIGINT, a Ctrl-C) and return its exit code; fails if the command
    ends first or ``timeout`` seconds pass, or if it does not exit within a minute of the signal."""
    out_path, err_path = log.with_suffix(".out"), log.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        # Ctrl-C's default action in the child even when pytest itself was started in the
        # background of a non-interactive shell (which ignores SIGINT, and children inherit that)
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err,
                                preexec_fn=_default_sigint)
        try:
            deadline = time.monotonic() + timeout
            while not ready(out_path, err_path):
                assert proc.poll() is None, f"it ended before the signal:\n{err_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, err_path.read_text()[-3000:]
                time.sleep(0.05)
            proc.send_signal(sig)
            return proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
