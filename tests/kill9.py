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
