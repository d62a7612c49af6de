import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from specs import model_specs

from tinyjax.counting import count
from tinyjax.models import EfficientNet
from tinyjax.zoo import get_spec, list_models


def flax_param_count(spec):
    model = EfficientNet(spec)
    r = spec.resolution
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, r, r, spec.in_chs)))
    return sum(x.size for x in jax.tree_util.tree_leaves(shapes["params"])), model, shapes


@pytest.mark.parametrize("name", list_models())
def test_param_count_equals_the_flax_model(name):
    spec = get_spec(name)
    assert count(spec).params == flax_param_count(spec)[0]


@settings(max_examples=25, deadline=None)
@given(model_specs())
def test_counted_shapes_match_the_flax_network(spec):
    n, model, variables = flax_param_count(spec)
    stats = count(spec)
    assert stats.params == n
    r = spec.resolution
    maps = jax.eval_shape(lambda v, x: model.apply(v, x, features=True), variables,
                          jnp.zeros((1, r, r, spec.in_chs)))
    by_name = {layer.name: layer for layer in stats.layers}
    ends = [b for b in spec.resolved_blocks()
            if b.index + 1 == spec.num_blocks or spec.resolved_blocks()[b.index + 1].stage != b.stage]
    assert len(maps) == len(spec.stages) == len(ends)
    for m, b in zip(maps, ends):
        last = by_name[f"{b.name}/conv_pwl" if b.type == "ir" else f"{b.name}/conv_pw"]
        assert m.shape[1:] == last.out_shape


def test_layer_records_for_a_known_block():
    stats = count(get_spec("tinynet_a"))
    by_name = {layer.name: layer for layer in stats.layers}
    dw = by_name["blocks_1_0/conv_dw"]  # 96 channels, 3x3, stride 2, from 96x96 to 48x48
    assert (dw.op, dw.in_shape, dw.out_shape, dw.groups) == ("depthwise", (96, 96, 96), (48, 48, 96), 96)
    assert dw.macs == 48 * 48 * 96 * 9 and dw.params == 96 * 9 + 2 * 96
    se = by_name["blocks_1_0/se/conv_reduce"]
    assert (se.in_shape, se.out_shape, se.params, se.macs) == ((1, 1, 96), (1, 1, 4), 96 * 4 + 4, 384)
    assert stats.layers[-1].name == "classifier" and stats.layers[-1].macs == 1280 * 1000
