"""The weight-sharing supernet: elastic kernels, channel sorting, sub-network extraction, sandwich
training (resumable) and the recalibrating evaluator, on tiny spaces."""

from __future__ import annotations

import functools
import io
import random

import jax
import ml_collections
import numpy as np
import pytest

from tinyjax.errors import TinyJaxError
from tinyjax.models import EfficientNet, init_variables
from tinyjax.progress import Progress
from tinyjax.search.tinynas.space import SearchSpace
from tinyjax.search.tinynas.supernet import (
    SubnetEvaluator,
    normalise_images,
    sort_channels,
    stack_masks,
    subnet_variables,
    supernet_defaults,
    supernet_model,
)
from tinyjax.search.tinynas.supernet_train import step_archs, train_supernet

SPACE = SearchSpace(0.2, 32, 10, kernels=(3, 5, 7), expands=(3.0, 4.0), depths=(1, 2))
TINY = SearchSpace(0.2, 32, 10, kernels=(3, 5), expands=(3.0, 4.0), depths=(1, 2))


def _randomised(space, seed=0):
    """Supernet variables with non-trivial BN statistics, BN affine and kernel transforms (so
    that every part of the extraction and the sort is exercised)."""
    variables = init_variables(supernet_model(space), seed)
    rng = np.random.default_rng(seed)

    def perturb(path, leaf):
        name = getattr(path[-1], "key", "")
        a = np.asarray(leaf)
        if name.endswith("_matrix"):
            return a + 0.2 * rng.standard_normal(a.shape).astype(np.float32)
        if name == "var":
            return rng.uniform(0.5, 2.0, a.shape).astype(np.float32)
        if name in ("mean", "bias"):
            return 0.3 * rng.standard_normal(a.shape).astype(np.float32)
        if name == "scale":
            return rng.uniform(0.5, 1.5, a.shape).astype(np.float32)
        return a

    return jax.tree_util.tree_map_with_path(perturb, jax.device_get(variables))


def _images(n, r=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, r, r, 3), dtype=np.uint8)


@functools.cache
def _masked_apply(model):
    """One compiled program per model: masks are inputs (eager applies cost minutes here)."""
    return jax.jit(lambda v, x, m: model.apply(v, x, masks=m))


def _apply(model, variables, x, masks=None):
    if masks is None:
        return np.asarray(jax.jit(model.apply)(variables, x))
    return np.asarray(_masked_apply(model)(variables, x, masks))


def _masked_logits(space, variables, arch, x):
    return _apply(supernet_model(space), variables, x, space.masks(arch))


def test_identity_transform_equals_centre_crop():
    model = supernet_model(SPACE)
    variables = init_variables(model, 1)
    dw = variables["params"]["blocks_1_0"]["conv_dw"]
    assert set(dw) == {"kernel", "7to5_matrix", "5to3_matrix"}
    np.testing.assert_array_equal(dw["5to3_matrix"], np.eye(9))
    plain = jax.tree_util.tree_map(np.asarray, variables)
    for name in plain["params"]:
        if "conv_dw" in plain["params"][name]:
            plain["params"][name]["conv_dw"] = {"kernel": plain["params"][name]["conv_dw"]["kernel"]}
    x = normalise_images(_images(2))
    rng = random.Random(0)
    for arch in [SPACE.smallest(), SPACE.sample(rng), SPACE.sample(rng)]:
        masks = SPACE.masks(arch)
        crop = _apply(EfficientNet(SPACE.supernet_spec()), plain, x, masks)
        elastic = _apply(model, variables, x, masks)
        np.testing.assert_allclose(elastic, crop, rtol=1e-5, atol=1e-5)
    # a learned transform changes the small kernels' output (the test above is not vacuous)
    moved = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.1 if getattr(p[-1], "key", "") == "5to3_matrix" else a, variables)
    assert not np.allclose(_masked_logits(SPACE, moved, SPACE.smallest(), x),
                           _masked_logits(SPACE, variables, SPACE.smallest(), x), atol=1e-3)


def test_default_model_tree_has_no_transforms():
    variables = init_variables(EfficientNet(SPACE.supernet_spec()), 0)
    assert set(variables["params"]["blocks_1_0"]["conv_dw"]) == {"kernel"}


def test_extracted_subnet_equals_masked_supernet():
    variables = _randomised(SPACE, 2)
    x = normalise_images(_images(3, seed=1))
    rng = random.Random(3)
    for arch in [SPACE.smallest(), SPACE.sample(rng), SPACE.sample(rng)]:
        sub = subnet_variables(SPACE, variables, arch)
        spec = SPACE.spec(arch)
        shapes = jax.eval_shape(EfficientNet(spec).init, jax.random.key(0), x)
        assert jax.tree_util.tree_map(np.shape, shapes) == jax.tree_util.tree_map(np.shape, sub)
        got = _apply(EfficientNet(spec), sub, x)
        want = _masked_logits(SPACE, variables, arch, x)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.slow  # 20-30 s on 2 shared cores; the default suite keeps the extraction tests
