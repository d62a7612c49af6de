"""Names from before the packages were laid out by stage still work, with a DeprecationWarning that
names the new home, and give the very same objects (no second copy of a module)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from tinyjax import _moved


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_module_name_warns_and_forwards_to_the_new_module(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {_moved.MOVED[old][0]}"):
        alias = importlib.import_module(old)
    new = importlib.import_module(_moved.MOVED[old][0])
    public = [n for n in dir(new) if not n.startswith("_")]
    assert public, new
    for name in public:
        assert getattr(alias, name) is getattr(new, name), name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        alias.not_a_name  # noqa: B018


def test_from_import_of_an_old_name_gives_the_same_class():
    from tinyjax.codegen.plan.graph_plan import GraphPlan

    sys.modules.pop("tinyjax.codegen.memory", None)
    with pytest.warns(DeprecationWarning):
        from tinyjax.codegen.memory import GraphPlan as old  # noqa: PLC0415
    assert old is GraphPlan


def test_the_old_patch_module_has_the_schedule_and_the_plan():
    from tinyjax.codegen.plan.patch import PatchPlan
    from tinyjax.codegen.plan.schedule import make_schedule

    sys.modules.pop("tinyjax.codegen.patch", None)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("tinyjax.codegen.patch")
    assert old.PatchPlan is PatchPlan and old.make_schedule is make_schedule


@pytest.mark.parametrize("module, name", sorted(_moved.MOVED_ATTRIBUTES))
def test_a_moved_attribute_warns_and_is_the_same_object(module, name):
    target = importlib.import_module(_moved.MOVED_ATTRIBUTES[(module, name)])
    with pytest.warns(DeprecationWarning, match=f"{module}.{name} moved to"):
        got = getattr(importlib.import_module(module), name)
    assert got is getattr(target, name)
    with pytest.raises(AttributeError):
        importlib.import_module(module).no_such_name  # noqa: B018


# a fresh interpreter importing every module (6 s): run by .ci/run's "fresh interpreters" target
@pytest.mark.slow
def test_the_new_layout_imports_without_deprecation_warnings():
    """No module of the package uses an old name (the warning would be an error here)."""
    code = ("import importlib, pkgutil, warnings\n"
            "warnings.filterwarnings('error', category=DeprecationWarning, module='tinyjax')\n"
            "warnings.filterwarnings('error', message='.*moved to.*')\n"
            "import tinyjax, tinyjax.codegen, tinyjax.search\n"
            "names = [m.name for p in (tinyjax, tinyjax.codegen, tinyjax.search)\n"
            "         for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
            "skip = ('__main__',)\n"
            "for n in names:\n"
            "    if not n.endswith(skip):\n"
            "        importlib.import_module(n)\n"
            "print(len(names))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout) > 60


def test_python_m_an_old_cli_name_runs_the_new_module():
    r = subprocess.run([sys.executable, "-m", "tinyjax.search.sampling", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout and "--targets" in r.stdout
    assert ("'python -m tinyjax.search.sampling' is now 'python -m tinyjax.search.rubik.sampling'"
            in r.stderr)


def test_aliases_are_no_import_of_their_targets():
    """Using nothing old imports nothing: the finder answers old names only."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _moved.MovedFinder().find_spec("tinyjax.codegen.graph") is None
