"""The suite's HOME check (``tests/conftest.py``) itself: a session whose test writes into HOME
fails and names the file; one that writes into ``tmp_path`` passes; the real HOME is untouched.
The suite passing is the check on every other test: they all run with that empty HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


def _session(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_one.py").write_text("from pathlib import Path\n\n\ndef test_one(tmp_path):\n"
                                          f"    {body}\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "."],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_the_suite_runs_with_an_empty_home_of_its_own():
    home = Path(os.environ["HOME"])
    assert home.name == "home" and home.parent.name.startswith("tinyjax-tests-")
    assert Path(os.environ["TINYJAX_DATA_DIR"]).parent == home.parent


def test_a_test_writing_into_home_fails_the_session_and_is_named(tmp_path):
    r = _session(tmp_path, '(Path.home() / "oops.txt").write_text("x")')
    assert r.returncode != 0
    assert "the tests wrote into HOME" in r.stdout and "oops.txt" in r.stdout, r.stdout[-2000:]


def test_a_test_writing_into_tmp_path_passes(tmp_path):
    r = _session(tmp_path, '(tmp_path / "fine.txt").write_text("x")')
    assert r.returncode == 0, r.stdout[-2000:]


@pytest.mark.parametrize("variable", ["TINYJAX_DATA_DIR", "MPLCONFIGDIR", "KERAS_HOME"])
def test_tools_that_write_under_home_point_at_the_session_folder(variable):
    assert Path(os.environ[variable]).parent == Path(os.environ["HOME"]).parent
