import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tinyjax.depthwise import depthwise_conv_shifted
from tinyjax.models import EfficientNet, create_model, init_variables
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec


def small_spec(act="silu", se=0.25, head=64):
    return ModelSpec(
        name="small", stem=StemSpec(16),
        stages=(StageSpec((BlockSpec("ds", 3, 1, 16, se=se),)),
                StageSpec((BlockSpec("ir", 5, 2, 24, expand=4, se=se, repeats=2),)),
                StageSpec((BlockSpec("ir", 3, 2, 32, expand=6, se=se),
                           BlockSpec("ir", 7, 1, 32, expand=3, act="relu6")))),
        head=HeadSpec(head, dropout=0.2), resolution=32, num_classes=10, act=act)


def test_jitted_forward_of_tinynet_a_at_batch_8():
    model = create_model("tinynet_a")
    variables = init_variables(model)
    x = jax.random.normal(jax.random.key(1), (8, 192, 192, 3))
    logits = jax.jit(model.apply)(variables, x)
    assert logits.shape == (8, 1000) and bool(jnp.all(jnp.isfinite(logits)))


def test_parameter_names_are_structural():
    variables = init_variables(EfficientNet(small_spec()))
    params = variables["params"]
    assert set(params) == {"stem", "blocks_0_0", "blocks_1_0", "blocks_1_1", "blocks_2_0",
                           "blocks_2_1", "head", "classifier"}
    assert set(params["blocks_0_0"]) == {"conv_dw", "bn1", "se", "conv_pw", "bn2"}
    assert set(params["blocks_1_0"]) == {"conv_pw", "bn1", "conv_dw", "bn2", "se", "conv_pwl", "bn3"}
    assert set(params["blocks_1_0"]["se"]) == {"conv_reduce", "conv_expand"}
    assert params["blocks_1_0"]["conv_dw"]["kernel"].shape == (5, 5, 1, 64)
    assert set(variables["batch_stats"]["stem"]["bn"]) == {"mean", "var"}


def test_train_mode_updates_batch_stats_and_eval_uses_them():
    model = EfficientNet(small_spec(), drop_path_rate=0.2)
    variables = init_variables(model)
    x = jax.random.normal(jax.random.key(0), (4, 32, 32, 3)) * 2 + 1
    train = jax.jit(lambda v, x, k: model.apply(v, x, train=True, mutable=["batch_stats"],
                                                rngs={"dropout": k}))
    out, updates = train(variables, x, jax.random.key(1))
    assert out.shape == (4, 10)
    old = variables["batch_stats"]["stem"]["bn"]["mean"]
    new = updates["batch_stats"]["stem"]["bn"]["mean"]
    assert not np.allclose(old, new)
    # momentum 0.9 (PyTorch 0.1): new = 0.9 * old + 0.1 * mean of the stem conv over the batch
    kernel = variables["params"]["stem"]["conv"]["kernel"]
    conv = jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(new, 0.9 * old + 0.1 * conv.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    evaluate = jax.jit(model.apply)
    eval1 = evaluate(variables, x)
    eval2 = evaluate(variables, x)
    np.testing.assert_array_equal(eval1, eval2)  # eval is deterministic, needs no rng


def test_dropout_and_drop_path_need_and_use_the_dropout_rng():
    model = EfficientNet(small_spec(), drop_path_rate=0.5)
    variables = init_variables(model)
    x = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))

    @jax.jit
    def train(key):
        return model.apply(variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": key})[0]

    def run(seed):
        return train(jax.random.key(seed))

    assert not np.allclose(run(1), run(2))
    np.testing.assert_array_equal(run(3), run(3))
    with pytest.raises(Exception, match="dropout"):
        jax.eval_shape(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]), variables)


def test_features_mode_returns_every_stage_map():
    model = EfficientNet(small_spec())
    variables = init_variables(model)
    maps = jax.eval_shape(lambda v, x: model.apply(v, x, features=True), variables,
                          jnp.zeros((2, 32, 32, 3)))
    assert [m.shape for m in maps] == [(2, 16, 16, 16), (2, 8, 8, 24), (2, 4, 4, 32)]


