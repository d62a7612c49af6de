"""Seeded random cases of the int8 kernels, and their numpy references (``intops``).

Shared by the host tests (``test_c_kernels.py``) and the QEMU run (``test_c_kernels_qemu.py``). A
case is a dict: ``x``, ``w``, ``bias`` (or None), ``input_offset``, ``output_offset``, ``mult``,
``shift`` (per channel), ``act`` ``(min, max)``, the geometry (``stride``, ``padding``,
``dilation`` as ``(y, x)``, ``ch_mult``) and ``out_shape``. Inputs sit around their zero point with
a spread picked per case, weights with a magnitude picked per case, and requantisation aims the
accumulators at about 64 output steps with per-channel shifts moved by -2..+2, so that outputs are
mostly inside the clamp and both signs of shift occur.
"""

from __future__ import annotations

import math

import numpy as np

from tinyjax.codegen.graph import Op
from tinyjax.codegen.numerics import intops, pointwise


def rand_input(rng, shape, zp):
    """int8 codes around the zero point ``zp``, their spread picked per case (small spreads make
    small accumulators, hence positive shifts)."""
    amp = int(rng.choice([3, 40, 255]))
    return np.clip(zp + rng.integers(-amp, amp + 1, size=shape), -128, 127).astype(np.int8), amp


def rand_weights(rng, shape):
    amp = int(rng.choice([1, 8, 127]))
    return rng.integers(-amp, amp + 1, size=shape).astype(np.int8), amp


