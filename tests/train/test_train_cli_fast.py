"""The everyday behaviour of ``python -m tinyjax.train`` that the default suite checks (one short
run each). The long end-to-end runs are in ``test_train_cli.py`` (slow)."""

from __future__ import annotations

from test_train_cli import args, env, run  # noqa: F401  (env is a fixture)


def test_an_unknown_model_is_one_line_exit_2_and_creates_no_work_directory(tmp_path, env):
    r = run(args(tmp_path / "w", "--config.spec=", "--config.model=tinynet_z"), env)
    assert r.returncode == 2, r.stderr[-3000:]
    errors = [x for x in r.stderr.splitlines() if x.startswith("tinyjax.train: error")]
    assert len(errors) == 1 and "unknown model 'tinynet_z'" in errors[0], r.stderr[-3000:]
    assert "Traceback" not in r.stderr and not (tmp_path / "w").exists()
