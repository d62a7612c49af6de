"""Tests for tinyjax.codegen.numerics.intops (CMSIS-NN (v7, default build) integer reference kernels) and
the fixed-point rules they share, tinyjax.codegen.numerics.fixedpoint.

The kernels are checked three ways:
* literal cases worked by hand from the CMSIS-NN / TFLite definitions;
* exactness against deliberately naive pure-Python scalar loops written here from the
  definitions (independent arithmetic: Python ints, floor division, divmod);
* accuracy against float computations with realistic scales.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyjax.codegen.numerics import fixedpoint as F
from tinyjax.codegen.numerics import intops as I
from tinyjax.codegen.numerics import pointwise as P

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ======================================================================================
# naive pure-Python references (scalar loops, Python ints)
# ======================================================================================


def ref_wrap32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 2**32 if v >= 2**31 else v


def ref_requant(v: int, m: int, s: int) -> int:
    """Independent spelling of arm_nn_requantize (default build) on Python ints."""
    assert INT32_MIN <= v <= INT32_MAX
    if s > 0:
        v = ref_wrap32(v * 2**s)
    if v == INT32_MIN and m == INT32_MIN:
        h = INT32_MAX
    else:
        # round(v*m / 2**31) with ties toward +inf  ==  floor((2*v*m + 2**31) / 2**32)
        h = (2 * v * m + 2**31) // 2**32
    e = -s if s < 0 else 0
    q, r = divmod(abs(h), 2**e)  # divide |h| by 2**e, ties away from zero
    if 2 * r >= 2**e and e > 0:
        q += 1
    return q if h >= 0 else -q


def ref_clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def ref_conv(x, w, bias, in_off, out_off, mult, shift, stride, pad, dil, amin, amax):
    N, H, W, C = x.shape
    O, KH, KW, _ = w.shape
    sh, sw = stride
    ph, pw = pad
    dh, dw = dil
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    xl, wl = x.tolist(), w.tolist()
    zp_in = -in_off
    out = np.zeros((N, OH, OW, O), dtype=np.int8)
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for o in range(O):
                    acc = 0 if bias is None else int(bias[o])
                    for ky in range(KH):
                        for kx in range(KW):
                            iy = oy * sh - ph + ky * dh
                            ix = ox * sw - pw + kx * dw
                            inside = 0 <= iy < H and 0 <= ix < W
                            for c in range(C):
                                xv = xl[n][iy][ix][c] if inside else zp_in
                                acc += (xv + in_off) * wl[o][ky][kx][c]
                    assert INT32_MIN <= acc <= INT32_MAX
                    r = ref_requant(acc, int(mult[o]), int(shift[o])) + out_off
                    out[n, oy, ox, o] = ref_clamp(r, amin, amax)
    return out


def ref_dw(x, w, bias, in_off, out_off, mult, shift, ch_mult, stride, pad, dil, amin, amax):
    N, H, W, C = x.shape
    _, KH, KW, O = w.shape
    sh, sw = stride
    ph, pw = pad
    dh, dw = dil
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    xl, wl = x.tolist(), w.tolist()
    zp_in = -in_off
    out = np.zeros((N, OH, OW, O), dtype=np.int8)
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    for m in range(ch_mult):
                        o = c * ch_mult + m
                        acc = 0 if bias is None else int(bias[o])
                        for ky in range(KH):
                            for kx in range(KW):
                                iy = oy * sh - ph + ky * dh
                                ix = ox * sw - pw + kx * dw
                                xv = xl[n][iy][ix][c] if (0 <= iy < H and 0 <= ix < W) else zp_in
                                acc += (xv + in_off) * wl[0][ky][kx][o]
                        assert INT32_MIN <= acc <= INT32_MAX
                        r = ref_requant(acc, int(mult[o]), int(shift[o])) + out_off
                        out[n, oy, ox, o] = ref_clamp(r, amin, amax)
    return out


def ref_fc(x, w, bias, in_off, f_off, out_off, mult, shift, amin, amax):
    N, IN = x.shape
    OUT = w.shape[0]
    out = np.zeros((N, OUT), dtype=np.int8)
    for n in range(N):
        for o in range(OUT):
            acc = 0 if bias is None else int(bias[o])
            for i in range(IN):
                acc += (int(x[n, i]) + in_off) * (int(w[o, i]) + f_off)
            r = ref_requant(acc, mult, shift) + out_off
            out[n, o] = ref_clamp(r, amin, amax)
    return out


def c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def ref_avgpool(x, kernel, stride, pad, amin, amax):
    N, H, W, C = x.shape
    KH, KW = kernel
    sh, sw = stride
    ph, pw = pad
    OH = (H + 2 * ph - KH) // sh + 1
    OW = (W + 2 * pw - KW) // sw + 1
    out = np.zeros((N, OH, OW, C), dtype=np.int8)
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    total, count = 0, 0
                    for ky in range(KH):
                        for kx in range(KW):
                            iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                total += int(x[n, iy, ix, c])
                                count += 1
                    avg = c_div(total + count // 2, count) if total > 0 else c_div(total - count // 2, count)
                    out[n, oy, ox, c] = ref_clamp(avg, amin, amax)
    return out


def ref_add(a, b, p, amin, amax):
    out = np.zeros(a.shape, dtype=np.int8)
    for idx in np.ndindex(a.shape):
        x1 = ref_requant((int(a[idx]) + p.in1_offset) * 2**p.left_shift, p.in1_mult, p.in1_shift)
        x2 = ref_requant((int(b[idx]) + p.in2_offset) * 2**p.left_shift, p.in2_mult, p.in2_shift)
        r = ref_requant(x1 + x2, p.out_mult, p.out_shift) + p.out_offset
        out[idx] = ref_clamp(r, amin, amax)
    return out


def ref_mul(a, b, in1_off, in2_off, out_off, mult, shift, amin, amax):
    a, b = np.broadcast_arrays(a, b)
    out = np.zeros(a.shape, dtype=np.int8)
    for idx in np.ndindex(a.shape):
        prod = (int(a[idx]) + in1_off) * (int(b[idx]) + in2_off)
        out[idx] = ref_clamp(ref_requant(prod, mult, shift) + out_off, amin, amax)
    return out


# ======================================================================================
# requantize / doubling_high_mult / divide_by_power_of_two: literal cases
# ======================================================================================

HALF = 1 << 30  # Q31 multiplier meaning 0.5


@pytest.mark.parametrize(
    "val, mult, shift, expected",
    [
        (100, HALF, 0, 50),  # exact
        (101, HALF, 0, 51),  # 50.5 -> 51 (doubling-high-mult ties round up)
        (-101, HALF, 0, -50),  # -50.5 -> -50 (ties toward +inf in the high-mult step)
        (-100, HALF, 0, -50),
        (20, HALF, -2, 3),  # 20/8 = 2.5: high-mult 10, 10/4 = 2.5 -> 3 (away from zero)
        (-20, HALF, -2, -3),  # -2.5 -> -3 (away from zero)
        (18, HALF, -2, 2),  # 9/4 = 2.25 -> 2
        (-18, HALF, -2, -2),  # -2.25 -> -2
        (-22, HALF, -2, -3),  # -11/4 = -2.75 -> -3
        (5, HALF, -1, 2),  # double rounding: 5*0.25 = 1.25, high-mult 3, 3/2 = 1.5 -> 2
        (-6, HALF, -1, -2),  # high-mult floor(-3+.5) = -3, -3/2 = -1.5 -> -2
        (3, HALF, 2, 6),  # positive shift: (3 << 2) * 0.5
        (-7, HALF, 3, -28),  # (-7 << 3) * 0.5
        (12345, HALF, 1, 12345),  # (2**30, 1) is exactly 1.0
        (-12345, HALF, 1, -12345),
        (0, HALF, -5, 0),
        (1 << 30, HALF, 2, 0),  # (2**30 << 2) wraps to 0 in int32, as in C
        # 12345 * 0.70710678 / 8: high = round(12345*1518500250/2**31) = 8729, 8729/8 = 1091.125
        (12345, 1518500250, -3, 1091),
        (INT32_MIN, INT32_MIN, 0, INT32_MAX),  # saturating special case
        (INT32_MAX, INT32_MAX, 0, INT32_MAX - 1),  # (2**31-1)**2 / 2**31 = 2**31 - 2 + 2**-31
    ],
)
def test_requantize_literal(val, mult, shift, expected):
    assert int(F.requantize(val, mult, shift)) == expected
    assert ref_requant(val, mult, shift) == expected


def test_doubling_high_mult_literal():
    assert int(F.doubling_high_mult(INT32_MIN, INT32_MIN)) == INT32_MAX
    assert int(F.doubling_high_mult(INT32_MIN, INT32_MAX)) == -(2**31) + 1
    assert int(F.doubling_high_mult(3, HALF)) == 2  # 1.5 -> 2
    assert int(F.doubling_high_mult(-3, HALF)) == -1  # -1.5 -> -1 (half up)
    assert int(F.doubling_high_mult(1, 1)) == 0
    assert F.doubling_high_mult(np.array([4, -4]), HALF).tolist() == [2, -2]
    assert F.doubling_high_mult(np.array([4, -4]), HALF).dtype == np.int32


@pytest.mark.parametrize(
    "val, exp, expected",
    [(6, 2, 2), (-6, 2, -2), (5, 2, 1), (-5, 2, -1), (7, 2, 2), (-7, 2, -2), (3, 1, 2), (-3, 1, -2),
     (1, 1, 1), (-1, 1, -1), (9, 0, 9), (-9, 0, -9), (INT32_MIN, 31, -1), (INT32_MAX, 31, 1),
     (-(1 << 30), 31, -1), ((1 << 30) - 1, 31, 0)],
)
def test_divide_by_power_of_two_literal(val, exp, expected):
    assert int(F.divide_by_power_of_two(val, exp)) == expected


def test_requantize_per_channel_broadcast():
    val = np.array([[100, 100, 100], [-20, -20, -20]])
    mult = np.array([HALF, HALF, 1518500250])
    shift = np.array([0, -2, -3])
    got = F.requantize(val, mult, shift)
    assert got.dtype == np.int32
    exp = [[ref_requant(int(v), int(m), int(s)) for v, m, s in zip(row, mult, shift)] for row in val]
    assert got.tolist() == exp
    assert got.tolist() == [[50, 13, 9], [-10, -3, -2]]


@FAST
@given(
    st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=1, max_size=50),
    st.integers(INT32_MIN, INT32_MAX),
    st.integers(-31, 8),
)
def test_requantize_matches_reference(vals, mult, shift):
    got = F.requantize(np.array(vals, dtype=np.int64), mult, shift)
    assert got.tolist() == [ref_requant(v, mult, shift) for v in vals]


# ======================================================================================
# quantize_multiplier
# ======================================================================================


@pytest.mark.parametrize(
    "real, expected",
    [
        (0.5, (1 << 30, 0)),
        (1.0, (1 << 30, 1)),
        (0.25, (1 << 30, -1)),
        (0.75, (3 << 29, 0)),
        (2.0**-32, (1 << 30, -31)),  # smallest exponent kept
        (2.0**-33, (0, 0)),  # exponent -32 < -31
        (1e-12, (0, 0)),
        (0.0, (0, 0)),
        (1.0 - 2.0**-40, (1 << 30, 1)),  # q_fixed rounds to 2**31: halve, exponent + 1
        (-0.5, (-(1 << 30), 0)),
    ],
)
def test_quantize_multiplier_literal(real, expected):
    assert F.quantize_multiplier(real) == expected
    m, s = F.quantize_multiplier_per_channel(np.array([real]))
    assert (int(m[0]), int(s[0])) == expected


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=2.0**-31, max_value=2.0**20, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_property(real):
    m, s = F.quantize_multiplier(real)
    assert 2**30 <= m <= INT32_MAX
    approx = m * 2.0 ** (s - 31)
    assert abs(approx - real) <= 2.0**-31 * real
    mv, sv = F.quantize_multiplier_per_channel(np.array([real, real / 3]))
    assert (int(mv[0]), int(sv[0])) == (m, s)
    assert (int(mv[1]), int(sv[1])) == F.quantize_multiplier(real / 3)
    assert mv.dtype == np.int32 and sv.dtype == np.int32


# ======================================================================================
# exactness against the naive loops
# ======================================================================================


def _rand_q(rng, n):
    mult = rng.integers(1 << 30, 1 << 31, size=n, dtype=np.int64).astype(np.int32)
    shift = rng.integers(-12, 3, size=n).astype(np.int32)
    return mult, shift


def _act(rng):
    choice = rng.integers(0, 3)
    zp_out = int(rng.integers(-20, 21))
    if choice == 0:
        return -128, 127
    if choice == 1:  # fused ReLU
        return max(-128, zp_out), 127
    lo = int(rng.integers(-128, 0))
    return lo, int(rng.integers(lo, 128))


@st.composite
def conv_cfg(draw, depthwise=False):
    k = draw(st.sampled_from([1, 3, 5]))
    kw = draw(st.sampled_from([k, 1, 3]))
    sh, sw = draw(st.sampled_from([(1, 1), (2, 2), (2, 1)]))
    dh, dw = draw(st.sampled_from([(1, 1), (1, 1), (2, 2)]))
    ph = draw(st.integers(0, k - 1))
    pw = draw(st.integers(0, kw - 1))
    h = max(1, dh * (k - 1) + 1 - 2 * ph) + draw(st.integers(0, 4))
    w = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 4))
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 4))
    o = draw(st.integers(1, 2)) if depthwise else draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(k=(k, kw), stride=(sh, sw), dil=(dh, dw), pad=(ph, pw), h=h, w=w, n=n, c=c, o=o, seed=seed)


@FAST
@given(conv_cfg())
def test_conv_exact(cfg):
    rng = np.random.default_rng(cfg["seed"])
    (kh, kw), c, o = cfg["k"], cfg["c"], cfg["o"]
    x = rng.integers(-128, 128, (cfg["n"], cfg["h"], cfg["w"], c)).astype(np.int8)
    w = rng.integers(-127, 128, (o, kh, kw, c)).astype(np.int8)
    bias = None if rng.random() < 0.2 else rng.integers(-20000, 20000, o).astype(np.int32)
    in_off, out_off = int(rng.integers(-127, 129)), int(rng.integers(-20, 21))
    mult, shift = _rand_q(rng, o)
    amin, amax = _act(rng)
    got = I.conv_s8(x, w, bias, in_off, out_off, mult, shift, cfg["stride"], cfg["pad"], cfg["dil"],
                    amin, amax)
    exp = ref_conv(x, w, bias, in_off, out_off, mult, shift, cfg["stride"], cfg["pad"], cfg["dil"],
                   amin, amax)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, exp)


@FAST
@given(conv_cfg(depthwise=True))
def test_depthwise_exact(cfg):
    rng = np.random.default_rng(cfg["seed"])
    (kh, kw), c, cm = cfg["k"], cfg["c"], cfg["o"]
    x = rng.integers(-128, 128, (cfg["n"], cfg["h"], cfg["w"], c)).astype(np.int8)
    w = rng.integers(-127, 128, (1, kh, kw, c * cm)).astype(np.int8)
    bias = None if rng.random() < 0.2 else rng.integers(-5000, 5000, c * cm).astype(np.int32)
    in_off, out_off = int(rng.integers(-127, 129)), int(rng.integers(-20, 21))
    mult, shift = _rand_q(rng, c * cm)
    amin, amax = _act(rng)
    args = (cfg["stride"], cfg["pad"], cfg["dil"], amin, amax)
    got = I.depthwise_conv_s8(x, w, bias, in_off, out_off, mult, shift, cm, *args)
    exp = ref_dw(x, w, bias, in_off, out_off, mult, shift, cm, *args)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, exp)


def test_conv_fixed_cases_exact():
    """Explicit stride-2 kernel-5 padded conv and ch_mult-2 depthwise (not left to chance)."""
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (1, 9, 8, 3)).astype(np.int8)
    w = rng.integers(-127, 128, (4, 5, 5, 3)).astype(np.int8)
    b = rng.integers(-1000, 1000, 4).astype(np.int32)
    mult, shift = _rand_q(rng, 4)
    args = (x, w, b, 7, -5, mult, shift, (2, 2), (2, 2), (1, 1), -128, 127)
    got = I.conv_s8(*args)
    assert got.shape == (1, 5, 4, 4)
    np.testing.assert_array_equal(got, ref_conv(*args))

    wd = rng.integers(-127, 128, (1, 5, 5, 6)).astype(np.int8)
    md, sd = _rand_q(rng, 6)
    got = I.depthwise_conv_s8(x, wd, None, 7, -5, md, sd, 2, (2, 2), (2, 2), (1, 1), -5, 100)
    exp = ref_dw(x, wd, None, 7, -5, md, sd, 2, (2, 2), (2, 2), (1, 1), -5, 100)
    assert got.shape == (1, 5, 4, 6)
    np.testing.assert_array_equal(got, exp)


@FAST
@given(st.integers(1, 3), st.integers(1, 24), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_fully_connected_exact(n, nin, nout, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, nin)).astype(np.int8)
    w = rng.integers(-127, 128, (nout, nin)).astype(np.int8)
    bias = None if rng.random() < 0.2 else rng.integers(-20000, 20000, nout).astype(np.int32)
    in_off, out_off = int(rng.integers(-127, 129)), int(rng.integers(-20, 21))
    f_off = 0 if rng.random() < 0.5 else int(rng.integers(-3, 4))
    mult = int(rng.integers(1 << 30, 1 << 31))
    shift = int(rng.integers(-12, 3))
    amin, amax = _act(rng)
    got = I.fully_connected_s8(x, w, bias, in_off, f_off, out_off, mult, shift, amin, amax)
    np.testing.assert_array_equal(got, ref_fc(x, w, bias, in_off, f_off, out_off, mult, shift, amin, amax))
    # higher-rank input is flattened like CMSIS's [batch, accum_depth] view
    got4 = I.fully_connected_s8(x.reshape(n, 1, 1, nin), w, bias, in_off, f_off, out_off, mult, shift,
                                amin, amax)
    np.testing.assert_array_equal(got4, got)


@FAST
@given(
    st.integers(1, 4), st.integers(1, 4), st.sampled_from([1, 2, 3]), st.integers(0, 2),
    st.integers(0, 2**32 - 1),
)
def test_avgpool_exact(kh, kw, s, extra, seed):
    rng = np.random.default_rng(seed)
    ph, pw = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    h = max(1, kh - 2 * ph) + extra + int(rng.integers(0, 3))
    w = max(1, kw - 2 * pw) + int(rng.integers(0, 4))
    x = rng.integers(-128, 128, (int(rng.integers(1, 3)), h, w, 3)).astype(np.int8)
    amin, amax = _act(rng)
    got = I.avgpool_s8(x, (kh, kw), (s, s), (ph, pw), amin, amax)
    np.testing.assert_array_equal(got, ref_avgpool(x, (kh, kw), (s, s), (ph, pw), amin, amax))


@FAST
@given(
    st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    st.floats(0.005, 0.2), st.floats(0.005, 0.2), st.floats(0.005, 0.4),
    st.integers(0, 2**32 - 1),
)
def test_add_exact(shape, s1, s2, so, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, shape).astype(np.int8)
    b = rng.integers(-128, 128, shape).astype(np.int8)
    z1, z2, zo = (int(v) for v in rng.integers(-128, 128, 3))
    p = P.add_quant_params(s1, z1, s2, z2, so, zo)
    amin, amax = _act(rng)
    got = P.elementwise_add_s8(a, b, **p._asdict(), act_min=amin, act_max=amax)
    np.testing.assert_array_equal(got, ref_add(a, b, p, amin, amax))


@FAST
@given(
    st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    st.booleans(), st.integers(0, 2**32 - 1),
)
def test_mul_exact(shape, se_broadcast, seed):
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    a = rng.integers(-128, 128, shape).astype(np.int8)
    b = rng.integers(-128, 128, (n, 1, 1, c) if se_broadcast else shape).astype(np.int8)
    o1, o2, oo = (int(v) for v in rng.integers(-127, 129, 3))
    mult, shift = int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-12, 3))
    amin, amax = _act(rng)
    got = P.elementwise_mul_s8(a, b, o1, o2, oo, mult, shift, amin, amax)
    assert got.shape == shape
    np.testing.assert_array_equal(got, ref_mul(a, b, o1, o2, oo, mult, shift, amin, amax))


# ======================================================================================
# accuracy against float with realistic scales
# ======================================================================================


def _asym_params(data):
    lo, hi = min(float(data.min()), 0.0), max(float(data.max()), 0.0)
    scale = (hi - lo) / 255.0
    zp = int(np.clip(F.round_half_away(-128 - lo / scale), -128, 127))
    return scale, zp


def _float_conv(xf, wf, bf, stride, pad, depthwise=False, ch_mult=1):
    """Float64 NHWC conv/depthwise (zero padding; used only as an accuracy oracle)."""
    n, h, w, c = xf.shape
    if depthwise:
        _, kh, kw, o = wf.shape
        xf = np.repeat(xf, ch_mult, axis=3)
    else:
        o, kh, kw, _ = wf.shape
    (sh, sw), (ph, pw) = stride, pad
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xp = np.zeros((n, max(h + 2 * ph, (oh - 1) * sh + kh), max(w + 2 * pw, (ow - 1) * sw + kw), xf.shape[3]))
    xp[:, ph : ph + h, pw : pw + w] = xf
    y = np.zeros((n, oh, ow, o)) + bf
    for i in range(kh):
        for j in range(kw):
            t = xp[:, i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
            y += t * wf[0, i, j] if depthwise else t @ wf[:, i, j, :].T
    return y


def _within_1lsb(q_out, y_float, s_out, z_out, frac=0.999):
    lo, hi = (-128 - z_out) * s_out, (127 - z_out) * s_out
    err = np.abs(F.dequantize(q_out, s_out, z_out) - np.clip(y_float, lo, hi))
    ok = err <= s_out * (1 + 1e-9)
    assert ok.mean() >= frac, f"only {ok.mean():.5f} within 1 LSB (max err {err.max() / s_out:.3f} LSB)"
    return ok.mean()


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("stride, k", [((1, 1), 3), ((2, 2), 5), ((1, 1), 1)])
def test_conv_accuracy(depthwise, stride, k):
    rng = np.random.default_rng(11 + k + 3 * depthwise + stride[0])
    c = 8
    cm = 2 if depthwise else 1
    o = c * cm if depthwise else 16
    xf = rng.normal(0.3, 1.0, (2, 16, 16, c))
    s_in, z_in = _asym_params(xf)
    qx = F.quantize(xf, s_in, z_in)
    wshape = (1, k, k, o) if depthwise else (o, k, k, c)
    wf = rng.normal(0, 1, wshape) * rng.uniform(0.02, 0.3, o)[None, None, None, :] if depthwise else \
        rng.normal(0, 1, wshape) * rng.uniform(0.02, 0.3, o)[:, None, None, None]
    axes = (0, 1, 2) if depthwise else (1, 2, 3)
    s_w = np.abs(wf).max(axis=axes) / 127.0
    qw = F.quantize(wf, s_w if depthwise else s_w[:, None, None, None], 0)
    bf = rng.normal(0, 0.5, o)
    qb = F.round_half_away(bf / (s_in * s_w)).astype(np.int32)
    # float oracle on the *quantised* operands
    xd = F.dequantize(qx, s_in, z_in)
    wd = qw * (s_w if depthwise else s_w[:, None, None, None])
    bd = qb * s_in * s_w
    pad = (k // 2, k // 2)
    y = _float_conv(xd, wd, bd, stride, pad, depthwise, cm)
    s_out, z_out = _asym_params(y)
    mult, shift = F.quantize_multiplier_per_channel(s_in * s_w / s_out)
    if depthwise:
        q = I.depthwise_conv_s8(qx, qw, qb, -z_in, z_out, mult, shift, cm, stride, pad)
    else:
        q = I.conv_s8(qx, qw, qb, -z_in, z_out, mult, shift, stride, pad)
    assert q.shape == y.shape
    _within_1lsb(q, y, s_out, z_out)


def test_fc_accuracy():
    rng = np.random.default_rng(5)
    xf = rng.normal(0.5, 1.0, (64, 96))
    s_in, z_in = _asym_params(xf)
    qx = F.quantize(xf, s_in, z_in)
    wf = rng.normal(0, 0.1, (40, 96))
    s_w = np.abs(wf).max() / 127.0
    qw = F.quantize(wf, s_w, 0)
    qb = F.round_half_away(rng.normal(0, 0.3, 40) / (s_in * s_w)).astype(np.int32)
    y = F.dequantize(qx, s_in, z_in) @ (qw * s_w).T + qb * s_in * s_w
    s_out, z_out = _asym_params(y)
    m, s = F.quantize_multiplier(s_in * s_w / s_out)
    q = I.fully_connected_s8(qx, qw, qb, -z_in, 0, z_out, m, s)
    _within_1lsb(q, y, s_out, z_out)


def test_add_accuracy():
    rng = np.random.default_rng(6)
    af, bf = rng.normal(0.2, 1.0, (4, 12, 12, 16)), rng.normal(-0.5, 0.4, (4, 12, 12, 16))
    (s1, z1), (s2, z2) = _asym_params(af), _asym_params(bf)
    qa, qb = F.quantize(af, s1, z1), F.quantize(bf, s2, z2)
    y = F.dequantize(qa, s1, z1) + F.dequantize(qb, s2, z2)
    so, zo = _asym_params(y)
    p = P.add_quant_params(s1, z1, s2, z2, so, zo)
    assert p.left_shift == 20 and p.in1_offset == -z1 and p.out_offset == zo
    q = P.elementwise_add_s8(qa, qb, **p._asdict())
    _within_1lsb(q, y, so, zo)


def test_mul_accuracy_se_broadcast():
    rng = np.random.default_rng(8)
    af = rng.normal(0.0, 2.0, (2, 10, 10, 24))
    sf = 1 / (1 + np.exp(-rng.normal(0, 2, (2, 1, 1, 24))))  # squeeze-excite gate in (0, 1)
    (s1, z1), (s2, z2) = _asym_params(af), (1 / 256, -128)
    qa, qs = F.quantize(af, s1, z1), F.quantize(sf, s2, z2)
    y = F.dequantize(qa, s1, z1) * F.dequantize(qs, s2, z2)
    so, zo = _asym_params(y)
    p = P.mul_quant_params(s1, z1, s2, z2, so, zo)
    q = P.elementwise_mul_s8(qa, qs, **p._asdict())
    assert q.shape == af.shape
    _within_1lsb(q, y, so, zo)


# ======================================================================================
# avgpool literal rounding
# ======================================================================================


def _row(vals):
    return np.array(vals, dtype=np.int8).reshape(1, 1, len(vals), 1)


@pytest.mark.parametrize(
    "vals, expected",
    [
        ([2, 3], 3),  # 2.5 -> 3
        ([-2, -3], -3),  # -2.5 -> -3 (away from zero)
        ([1, 2], 2),  # 1.5 -> 2
        ([-1, -2], -2),
        ([5, -5], 0),
        ([1, 0, 0], 0),  # 0.333 -> 0
        ([2, 0, 0], 1),  # 0.667 -> 1
        ([-2, 0, 0], -1),
        ([-1, 0, 0], 0),
        ([127, 127, 126], 127),
        ([-128, -128, -127], -128),
    ],
)
def test_avgpool_rounding_literal(vals, expected):
    out = I.avgpool_s8(_row(vals), (1, len(vals)))
    assert out.shape == (1, 1, 1, 1) and out.dtype == np.int8
    assert int(out[0, 0, 0, 0]) == expected


def test_avgpool_padding_not_counted():
    out = I.avgpool_s8(_row([4, 5, 9]), (1, 3), (1, 1), (0, 1))
    assert out.reshape(-1).tolist() == [5, 6, 7]  # 9/2 = 4.5 -> 5, 18/3, 14/2 (zero-counting: 3, 6, 5)
    out = I.avgpool_s8(_row([-4, -5, -9]), (1, 3), (1, 1), (0, 1))
    assert out.reshape(-1).tolist() == [-5, -6, -7]
    x = np.array([[10, 20], [30, 41]], dtype=np.int8).reshape(1, 2, 2, 1)
    out = I.avgpool_s8(x, 3, 1, 1)
    assert out.reshape(-1).tolist() == [25, 25, 25, 25]  # 101/4 = 25.25
    out = I.avgpool_s8(x, 2, 2, 1)  # windows hold 1, 1, 1, 1 valid cells
    assert out.reshape(-1).tolist() == [10, 20, 30, 41]


def test_avgpool_clamp_and_global():
    assert int(I.avgpool_s8(_row([100, 120]), (1, 2), act_min=0, act_max=50)[0, 0, 0, 0]) == 50
    assert int(I.avgpool_s8(_row([-100, -120]), (1, 2), act_min=-3, act_max=50)[0, 0, 0, 0]) == -3
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2, 5, 6, 7)).astype(np.int8)
    g = I.global_avgpool_s8(x)
    assert g.shape == (2, 1, 1, 7)
    np.testing.assert_array_equal(g, ref_avgpool(x, (5, 6), (1, 1), (0, 0), -128, 127))


# ======================================================================================
# LUT
# ======================================================================================


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_make_lut_sigmoid():
    in_scale, in_zp, out_scale, out_zp = 0.0625, -3, 1.0 / 256, -128
    t = P.make_lut(_sigmoid, in_scale, in_zp, out_scale, out_zp)
    assert t.shape == (256,) and t.dtype == np.int8
    assert np.all(np.diff(t.astype(np.int64)) >= 0)
    codes = np.arange(-128, 128)
    ref = _sigmoid((codes - in_zp) * in_scale)
    err = np.abs(F.dequantize(t, out_scale, out_zp) - ref)
    assert err.max() <= out_scale * (1 + 1e-9)
    # entries not at the clamp are correctly rounded (within half an LSB)
    inner = (t > -128) & (t < 127)
    assert (err[inner] <= out_scale * 0.5 + 1e-12).all()
    # lut_s8 indexes table[x + 128]
    x = np.array([[-128, 0, 127], [3, -3, 50]], dtype=np.int8)
    np.testing.assert_array_equal(P.lut_s8(x, t), t[x.astype(np.int64) + 128])


def test_make_lut_literal_and_scalar_fn():
    ident = P.make_lut(lambda v: v, 0.5, 0, 0.5, 0)
    np.testing.assert_array_equal(ident, np.arange(-128, 128, dtype=np.int8))
    # halving: codes/2 rounded half away from zero
    half = P.make_lut(lambda v: v, 0.5, 0, 1.0, 0)
    assert [int(half[c + 128]) for c in (-3, -1, 1, 3, 5)] == [-2, -1, 1, 2, 3]
    silu = P.make_lut(lambda v: v / (1 + math.exp(-v)), 0.05, 10, 0.03, -100)  # scalar-only fn
    codes = np.arange(-128, 128)
    real = (codes - 10) * 0.05
    ref = np.clip(F.round_half_away(real / (1 + np.exp(-real)) / 0.03) - 100, -128, 127)
    np.testing.assert_array_equal(silu, ref.astype(np.int8))


# ======================================================================================
# helpers and errors
# ======================================================================================


def test_quantize_dequantize_helpers():
    q = F.quantize(np.array([0.25, -0.25, 0.75, -0.75, 100.0, -100.0]), 0.5, 0)
    assert q.dtype == np.int8
    assert q.tolist() == [1, -1, 2, -2, 127, -128]  # ties away from zero, clamp
    assert F.quantize(np.array([0.0]), 0.1, -7).tolist() == [-7]
    np.testing.assert_allclose(F.dequantize(np.array([-7, 3]), 0.1, -7), [0.0, 1.0])
    pc = F.quantize(np.array([[1.0, 1.0]]), np.array([0.5, 0.25]), 0)
    assert pc.tolist() == [[2, 4]]


def test_conv_overflow_detected():
    x = np.full((1, 1, 1, 1), 127, np.int8)
    w = np.full((1, 1, 1, 1), 127, np.int8)
    with pytest.raises(OverflowError):
        I.conv_s8(x, w, np.array([INT32_MAX], np.int64), 0, 0, [HALF], [0])


def test_conv_speed_reasonable():
    import time

    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (1, 48, 48, 16)).astype(np.int8)
    w = rng.integers(-127, 128, (32, 3, 3, 16)).astype(np.int8)
    m, s = F.quantize_multiplier_per_channel(rng.uniform(1e-4, 1e-2, 32))
    t0 = time.perf_counter()
    y = I.conv_s8(x, w, None, 3, -1, m, s, 1, 1)
    assert y.shape == (1, 48, 48, 32)
    assert time.perf_counter() - t0 < 1.0
