"""What a wheel of tinyjax holds, and that an installed (non-editable) copy runs outside a checkout:
the default configs, the C runtime and templates, the built-in formula ship with the package.

The wheel tests are slow (they build and install it: ``.ci/run`` runs them in its search target);
the fallback of ``--config`` to the shipped configs is in the default suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pip(*args: str, tmp: Path) -> None:
    """``pip ARGS``; pip asks rustc for its version, whose rustup writes ``~/.rustup``: keep that in
    ``tmp`` (the suite's HOME must stay empty)."""
    env = {**os.environ, "RUSTUP_HOME": str(tmp / "rustup")}
    r = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]


def _checkout_copy(dest: Path) -> Path:
    """The files a clone has (tracked, and new files not ignored), without build leftovers."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = _checkout_copy(tmp_path_factory.mktemp("checkout"))
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src), tmp=out)
    (whl,) = out.glob("tinyjax-*.whl")
    return whl


@pytest.mark.slow   # builds and installs a wheel (.ci/run's search target runs it)
def test_the_wheel_holds_the_default_configs_and_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {Path(p).name for p in (REPO / "configs").glob("*.py")}
    assert {f"tinyjax/configs/{c}" for c in configs} <= names
    assert "tinyjax/configs/search_embedded.py" in names and "tinyjax/configs/train_embedded.py" in names
    runtime = {str(p.relative_to(REPO / "codegen")) for p in (REPO / "codegen/emit/runtime").rglob("*")
               if p.is_file()}
    assert {f"tinyjax/codegen/{r}" for r in runtime} <= names
    templates = {p.name for p in (REPO / "codegen/emit/templates").glob("*.in")}
    assert {f"tinyjax/codegen/emit/templates/{t}" for t in templates} <= names
    assert "tinyjax/search/rubik/data/tinynet_formula.json" in names
    # every module of the three source folders, and nothing else of the checkout
    sources = {f"tinyjax/{p.relative_to(REPO / 'tinyjax')}" for p in (REPO / "tinyjax").rglob("*.py")}
    for folder in ("codegen", "search"):
        sources |= {f"tinyjax/{folder}/{p.relative_to(REPO / folder)}"
                    for p in (REPO / folder).rglob("*.py")}
    assert sources <= names
    assert not any(n.startswith(("tests/", "benchmarks/", "configs/", "docs/")) for n in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict[str, str]:
    """The wheel unpacked by pip into a folder outside the checkout; the environment that imports
    tinyjax from there (its dependencies from this interpreter)."""
    target = tmp_path_factory.mktemp("site")
    _pip("install", "--no-deps", "-q", "--target", str(target / "lib"), str(wheel), tmp=target)
    target = target / "lib"
    return {**os.environ, "PYTHONPATH": str(target)}


@pytest.mark.slow   # builds and installs a wheel (.ci/run's search target runs it)
def test_an_installed_package_imports_from_its_own_folder_and_finds_its_configs(installed, tmp_path):
    code = ("import tinyjax, tinyjax.codegen.emit.c_runtime as rt\n"
            "from tinyjax.train.config import config_file, load_config\n"
            "print(tinyjax.__file__)\n"
            "print(config_file('configs/search_embedded.py'))\n"
            "print(len(rt.sources()))\n"
            "print(load_config('configs/search_embedded.py:runlocal').supernet.steps)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=installed, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    package, config, n_sources, steps = r.stdout.split()
    site = installed["PYTHONPATH"]
    assert package.startswith(site) and config.startswith(site), (package, config)
    assert int(n_sources) >= 10 and int(steps) > 0


@pytest.mark.slow   # builds and installs a wheel (.ci/run's search target runs it)
def test_info_runs_from_the_installed_package(installed, tmp_path):
    r = subprocess.run([sys.executable, "-m", "tinyjax.info", "mcunet_in0", "--json"], cwd=tmp_path,
                       env=installed, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '"peak_sram_bytes": 46080' in r.stdout


def test_a_config_that_is_neither_on_disk_nor_shipped_is_one_line(tmp_path, monkeypatch):
    from tinyjax.errors import ConfigFileError
    from tinyjax.train.config import config_file, packaged_configs

    monkeypatch.chdir(tmp_path)
    assert config_file("configs/train_embedded.py") == packaged_configs() / "train_embedded.py"
    assert config_file("train_embedded") == packaged_configs() / "train_embedded.py"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train_embedded.py").write_text("def get_config(arg=None):\n    return 1\n")
    assert config_file("configs/train_embedded.py") == Path("configs/train_embedded.py")  # disk wins
    with pytest.raises(ConfigFileError, match=r"configs/nope.py not found .*configs/search_embedded.py"):
        config_file("configs/nope.py")
    with pytest.raises(ConfigFileError, match="not found"):
        config_file("elsewhere/train_embedded.py")   # another folder is not the shipped one


@pytest.mark.slow
def test_the_main_job_runs_from_the_installed_package_outside_a_checkout(installed, tmp_path):
    """The README's main command at smoke size (``runlocal``), from a folder with no ``configs/``:
    the search's default config and every file it needs come from the installed package."""
    env = {**installed, "TINYJAX_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-m", "tinyjax.search", "--budget", "320kB", "--config",
                        "configs/search_embedded.py:runlocal", "--workdir", str(tmp_path / "search")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    assert (tmp_path / "search" / "summary.json").is_file()
    assert r.stdout.splitlines()[-1].startswith("best:") or "best:" in r.stdout
