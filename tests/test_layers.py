"""The one walk of a spec's layers, and the three readers that must agree with it."""

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from specs import model_specs

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.counting import count
from tinyjax.layers import Layer, block_layers, model_layers
from tinyjax.models import EfficientNet
from tinyjax.shapes import align_up, conv_macs, conv_out_size
from tinyjax.zoo import get_spec, list_models


def test_an_inverted_residual_block_with_se_walks_as_timm_builds_it():
    b = get_spec("tinynet_a").resolved_blocks()[1]   # stage 1, block 0: 16 -> 96 -> 24, SE 4
    assert block_layers(b) == (
        Layer("blocks_1_0/conv_pw", "pointwise", 16, 96, 1, 1, "silu", "blocks_1_0/bn1"),
        Layer("blocks_1_0/conv_dw", "depthwise", 96, 96, 3, 2, "silu", "blocks_1_0/bn2"),
        Layer("blocks_1_0/se/conv_reduce", "se_reduce", 96, 4, 1, 1, "silu", None, True),
        Layer("blocks_1_0/se/conv_expand", "se_expand", 4, 96, 1, 1, "sigmoid", None, True),
        Layer("blocks_1_0/conv_pwl", "projection", 96, 24, 1, 1, None, "blocks_1_0/bn3"),
    )


def test_a_depthwise_separable_block_has_no_expansion_and_a_linear_projection():
    b = get_spec("mcunet_in0").resolved_blocks()[0]
    names = [(x.name, x.kind, x.bn, x.act) for x in block_layers(b)]
    assert names == [("blocks_0_0/conv_dw", "depthwise", "blocks_0_0/bn1", "relu6"),
                     ("blocks_0_0/conv_pw", "projection", "blocks_0_0/bn2", None)]


def test_a_headless_network_ends_with_its_classifier_on_the_last_block():
    spec = get_spec("mcunet_in0")
    last = model_layers(spec)[-1]
    assert spec.head.out_chs is None
    assert (last.name, last.kind, last.in_chs, last.out_chs, last.bias) == (
        "classifier", "dense", spec.resolved_blocks()[-1].out_chs, 1000, True)


def test_shape_formulas():
    assert [conv_out_size(s, 3, 2) for s in (224, 113, 7, 1)] == [112, 57, 4, 1]
    assert conv_out_size(10, 3, 1, padding=0) == 8 and conv_out_size(10, 3, 1, 1, dilation=2) == 8
    assert conv_macs(2, 3, 4, 5, 3, 3) == 2 * 3 * 4 * 5 * 9
    assert [align_up(n, 4) for n in (0, 1, 4, 5)] == [0, 4, 4, 8]


def _check_count_equals_graph(spec):
    stats = count(spec)
    g = graph_from_spec(spec)
    assert stats.macs == g.total_macs()
    shapes = {t.name: t.shape for t in g.tensors}
    weighted = [op.name for op in g.ops if op.kind in ("conv", "depthwise_conv", "dense")]
    assert weighted == [x.name for x in stats.layers]
    for x in stats.layers:
        # the graph's tensors are (1, H, W, C), the classifier's (1, classes)
        want = (1,) + x.out_shape if x.op != "dense" else (1, x.out_shape[-1])
        assert shapes[x.name] == want, x.name


@pytest.mark.parametrize("name", list_models())
def test_counted_macs_and_shapes_equal_the_int8_graph_for_every_zoo_model(name):
    _check_count_equals_graph(get_spec(name))


@settings(max_examples=60, deadline=None)
@given(model_specs())
def test_counted_macs_and_shapes_equal_the_int8_graph_for_random_specs(spec):
    _check_count_equals_graph(spec)


def _modules_with(tree, leaf):
    """Paths ``a/b/c`` of the modules in a Flax variable tree that hold a ``leaf`` variable."""
    out = set()
    for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        keys = [p.key for p in path]
        if keys[-1] == leaf:
            out.add("/".join(keys[:-1]))
    return out


@pytest.mark.parametrize("name", ["tinynet_e", "mcunet_in1", "mobilenetv2_035"])
def test_the_flax_parameter_tree_has_exactly_the_layers_of_the_walk(name):
    spec = get_spec(name)
    r = spec.resolution
    v = jax.eval_shape(EfficientNet(spec).init, jax.random.key(0), jnp.zeros((1, r, r, 3)))
    layers = model_layers(spec)
    assert _modules_with(v["params"], "kernel") == {x.name for x in layers}
    assert _modules_with(v["params"], "scale") == {x.bn for x in layers if x.bn}
    assert _modules_with(v["batch_stats"], "mean") == {x.bn for x in layers if x.bn}
    assert _modules_with(v["params"], "bias") == ({x.name for x in layers if x.bias}
                                                   | {x.bn for x in layers if x.bn})
    for x in layers:
        node = v["params"]
        for part in x.name.split("/"):
            node = node[part]
        k = x.kernel
        want = (x.in_chs, x.out_chs) if x.kind == "dense" else (
            (k, k, 1, x.out_chs) if x.kind == "depthwise" else (k, k, x.in_chs, x.out_chs))
        assert node["kernel"].shape == want, x.name
