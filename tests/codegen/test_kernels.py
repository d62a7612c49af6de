"""Kernel table: CMSIS-NN v7 dispatch and scratch sizes per target, in-place rules, flash bytes.

Expected scratch sizes are worked out by hand from CMSIS-NN v7.0.0's ``*_get_buffer_size``
sources (the rule is restated next to each number).
"""

from __future__ import annotations

import dataclasses

import pytest

from tinyjax.codegen.graph import Graph, Op, Tensor
from tinyjax.codegen.targets import (
    TARGETS,
    KernelChoice,
    UnknownTargetError,
    choose_kernel,
    depthwise_in_place_legal,
    flash_bytes,
    op_flash_bytes,
)
from tinyjax.errors import TinyJaxError


def one_op_graph(op: Op, in_shape, extra_inputs=()) -> Graph:
    """A graph ``input -> op`` (plus extra graph inputs) with shapes inferred by validate()."""
    from tinyjax.codegen.graph import infer_shape

    shapes = [tuple(in_shape)] + [tuple(s) for _, s in extra_inputs]
    out = infer_shape(op, shapes)
    tensors = [Tensor(op.inputs[0], tuple(in_shape))]
    tensors += [Tensor(n, tuple(s)) for n, s in extra_inputs]
    tensors.append(Tensor(op.output, out))
    g = Graph(tuple(tensors), (op,), tuple([op.inputs[0]] + [n for n, _ in extra_inputs]),
              (op.output,))
    return g.validate()


def conv(name, x, in_chs, out_chs, k, s=1, p=None):
    p = k // 2 if p is None else p
    return Op.make(name, "conv", [x], kernel=(k, k), stride=(s, s), padding=(p, p),
                   in_chs=in_chs, out_chs=out_chs, act="relu6")


def dw(name, x, c, k, s=1, mult=1, p=None):
    p = k // 2 if p is None else p
    return Op.make(name, "depthwise_conv", [x], kernel=(k, k), stride=(s, s), padding=(p, p),
                   channels=c, ch_mult=mult, act="relu6")


def kernel(op, in_shape, target, in_place=False, extra=()):
    return choose_kernel(op, one_op_graph(op, in_shape, extra), target, in_place=in_place)


# --------------------------------------------------------------------------- convolutions


@pytest.mark.parametrize("target,expected", [
    # arm_convolve_s8_get_buffer_size: (2 * align4(kh*kw*in_c)) * sizeof(int16): 27 -> 28 -> 112
    ("cortex-m7", 112), ("cortex-m4", 112), ("host", 112),
    # MVE: 4 * ceil(27 / 16) * 16 = 128
    ("cortex-m55", 128),
])
def test_stem_conv_uses_im2col_scratch(target, expected):
    k = kernel(conv("stem", "input", 3, 16, 3, 2), (1, 32, 32, 3), target)
    assert k.function == "arm_convolve_s8" and k.call == "arm_convolve_wrapper_s8"
    assert k.scratch_bytes == expected and not k.in_place and k.target == target


def test_conv_3x3_with_16_channels_scratch():
    # 3*3*16 = 144 (already a multiple of 4): 2 * 144 * 2 = 576 bytes on DSP; MVE 4*9*16 = 576 too.
    op = conv("c", "input", 16, 8, 3)
    assert kernel(op, (1, 8, 8, 16), "cortex-m7").scratch_bytes == 576
    assert kernel(op, (1, 8, 8, 16), "cortex-m55").scratch_bytes == 4 * 9 * 16
    op5 = conv("c", "input", 5, 8, 3)  # 45 -> 48: 192 bytes; MVE ceil(45/16)=3 -> 192
    assert kernel(op5, (1, 8, 8, 5), "host").scratch_bytes == 192
    assert kernel(op5, (1, 8, 8, 5), "cortex-m55").scratch_bytes == 192


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_pointwise_convs_need_no_scratch(target):
    fast = kernel(conv("pw", "input", 16, 96, 1), (1, 8, 8, 16), target)
    assert (fast.function, fast.scratch_bytes) == ("arm_convolve_1x1_s8_fast", 0)
    strided = kernel(conv("pw", "input", 16, 96, 1, 2), (1, 8, 8, 16), target)
    assert (strided.function, strided.scratch_bytes) == ("arm_convolve_1x1_s8", 0)


def test_padded_1x1_conv_is_a_general_conv():
    op = Op.make("c", "conv", ["input"], kernel=(1, 1), stride=(1, 1), padding=(1, 1), in_chs=6,
                 out_chs=4, act="none")
    k = kernel(op, (1, 4, 4, 6), "cortex-m7")
    assert k.function == "arm_convolve_s8" and k.scratch_bytes == 2 * 8 * 2  # 6 -> 8


