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


def _saved_variables(path, scale=1.0, seed=7):
    """Initial variables of the tiny config's model (another seed) times ``scale``, written as a
    model_init file."""
    import jax
    import numpy as np
    from flax import serialization

    from tinyjax.models import init_variables
    from tinyjax.train.run_setup import build_model

    cfg = tiny_config()
    variables = init_variables(build_model(cfg, TINY), seed)
    variables = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    variables = jax.tree_util.tree_map(lambda a: np.asarray(a) * scale, variables)
    path.write_bytes(serialization.msgpack_serialize(variables))
    return variables


def test_model_init_starts_the_run_from_the_given_weights_with_a_fresh_optimiser(tmp_path):
    import jax
    import numpy as np

    want = _saved_variables(tmp_path / "init.msgpack", scale=0.5)
    run = setup(tiny_config(f"model_init={tmp_path / 'init.msgpack'}"), tmp_path / "b",
                Progress("t", stream=io.StringIO()))
    for got, w in zip(jax.tree_util.tree_leaves({"params": run.state.params,
                                                 "batch_stats": run.state.batch_stats}),
                      jax.tree_util.tree_leaves(want)):
        np.testing.assert_array_equal(np.asarray(got), w)
    np.testing.assert_array_equal(np.asarray(jax.tree_util.tree_leaves(run.state.ema_params)[0]),
                                  jax.tree_util.tree_leaves(want["params"])[0])
    assert run.start == 0


def test_a_model_init_that_does_not_fit_is_one_line_and_a_missing_one_creates_nothing(tmp_path):
    import pytest
    from flax import serialization

    from tinyjax.errors import TinyJaxError

    with pytest.raises(TinyJaxError, match="model_init .*nope.msgpack not found"):
        setup(tiny_config(f"model_init={tmp_path / 'nope.msgpack'}"), tmp_path / "w",
              Progress("t", stream=io.StringIO()))
    assert not (tmp_path / "w").exists()
    variables = _saved_variables(tmp_path / "ok.msgpack")
    stem = variables["params"]["stem"]["conv"]["kernel"]
    variables["params"]["stem"]["conv"]["kernel"] = stem[..., :4]
    (tmp_path / "bad.msgpack").write_bytes(serialization.msgpack_serialize(variables))
    with pytest.raises(TinyJaxError, match=r"does not fit this model: \['params'\]\['stem'\]\['conv'\]"
                                           r"\['kernel'\] is \(3, 3, 3, 4\)"):
        setup(tiny_config(f"model_init={tmp_path / 'bad.msgpack'}"), tmp_path / "b",
              Progress("t", stream=io.StringIO()))
    (tmp_path / "junk.msgpack").write_bytes(b"\x00\x01not msgpack")
    with pytest.raises(TinyJaxError, match="is not a weights file"):
        setup(tiny_config(f"model_init={tmp_path / 'junk.msgpack'}"), tmp_path / "c",
              Progress("t", stream=io.StringIO()))