@pytest.mark.parametrize("k, stride, size", [(3, 1, 9), (3, 2, 9), (5, 2, 10), (7, 1, 6), (7, 2, 7)])
def test_shifted_depthwise_equals_grouped_conv_with_gradients(k, stride, size):
    x = jax.random.normal(jax.random.key(0), (2, size, size, 8))
    w = jax.random.normal(jax.random.key(1), (k, k, 1, 8))

    def xla(x, w):
        p = k // 2
        return jax.lax.conv_general_dilated(x, w, (stride, stride), ((p, p), (p, p)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            feature_group_count=8)

    shifted = jax.jit(lambda x, w: depthwise_conv_shifted(x, w, stride))
    np.testing.assert_allclose(shifted(x, w), jax.jit(xla)(x, w), rtol=1e-5, atol=1e-5)
    g1 = jax.jit(jax.grad(lambda x, w: jnp.sum(shifted(x, w) ** 2), (0, 1)))(x, w)
    g2 = jax.jit(jax.grad(lambda x, w: jnp.sum(xla(x, w) ** 2), (0, 1)))(x, w)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride", [1, 2])
def test_blocked_depthwise_backward_equals_the_grouped_conv(monkeypatch, stride):
    """Blocks of images in the backward pass (here one image per block) give the same gradients."""
    from tinyjax import depthwise

    monkeypatch.setattr(depthwise, "DW_BLOCK_BYTES", 11 * 11 * 8 * 4)  # one 11x11x8 image
    assert depthwise._batch_block(6, 11 * 11 * 8 * 4) == 1 and depthwise._batch_block(6, 100) == 6
    x = jax.random.normal(jax.random.key(0), (6, 11, 11, 8))
    w = jax.random.normal(jax.random.key(1), (5, 5, 1, 8))

    def xla(x, w):
        return jax.lax.conv_general_dilated(x, w, (stride, stride), ((2, 2), (2, 2)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            feature_group_count=8)

    loss = lambda f: jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), (0, 1)))
    g1 = loss(lambda x, w: depthwise_conv_shifted(x, w, stride))(x, w)
    g2 = loss(xla)(x, w)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_bfloat16_compute_keeps_float32_params_and_close_logits():
    spec = small_spec()
    f32 = EfficientNet(spec)
    variables = init_variables(f32)
    bf16 = EfficientNet(spec, dtype=jnp.bfloat16)
    assert jax.tree_util.tree_structure(init_variables(bf16)) == jax.tree_util.tree_structure(variables)
    assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(init_variables(bf16)))
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    a, b = jax.jit(f32.apply)(variables, x), jax.jit(bf16.apply)(variables, x)
    assert b.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(a - b))) < 0.05 * float(jnp.max(jnp.abs(a)) + 1)


def test_mcunet_zoo_model_runs_at_its_resolution():
    model = create_model("mcunet_in0")
    variables = init_variables(model)
    out = jax.jit(model.apply)(variables, jnp.ones((2, 48, 48, 3)))
    assert out.shape == (2, 1000) and "head" not in variables["params"]


def test_create_model_overrides_resolution_and_classes():
    model = create_model("tinynet_e", resolution=64, num_classes=7)
    assert model.spec.resolution == 64 and model.spec.num_classes == 7
    assert init_variables(model)["params"]["classifier"]["bias"].shape == (7,)


def test_host_init_matches_flax_init_tree_and_distributions():
    model = EfficientNet(small_spec())
    host = init_variables(model, 3)
    flax_shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    assert jax.tree_util.tree_structure(host) == jax.tree_util.tree_structure(dict(flax_shapes))
    assert jax.tree_util.tree_map(lambda a: a.shape, host) == \
        jax.tree_util.tree_map(lambda a: a.shape, dict(flax_shapes))
    big = init_variables(create_model("tinynet_e"), 0)["params"]
    pw = big["blocks_5_0"]["conv_pw"]["kernel"]  # 1x1, 56 -> 336: std sqrt(2/336)
    dw = big["blocks_5_0"]["conv_dw"]["kernel"]  # 5x5 depthwise: fan_out 25, std sqrt(2/25)
    assert abs(float(jnp.std(pw)) / np.sqrt(2 / 336) - 1) < 0.05
    assert abs(float(jnp.std(dw)) / np.sqrt(2 / 25) - 1) < 0.05
    assert float(jnp.max(jnp.abs(big["classifier"]["kernel"]))) <= 1 / np.sqrt(1000)
    assert not np.allclose(init_variables(model, 1)["params"]["stem"]["conv"]["kernel"],
                           host["params"]["stem"]["conv"]["kernel"])