def test_1_x_n_conv_on_a_one_row_input():
    op = Op.make("c", "conv", ["input"], kernel=(1, 3), stride=(1, 1), padding=(0, 1), in_chs=8,
                 out_chs=4, act="none")
    k = kernel(op, (1, 1, 16, 8), "cortex-m7")
    # non-MVE arm_convolve_1_x_n_s8_get_buffer_size == arm_convolve_s8's: 2 * 24 * 2
    assert k.function == "arm_convolve_1_x_n_s8" and k.scratch_bytes == 96
    # MVE: pad_x 1, no asymmetry: max(3*8 + 8, 2*8 + 8) = 32
    assert kernel(op, (1, 1, 16, 8), "cortex-m55").scratch_bytes == 32


# --------------------------------------------------------------------------- depthwise


@pytest.mark.parametrize("target,function,scratch", [
    ("cortex-m7", "arm_depthwise_conv_3x3_s8", 0),   # wrapper: 3x3, pad <= 1 -> size 0
    ("host", "arm_depthwise_conv_3x3_s8", 0),
    ("cortex-m55", "arm_depthwise_conv_s8_opt", 4 * 124 * 9),  # 4 * CH_IN_BLOCK_MVE * kh * kw
])
def test_depthwise_3x3(target, function, scratch):
    k = kernel(dw("dw", "input", 24, 3), (1, 10, 10, 24), target)
    assert (k.function, k.scratch_bytes) == (function, scratch)
    assert k.call == "arm_depthwise_conv_wrapper_s8"


@pytest.mark.parametrize("target,scratch", [
    ("cortex-m7", 24 * 5 * 5 * 2),   # DSP: in_c * kh * kw * sizeof(int16)
    ("cortex-m4", 24 * 5 * 5 * 2),
    ("host", 0),                     # plain C: 0
    ("cortex-m55", 4 * 124 * 25),
])
def test_depthwise_5x5_opt_scratch(target, scratch):
    k = kernel(dw("dw", "input", 24, 5, 2), (1, 10, 10, 24), target)
    assert (k.function, k.scratch_bytes) == ("arm_depthwise_conv_s8_opt", scratch)


def test_depthwise_channel_multiplier_uses_generic_kernel():
    k = kernel(dw("dw", "input", 8, 3, mult=2), (1, 6, 6, 8), "cortex-m7")
    assert (k.function, k.scratch_bytes) == ("arm_depthwise_conv_s8", 0)
    with pytest.raises(ValueError, match="ch_mult"):
        kernel(dw("dw", "input", 8, 3, mult=2), (1, 6, 6, 8), "cortex-m7", in_place=True)


@pytest.mark.parametrize("stride,hw", [(1, 10 * 10), (2, 5 * 5)])
def test_in_place_depthwise_temporary_is_one_output_channel(stride, hw):
    k = kernel(dw("dw", "input", 24, 5, stride), (1, 10, 10, 24), "cortex-m7", in_place=True)
    assert k.function == k.call == "tjx_depthwise_conv_inplace_s8"
    assert k.in_place and k.scratch_bytes == hw


def _residual_graph():
    # x -> dw -> pw -> add(pw, x): x is also the shortcut.
    ops = (dw("dw", "x", 8, 3), conv("pw", "dw", 8, 8, 1), Op.make("add", "add", ["pw", "x"], act="none"))
    s = (1, 4, 4, 8)
    tensors = (Tensor("x", s), Tensor("dw", s), Tensor("pw", s), Tensor("add", s))
    return Graph(tensors, ops, ("x",), ("add",)).validate()


def test_auto_in_place_only_when_the_input_has_no_other_reader():
    g = _residual_graph()
    assert not depthwise_in_place_legal(g.ops[0], g)
    assert choose_kernel(g.ops[0], g, "cortex-m7").function == "arm_depthwise_conv_3x3_s8"
    chain = one_op_graph(dw("dw", "input", 8, 3), (1, 4, 4, 8))
    # its input is read only by dw... but a graph whose dw *output* is the graph output is fine
    assert depthwise_in_place_legal(chain.ops[0], chain)
    assert choose_kernel(chain.ops[0], chain, "cortex-m7").in_place


# --------------------------------------------------------------------------- other ops


@pytest.mark.parametrize("target,scratch", [("cortex-m7", 0), ("host", 0), ("cortex-m55", 40)])
def test_fully_connected_scratch(target, scratch):
    op = Op.make("fc", "dense", ["input"], in_features=32, out_features=10, act="none")
    k = kernel(op, (1, 1, 1, 32), target)
    # arm_fully_connected_s8_get_buffer_size: 0 except MVE, out_features * sizeof(int32)
    assert (k.function, k.scratch_bytes) == ("arm_fully_connected_s8", scratch)


