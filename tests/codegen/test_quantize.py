"""Post-training int8 quantisation: BN folding, the float graph run, calibration, quant params."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from specs import model_specs

from tinyjax.codegen.graph import Graph, Op, QuantInfo, Tensor, graph_from_spec
from tinyjax.codegen.numerics import fixedpoint, pointwise
from tinyjax.codegen.numerics.floatref import LUT_FUNCTIONS
from tinyjax.codegen.numerics.quantmath import SIGMOID_QUANT, activation_range, choose_quant
from tinyjax.codegen.quant.quantize import (
    QuantizationError,
    QuantizedModel,
    calibrate,
    fold_batchnorm,
    quantize,
    quantize_input,
    run_float,
)
from tinyjax.errors import TinyJaxError
from tinyjax.models import EfficientNet, init_variables
from tinyjax.zoo import get_spec


def random_variables(model, seed):
    """init_variables with random BN statistics / affine and non-zero biases, so that folding
    is exercised (the defaults, γ=1, β=0, μ=0, σ²=1, would hide a wrong fold)."""
    v = init_variables(model, seed)
    rng = np.random.default_rng(seed + 7)

    def perturb(path, leaf):
        names = [getattr(p, "key", str(p)) for p in path]
        shape = leaf.shape
        if names[-1] == "scale":
            return rng.uniform(0.5, 1.5, shape).astype(np.float32)
        if names[-1] == "var":
            return rng.uniform(0.5, 2.0, shape).astype(np.float32)
        if names[-1] in ("mean", "bias"):
            return (0.3 * rng.standard_normal(shape)).astype(np.float32)
        return np.asarray(leaf)

    return {k: jax.tree_util.tree_map_with_path(perturb, t) for k, t in v.items()}


def flax_vs_graph(spec, n=3, seed=0):
    spec = spec.with_(head=dataclasses.replace(spec.head, dropout=0.0))
    model = EfficientNet(spec)
    variables = random_variables(model, seed)
    x = np.random.default_rng(seed).standard_normal(
        (n, spec.resolution, spec.resolution, spec.in_chs)).astype(np.float32)
    want = np.asarray(jax.jit(model.apply)(variables, x))
    graph = graph_from_spec(spec)
    params = fold_batchnorm(spec, variables)
    got = run_float(graph, params, x)[graph.outputs[0]]
    return graph, params, got, want


def assert_close(got, want, rel=1e-4):
    assert got.shape == want.shape
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-6)
    assert err <= rel, f"relative error {err:.2e}"


# -- folding and the float run ------------------------------------------------------------------------

def test_run_float_matches_flax_tinynet_e_se_silu():
    spec = get_spec("tinynet_e", 32).with_(num_classes=10)
    graph, params, got, want = flax_vs_graph(spec)
    assert any(op.kind == "channel_mul" for op in graph.ops)
    assert {op.attr("fn") for op in graph.ops if op.kind == "lut"} == {"silu", "sigmoid"}
    assert_close(got, want)
    for op in graph.ops:  # CMSIS layouts, one float32 bias per output channel
        if op.weight_shape is not None:
            assert params[op.name]["weight"].shape == op.weight_shape
            assert params[op.name]["weight"].dtype == np.float32
            assert params[op.name]["bias"].shape == (op.out_channels,)


def test_run_float_matches_flax_mcunet_relu6():
    spec = get_spec("mcunet_in0", 32).with_(num_classes=10)
    _, _, got, want = flax_vs_graph(spec, seed=1)
    assert_close(got, want)


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model_specs(max_stages=2))
def test_run_float_matches_flax_random_specs(spec):
    _, _, got, want = flax_vs_graph(spec, n=2, seed=2)
    assert_close(got, want)


def test_fold_batchnorm_formula_on_one_conv():
    spec = get_spec("mcunet_in0", 32).with_(num_classes=10)
    model = EfficientNet(spec)
    v = random_variables(model, 3)
    folded = fold_batchnorm(spec, v)
    k = np.asarray(v["params"]["stem"]["conv"]["kernel"], np.float64)       # HWIO
    bn, st = v["params"]["stem"]["bn"], v["batch_stats"]["stem"]["bn"]
    g = np.asarray(bn["scale"]) / np.sqrt(np.asarray(st["var"], np.float64) + 1e-5)
    want_w = (k * g).transpose(3, 0, 1, 2)
    want_b = np.asarray(bn["bias"]) - np.asarray(st["mean"]) * g
    np.testing.assert_allclose(folded["stem/conv"]["weight"], want_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(folded["stem/conv"]["bias"], want_b, rtol=1e-5, atol=1e-6)
    dense = np.asarray(v["params"]["classifier"]["kernel"])
    np.testing.assert_array_equal(folded["classifier"]["weight"], dense.T)


def test_fold_batchnorm_wrong_variables_is_a_user_error():
    spec = get_spec("mcunet_in0", 32).with_(num_classes=10)
    other = get_spec("tinynet_e", 32).with_(num_classes=10)
    with pytest.raises(TinyJaxError, match="does not fit the graph"):
        fold_batchnorm(spec, init_variables(EfficientNet(other), 0))
    v = init_variables(EfficientNet(spec), 0)
    del v["batch_stats"]["stem"]
    with pytest.raises(TinyJaxError, match="variables lack stem/bn/mean"):
        fold_batchnorm(spec, v)
    with pytest.raises(QuantizationError):
        fold_batchnorm(spec, {"not": "variables"})


# -- a small graph for calibration and quantisation -----------------------------------------------

def small_model(seed=0):
    from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec

    # hard-swish SE block (lut + channel_mul), then relu6 inverted residuals with a skip (add)
    stages = (StageSpec((BlockSpec.from_string("ds_r1_k3_s1_c8_se0.25_nhs"),)),
              StageSpec((BlockSpec.from_string("ir_r2_k3_s2_e3_c16"),)))
    spec = ModelSpec(name="small", stem=StemSpec(8, 3, 2), stages=stages,
                     head=HeadSpec(32, dropout=0.0), resolution=16, num_classes=5, act="relu6")
    graph = graph_from_spec(spec)
    params = fold_batchnorm(spec, random_variables(EfficientNet(spec), seed))
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal((4, 16, 16, 3)).astype(np.float32) for _ in range(3)]
    return graph, params, batches


def test_calibrate_minmax_and_percentile():
    graph, params, batches = small_model()
    ranges = calibrate(graph, params, batches)
    envs = [run_float(graph, params, b) for b in batches]
    assert set(ranges) == {t.name for t in graph.tensors}
    for name, (lo, hi) in ranges.items():
        assert lo == min(float(e[name].min()) for e in envs)
        assert hi == max(float(e[name].max()) for e in envs)
    pct = calibrate(graph, params, batches, method="percentile", percentile=99.0)
    for name, (lo, hi) in pct.items():
        assert ranges[name][0] <= lo <= hi <= ranges[name][1]
    one = calibrate(graph, params, [{"image": batches[0]}], method="percentile", percentile=90.0)
    v = envs[0]["stem/conv"]
    assert one["stem/conv"] == pytest.approx(tuple(np.percentile(v, [10.0, 90.0])))
    with pytest.raises(QuantizationError):
        calibrate(graph, params, batches, method="kl")
    with pytest.raises(QuantizationError):
        calibrate(graph, params, [])


def test_choose_quant_contains_zero_and_rounds_like_tflite():
    assert choose_quant(0.0, 6.0) == QuantInfo(float(np.float32(6 / 255)), -128)
    q = choose_quant(-1.0, 1.0)  # zp = round(-128 + 127.5) = round(-0.5) -> -1 (ties away)
    assert q.zero_point == -1 and q.scale == pytest.approx(2 / 255)
    assert choose_quant(1.0, 2.0).zero_point == -128           # widened down to 0
    assert choose_quant(-3.0, -1.0).zero_point == 127          # widened up to 0
    assert choose_quant(-3.0, -1.0).scale == pytest.approx(3 / 255)
    assert choose_quant(0.0, 0.0).scale > 0                    # degenerate but usable
    assert activation_range("relu6", choose_quant(0.0, 6.0)) == (-128, 127)
    assert activation_range("relu6", choose_quant(-2.0, 10.0)) == (
        choose_quant(-2.0, 10.0).zero_point,
        choose_quant(-2.0, 10.0).zero_point + round(6 / choose_quant(-2.0, 10.0).scale))
    assert activation_range("relu", choose_quant(-1.0, 1.0)) == (-1, 127)
    assert activation_range("none", choose_quant(-1.0, 1.0)) == (-128, 127)


@pytest.fixture(scope="module")
def small_quantized():
    graph, params, batches = small_model()
    ranges = calibrate(graph, params, batches)
    return graph, params, ranges, quantize(graph, params, ranges)


def test_every_tensor_quantised_asymmetric_int8(small_quantized):
    graph, _, ranges, qm = small_quantized
    for t in qm.graph.tensors:
        q = t.quant
        assert isinstance(q, QuantInfo) and q.scale > 0
        assert -128 <= q.zero_point <= 127
        lo, hi = (-128 - q.zero_point) * q.scale, (127 - q.zero_point) * q.scale
        assert lo <= 0 <= hi
        producer = [op for op in graph.ops if t.name in op.outputs]
        if producer and producer[0].kind == "lut" and producer[0].attr("fn") == "sigmoid":
            assert q == SIGMOID_QUANT == QuantInfo(1 / 256, -128)
        elif producer and producer[0].kind == "avg_pool":
            assert q == qm.quant(producer[0].inputs[0])   # arm_avgpool_s8 does not requantise
        else:  # the calibrated range is representable (to within half a step)
            rlo, rhi = ranges[t.name]
            assert lo <= min(rlo, 0) + q.scale and hi >= max(rhi, 0) - q.scale
    assert qm.graph.without_quant() == graph.without_quant()


def test_conv_and_depthwise_params_per_channel(small_quantized):
    graph, params, _, qm = small_quantized
    checked = set()
    for op in graph.ops:
        if op.kind not in ("conv", "depthwise_conv"):
            continue
        p, w, b = qm.params[op.name], params[op.name]["weight"], params[op.name]["bias"]
        axis = 0 if op.kind == "conv" else 3
        wc = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(op.out_channels, -1)
        qc = np.moveaxis(p["weight"], axis, 0).reshape(op.out_channels, -1)
        assert p["weight"].dtype == np.int8 and p["weight"].shape == op.weight_shape
        np.testing.assert_allclose(p["weight_scale"], np.abs(wc).max(1) / 127, rtol=1e-6)
        assert np.all(np.abs(qc).max(1) == 127) and qc.min() >= -127
        s_w = p["weight_scale"].astype(np.float64)
        assert np.all(np.abs(qc * s_w[:, None] - wc) <= s_w[:, None] / 2 + 1e-9)
        s_in, s_out = qm.quant(op.inputs[0]).scale, qm.quant(op.output).scale
        np.testing.assert_array_equal(p["bias"], np.round(b / (s_in * s_w)).astype(np.int32))
        assert p["bias"].dtype == np.int32 and p["multiplier"].dtype == np.int32
        real = p["multiplier"].astype(np.float64) * 2.0 ** (p["shift"].astype(np.float64) - 31)
        np.testing.assert_allclose(real, s_in * s_w / s_out, rtol=2 ** -30)
        assert np.all(p["multiplier"] >= 2 ** 30)
        assert int(p["input_offset"]) == -qm.quant(op.inputs[0]).zero_point
        assert int(p["output_offset"]) == qm.quant(op.output).zero_point
        assert (int(p["act_min"]), int(p["act_max"])) == activation_range(op.attr("act"),
                                                                          qm.quant(op.output))
        checked.add(op.kind)
    assert checked == {"conv", "depthwise_conv"}


def test_dense_is_per_tensor(small_quantized):
    graph, params, _, qm = small_quantized
    p = qm.params["classifier"]
    w = params["classifier"]["weight"]
    assert p["weight"].shape == w.shape and p["weight"].dtype == np.int8
    assert p["multiplier"].shape == () and p["shift"].shape == () and p["weight_scale"].shape == ()
    assert float(p["weight_scale"]) == pytest.approx(np.abs(w).max() / 127, rel=1e-6)
    assert np.abs(p["weight"]).max() == 127 and int(p["filter_offset"]) == 0
    s_in, s_out = qm.quant("pool").scale, qm.quant("classifier").scale
    m, s = fixedpoint.quantize_multiplier(s_in * float(p["weight_scale"]) / s_out)
    assert (int(p["multiplier"]), int(p["shift"])) == (m, s)


def test_lut_add_mul_params(small_quantized):
    graph, _, _, qm = small_quantized
    kinds = set()
    for op in graph.ops:
        p = qm.params[op.name]
        qi = [qm.quant(t) for t in op.inputs]
        qo = qm.quant(op.output)
        if op.kind == "lut":

            want = pointwise.make_lut(LUT_FUNCTIONS[op.attr("fn")], qi[0].scale, qi[0].zero_point,
                                   qo.scale, qo.zero_point)
            np.testing.assert_array_equal(p["table"], want)
            assert p["table"].dtype == np.int8 and p["table"].shape == (256,)
        elif op.kind == "add":
            want = pointwise.add_quant_params(qi[0].scale, qi[0].zero_point, qi[1].scale,
                                           qi[1].zero_point, qo.scale, qo.zero_point)
            assert {k: int(p[k]) for k in want._fields} == want._asdict()
            assert int(p["left_shift"]) == 20
        elif op.kind == "channel_mul":
            want = pointwise.mul_quant_params(qi[0].scale, qi[0].zero_point, qi[1].scale,
                                           qi[1].zero_point, qo.scale, qo.zero_point)
            assert {k: int(p[k]) for k in want._fields} == want._asdict()
            assert qi[1] == SIGMOID_QUANT
        else:
            continue
        kinds.add(op.kind)
    assert kinds == {"lut", "add", "channel_mul"}


def test_quantized_model_is_a_frozen_pytree(small_quantized):
    _, _, _, qm = small_quantized
    leaves = jax.tree_util.tree_leaves(qm)
    assert len(leaves) == sum(len(p) for p in qm.params.values())
    assert all(isinstance(x, np.ndarray) for x in leaves)
    doubled = jax.tree_util.tree_map(lambda a: a, qm)
    assert isinstance(doubled, QuantizedModel) and doubled.graph == qm.graph
    with pytest.raises(dataclasses.FrozenInstanceError):
        qm.graph = None


def test_quantize_input_rounds_half_away_and_saturates():
    # input quantisation scale 0.5, zero point 3: q = clamp(round_half_away(x / 0.5) + 3)
    g = Graph((Tensor("input", (1, 1, 1, 6)), Tensor("r", (1, 6))),
              (Op.make("r", "reshape", ["input"]),), ("input",), ("r",))
    qm = QuantizedModel(g.with_quant({"input": QuantInfo(0.5, 3), "r": QuantInfo(0.5, 3)}),
                        {"r": {}})
    x = np.array([0.0, 0.25, -0.25, 0.74, 1000.0, -1000.0], np.float32).reshape(1, 1, 1, 6)
    got = quantize_input(qm, x)
    assert got.dtype == np.int8
    assert got.ravel().tolist() == [3, 4, 2, 4, 127, -128]
    with pytest.raises(QuantizationError, match="does not fit"):
        quantize_input(qm, x[:, :, :, :3])


def test_user_errors_are_tinyjax_errors(small_quantized):
    graph, params, ranges, _ = small_quantized
    partial = dict(ranges)
    partial.pop("classifier")
    with pytest.raises(TinyJaxError, match="no calibrated range"):
        quantize(graph, params, partial)
    bad = Graph(graph.tensors + (Tensor("soft", (1, 5)),),
                graph.ops + (Op.make("soft", "softmax", ["classifier"]),), ("input",), ("soft",))
    with pytest.raises(TinyJaxError, match="softmax"):
        quantize(bad, params, {**ranges, "soft": (0.0, 1.0)})
    missing = {k: v for k, v in params.items() if k != "stem/conv"}
    with pytest.raises(TinyJaxError, match="no parameters for op stem/conv"):
        quantize(graph, missing, ranges)
