"""``ruff check`` over the repository (rules in pyproject.toml: one import style, one typing style,
pyflakes, pycodestyle, bugbear), so a style violation fails CI like any other test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    # the ruff of this environment (the test extra installs it); its module finds its binary
    return [sys.executable, "-m", "ruff"]


def test_ruff_finds_nothing():
    out = subprocess.run(_ruff() + ["check", "--no-cache", "--output-format", "concise", str(REPO)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_reports_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from typing import Optional\nimport os\n\n\ndef f(x: Optional[int]) -> int:\n"
                   "    return x\n")
    out = subprocess.run(_ruff() + ["check", "--no-cache", "--config", str(REPO / "pyproject.toml"),
                                    str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1
    assert "F401" in out.stdout and "UP045" in out.stdout, out.stdout