@pytest.mark.parametrize("target,scratch", [("cortex-m7", 4 * 40), ("cortex-m4", 160),
                                            ("host", 0), ("cortex-m55", 0)])
def test_avgpool_scratch(target, scratch):
    op = Op.make("pool", "avg_pool", ["input"], kernel=(5, 5), stride=(1, 1), padding=(0, 0))
    k = kernel(op, (1, 5, 5, 40), target)
    # arm_avgpool_s8_get_buffer_size: DSP ch_src * sizeof(int32), else 0
    assert (k.function, k.scratch_bytes) == ("arm_avgpool_s8", scratch)


def test_elementwise_kernels():
    add = Op.make("add", "add", ["input", "y"], act="none")
    k = kernel(add, (1, 4, 4, 8), "cortex-m7", extra=[("y", (1, 4, 4, 8))])
    assert (k.function, k.scratch_bytes, k.in_place) == ("arm_elementwise_add_s8", 0, False)
    assert kernel(add, (1, 4, 4, 8), "host", True, [("y", (1, 4, 4, 8))]).in_place
    lut = Op.make("lut", "lut", ["input"], fn="silu")
    assert kernel(lut, (1, 4, 4, 8), "cortex-m4").function == "tjx_lut_s8"
    mul = Op.make("mul", "channel_mul", ["input", "g"])
    assert kernel(mul, (1, 4, 4, 8), "cortex-m7", extra=[("g", (1, 1, 1, 8))]).function == \
        "tjx_channel_mul_s8"
    with pytest.raises(ValueError, match="cannot run in place"):
        kernel(conv("c", "input", 8, 8, 1), (1, 4, 4, 8), "cortex-m7", in_place=True)


def test_kernel_choice_is_frozen():
    k = kernel(conv("c", "input", 8, 8, 1), (1, 4, 4, 8), "cortex-m7")
    assert isinstance(k, KernelChoice)
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.scratch_bytes = 3  # type: ignore[misc]


def test_unknown_target_is_one_line_listing_the_targets():
    op = conv("c", "input", 8, 8, 1)
    with pytest.raises(UnknownTargetError) as e:
        kernel(op, (1, 4, 4, 8), "cortex-m33")
    assert isinstance(e.value, TinyJaxError)
    msg = str(e.value)
    assert "\n" not in msg and "cortex-m33" in msg
    assert all(t in msg for t in ("cortex-m4", "cortex-m7", "cortex-m55", "host"))


# --------------------------------------------------------------------------- flash


def test_flash_bytes_formula_by_hand():
    s = (1, 6, 6, 3)
    ops = (conv("stem", "input", 3, 8, 3),             # 8*3*3*3 = 216 + 8*12 = 312
           Op.make("stem/silu", "lut", ["stem"], fn="silu"),              # 256
           dw("dw", "stem/silu", 8, 3),                # 72 + 96 = 168
           Op.make("add", "add", ["dw", "stem/silu"], act="none"),        # 48
           Op.make("pool", "avg_pool", ["add"], kernel=(6, 6), stride=(1, 1), padding=(0, 0)),  # 16
           Op.make("fc", "dense", ["pool"], in_features=8, out_features=10, act="none"))  # 80+40+8
    t8 = (1, 6, 6, 8)
    tensors = (Tensor("input", s), Tensor("stem", t8), Tensor("stem/silu", t8), Tensor("dw", t8),
               Tensor("add", t8), Tensor("pool", (1, 1, 1, 8)), Tensor("fc", (1, 10)))
    g = Graph(tensors, ops, ("input",), ("fc",)).validate()
    assert [op_flash_bytes(op) for op in g.ops] == [312, 256, 168, 48, 16, 128]
    assert flash_bytes(g) == 312 + 256 + 168 + 48 + 16 + 128


def test_flash_of_a_zoo_model_is_its_int8_parameters_plus_quant_overhead():
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.zoo import get_spec

    g = graph_from_spec(get_spec("mcunet_in1"))
    weights = 0
    for op in g.ops:
        if op.weight_shape:
            n = 1
            for d in op.weight_shape:
                n *= d
            weights += n
    per_channel = sum(op.out_channels for op in g.ops if op.kind in ("conv", "depthwise_conv"))
    dense = [op for op in g.ops if op.kind == "dense"]
    adds = sum(op.kind == "add" for op in g.ops)
    pools = sum(op.kind == "avg_pool" for op in g.ops)
    expected = (weights + 12 * per_channel + sum(4 * op.out_channels + 8 for op in dense)
                + 48 * adds + 16 * pools)
    assert flash_bytes(g) == expected
    # MCUNet-in1 has ~0.64M parameters; its int8 constants are a little above that
    assert 640_000 < flash_bytes(g) < 760_000
