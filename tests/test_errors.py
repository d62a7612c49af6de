"""One home for the errors a user meets (``tinyjax.errors``) and the CLI convention around them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from tinyjax import errors
from tinyjax.errors import Stopped, TinyJaxError, run_cli

REPO = Path(__file__).resolve().parents[1]


def test_no_module_but_errors_defines_an_error_class():
    """Every ``class …Error`` / ``TinyJaxError`` subclass of the package lives in tinyjax/errors.py
    (FitMismatchError, a bug check rather than a user error, is the one exception)."""
    found = []
    for folder in ("tinyjax", "codegen", "search"):
        for path in (REPO / folder).rglob("*.py"):
            if path == REPO / "tinyjax" / "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and (
                        node.name.endswith("Error") or any(getattr(b, "id", "") == "TinyJaxError"
                                                          for b in node.bases)):
                    found.append(f"{path.relative_to(REPO)}:{node.name}")
    assert found == ["search/tinynas/evolution.py:FitMismatchError"]


def test_every_user_error_derives_from_tinyjax_error():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if c.__module__ == "tinyjax.errors" and c.__name__.endswith("Error")]
    assert len(classes) >= 24
    assert all(issubclass(c, TinyJaxError) for c in classes), classes


def _stopped(signal_name):
    def main(argv):
        raise Stopped("training stopped by X at step 3, saved; rerun the same command to resume",
                      signal_name)
    return main


@pytest.mark.parametrize("signal_name, code", [("SIGINT", 130), ("SIGTERM", 0)])
def test_work_stopped_by_a_signal_exits_like_the_shell_expects(signal_name, code, capsys):
    assert run_cli(_stopped(signal_name), [], prog="tinyjax.search") == code
    assert capsys.readouterr().err == ("tinyjax.search: training stopped by X at step 3, saved; rerun "
                                       "the same command to resume\n")


def test_a_user_mistake_is_one_line_and_exit_2(capsys):
    def main(argv):
        raise errors.UnitError("'3 parsecs' is not a size")

    assert run_cli(main, [], prog="tinyjax.search") == 2
    assert capsys.readouterr().err == "tinyjax.search: error: '3 parsecs' is not a size\n"
