"""Weight-sharing supernet: sub-networks as masks, trained K at a time under vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny import batches, step_parts

from tinyjax.models import EfficientNet, init_variables, subnet_masks
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec
from tinyjax.train import steps

SUPER = ModelSpec(
    name="super", stem=StemSpec(8),
    stages=(StageSpec((BlockSpec("ds", 3, 1, 8),)),
            StageSpec((BlockSpec("ir", 5, 2, 16, expand=6, repeats=3),)),
            StageSpec((BlockSpec("ir", 7, 2, 24, expand=6, repeats=2),))),
    head=HeadSpec(None, dropout=0.0), resolution=16, num_classes=10, act="relu6")

# The sub-network: stage 1 keeps 2 of 3 blocks, kernels 3/5, expansions 3/4.
KERNELS = {"blocks_1_0": 3, "blocks_1_1": 5, "blocks_2_0": 5, "blocks_2_1": 3}
EXPANDS = {"blocks_1_0": 3.0, "blocks_1_1": 4.0, "blocks_2_0": 4.0, "blocks_2_1": 3.0}
SUB = ModelSpec(
    name="sub", stem=StemSpec(8),
    stages=(StageSpec((BlockSpec("ds", 3, 1, 8),)),
            StageSpec((BlockSpec("ir", 3, 2, 16, expand=3), BlockSpec("ir", 5, 1, 16, expand=4))),
            StageSpec((BlockSpec("ir", 5, 2, 24, expand=4), BlockSpec("ir", 3, 1, 24, expand=3)))),
    head=HeadSpec(None, dropout=0.0), resolution=16, num_classes=10, act="relu6")


def _slice_into(small_shapes, big, path=()):
    """Copy the sub-network's part of the supernet's variables: leading channels, centre crop."""
    if isinstance(small_shapes, dict):
        return {k: _slice_into(v, big[k], path + (k,)) for k, v in small_shapes.items()}
    shape, arr = small_shapes.shape, np.asarray(big)
    if path[-2:-1] == ("conv_dw",) or (len(shape) == 4 and shape[0] < arr.shape[0]):
        lo = (arr.shape[0] - shape[0]) // 2
        arr = arr[lo:lo + shape[0], lo:lo + shape[1]]
    return jnp.asarray(arr[tuple(slice(0, n) for n in arr.shape[:-len(shape)] + shape)]
                       if arr.ndim != len(shape) else arr[tuple(slice(0, n) for n in shape)])


def test_subnet_masks_equal_the_smaller_network_with_sliced_weights():
    big_model = EfficientNet(SUPER, dw_impl="xla")
    big = init_variables(big_model, 0)
    # random BN statistics so a wrong channel mapping would show
    rng = np.random.default_rng(1)
    big["batch_stats"] = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.uniform(0.5, 1.5, a.shape), jnp.float32), big["batch_stats"])
    masks = subnet_masks(SUPER, KERNELS, EXPANDS, depths=(1, 2, 2))
    small_model = EfficientNet(SUB, dw_impl="xla")
    shapes = jax.eval_shape(small_model.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    small = {c: _slice_into(jax.tree_util.tree_map(lambda s: s, dict(shapes[c])), big[c])
             for c in shapes}
    x = jax.random.normal(jax.random.key(2), (4, 16, 16, 3))
    want = jax.jit(small_model.apply)(small, x)
    got = jax.jit(lambda v, x, m: big_model.apply(v, x, masks=m))(big, x, masks)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    full = jax.jit(lambda v, x, m: big_model.apply(v, x, masks=m))(big, x, subnet_masks(SUPER))
    np.testing.assert_allclose(full, jax.jit(big_model.apply)(big, x), rtol=1e-6, atol=1e-6)


def test_subnet_masks_reject_what_the_supernet_cannot_do():
    with pytest.raises(ValueError, match="kernel 9"):
        subnet_masks(SUPER, kernels={"blocks_1_0": 9})
    with pytest.raises(ValueError, match="cannot be skipped"):
        subnet_masks(SUPER, depths=(1, 0, 2))


def test_supernet_step_trains_k_subnets_on_shared_weights():
    _, tx, schedule, _ = step_parts(spec=SUPER, drop_path=0.0)
    model = EfficientNet(SUPER, dw_impl="xla")
    import functools

    step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, schedule=schedule,
                                     num_classes=10, label_smoothing=0.0, ema_decay=0.0,
                                     ema_warmup=False))
    subnets = [subnet_masks(SUPER), subnet_masks(SUPER, KERNELS, EXPANDS, (1, 2, 2)),
               subnet_masks(SUPER, {"blocks_1_0": 3}, {"blocks_2_0": 3.0}, (1, 1, 1))]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *subnets)
    state = steps.create_train_state(model, tx, 0)
    b = batches(1, batch=8)[0]
    new, metrics = step(state, b, stacked)
    assert metrics["loss_sum"].shape == (3,)
    # the shared loss is the mean of the sub-networks' losses, each as the masked forward gives
    forward = jax.jit(lambda v, x, m: model.apply(v, x, train=True, mutable=["batch_stats"],
                                                  masks=m)[0])
    for k, m in enumerate(subnets):
        logits = forward({"params": state.params, "batch_stats": state.batch_stats}, b["image"], m)
        loss, _ = steps.classification_metrics(logits, b["label"], b["mask"], 10)
        np.testing.assert_allclose(metrics["loss_sum"][k] / 8, loss, rtol=1e-5)
    assert int(new.step) == 1
    # every conv/dense kernel is trained (BN scales of 1.0 can move < 1 ulp at warm-up's lr)
    changed = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda a, c: bool(jnp.any(a != c)) if a.ndim > 1 else True, new.params, state.params))
    assert all(changed)


@pytest.mark.slow   # compiles a supernet step and its gradient (.ci/run's training target runs it)
def test_in_place_distillation_teaches_the_others_from_the_largest():
    """With ``distill``, sub-network 0 (the largest) learns from the labels and the others from
    its softmax: the step's gradient equals that of CE(largest) + sum of KD(others) over K, and the
    teacher's side of KD passes no gradient."""
    import functools

    _, tx, schedule, _ = step_parts(spec=SUPER, drop_path=0.0)
    model = EfficientNet(SUPER, dw_impl="xla")
    subnets = [subnet_masks(SUPER), subnet_masks(SUPER, KERNELS, EXPANDS, (1, 2, 2))]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *subnets)
    state = steps.create_train_state(model, tx, 0)
    b = batches(1, batch=8)[0]

    def forward(params, m):
        return model.apply({"params": params, "batch_stats": state.batch_stats}, b["image"],
                           train=True, mutable=["batch_stats"], masks=m)[0]

    def want_loss(params):
        teacher = forward(params, subnets[0])
        ce, _ = steps.classification_metrics(teacher, b["label"], b["mask"], 10)
        kd = steps.distillation_loss(forward(params, subnets[1]), teacher, b["mask"])
        return (ce + kd) / 2

    # the step with an SGD of lr 1 shows its gradient: new = old - grad (were the others taught by
    # the labels instead, the update would follow CE for both and differ)
    import optax

    sgd = optax.sgd(1.0)
    state = steps.create_train_state(model, sgd, 0)
    step = jax.jit(functools.partial(steps.train_step, model=model, tx=sgd, schedule=schedule,
                                     num_classes=10, label_smoothing=0.0, ema_decay=0.0,
                                     ema_warmup=False, distill=True))
    new, metrics = step(state, b, stacked)
    grads = jax.jit(jax.grad(want_loss))(state.params)
    got = jax.tree_util.tree_map(lambda a, c: a - c, state.params, new.params)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(grads)):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-6)
    # metrics still score both against the labels
    assert metrics["loss_sum"].shape == (2,)


def test_distillation_loss_is_cross_entropy_to_the_teachers_softmax_without_its_gradient():
    s = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    t = jnp.array([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    m = jnp.array([1.0, 0.0])          # the second example is padding
    p = jax.nn.softmax(t[0])
    want = -jnp.sum(p * jax.nn.log_softmax(s[0]))
    np.testing.assert_allclose(steps.distillation_loss(s, t, m), want, rtol=1e-6)
    assert float(jnp.abs(jax.grad(lambda t: steps.distillation_loss(s, t, m))(t)).max()) == 0.0
    assert float(jnp.abs(jax.grad(lambda s: steps.distillation_loss(s, t, m))(s)).max()) > 0.0
