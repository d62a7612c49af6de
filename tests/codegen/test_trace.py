"""Tests for tinyjax.codegen.trace: the jaxpr of the float model lowered into the int8 graph IR.

The traced graph must equal ``graph_from_spec`` (the search's route) for every zoo model and for
random specs; networks the IR cannot express raise a one-line ``LoweringError`` naming the layer
and the primitive; the folded float parameters reproduce the model's logits and agree with the
module-path based ``fold_batchnorm``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from specs import model_specs

from tinyjax import zoo
from tinyjax.codegen.graph import Graph, graph_from_spec
from tinyjax.codegen.trace.tracer import LoweringError, trace, trace_graph
from tinyjax.errors import TinyJaxError
from tinyjax.models import EfficientNet, init_variables
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec


def _first_difference(got: Graph, want: Graph) -> str:
    for a, b in zip(got.ops, want.ops):
        if a != b:
            return f"op differs:\n  traced    {a}\n  from spec {b}"
    for a, b in zip(got.tensors, want.tensors):
        if a != b:
            return f"tensor differs:\n  traced    {a}\n  from spec {b}"
    return (f"{len(got.ops)} vs {len(want.ops)} ops, outputs {got.outputs} vs {want.outputs}")


def assert_same_graph(got: Graph, want: Graph) -> None:
    assert got == want, _first_difference(got, want)


# -- traced graph == graph_from_spec ---------------------------------------------------------------

@pytest.mark.parametrize("name", zoo.list_models())
def test_traced_graph_equals_graph_from_spec_for_zoo_model(name):
    spec = zoo.get_spec(name)
    want = graph_from_spec(spec).validate()
    assert want.outputs == ("classifier",)
    got = trace_graph(EfficientNet(spec))
    assert_same_graph(got, want)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_specs(max_stages=2))
def test_traced_graph_equals_graph_from_spec_for_random_specs(spec):
    # Up to two stages (1-2 block definitions each, 1-3 repeats) have every construct the tracer
    # sees (ds/ir, strides, SE, skip or not, every activation, head or none, stage changes) and
    # keep 100 traces affordable; the zoo covers deep networks. Resolutions: the strategy's 16..48.
    assert_same_graph(trace_graph(EfficientNet(spec)), graph_from_spec(spec).validate())


def test_resolution_argument_reaches_both_routes():
    spec = _spec()
    got = trace_graph(EfficientNet(spec), resolution=40)
    assert got.tensor("input").shape == (1, 40, 40, 3)
    assert_same_graph(got, graph_from_spec(spec, resolution=40))


def test_graph_names_and_attributes_of_a_squeeze_excite_block():
    g = trace_graph(EfficientNet(_spec()))
    names = [op.name for op in g.ops]
    i = names.index("blocks_0_0/se/pool")
    assert names[i - 2:i + 6] == [
        "blocks_0_0/conv_dw", "blocks_0_0/conv_dw/silu", "blocks_0_0/se/pool",
        "blocks_0_0/se/conv_reduce", "blocks_0_0/se/conv_reduce/silu", "blocks_0_0/se/conv_expand",
        "blocks_0_0/se/conv_expand/sigmoid", "blocks_0_0/se/mul"]
    assert g.op("blocks_0_0/se/mul").inputs == ("blocks_0_0/conv_dw/silu",
                                                 "blocks_0_0/se/conv_expand/sigmoid")
    add = g.op("blocks_1_1/add")
    assert add.inputs == ("blocks_1_1/conv_pwl", "blocks_1_0/conv_pwl")   # branch, shortcut
    assert g.op("pool").attr("kernel") == g.tensor(g.op("pool").inputs[0]).shape[1:3]
    assert g.tensor("pool").shape == (1, 1, 1, 32) and g.op("classifier").inputs == ("pool",)


def test_activations_fuse_or_become_tables():
    g = trace_graph(EfficientNet(_spec()))
    assert g.op("stem/conv").attr("act") == "none" and g.op("stem/conv/silu").kind == "lut"
    assert g.op("blocks_1_0/conv_pw").attr("act") == "relu"
    assert g.op("blocks_1_0/se/conv_reduce").attr("act") == "relu"
    assert g.op("blocks_2_0/conv_dw/hard_swish").attr("fn") == "hard_swish"
    assert g.op("blocks_2_1/conv_dw").attr("act") == "relu6"
    assert g.op("blocks_2_1/conv_pwl").attr("act") == "none"
    assert {op.attr("fn") for op in g.ops if op.kind == "lut"} == {"silu", "sigmoid", "hard_swish"}


# -- custom modules: activation forms, and what the int8 graph cannot express ----------------------

class _Body(nn.Module):
    """A conv followed by ``fn``; ``conv_kwargs`` go to ``nn.Conv``."""

    fn: object = None
    conv_kwargs: tuple = ()

    @nn.compact
    def __call__(self, x):
        kwargs = {"padding": ((1, 1), (1, 1)), **dict(self.conv_kwargs)}
        x = nn.Conv(8, (3, 3), name="conv", **kwargs)(x)
        return self.fn(x) if self.fn is not None else x


class _Net(nn.Module):
    fn: object = None
    conv_kwargs: tuple = ()

    @nn.compact
    def __call__(self, x):
        x = _Body(self.fn, self.conv_kwargs, name="body")(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(4, name="classifier")(x)


def _lowering_error(net: nn.Module, in_chs: int = 3) -> str:
    with pytest.raises(LoweringError) as info:
        trace_graph(net, resolution=8, in_chs=in_chs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_plain_custom_module_lowers():
    g = trace_graph(_Net(jax.nn.relu), resolution=8)
    assert [(op.name, op.kind) for op in g.ops] == [
        ("body/conv", "conv"), ("pool", "avg_pool"), ("classifier", "dense")]
    assert g.op("body/conv").attr("act") == "relu" and g.outputs == ("classifier",)
    g.validate()


@pytest.mark.parametrize("fn, act, lut", [
    (jax.nn.relu, "relu", None),
    (lambda x: jnp.maximum(2.0 * x - 1.0, 0.0), "relu", None),       # affine folds, then clamp
    (jax.nn.relu6, "relu6", None),
    (lambda x: jnp.clip(x, 0.0, 6.0), "relu6", None),
    (lambda x: jax.lax.clamp(0.0, x, 6.0), "relu6", None),
    (lambda x: jnp.minimum(6.0, jnp.maximum(x, 0.0)), "relu6", None),
    (jax.nn.sigmoid, "none", "sigmoid"),
    (jax.nn.silu, "none", "silu"),
    (lambda x: jax.nn.sigmoid(x) * x, "none", "silu"),
    (jax.nn.hard_swish, "none", "hard_swish"),
    (lambda x: x * jax.nn.relu6(x + 3.0) / 6.0, "none", "hard_swish"),
    (lambda x: jax.nn.silu(x * 0.5 + 0.25), "none", "silu"),           # affine folds first
])
def test_activation_forms_lower_and_keep_their_numbers(fn, act, lut):
    net = _Net(fn)
    x = jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32)
    variables = _random_variables(net, x=x)
    graph, params = trace(net, variables, resolution=8)
    assert graph.op("body/conv").attr("act") == act
    luts = [(op.name, op.attr("fn")) for op in graph.ops if op.kind == "lut"]
    assert luts == ([] if lut is None else [(f"body/conv/{lut}", lut)])
    image = np.random.default_rng(2).normal(size=(1, 8, 8, 3)).astype(np.float32)
    want = np.asarray(jax.jit(net.apply)(variables, image), np.float64)
    np.testing.assert_allclose(run_float(graph, params, image), want, rtol=1e-4,
                               atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("fn, primitive", [
    (lambda x: jnp.cumsum(x, axis=1), "cumsum"),
    (lambda x: jnp.sort(x, axis=-1), "sort"),
    (lambda x: x[:, ::2, ::2, :], "slice"),
])
def test_unsupported_primitive_names_the_primitive_and_the_layer(fn, primitive):
    message = _lowering_error(_Net(fn))
    assert f"'{primitive}'" in message and "layer body" in message
    assert "tinyjax.codegen lowers conv" in message


@pytest.mark.parametrize("fn, primitive", [
    (jnp.tanh, "tanh"),
    (lambda x: jax.nn.gelu(x, approximate=True), "integer_pow"),
    (lambda x: jax.nn.gelu(x, approximate=False), "erfc"),
    (jnp.exp, "exp"),
])
def test_activation_without_int8_form_is_rejected(fn, primitive):
    message = _lowering_error(_Net(fn))
    assert f"'{primitive}'" in message and "layer body" in message and "relu6" in message


def test_dilated_conv_is_rejected():
    message = _lowering_error(_Net(conv_kwargs=(("kernel_dilation", (2, 2)),)))
    assert "'conv_general_dilated'" in message and "layer body" in message
    assert "dilation" in message


def test_asymmetric_padding_is_rejected():
    message = _lowering_error(_Net(conv_kwargs=(("padding", ((0, 1), (0, 1))),)))
    assert "'conv_general_dilated'" in message and "asymmetric padding" in message
    assert "layer body" in message


def test_grouped_conv_is_rejected():
    message = _lowering_error(_Net(conv_kwargs=(("feature_group_count", 2),)), in_chs=4)
    assert "grouped" in message and "layer body" in message


def test_non_global_reduction_is_rejected():
    message = _lowering_error(_Net(lambda x: jnp.mean(x, axis=1, keepdims=True)))
    assert "'reduce_sum'" in message and "global" in message and "layer body" in message


@pytest.mark.parametrize("fn, expected", [
    (lambda x: jnp.clip(x, -1.0, 1.0), "neither relu nor relu6"),
    (lambda x: x * x, "primitive 'mul' multiplies activations"),
    (lambda x: jax.nn.relu(jax.nn.sigmoid(x)),
     "primitive 'max' applies the activation relu to a lut"),
    (lambda x: jax.nn.relu(x) * 2.0, "primitive 'mul' scales or shifts the output of a clamp"),
    (lambda x: x - jnp.mean(x, axis=(1, 2), keepdims=True), "primitive 'sub' of two activations"),
])
def test_elementwise_forms_without_int8_op_are_rejected(fn, expected):
    message = _lowering_error(_Net(fn))
    assert expected in message and "layer body" in message


def test_lowering_error_is_a_user_error():
    assert issubclass(LoweringError, TinyJaxError) and issubclass(LoweringError, ValueError)


def test_values_and_handlers_do_not_import_the_walker():
    # the tracer imports the handlers import the values: the walker is passed in, never imported.
    import ast
    import pathlib

    import tinyjax.codegen.trace.tracer as walker

    for module in ("values", "handlers"):
        tree = ast.parse((pathlib.Path(walker.__file__).parent / f"{module}.py").read_text())
        imported = {(n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "tinyjax.codegen.trace.tracer" not in imported, module
        assert "tinyjax.codegen.trace" not in imported, module   # the package's lazy names


def test_default_auto_depthwise_is_traced_as_xla_depthwise():
    model = EfficientNet(_spec(), dw_impl="auto")
    assert trace_graph(model).op("blocks_0_0/conv_dw").kind == "depthwise_conv"


# -- folded float parameters ----------------------------------------------------------------------

def _spec() -> ModelSpec:
    """Small, with every construct: ds + SE (silu), ir with skip and SE (relu), a hard-swish and
    a relu6 block, a head."""
    return ModelSpec(
        name="small", stem=StemSpec(16),
        stages=(StageSpec((BlockSpec("ds", 3, 1, 16, se=0.25),)),
                StageSpec((BlockSpec("ir", 5, 2, 24, expand=4, se=0.25, repeats=2, act="relu"),)),
                StageSpec((BlockSpec("ir", 3, 2, 32, expand=6, se=0.25, act="hard_swish"),
                           BlockSpec("ir", 7, 1, 32, expand=3, act="relu6")))),
        head=HeadSpec(32, dropout=0.0), resolution=32, num_classes=10, act="silu")


def _random_variables(model: nn.Module, seed: int = 0, x=None) -> dict:
    """Non-trivial BN statistics and biases, so folding is actually exercised."""
    rng = np.random.default_rng(seed)
    if x is not None:   # a custom module: draw everything from its shapes
        shapes = jax.eval_shape(model.init, jax.random.key(0), x)
        return jax.tree_util.tree_map(
            lambda a: np.asarray(rng.normal(0.0, 0.5, a.shape), np.float32), shapes)

    def draw(path, leaf):
        name = getattr(path[-1], "key", "")
        if name in ("scale", "var"):
            return np.asarray(rng.uniform(0.5, 1.5, leaf.shape), np.float32)
        if name in ("bias", "mean"):
            return np.asarray(rng.normal(0.0, 0.2, leaf.shape), np.float32)
        return np.asarray(leaf, np.float32)

    return jax.tree_util.tree_map_with_path(draw, init_variables(model, seed))


def _conv(x: np.ndarray, w: np.ndarray, stride, padding, depthwise: bool) -> np.ndarray:
    """Float conv over OHWI (or (1, kh, kw, C) depthwise) weights, symmetric padding."""
    (ph, pw), (sh, sw) = padding, stride
    _, kh, kw, _ = w.shape
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    out = 0.0
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw, :]
            out = out + (patch * w[0, a, b] if depthwise else patch @ w[:, a, b, :].T)
    return out


_LUTS = {"silu": lambda x: x / (1 + np.exp(-x)), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
         "hard_swish": lambda x: x * np.clip(x + 3, 0, 6) / 6}
_CLAMPS = {"none": lambda x: x, "relu": lambda x: np.maximum(x, 0),
           "relu6": lambda x: np.clip(x, 0, 6)}


def run_float(graph: Graph, params: dict, image: np.ndarray) -> np.ndarray:
    """A float64 reference interpreter of the graph with its folded parameters."""
    env = {"input": image.astype(np.float64)}
    for op in graph.ops:
        x = env[op.inputs[0]]
        if op.kind in ("conv", "depthwise_conv"):
            p = params[op.name]
            y = _conv(x, p["weight"].astype(np.float64), op.attr("stride"), op.attr("padding"),
                      op.kind == "depthwise_conv") + p["bias"]
        elif op.kind == "dense":
            p = params[op.name]
            y = x.reshape(1, -1) @ p["weight"].T.astype(np.float64) + p["bias"]
        elif op.kind == "avg_pool":
            y = x.mean(axis=(1, 2), keepdims=True)
        elif op.kind == "add":
            y = x + env[op.inputs[1]]
        elif op.kind == "channel_mul":
            y = x * env[op.inputs[1]]
        elif op.kind == "lut":
            y = _LUTS[op.attr("fn")](x)
        else:
            raise AssertionError(f"unexpected op kind {op.kind}")
        env[op.output] = _CLAMPS[op.attr("act", "none")](y)
        assert env[op.output].shape == graph.tensor(op.output).shape, op.name
    return env[graph.outputs[0]]


def _check_params(graph: Graph, params: dict) -> None:
    weighted = [op for op in graph.ops if op.weight_shape is not None]
    assert sorted(params) == sorted(op.name for op in weighted)
    for op in weighted:
        assert params[op.name]["weight"].shape == op.weight_shape, op.name
        assert params[op.name]["bias"].shape == (op.out_channels,), op.name
        assert params[op.name]["weight"].dtype == params[op.name]["bias"].dtype == np.float32


def test_folded_parameters_reproduce_the_logits_and_fold_batchnorm():
    from tinyjax.codegen.quant.quantize import fold_batchnorm

    spec = _spec()
    model = EfficientNet(spec)
    variables = _random_variables(model)
    graph, params = trace(model, variables)
    assert_same_graph(graph, graph_from_spec(spec))
    _check_params(graph, params)
    # the module-path based folding of the quantiser gives the same numbers
    ref = fold_batchnorm(spec, variables)
    assert sorted(params) == sorted(ref)
    for name in ref:
        for key in ("weight", "bias"):
            np.testing.assert_allclose(params[name][key], ref[name][key], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} {key}")
    # and the graph run in float with them gives the model's logits (XLA depthwise: a smaller
    # program to compile than the CPU default, the same function)
    image = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype(np.float32)
    apply = jax.jit(model.clone(dw_impl="xla").apply)
    want = np.asarray(apply(variables, image), np.float64)
    got = run_float(graph, params, image)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_trace_reads_bn_statistics_not_only_shapes():
    spec = _spec()
    model = EfficientNet(spec)
    variables = _random_variables(model)
    _, params = trace(model, variables)
    stats = variables["batch_stats"]["stem"]["bn"]
    bn = variables["params"]["stem"]["bn"]
    scale = bn["scale"] / np.sqrt(stats["var"] + 1e-5)
    np.testing.assert_allclose(params["stem/conv"]["bias"], bn["bias"] - stats["mean"] * scale,
                               rtol=1e-5, atol=1e-6)
    kernel = variables["params"]["stem"]["conv"]["kernel"]          # HWIO
    np.testing.assert_allclose(params["stem/conv"]["weight"],
                               np.transpose(kernel, (3, 0, 1, 2)) * scale[:, None, None, None],
                               rtol=1e-5, atol=1e-6)
    assert np.all(params["blocks_0_0/se/conv_reduce"]["bias"] ==
                  variables["params"]["blocks_0_0"]["se"]["conv_reduce"]["bias"])