def test_sort_keeps_largest_and_orders_channels():
    variables = _randomised(SPACE, 4)
    x = normalise_images(_images(2, seed=2))
    model = supernet_model(SPACE)
    before = _apply(model, variables, x)
    sorted_vars = sort_channels(SPACE, variables)
    np.testing.assert_allclose(_apply(model, sorted_vars, x), before, rtol=1e-5, atol=1e-5)
    imp_before = np.abs(variables["params"]["blocks_2_0"]["conv_pwl"]["kernel"][0, 0]).sum(1)
    for name in ("blocks_1_0", "blocks_3_1", "blocks_6_0"):
        imp = np.abs(sorted_vars["params"][name]["conv_pwl"]["kernel"][0, 0]).sum(1)
        assert np.all(np.diff(imp) <= 0), name
    assert not np.all(np.diff(imp_before) <= 0)   # it was not sorted before
    # a smaller expansion now keeps other (the most important) channels: its output changes
    small = SPACE.smallest()
    assert not np.allclose(_masked_logits(SPACE, sorted_vars, small, x),
                           _masked_logits(SPACE, variables, small, x), atol=1e-4)
    again = sort_channels(SPACE, sorted_vars)
    jax.tree_util.tree_map(np.testing.assert_array_equal, again, sorted_vars)


def _cfg(**kw):
    c = supernet_defaults()
    # one compiled step for every training test: same program-shaping values
    # (tinyjax.search.tinynas.supernet_train keeps the last programs)
    c.update({**dict(steps=6, batch_size=8, k=3, resolution=0, lr=1e-2, warmup_steps=0,
                     checkpoint_every=2, log_every=2, flip=True), **kw})
    return c


def _data(n=24):
    return _images(n, seed=5), np.random.default_rng(6).integers(0, 10, n).astype(np.int32)


class _Stop(Exception):
    pass


def test_sandwich_archs_are_deterministic():
    a = step_archs(TINY, 4, 0, 7)
    assert a[0] == TINY.largest() and a[1] == TINY.smallest()
    assert a == step_archs(TINY, 4, 0, 7) and a != step_archs(TINY, 4, 0, 8)
    masks = stack_masks(TINY, a)
    assert masks["blocks_1_0"]["kernel"].shape == (4, 5, 5)


@pytest.mark.slow  # compiling the tiny supernet's train step: 45-170 s on 2 shared cores
def test_sandwich_training_decreases_the_loss(tmp_path):
    images, labels = _data(8)
    losses = []
    cfg = _cfg(flip=False, checkpoint_every=100, log_every=3)
    log = io.StringIO()
    train_supernet(TINY, cfg, (images, labels), tmp_path, Progress("supernet", stream=log, terminal=False),
                   callback=lambda s, m: losses.append(float(m["loss"])))
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0], losses
    lines = log.getvalue().splitlines()
    assert any("step 6/6" in line and "loss" in line and "img/s" in line for line in lines), lines


@pytest.mark.slow  # compiling the tiny supernet's train step: 45-170 s on 2 shared cores
def test_resume_ends_with_the_same_weights(tmp_path):
    data = _data()
    cfg = _cfg()
    full = train_supernet(TINY, cfg, data, tmp_path / "a")

    def stop_at_3(step, metrics):
        if step == 3:
            raise _Stop

    with pytest.raises(_Stop):
        train_supernet(TINY, cfg, data, tmp_path / "b", callback=stop_at_3)
    steps = []
    resumed = train_supernet(TINY, cfg, data, tmp_path / "b", callback=lambda s, m: steps.append(s))
    assert steps == [3, 4, 5, 6]          # continued from the checkpoint at step 2
    jax.tree_util.tree_map(np.testing.assert_array_equal, resumed, full)
    # the kernel transform is learned
    m = full["params"]["blocks_1_0"]["conv_dw"]["5to3_matrix"]
    assert not np.allclose(m, np.eye(9), atol=1e-4)
    with pytest.raises(TinyJaxError, match="batch_size"):
        train_supernet(TINY, _cfg(batch_size=100), data, tmp_path / "c")


