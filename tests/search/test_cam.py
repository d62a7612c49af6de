"""Class-activation maps: the map is the predicted class's score before pooling, and the CLI draws
a grid for real training runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sampling_support import TINY, tiny_config

from tinyjax.errors import run_cli
from tinyjax.train import cam


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A training run of the tiny network (2 steps: the maps need weights, not good ones)."""
    from tinyjax.progress import Progress
    from tinyjax.train.trainer import train_and_evaluate

    workdir = tmp_path_factory.mktemp("run")
    with open(workdir.parent / "train.log", "w") as log, Progress("test", stream=log) as p:
        train_and_evaluate(tiny_config(TINY, total_steps=2), workdir, progress=p)
    return workdir


def _check_maps(model, variables, images):
    n = len(images)
    maps, pred, logits = cam.class_scores(model, variables, images)
    assert maps.shape == (n, 2, 2)        # 16 px: a stride-2 stem and two stride-2 stages
    bias = np.asarray(variables["params"]["classifier"]["bias"])[pred]
    np.testing.assert_allclose(maps.mean(axis=(1, 2)) + bias, logits[np.arange(n), pred],
                               rtol=1e-4, atol=1e-4)
    cams, pred2, _ = cam.class_activation_maps(model, variables, images)
    assert cams.shape == (n, 16, 16) and cams.min() >= 0 and np.isclose(cams.max(), 1, atol=0.05)
    assert (pred2 == pred).all()


@pytest.mark.slow   # a training run (1.5-2.5 min on 2 shared cores); the map math is also checked below
def test_the_map_pools_to_the_predicted_logit(trained):
    from tinyjax.train.runs import eval_images, load_run

    run = load_run(trained)
    assert cam.feature_module(run.spec) == "head"
    _check_maps(run.model, run.variables, eval_images(run, 5)[0])


def test_without_a_head_conv_the_map_is_the_last_blocks():
    from tinyjax.models import EfficientNet, init_variables

    spec = TINY.with_(head=dataclasses.replace(TINY.head, out_chs=None))
    assert cam.feature_module(spec) == "blocks_2_0"
    model = EfficientNet(spec)
    images = np.random.default_rng(0).standard_normal((4, 16, 16, 3)).astype(np.float32)
    _check_maps(model, init_variables(model, 1), images)


@pytest.mark.slow
def test_the_cli_draws_one_png_with_a_row_per_run(trained, tmp_path, capsys):
    out = tmp_path / "cam.png"
    argv = ["--workdir", str(trained), str(trained), "--out", str(out), "--images", "3"]
    assert run_cli(cam.main, argv, prog=cam.PROG) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(out).shape[:2]
    assert height > width / 2             # 3 rows (images + 2 runs) of 3 pictures


def test_a_directory_that_is_no_run_is_one_line_exit_2(tmp_path, capsys):
    argv = ["--workdir", str(tmp_path), "--out", str(tmp_path / "c.png")]
    assert run_cli(cam.main, argv, prog=cam.PROG) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert len(err) == 1 and "not a tinyjax training run" in err[0]
