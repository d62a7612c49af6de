import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tinyjax.train import optim


def test_exponential_schedule_warms_up_then_decays_in_stairs():
    s = optim.exponential_schedule(0.1, steps_per_epoch=10, warmup_epochs=2, decay_rate=0.5,
                                   decay_epochs=2.4, warmup_init_lr=0.0)
    assert float(s(0)) == 0.0 and float(s(10)) == pytest.approx(0.05)
    assert float(s(20)) == pytest.approx(0.1)          # warm-up done; floor(20/24) = 0
    assert float(s(23)) == pytest.approx(0.1)
    assert float(s(24)) == pytest.approx(0.05)         # first stair at 2.4 epochs
    assert float(s(48)) == pytest.approx(0.025)


def test_cosine_schedule_ends_at_zero():
    s = optim.cosine_schedule(0.2, total_steps=100, warmup_steps=10)
    assert float(s(5)) == pytest.approx(0.1)
    assert float(s(10)) == pytest.approx(0.2)
    assert float(s(55)) == pytest.approx(0.1, abs=1e-6)
    assert float(s(100)) == pytest.approx(0.0, abs=1e-7)


def test_rmsprop_tf_matches_tensorflow_update_rule():
    """TF RMSProp: ms starts at 1, eps inside the sqrt, lr applied before momentum."""
    lr = lambda step: 0.01 * (step + 1.0)  # a changing rate shows where lr is applied
    tx = optim.rmsprop_tf(lr, decay=0.9, momentum=0.9, eps=1e-3, weight_decay=0.1)
    params = {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([0.5])}
    state = tx.init(params)
    ms = {k: np.ones_like(v) for k, v in params.items()}
    mom = {k: np.zeros_like(v) for k, v in params.items()}
    ref = {k: np.asarray(v, np.float64) for k, v in params.items()}
    rng = np.random.default_rng(0)
    for step in range(4):
        grads = {k: jnp.asarray(rng.standard_normal(v.shape), jnp.float32) for k, v in params.items()}
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        for k in ref:
            g = np.asarray(grads[k], np.float64) + (0.1 * ref[k] if k == "kernel" else 0.0)
            ms[k] = 0.9 * ms[k] + 0.1 * g * g
            mom[k] = 0.9 * mom[k] + lr(step) * g / np.sqrt(ms[k] + 1e-3)
            ref[k] = ref[k] - mom[k]
    for k in ref:
        np.testing.assert_allclose(params[k], ref[k], rtol=1e-5, atol=1e-6)


def test_weight_decay_skips_bn_and_biases():
    mask = optim.decay_mask({"conv": {"kernel": jnp.ones((3, 3, 1, 4))},
                             "bn": {"scale": jnp.ones(4), "bias": jnp.ones(4)},
                             "classifier": {"kernel": jnp.ones((4, 2)), "bias": jnp.ones(2)}})
    assert mask == {"conv": {"kernel": True}, "bn": {"scale": False, "bias": False},
                    "classifier": {"kernel": True, "bias": False}}


def test_ema_warmup_and_update():
    assert float(optim.ema_decay_at(0, 0.9999, True)) == pytest.approx(0.1)
    assert float(optim.ema_decay_at(10**7, 0.9999, True)) == pytest.approx(0.9999)
    assert float(optim.ema_decay_at(0, 0.99, False)) == pytest.approx(0.99)
    out = optim.ema_update({"w": jnp.array(1.0)}, {"w": jnp.array(3.0)}, jnp.float32(0.75))
    assert float(out["w"]) == pytest.approx(1.5)


def test_unknown_optimizer_and_schedule_are_config_errors():
    from ml_collections import ConfigDict

    with pytest.raises(optim.ConfigError, match="unknown optimizer 'lamb'"):
        optim.make_optimizer(ConfigDict({"optimizer": "lamb"}), lambda s: 0.1)
    with pytest.raises(optim.ConfigError, match="unknown schedule"):
        optim.make_schedule(ConfigDict({"schedule": "step", "lr": 0.1}), 10, 100)


def test_adamw_decays_kernels_only_and_decouples_the_decay():
    """With zero gradients Adam's step is 0, so only the decoupled decay moves a weight:
    w ← w − lr·wd·w for kernels; biases and BN parameters stay put."""
    from ml_collections import ConfigDict

    tx = optim.make_optimizer(ConfigDict({"optimizer": "adamw", "weight_decay": 0.5}),
                              lambda step: 0.1)
    params = {"conv": {"kernel": jnp.full((1, 1, 2, 2), 2.0)}, "bn": {"scale": jnp.ones(2)},
              "classifier": {"bias": jnp.ones(2)}}
    state = tx.init(params)
    zeros = {"conv": {"kernel": jnp.zeros((1, 1, 2, 2))}, "bn": {"scale": jnp.zeros(2)},
             "classifier": {"bias": jnp.zeros(2)}}
    updates, _ = tx.update(zeros, state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["conv"]["kernel"], 2.0 - 0.1 * 0.5 * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(new["bn"]["scale"], params["bn"]["scale"])
    np.testing.assert_array_equal(new["classifier"]["bias"], params["classifier"]["bias"])