@pytest.mark.slow  # compiling the evaluator's scan over BN recalibration: 40-75 s on 2 shared cores
def test_evaluator_matches_the_extracted_subnet():
    variables = _randomised(TINY, 7)
    calib, val = _images(32, seed=8), _images(20, seed=9)
    labels = np.random.default_rng(10).integers(0, 10, 20)
    ev = SubnetEvaluator(TINY, variables, calib, val, labels, batch_size=16, archs_per_call=2)
    rng = random.Random(1)
    archs = [TINY.smallest(), TINY.sample(rng), TINY.largest()]
    top1 = ev.evaluate(archs)
    assert len(top1) == 3
    x = normalise_images(val)
    # the stem conv's output on the two calibration batches (its BN sees no mask)
    kernel = variables["params"]["stem"]["conv"]["kernel"]
    out = np.asarray(jax.lax.conv_general_dilated(normalise_images(calib), kernel, (2, 2),
                                                  ((1, 1), (1, 1)),
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC")))
    per_batch = out.reshape(2, -1, out.shape[-1])        # OFA: mean of per-batch statistics
    for arch, acc in zip(archs, top1):
        stats = ev.recalibrated_stats(arch)
        np.testing.assert_allclose(stats["stem"]["bn"]["mean"], per_batch.mean(1).mean(0),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(stats["stem"]["bn"]["var"], per_batch.var(1).mean(0),
                                   rtol=1e-3, atol=1e-5)
        sub = subnet_variables(TINY, {"params": variables["params"], "batch_stats": stats}, arch)
        logits = _apply(EfficientNet(TINY.spec(arch)), sub, x)
        assert acc == pytest.approx(np.mean(logits.argmax(-1) == labels))
    assert ev.evaluate(archs[1:2]) == top1[1:2]


def test_defaults_are_a_config():
    c = supernet_defaults()
    assert isinstance(c, ml_collections.ConfigDict) and c.k >= 2 and c.steps > 0


def test_a_stride_1_stem_keeps_the_input_size_and_round_trips():
    """``stem_stride=1`` (small inputs): the stem keeps the resolution, each later map is twice
    as large as with MCUNet's stride-2 stem; the default dict has no new key (saved spaces and
    fingerprints stay as they were)."""
    from tinyjax.counting import count

    s1 = SearchSpace(0.3, 32, 10, stem_stride=1)
    s2 = SearchSpace(0.3, 64, 10)
    spec = s1.spec(s1.smallest())
    assert spec.stem.stride == 1 and s2.spec(s2.smallest()).stem.stride == 2
    assert count(spec).layers[0].out_shape[:2] == (32, 32)           # the stem keeps 32 x 32
    # 32 px through a stride-1 stem: the maps of 64 px through a stride-2 one, block for block
    assert [x.out_shape for x in count(spec).layers[1:]] == \
        [x.out_shape for x in count(s2.spec(s2.smallest())).layers[1:]]
    assert s1.name == "tinynas_w0.3_r32_s1" and s2.name == "tinynas_w0.3_r64"
    assert SearchSpace.from_dict(s1.to_dict()) == s1 and SearchSpace.from_dict(s2.to_dict()) == s2
    assert "stem_stride" not in s2.to_dict() and s1.to_dict()["stem_stride"] == 1
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2"):
        SearchSpace(0.3, 32, 10, stem_stride=4)


def test_block_strides_channels_and_min_channels_shape_the_space_and_round_trip():
    """``first_stride``, ``stage_strides``, ``base_channels`` and ``min_channels`` build the blocks
    they name, appear in the name and the dict only when they differ from MCUNet's, and round-trip."""
    from tinyjax.counting import count

    base = (16, 16, 24, 40, 40, 48, 64, 128)
    s = SearchSpace(1.0, 64, 10, (3, 5), (3, 4, 6), (1, 2), first_stride=2,
                    stage_strides=(2, 2, 1, 1, 1), min_channels=16, base_channels=base)
    spec = s.spec(s.smallest())
    blocks = [b for st in spec.stages for b in st.blocks]
    assert [b.stride for b in blocks] == [2, 2, 2, 1, 1, 1, 1]
    assert spec.stem.out_chs == 16 and spec.stem.stride == 2
    assert [b.out_chs for b in blocks] == [16, 24, 40, 40, 48, 64, 128]
    assert count(spec).layers[-2].out_shape[:2] == (4, 4)      # 64 / (2 * 2 * 2 * 2)
    assert s.name == "tinynas_w1_r64_st2-22111_c16_b16-16-24-40-40-48-64-128"
    assert SearchSpace.from_dict(s.to_dict()) == s
    three = SearchSpace(1.0, 64, 10, depths=(1, 2), first_stride=2, stage_strides=(2, 2, 1),
                        base_channels=(16, 16, 24, 40, 64, 128))
    assert three.num_stages == 3 and len(three.largest().depths) == 3
    blocks = [b for st in three.spec(three.smallest()).stages for b in st.blocks]
    assert [b.out_chs for b in blocks] == [16, 24, 40, 64, 128]
    narrow = SearchSpace(0.25, 64, 10, min_channels=16)
    assert min(narrow.channels(c) for c in (32, 16, 24)) == 16 and narrow.channels(24) == 16
    mcunet = SearchSpace(0.25, 64, 10)
    assert mcunet.channels(16) == 8
    assert set(mcunet.to_dict()) == {"width", "resolution", "num_classes", "kernels", "expands",
                                     "depths", "dropout"}
    for bad, match in (({"first_stride": 3}, "first_stride must be 1 or 2"),
                       ({"stage_strides": (2, 3, 2)}, "stage_strides needs one stride of 1 or 2"),
                       ({"stage_strides": (2, 2, 2)}, "base_channels needs 6"),
                       ({"min_channels": 12}, "min_channels must be a multiple of 8"),
                       ({"base_channels": (16, 16)}, "base_channels needs 8")):
        with pytest.raises(ValueError, match=match):
            SearchSpace(0.5, 64, 10, **bad)