def rand_requant(rng, n, acc_rms):
    """Q31 multipliers and shifts putting ``acc_rms`` near 64 output steps, each channel's shift
    moved by -2..+2 (both signs occur: small accumulators give positive shifts)."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=n, endpoint=True).astype(np.int32)
    base = -int(round(math.log2(max(acc_rms, 1e-3) / 64.0)))
    shift = np.clip(base + rng.integers(-2, 3, size=n), -31, 10).astype(np.int32)
    return mult, shift


def rand_act(rng, out_zp):
    kind = rng.integers(4)
    if kind == 0:
        return (-128, 127)
    if kind == 1:
        return (int(out_zp), 127)                                   # relu
    if kind == 2:
        return (int(out_zp), int(min(127, out_zp + rng.integers(1, 120))))  # relu6-like
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return (lo, hi)


def weighted_case(rng, x_shape, w_shape, n_out, taps):
    """Input, weights, bias, offsets, requantisation and clamp of one random weighted op."""
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, size=2))
    x, x_amp = rand_input(rng, x_shape, zp_in)
    w, w_amp = rand_weights(rng, w_shape)
    acc_rms = math.sqrt(taps) * (x_amp / 1.7) * (w_amp / 1.7) + 1.0
    bias = None if rng.random() < 0.1 else rng.integers(-int(acc_rms), int(acc_rms) + 1,
                                                        size=n_out).astype(np.int32)
    mult, shift = rand_requant(rng, n_out, acc_rms)
    return dict(x=x, w=w, bias=bias, input_offset=-zp_in, output_offset=zp_out, mult=mult,
                shift=shift, act=rand_act(rng, zp_out))


def out_size(n, k, s, p, d=1):
    return intops.conv_output_size(n, k, s, p, d)


CONV_BRANCHES = ("arm_convolve_1x1_s8_fast", "arm_convolve_1x1_s8", "arm_convolve_1_x_n_s8",
                 "arm_convolve_s8")


def conv_case(rng, branch):
    """A random convolution aimed at one dispatch branch (the op table decides which it hits)."""
    n = int(rng.choice([1, 1, 2]))
    dilation = (1, 1)
    if branch == "arm_convolve_1x1_s8_fast":
        (kh, kw), stride, pad = (1, 1), (1, 1), (0, 0)
        cin = int(rng.choice([1, 2, 3, 5, 7, 8, 13, 16]))
        h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    elif branch == "arm_convolve_1x1_s8":
        (kh, kw), pad = (1, 1), (0, 0)
        stride = [(2, 2), (1, 2), (2, 1), (3, 3)][rng.integers(4)]
        cin, h, w = int(rng.choice([1, 3, 4, 6, 9])), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    elif branch == "arm_convolve_1_x_n_s8":
        kh, kw = 1, int(rng.choice([1, 3, 5, 7]))
        sw = int(rng.choice([1, 2]))
        cin = int(rng.choice([4, 8, 12]) if sw == 1 else rng.choice([2, 4, 6, 10]))
        pw = int(rng.integers(0, kw // 2 + 1)) if kw > 1 else 1
        stride, pad, h, w = (int(rng.choice([1, 2])), sw), (0, pw), 1, int(rng.integers(kw, kw + 8))
    else:
        kh, kw = [(3, 3), (5, 5), (7, 7), (3, 1), (1, 3), (1, 1), (3, 5)][rng.integers(7)]
        stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
        pad = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
        if (kh, kw) == (1, 1):
            pad = (1, int(rng.integers(0, 2)))
        if rng.random() < 0.15:
            dilation = (2, 2)
        cin = int(rng.choice([1, 2, 3, 5, 8, 11]))
        h = int(rng.integers(1, 8) + max(0, dilation[0] * (kh - 1) - 2 * pad[0]))
        w = int(rng.integers(1, 8) + max(0, dilation[1] * (kw - 1) - 2 * pad[1]))
    cout = int(rng.integers(1, 10))
    oh, ow = out_size(h, kh, stride[0], pad[0], dilation[0]), out_size(w, kw, stride[1], pad[1], dilation[1])
    case = weighted_case(rng, (n, h, w, cin), (cout, kh, kw, cin), cout, kh * kw * cin)
    case.update(stride=stride, padding=pad, dilation=dilation, out_shape=(n, oh, ow, cout))
    return case


def conv_reference(c):
    return intops.conv_s8(c["x"], c["w"], c["bias"], c["input_offset"], c["output_offset"], c["mult"],
                          c["shift"], stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                          act_min=c["act"][0], act_max=c["act"][1])


def conv_op(c) -> Op:
    cout, kh, kw, cin = c["w"].shape
    return Op.make("conv", "conv", ["x"], kernel=(kh, kw), stride=c["stride"], padding=c["padding"],
                   in_chs=cin, out_chs=cout, act="none")


DW_BRANCHES = ("arm_depthwise_conv_3x3_s8", "arm_depthwise_conv_s8_opt", "arm_depthwise_conv_s8")


def dw_case(rng, branch, ch_mult=None):
    n, dilation = 1, (1, 1)
    if branch == "arm_depthwise_conv_3x3_s8":
        (kh, kw), mult = (3, 3), 1
        pad = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
    elif branch == "arm_depthwise_conv_s8_opt":
        (kh, kw), mult = [(1, 1), (5, 5), (7, 7), (3, 5), (3, 1)][rng.integers(5)], 1
        pad = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
    else:
        (kh, kw) = [(3, 3), (5, 5), (1, 1), (7, 7)][rng.integers(4)]
        pad = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
        mult = int(rng.integers(2, 4)) if ch_mult is None else ch_mult
        if rng.random() < 0.25:
            n, mult = 2, int(rng.integers(1, 3))
        if rng.random() < 0.25:
            dilation, mult = (2, 2), int(rng.integers(1, 3))
    stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
    ch = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17]))
    h = int(rng.integers(1, 8) + max(0, dilation[0] * (kh - 1) - 2 * pad[0]))
    w = int(rng.integers(1, 8) + max(0, dilation[1] * (kw - 1) - 2 * pad[1]))
    oh, ow = out_size(h, kh, stride[0], pad[0], dilation[0]), out_size(w, kw, stride[1], pad[1], dilation[1])
    case = weighted_case(rng, (n, h, w, ch), (1, kh, kw, ch * mult), ch * mult, kh * kw)
    case.update(ch_mult=mult, stride=stride, padding=pad, dilation=dilation, out_shape=(n, oh, ow, ch * mult))
    return case


def inplace_dw_case(rng):
    """A random in-place depthwise case (ch_mult 1, one batch, dilation 1) aimed at the DSP paths of
    ``tjx_depthwise_conv_inplace_s8``: 3x3/5x5/7x7 (its unrolled spans; 3x3 stride 1 two pixels at a
    time, odd widths leave one) and other shapes (the generic span), strides 1 and 2 (7x7 stride 2
    often), small planes (the whole padded plane in the band) and medium ones (the ring of rows,
    outputs straight to their slots or, where an output row would overwrite an input row not yet
    gathered, through the temporary and scatter), 1..40 channels, a wide plane now and then (padded
    band over its 1 KiB: the older band / temporary schemes), per-channel
    multipliers below 2^30 and shifts above -2 (exact slow requantisation), shifts <= -23 with large
    output offsets (no output-offset folding), full-range clamps (SSAT) and narrow ones, and an input
    offset of -128 (padding value not an int8: the older schemes)."""
    kh, kw = [(3, 3), (3, 3), (5, 5), (7, 7), (7, 7), (3, 5), (1, 1), (2, 2)][rng.integers(8)]
    stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
    if kh == 7 and rng.random() < 0.5:
        stride = (2, 2)
    pad = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
    ch = int(rng.integers(1, 41))
    h = int(rng.integers(1, 9) + max(0, kh - 1 - 2 * pad[0]))
    w = int(rng.integers(1, 13) + max(0, kw - 1 - 2 * pad[1]))
    if rng.random() < 0.1:
        w, ch = int(rng.integers(120, 150)), int(rng.integers(1, 4))
    elif rng.random() < 0.2:
        h, w, ch = int(rng.integers(12, 30)), int(rng.integers(30, 100)), int(rng.integers(1, 4))
        if rng.random() < 0.4:          # outputs wider than the input: through the temporary
            kh, kw, pad, stride = 2, 2, (1, 1), (1, 1)
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    case = weighted_case(rng, (1, h, w, ch), (1, kh, kw, ch), ch, kh * kw)
    mult, shift = case["mult"].copy(), case["shift"].copy()
    if rng.random() < 0.3:
        low = rng.random(ch) < 0.5
        mult[low] = (mult[low] >> rng.integers(1, 6, size=int(low.sum()))).astype(np.int32)
    if rng.random() < 0.3:
        some = rng.random(ch) < 0.5
        shift[some] = rng.integers(-1, 3, size=int(some.sum()))
    if rng.random() < 0.15:
        some = rng.random(ch) < 0.5
        shift[some] = rng.integers(-28, -22, size=int(some.sum()))
        case["output_offset"] = int(rng.choice([-128, -100, 100, 127]))
        case["act"] = rand_act(rng, case["output_offset"])
    if rng.random() < 0.3:
        case["act"] = (-128, 127)
    if rng.random() < 0.1:
        case["input_offset"] = -128
    case.update(mult=mult, shift=shift, ch_mult=1, stride=stride, padding=pad, dilation=(1, 1),
                out_shape=(1, oh, ow, ch))
    return case


def dw_reference(c):
    return intops.depthwise_conv_s8(c["x"], c["w"], c["bias"], c["input_offset"], c["output_offset"],
                                    c["mult"], c["shift"], ch_mult=c["ch_mult"], stride=c["stride"],
                                    padding=c["padding"], dilation=c["dilation"], act_min=c["act"][0],
                                    act_max=c["act"][1])


def dw_op(c) -> Op:
    _, kh, kw, _ = c["w"].shape
    return Op.make("dw", "depthwise_conv", ["x"], kernel=(kh, kw), stride=c["stride"], padding=c["padding"],
                   channels=c["x"].shape[3], ch_mult=c["ch_mult"], act="none")


def rand_scale(rng):
    return float(np.exp(rng.uniform(math.log(1e-3), math.log(0.5))))


def add_case(rng, left_shift=pointwise.DEFAULT_ADD_LEFT_SHIFT):
    z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
    s1, s2 = rand_scale(rng), rand_scale(rng)
    s_out = max(s1, s2) * float(np.exp(rng.uniform(math.log(0.7), math.log(3.0))))
    p = pointwise.add_quant_params(s1, z1, s2, z2, s_out, zo, left_shift)
    size = int(rng.integers(1, 70))
    a = rng.integers(-128, 128, size=size).astype(np.int8)
    b = rng.integers(-128, 128, size=size).astype(np.int8)
    return a, b, p, rand_act(rng, zo)
