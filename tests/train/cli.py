"""Helpers of the ``python -m tinyjax.train`` tests: the command line of a tiny run, running it
(in the foreground, or watched in the background with each stderr line's arrival time), and
reading back its metrics and checkpoints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from tiny import TINY

REPO = Path(__file__).resolve().parents[2]

def args(workdir, *extra, steps=30):
    return [sys.executable, "-m", "tinyjax.train", "--config", str(REPO / "configs/train_embedded.py"),
            "--workdir", str(workdir), f"--config.spec={TINY.to_json(indent=None)}",
            "--config.resolution=16", f"--config.total_steps={steps}", "--config.batch_size=32",
            "--config.eval_batch_size=200", "--config.log_every_steps=5",
            "--config.checkpoint_every_steps=10", f"--config.eval_every_steps={steps}",
            "--config.tensorboard=False",
            # the recipe these tests were measured with (the default config is AdamW without EMA;
            # EMA on here so that resuming also restores it)
            "--config.optimizer=rmsprop_tf", "--config.ema_decay=0.998", "--config.ema_warmup=True",
            "--config.label_smoothing=0.1", "--config.weight_decay=1e-5",
            "--config.data.min_crop_area=0.5", *extra]


def run(cmd, env, timeout=900):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)


def metrics(workdir):
    return [json.loads(x) for x in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]


def saved_steps(workdir) -> list[int]:
    """The complete checkpoints of a work directory (Orbax renames a step's folder when done)."""
    return sorted(int(p.name) for p in (Path(workdir) / "checkpoints").iterdir() if p.name.isdigit())


class Watched:
    """A CLI run in the background; its stderr lines are kept with their arrival time in seconds
    since just before the process was started."""

    def __init__(self, cmd, env):
        self.lines: list[tuple[float, str]] = []
        self.stdout = ""
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._threads = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_err(self):
        for line in self.proc.stderr:
            self.lines.append((time.monotonic() - self.t0, line.rstrip("\n")))

    def _read_out(self):
        self.stdout = self.proc.stdout.read()

    def wait_until(self, condition, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, "the run ended early:\n" + self.stderr[-3000:]
            assert time.monotonic() < deadline, "timed out:\n" + self.stderr[-3000:]
            time.sleep(0.1)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        return code

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)


def saved_at(stderr: str, signal_name: str) -> tuple[int, Path]:
    """(step, folder) of the checkpoint the CLI says it saved when stopped by ``signal_name``."""
    m = re.search(signal_name + r": saved a checkpoint at step (\d+) in (\S+);", stderr)
    assert m, stderr[-3000:]
    return int(m.group(1)), Path(m.group(2))
