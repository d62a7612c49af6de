"""Class-activation maps: the map is the predicted class's score before pooling, and the CLI draws
a grid for real training runs."""

from __future__ import annotations

import numpy as np
import pytest
from sampling_support import TINY, tiny_config

from tinyjax.errors import run_cli
from tinyjax.search import cam


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tinyjax.progress import Progress
    from tinyjax.trainer import train_and_evaluate

    dirs = []
    for k, spec in enumerate((TINY, TINY.with_(head=TINY.head.__class__(None, dropout=0.0)))):
        workdir = tmp_path_factory.mktemp(f"run{k}")
        with Progress("test", stream=open("/dev/null", "w")) as p:
            train_and_evaluate(tiny_config(spec), workdir, progress=p)
        dirs.append(workdir)
    return dirs


def test_the_map_pools_to_the_predicted_logit_with_and_without_a_head_conv(trained):
    from tinyjax.runs import eval_images, load_run

    for workdir, module in zip(trained, ("head", "blocks_2_0")):
        run = load_run(workdir)
        assert cam.feature_module(run.spec) == module
        images, _ = eval_images(run, 5)
        maps, pred, logits = cam.class_scores(run.model, run.variables, images)
        assert maps.shape == (5, 2, 2)        # 16 px: a stride-2 stem and two stride-2 stages
        bias = run.variables["params"]["classifier"]["bias"][pred]
        np.testing.assert_allclose(maps.mean(axis=(1, 2)) + bias,
                                   logits[np.arange(5), pred], rtol=1e-4, atol=1e-4)
        cams, pred2, _ = cam.class_activation_maps(run.model, run.variables, images)
        assert cams.shape == (5, 16, 16) and cams.min() >= 0 and np.isclose(cams.max(), 1, atol=0.05)
        assert (pred2 == pred).all()


def test_the_cli_draws_one_png_with_a_row_per_run(trained, tmp_path, capsys):
    out = tmp_path / "cam.png"
    argv = ["--workdir", *map(str, trained), "--out", str(out), "--images", "3"]
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
