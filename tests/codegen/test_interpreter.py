"""The integer reference interpreter: hand-computed single ops, and agreement with the
fake-quantised float simulation on zoo models (MCUNet, TinyNet with SE + SiLU, a ds/ir mix).

About the agreement criteria. The simulation (:func:`run_fake_quant`) is the float model with
the deployed kernels' rounding rules (CMSIS-NN's double rounding of every rescale, the add's
two-stage rescale, arm_avgpool_s8's rounding of the code mean), computed with real-valued scales
and float64 sums. It can differ from the integer reference only where the Q31 approximation of
a real multiplier (relative error <= 2^-31) moves a value across a rounding boundary, i.e. on a
vanishing fraction of elements. So: op by op (same inputs) every element is within one LSB and
at most 1e-4 of them differ; end to end (batch of 16) every tensor is within one LSB on
>= 99.9% of its elements and every sample has the same top-1 (measured on these three models:
every tensor bit-identical end to end). Separately, the simulation must stay close to the plain
float model (:func:`run_float`): same predictions, bounded relative error, and it must not read
the integer multipliers at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinyjax.codegen.graph import Graph, Op, QuantInfo, Tensor, graph_from_spec
from tinyjax.codegen.numerics import fixedpoint, floatref, pointwise
from tinyjax.codegen.quant.interpreter import (
    dequantize_tensor,
    fake_quant_op,
    fake_requantize,
    predict,
    requant_right_shift,
    run_fake_quant,
    run_int8,
)
from tinyjax.codegen.quant.quantize import (
    QuantizationError,
    QuantizedModel,
    calibrate,
    quantize,
    quantize_input,
    run_float,
)
from tinyjax.errors import TinyJaxError
from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec
from tinyjax.zoo import get_spec

I32 = np.int32


# -- hand-computed single ops ---------------------------------------------------------------------

def one_op(op: Op, in_shapes, out_shape, params, zero_point: int = 0) -> QuantizedModel:
    names = [f"in{i}" for i in range(len(in_shapes))]
    op = Op(op.name, op.kind, tuple(names), op.outputs, op.attrs)
    tensors = tuple(Tensor(n, s) for n, s in zip(names, in_shapes)) + (Tensor(op.output, out_shape),)
    g = Graph(tensors, (op,), tuple(names), (op.output,))
    g = g.with_quant({t.name: QuantInfo(1.0, zero_point) for t in tensors})
    return QuantizedModel(g, {op.name: {k: np.asarray(v) for k, v in params.items()}})


def run_one(qm, *xs):
    """The op table's integer kernel of a one-op model, on explicit inputs (run_int8 takes a
    single graph input; multi-input ops go through the same record)."""
    from tinyjax.codegen.ops import OPS

    op = qm.graph.ops[0]
    return OPS[op.kind].run_int8(op, qm.params[op.name], [np.asarray(x, np.int8) for x in xs],
                                 qm.graph.tensor(op.output).shape)


def conv_params(w, bias, in_off, out_off, mult, shift, act=(-128, 127)):
    return {"weight": np.asarray(w, np.int8), "bias": np.asarray(bias, I32),
            "multiplier": np.asarray(mult, I32), "shift": np.asarray(shift, I32),
            "input_offset": I32(in_off), "output_offset": I32(out_off),
            "act_min": I32(act[0]), "act_max": I32(act[1])}


def test_conv_pads_with_the_input_zero_point_and_clamps():
    op = Op.make("c", "conv", ["x"], kernel=(3, 3), stride=(1, 1), padding=(1, 1), in_chs=1,
                 out_chs=1, act="none")
    # z_in = -3 (input_offset 3), ones kernel, bias 10, real multiplier 0.5, z_out = 5:
    # only the centre tap is inside: acc = (7 + 3) + 10 = 20 -> 10 -> 15. Padding by the raw
    # value 0 instead of the zero point would add 8 * 3 to the accumulator.
    p = conv_params(np.ones((1, 3, 3, 1)), [10], 3, 5, [1 << 30], [0])
    qm = one_op(op, [(1, 1, 1, 1)], (1, 1, 1, 1), p)
    assert run_int8(qm, np.full((1, 1, 1, 1), 7, np.int8))["c"].item() == 15
    p = conv_params(np.ones((1, 3, 3, 1)), [10], 3, 5, [1 << 30], [0], act=(-128, 12))
    assert run_int8(one_op(op, [(1, 1, 1, 1)], (1, 1, 1, 1), p),
                    np.full((1, 1, 1, 1), 7, np.int8))["c"].item() == 12


def test_depthwise_per_channel_multipliers():
    op = Op.make("d", "depthwise_conv", ["x"], kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                 channels=2, ch_mult=1, act="none")
    # acc = [5*2 + 0, 6*(-3) + 4] = [10, -14]; reals [1.0, 0.5] -> [10, -7]; z_out = -1
    p = conv_params(np.array([2, -3]).reshape(1, 1, 1, 2), [0, 4], 0, -1, [1 << 30, 1 << 30], [1, 0])
    qm = one_op(op, [(1, 1, 1, 2)], (1, 1, 1, 2), p)
    out = run_int8(qm, np.array([5, 6], np.int8).reshape(1, 1, 1, 2))["d"]
    np.testing.assert_array_equal(out.ravel(), [9, -8])


def test_dense_reads_the_pooled_map_flat():
    op = Op.make("fc", "dense", ["x"], in_features=3, out_features=2, act="none")
    p = conv_params([[1, 1, 1], [2, 0, -1]], [3, 0], -1, 0, 1 << 30, 1)
    p["filter_offset"] = I32(0)
    qm = one_op(op, [(1, 1, 1, 3)], (1, 2), p)
    # x - z_in = [0, 1, 2]: acc = [3 + 3, 0 - 2] = [6, -2], real multiplier 1.0
    out = run_int8(qm, np.array([1, 2, 3], np.int8).reshape(1, 1, 1, 3))["fc"]
    assert out.shape == (1, 2)
    np.testing.assert_array_equal(out, [[6, -2]])


def test_avg_pool_rounds_half_away_from_zero():
    op = Op.make("p", "avg_pool", ["x"], kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    qm = one_op(op, [(1, 2, 4, 1)], (1, 1, 2, 1), {"act_min": I32(-128), "act_max": I32(127)})
    x = np.array([[1, 2, -1, -2], [1, 2, -1, -2]], np.int8).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(run_int8(qm, x)["p"].ravel(), [2, -2])   # 1.5 -> 2, -1.5 -> -2


def test_add_keeps_input_order():
    p = pointwise.add_quant_params(0.5, 0, 0.25, 0, 0.25, 0)   # out = 2a + b
    params = {**{k: I32(v) for k, v in p._asdict().items()}, "act_min": I32(-128),
              "act_max": I32(127)}
    qm = one_op(Op.make("a", "add", ["x", "y"], act="none"), [(1, 1, 1, 2)] * 2, (1, 1, 1, 2), params)
    out = run_one(qm, np.array([10, 100]).reshape(1, 1, 1, 2), np.array([3, 3]).reshape(1, 1, 1, 2))
    np.testing.assert_array_equal(out.ravel(), [23, 127])


def test_channel_mul_broadcasts_the_gate():
    p = pointwise.mul_quant_params(1.0, 0, 1 / 256, -128, 1.0, 0)   # out = x * (g + 128) / 256
    params = {**{k: I32(v) for k, v in p._asdict().items()}, "act_min": I32(-128),
              "act_max": I32(127)}
    qm = one_op(Op.make("m", "channel_mul", ["x", "g"]), [(1, 2, 2, 2), (1, 1, 1, 2)],
                (1, 2, 2, 2), params)
    x = np.full((1, 2, 2, 2), 10)
    out = run_one(qm, x, np.array([127, 0]).reshape(1, 1, 1, 2))
    np.testing.assert_array_equal(out[..., 0], 10)    # 10 * 255/256 = 9.96 -> 10
    np.testing.assert_array_equal(out[..., 1], 5)     # 10 * 128/256 = 5


def test_lut_and_pad():
    table = np.arange(127, -129, -1).astype(np.int8)          # q -> -1 - q
    qm = one_op(Op.make("t", "lut", ["x"], fn="silu"), [(1, 1, 1, 3)], (1, 1, 1, 3),
                {"table": table})
    out = run_int8(qm, np.array([-128, 0, 127], np.int8).reshape(1, 1, 1, 3))["t"]
    np.testing.assert_array_equal(out.ravel(), [127, -1, -128])
    qm = one_op(Op.make("pd", "pad", ["x"], padding=((1, 0), (0, 1))), [(1, 1, 1, 1)],
                (1, 2, 2, 1), {"pad_value": I32(-7)})
    out = run_int8(qm, np.full((1, 1, 1, 1), 3, np.int8))["pd"]
    np.testing.assert_array_equal(out[0, :, :, 0], [[-7, -7], [3, -7]])


def test_run_int8_rejects_float_input_and_wrong_shapes():
    op = Op.make("p", "avg_pool", ["x"], kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    qm = one_op(op, [(1, 2, 2, 1)], (1, 1, 1, 1), {"act_min": I32(-128), "act_max": I32(127)})
    with pytest.raises(TinyJaxError, match="int8"):
        run_int8(qm, np.zeros((1, 2, 2, 1), np.float32))
    with pytest.raises(QuantizationError, match="does not fit"):
        run_int8(qm, np.zeros((1, 3, 2, 1), np.int8))


# -- the simulation's rounding rules ---------------------------------------------------------------

def test_fake_requantize_is_cmsis_double_rounding():
    """With a real factor that *is* a Q31 multiplier (so the real value is exact in float64),
    the simulation's rounding equals arm_nn_requantize bit for bit, ties of both stages included;
    rounding the real value once would not."""
    rng = np.random.default_rng(3)
    for shift in range(-12, 4):
        # dense small accumulators with few-bit multipliers (many ties in both roundings) ...
        acc = np.concatenate([np.arange(-600, 601), rng.integers(-(1 << 20), 1 << 20, 3000)])
        for mult in (1 << 30, 3 << 29, 5 << 28, 0x7FFFFFFF, int(rng.integers(1 << 30, 1 << 31))):
            v = acc.astype(np.float64) * mult * 2.0 ** (shift - 31)    # exact: |acc·mult| < 2^53
            ref = fixedpoint.requantize(acc, mult, shift)
            got = fake_requantize(v, max(-shift, 0))
            np.testing.assert_array_equal(got, ref, err_msg=f"mult {mult} shift {shift}")
            if -6 <= shift <= -2 and mult == 1 << 30:
                assert np.any(fixedpoint.round_half_away(v) != ref)   # double != single rounding
    # per-channel shifts broadcast on the last axis
    v = np.array([[0.375, 0.375], [-0.625, 1.375]])
    np.testing.assert_array_equal(fake_requantize(v, np.array([2, 0])), [[1, 0], [-1, 1]])


def test_requant_right_shift_matches_the_quantiser():
    rng = np.random.default_rng(4)
    reals = np.concatenate([2.0 ** rng.uniform(-34, 3, 2000),
                            [0.5, 0.75, 1.0, 1 - 2.0 ** -40, 0.25 * (1 - 2.0 ** -40), 2.0 ** -32,
                             2.0 ** -33, 2.0 ** -31 * (1 - 2.0 ** -40)]])
    _, shift = fixedpoint.quantize_multiplier_per_channel(reals)
    np.testing.assert_array_equal(requant_right_shift(reals), np.maximum(-shift.astype(int), 0))


def conv1x1(scale_w: float, mult: int, shift: int, zero_point: int, n: int):
    op = Op.make("c", "conv", ["x"], kernel=(1, 1), stride=(1, 1), padding=(0, 0), in_chs=1,
                 out_chs=1, act="none")
    p = conv_params(np.ones((1, 1, 1, 1)), [0], -zero_point, zero_point, [mult], [shift])
    p["weight_scale"] = np.asarray([scale_w], np.float32)
    return one_op(op, [(1, 1, n, 1)], (1, 1, n, 1), p, zero_point)


def test_simulated_conv_rounds_twice_like_the_kernel():
    # real factor 1/8 = 2^30 · 2^(-2-31): high = round_half_up(acc/2), then /4 half away from zero
    qm = conv1x1(0.125, 1 << 30, -2, 0, 5)
    x = np.array([3, -3, 5, -5, 11], np.int8).reshape(1, 1, 5, 1)
    want = [1, 0, 1, -1, 2]             # single rounding of acc/8 would give [0, 0, 1, -1, 1]
    np.testing.assert_array_equal(run_int8(qm, x)["c"].ravel(), want)
    np.testing.assert_array_equal(run_fake_quant(qm, x.astype(np.float64))["c"].ravel(), want)


def test_simulated_avg_pool_rounds_the_code_mean():
    # zero point 3, codes (1, 2): arm_avgpool_s8 rounds the code mean 1.5 away from zero -> 2;
    # the mean of the real values, -1.5, rounded away from zero would give code 1
    op = Op.make("p", "avg_pool", ["x"], kernel=(1, 2), stride=(1, 2), padding=(0, 0))
    qm = one_op(op, [(1, 1, 4, 1)], (1, 1, 2, 1), {"act_min": I32(-128), "act_max": I32(127)}, 3)
    x = np.array([1, 2, -4, -5], np.int8).reshape(1, 1, 4, 1)
    np.testing.assert_array_equal(run_int8(qm, x)["p"].ravel(), [2, -5])
    fake = run_fake_quant(qm, (x - 3.0))["p"]
    np.testing.assert_array_equal(fake.ravel() + 3, [2, -5])


@pytest.mark.parametrize("left_shift", [0, 4, 20])
def test_simulated_add_models_the_two_stage_rescale(left_shift):
    """Every pair of int8 codes through arm_elementwise_add_s8 and through the simulation: each
    input rescaled with its own double rounding, then the sum rescaled. left_shift 20 (the
    deployed value) leaves the roundings little room to matter; smaller ones make them count."""
    rng = np.random.default_rng(5 + left_shift)
    c1, c2 = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128))
    c1, c2 = c1.reshape(1, 256, 256, 1), c2.reshape(1, 256, 256, 1)
    op = Op.make("a", "add", ["x", "y"], act="none")
    differ = 0
    for _ in range(4):
        s1, s2 = (float(np.float32(v)) for v in rng.uniform(0.01, 0.1, 2))
        so = float(np.float32((s1 + s2) * rng.uniform(0.6, 1.6)))
        z1, z2, zo = (int(v) for v in rng.integers(-20, 21, 3))
        p = pointwise.add_quant_params(s1, z1, s2, z2, so, zo, left_shift)
        params = {**{k: I32(v) for k, v in p._asdict().items()}, "act_min": I32(-128),
                  "act_max": I32(127)}
        qm = one_op(op, [(1, 256, 256, 1)] * 2, (1, 256, 256, 1), params)
        qm = QuantizedModel(qm.graph.with_quant({"in0": QuantInfo(s1, z1), "in1": QuantInfo(s2, z2),
                                                 "a": QuantInfo(so, zo)}), qm.params)
        ref = run_one(qm, c1, c2).astype(np.int64)
        sim = fake_quant_op(qm, qm.graph.ops[0], [dequantize_tensor(qm, "in0", c1),
                                                  dequantize_tensor(qm, "in1", c2)])
        diff = np.abs(codes(qm, "a", sim) - ref)
        assert diff.max() <= 1
        differ += int((diff != 0).sum())
    assert differ <= 4, f"{differ} of {4 * c1.size} differ"


# -- zoo models: a "trained-ish" random network ----------------------------------------------------

def images(rng, n, r):
    """Smooth coloured gratings plus noise: inputs with spatial structure, in about [-1.5, 1.5]."""
    yy, xx = np.mgrid[0:r, 0:r] / r
    out = [np.stack([np.sin(2 * np.pi * (rng.uniform(-3, 3) * xx + rng.uniform(-3, 3) * yy)
                            + rng.uniform(0, 6)) for _ in range(3)], -1) for _ in range(n)]
    return (np.asarray(out) + 0.25 * rng.standard_normal((n, r, r, 3))).astype(np.float32)


def trained_ish(graph: Graph, x: np.ndarray, seed: int):
    """Float params for ``graph`` whose activations are not degenerate: He-init weights; each
    conv with a BatchNorm in the float model is normalised on ``x`` (as a recalibrated BN,
    random γ ~ U(0.5, 1.5), β ~ N(0.3, 0.5)); SE convs keep their init (they have no BN); the
    classifier is a ridge regression of the pooled features onto 10 labels (margins, as a
    trained head has). Returns (params, labels)."""
    rng = np.random.default_rng(seed)
    params = {}
    for op in graph.ops:
        if op.weight_shape is not None:
            shape = op.weight_shape
            fan_in = shape[1] * shape[2] if op.kind == "depthwise_conv" else int(np.prod(shape[1:]))
            params[op.name] = {"weight": rng.standard_normal(shape) * np.sqrt(2.0 / fan_in),
                               "bias": np.zeros(op.out_channels)}
    for i, op in enumerate(graph.ops):
        if op.kind not in ("conv", "depthwise_conv") or "/se/" in op.name:
            continue
        env = run_float(Graph(graph.tensors, graph.ops[:i], graph.inputs, ()), params, x)
        p = params[op.name]
        f = floatref.conv if op.kind == "conv" else floatref.depthwise
        y = f(env[op.inputs[0]], p["weight"], p["bias"], op.attr("kernel"), op.attr("stride"),
              op.attr("padding"))
        mu, sd = y.mean(axis=(0, 1, 2)), y.std(axis=(0, 1, 2)) + 1e-3
        k = rng.uniform(0.5, 1.5, mu.shape) / sd
        beta = rng.normal(0.3, 0.5, mu.shape)
        w = p["weight"] * (k if op.kind == "depthwise_conv" else k.reshape(-1, 1, 1, 1))
        params[op.name] = {"weight": w, "bias": beta - mu * k}
    fc = graph.ops[-1]
    env = run_float(Graph(graph.tensors, graph.ops[:-1], graph.inputs, ()), params, x)
    feats = env[fc.inputs[0]].reshape(len(x), -1).astype(np.float64)
    mu, sd = feats.mean(0), feats.std(0) + 1e-3
    fn = (feats - mu) / sd
    n_cls = fc.attr("out_features")
    labels = np.arange(len(x)) % n_cls
    target = 4.0 * (np.eye(n_cls)[labels] - 1.0 / n_cls)
    w = np.linalg.solve(fn.T @ fn + np.eye(fn.shape[1]), fn.T @ target)
    params[fc.name] = {"weight": (w / sd[:, None]).T, "bias": -(mu / sd) @ w}
    return {k: {f: np.asarray(a, np.float32) for f, a in v.items()} for k, v in params.items()}, labels


def ds_ir_mix() -> ModelSpec:
    """ds + SE with hard-swish, relu inverted residuals with a skip, a 5×5 SE block; no head."""
    blocks = (("ds_r1_k3_s1_c16_se0.25_nhs",), ("ir_r2_k3_s2_e4_c24_nre",),
              ("ir_r1_k5_s2_e3_c32_se0.25",))
    stages = tuple(StageSpec(tuple(BlockSpec.from_string(s) for s in st)) for st in blocks)
    return ModelSpec(name="mix", stem=StemSpec(16, 3, 2), stages=stages,
                     head=HeadSpec(None, dropout=0.0), resolution=40, num_classes=10, act="relu6")


MODELS = {
    "mcunet_in0@48": lambda: get_spec("mcunet_in0", 48).with_(num_classes=10),
    "tinynet_e@48": lambda: get_spec("tinynet_e", 48).with_(num_classes=10),
    "ds_ir_mix@40": ds_ir_mix,
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def quantized(request):
    spec = MODELS[request.param]()
    graph = graph_from_spec(spec)
    rng = np.random.default_rng(0)
    r = spec.resolution
    x, x_calib = images(rng, 16, r), images(rng, 16, r)
    params, labels = trained_ish(graph, x, seed=1)
    qm = quantize(graph, params, calibrate(graph, params, [x_calib, x]))
    q_out = run_int8(qm, quantize_input(qm, x))
    return request.param, graph, params, qm, x, q_out


def codes(qm, name, values):
    """The int8 codes of the dequantised float values of tensor ``name`` (exact round trip)."""
    q = qm.quant(name)
    return np.round(np.asarray(values) / q.scale + q.zero_point).astype(np.int64)


def test_model_is_not_degenerate(quantized):
    name, graph, _, qm, _, q_out = quantized
    kinds = {op.kind for op in graph.ops}
    assert {"conv", "depthwise_conv", "dense", "avg_pool"} <= kinds
    if name != "mcunet_in0@48":
        assert {"lut", "channel_mul"} <= kinds
    assert "add" in kinds
    for t, q in q_out.items():
        assert q.dtype == np.int8 and q.shape[1:] == qm.graph.tensor(t).shape[1:]
        assert len(np.unique(q)) >= 3, f"{t} is (nearly) constant"
    logits = q_out[graph.outputs[0]]
    assert len(np.unique(logits.argmax(1))) >= 5


def test_each_op_agrees_with_fake_quant_to_one_lsb(quantized):
    """Same inputs (the integer model's own, dequantised): every element of every op output is
    within one step of the float simulation, and all but a vanishing fraction are equal."""
    name, graph, _, qm, x, q_out = quantized
    deq = {t: dequantize_tensor(qm, t, q) for t, q in q_out.items()}
    fake = run_fake_quant(qm, x, inputs=deq)
    differ = total = 0
    for op in graph.ops:
        diff = np.abs(codes(qm, op.output, fake[op.output]) - q_out[op.output].astype(np.int64))
        assert diff.max() <= 1, f"{name} {op.name}: {diff.max()} LSB"
        n = int((diff != 0).sum())
        assert n <= max(2, 1e-4 * diff.size), f"{name} {op.name} ({op.kind}): {n} of {diff.size} differ"
        differ, total = differ + n, total + diff.size
    assert differ / total <= 1e-5, f"{name}: {differ} of {total} differ"


def tensor_agreement(qm, graph, q_out, fake):
    """[(tensor, share within 1 LSB, share equal)] in execution order, the input first."""
    rows = []
    for t in (graph.inputs[0],) + tuple(op.output for op in graph.ops):
        diff = np.abs(codes(qm, t, fake[t]) - q_out[t].astype(np.int64))
        rows.append((t, float((diff <= 1).mean()), float((diff == 0).mean())))
    return rows


def test_end_to_end_agrees_with_fake_quant(quantized):
    """Run end to end, the simulation and the integer model agree to one LSB on >= 99.9% of
    every tensor (the logits included) and on every sample's top-1."""
    name, graph, _, qm, x, q_out = quantized
    fake = run_fake_quant(qm, x)
    rows = tensor_agreement(qm, graph, q_out, fake)
    first = next(((t, eq) for t, _, eq in rows if eq < 1.0), None)
    for t, within, _ in rows:
        assert within >= 0.999, (f"{name} {t}: {100 * within:.3f}% within 1 LSB (first "
                                 f"divergence: {first})")
    out = graph.outputs[0]
    assert rows[-1][0] == out
    np.testing.assert_array_equal(fake[out].argmax(1), q_out[out].argmax(1), err_msg=name)
    # the first op has nothing upstream to diverge: one LSB at most
    t0 = graph.ops[0].output
    assert np.abs(codes(qm, t0, fake[t0]) - q_out[t0]).max() <= 1


def test_fake_quant_stays_close_to_the_float_model(quantized):
    """The simulation is the float model with rounding, not a copy of the integer path: it
    predicts like run_float, its error against it is bounded, and it never reads the Q31
    multipliers (zeroing them changes the integer model, not the simulation)."""
    name, graph, params, qm, x, q_out = quantized
    fake = run_fake_quant(qm, x)
    ref = run_float(graph, params, x)
    out = graph.outputs[0]

    def rel(t):
        return np.linalg.norm(fake[t] - ref[t]) / np.linalg.norm(ref[t])

    assert (fake[out].argmax(1) == ref[out].argmax(1)).mean() >= 15 / 16, name
    assert (q_out[out].argmax(1) == ref[out].argmax(1)).mean() >= 15 / 16, name
    assert rel(graph.ops[0].output) < 0.03, f"{name}: first op {rel(graph.ops[0].output):.4f}"
    assert rel(out) < 0.35, f"{name}: logits {rel(out):.4f}"   # random nets amplify noise
    mults = {"multiplier", "in1_mult", "in2_mult", "out_mult"}
    zeroed = QuantizedModel(qm.graph, {o: {f: (np.zeros_like(v) if f in mults else v)
                                           for f, v in p.items()} for o, p in qm.params.items()})
    again = run_fake_quant(zeroed, x)
    for t, v in fake.items():
        np.testing.assert_array_equal(again[t], v, err_msg=t)
    # the right shifts it derives from the real scales are the quantiser's
    for op in graph.ops:
        p = qm.params[op.name]
        if "shift" in p:
            real = (np.float64(qm.quant(op.inputs[0]).scale)
                    * np.asarray(p["weight_scale"], np.float64) / qm.quant(op.output).scale)
            np.testing.assert_array_equal(requant_right_shift(real),
                                          np.maximum(-p["shift"].astype(int), 0), err_msg=op.name)


def test_fake_quant_op_by_op_equals_run(quantized):
    _, graph, _, qm, x, _ = quantized
    fake = run_fake_quant(qm, x)
    op = graph.ops[3]
    again = fake_quant_op(qm, op, [fake[t] for t in op.inputs])
    np.testing.assert_array_equal(again, fake[op.output])
    for t, v in fake.items():  # every simulated tensor lies on its int8 grid
        c = np.asarray(v) / qm.quant(t).scale + qm.quant(t).zero_point
        assert np.abs(c - np.round(c)).max() < 1e-6 and c.min() > -128.5 and c.max() < 127.5


def test_batch_independence_and_predict(quantized):
    _, graph, _, qm, x, q_out = quantized
    out = graph.outputs[0]
    one = run_int8(qm, quantize_input(qm, x[5:6]))[out]
    np.testing.assert_array_equal(one, q_out[out][5:6])
    logits = predict(qm, x[:4])
    q = qm.quant(out)
    np.testing.assert_allclose(logits, (q_out[out][:4].astype(np.float64) - q.zero_point) * q.scale)
