"""The work directory describes itself: ``setup`` writes ``spec.json`` and ``config.json`` (the
config the run was started with) so that ``python -m tinyjax.export --checkpoint DIR`` needs
nothing else; both are rewritten at every start, like before, and the checkpoint fingerprint
does not depend on them."""

from __future__ import annotations

import io
import json

from cli import REPO
from tiny import TINY

from tinyjax.progress import Progress
from tinyjax.spec import ModelSpec
from tinyjax.train.checkpoints import fingerprint
from tinyjax.train.config import apply_overrides, config_from_json, load_config, train_defaults
from tinyjax.train.run_setup import setup


def tiny_config(*extra):
    return apply_overrides(load_config(str(REPO / "configs/train_embedded.py")), [
        f"spec={TINY.to_json(indent=None)}", "resolution=16", "total_steps=4", "batch_size=32",
        "eval_batch_size=64", "tensorboard=False", *extra])


def test_setup_writes_the_config_it_ran_with_and_rewrites_it_at_the_next_start(tmp_path):
    cfg = tiny_config("lr=0.002")
    run = setup(cfg, tmp_path, Progress("t", stream=io.StringIO()))
    saved = tmp_path / "config.json"
    assert saved.is_file() and ModelSpec.from_json((tmp_path / "spec.json").read_text()) == run.spec
    back = config_from_json(saved.read_text())
    assert back.to_dict() == cfg.to_dict()          # tuples come back as tuples
    assert back.lr == 0.002 and back.data.mean == cfg.data.mean
    assert fingerprint(back, run.spec, 1) == fingerprint(cfg, run.spec, 1)
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]   # no temporary left

    again = tiny_config("lr=0.004")
    setup(again, tmp_path, Progress("t", stream=io.StringIO()))
    assert json.loads(saved.read_text())["lr"] == 0.004


def test_a_config_round_trips_through_json_with_every_default_field():
    cfg = train_defaults()
    assert config_from_json(cfg.to_json()).to_dict() == cfg.to_dict()
