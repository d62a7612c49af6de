"""tinyjax's C runtime (``codegen/runtime``) against the numpy reference (``intops``), bit for bit.

The runtime is built twice with the project's strict warnings (``c_runtime_lib.build``): plain C,
and the DSP code path (Cortex-M4/M7's SIMD loops) with portable versions of its intrinsics
(``-DTJX_DSP_EMULATION``). Every kernel test runs on both (``rt`` fixture) over seeded random cases:
shapes, strides 1/2, padding, kernels 1/3/5/7, channel counts that are not multiples of 4, zero
points across the int8 range, per-channel shifts of both signs, activation clamps. Outputs and
scratch buffers carry canary bytes (a write outside them fails); scratch is exactly the op table's
size for the build's path, so a kernel needing more than the planner reserves fails too.

``test_the_suite_passes_under_the_sanitizers`` reruns this module in a subprocess against
AddressSanitizer+UBSan builds (the library is loaded by Python, so libasan is preloaded): the same
cases and references, no second copy of them in C.

A missing C compiler skips the module, except on CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from c_runtime_lib import (
    ARG_ERROR,
    SUCCESS,
    WARNINGS,
    Runtime,
    build,
    compiler,
    conv_params,
    dims,
    dw_params,
)
from kernel_cases import (
    CONV_BRANCHES,
    DW_BRANCHES,
    add_case,
    conv_case,
    conv_op,
    conv_reference,
    dw_case,
    dw_op,
    dw_reference,
    inplace_dw_case,
    out_size,
    rand_act,
    rand_scale,
    weighted_case,
)

from tinyjax.codegen.emit import c_runtime
from tinyjax.codegen.graph import Op
from tinyjax.codegen.numerics import fixedpoint, intops, pointwise
from tinyjax.codegen.ops import OPS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

SANITIZE = os.environ.get("TJX_C_SANITIZE") == "1"
PATHS = ("plain", "dsp")
#: (cases per test) in the default run, and in the slow sweep
QUICK, SWEEP = 40, 1500
CASES = [pytest.param(QUICK, id="quick"), pytest.param(SWEEP, id="sweep", marks=pytest.mark.slow)]


def require_compiler() -> str:
    """The host C compiler; skips when there is none, fails instead on CI (``CI=true``)."""
    cc = compiler()
    if cc is None:
        msg = f"no C compiler ({os.environ.get('CC', 'gcc')}) to build the C runtime"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: the C runtime must be tested)")
        pytest.skip(msg)
    return cc


@pytest.fixture(scope="module")
def libraries(tmp_path_factory) -> dict[str, Path]:
    cc = require_compiler()
    out = tmp_path_factory.mktemp("c_runtime")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = {p: pool.submit(build, out, dsp_emulation=p == "dsp", sanitize=SANITIZE, cc=cc) for p in PATHS}
        try:
            return {p: job.result() for p, job in jobs.items()}
        except subprocess.CalledProcessError as e:
            pytest.fail(f"the C runtime does not build cleanly with {' '.join(WARNINGS)}:\n{e.stderr}")


@pytest.fixture(scope="module", params=PATHS)
def rt(request, libraries) -> Runtime:
    return Runtime(libraries[request.param], request.param)


# --------------------------------------------------------------------------------------------
# random cases
# --------------------------------------------------------------------------------------------


class Visibility:
    """Counts outputs strictly inside the clamp, so a sweep that only saw saturated values (where a
    wrong accumulator would go unnoticed) fails."""

    def __init__(self):
        self.inside = self.total = self.positive_shift_inside = 0

    def add(self, out, act, shift=None):
        inside = (out > act[0]) & (out < act[1])
        self.inside += int(inside.sum())
        self.total += out.size
        if shift is not None:
            self.positive_shift_inside += int((inside & (np.asarray(shift) > 0)).sum())

    def check(self, min_fraction=0.3, positive_shifts=False):
        assert self.inside >= min_fraction * self.total, (self.inside, self.total)
        if positive_shifts:
            assert self.positive_shift_inside > 0, "no unsaturated output of a positive-shift channel"


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def test_each_build_runs_the_code_path_it_is_named_after(rt):
    assert rt.lib.tjx_runtime_uses_dsp() == (rt.path_name == "dsp")


def test_a_missing_compiler_fails_on_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CC", "tjx-no-such-compiler")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_compiler()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_compiler()


def test_the_runtime_is_package_data_of_codegen():
    names = {p.name for p in c_runtime.headers()}
    assert {"arm_nn_types.h", "arm_nnfunctions.h", "tjx_kernels.h"} <= names
    assert {p.name for p in c_runtime.sources()} >= {"arm_convolve_s8.c", "arm_depthwise_conv_s8.c",
                                                      "tjx_depthwise_conv_inplace_s8.c"}
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["tinyjax.codegen.emit"]
    shipped = {p for g in globs for p in c_runtime.RUNTIME_DIR.parent.glob(g)}
    assert set(c_runtime.headers()) | set(c_runtime.sources()) <= shipped


# --------------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------------


def run_conv(rt, fn, c, scratch, rng):
    args = {k: c[k] for k in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift", "act",
                              "out_shape")}
    return rt.conv(fn, **args, stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                   scratch=scratch, rng=rng)


@pytest.mark.parametrize("n_cases", CASES)
def test_conv_wrapper_dispatches_like_the_op_table_and_matches_intops(rt, n_cases):
    """Every case: the C wrapper picks the op table's kernel, asks the op table's scratch for the
    build's path, and with exactly that scratch writes intops.conv_s8's output; the kernel it
    picked, called directly, writes the same."""
    rng = np.random.default_rng(1)
    seen, vis = set(), Visibility()
    for i in range(n_cases):
        c = conv_case(rng, CONV_BRANCHES[i % 4])
        expected = conv_reference(c)
        x_shape, w_shape = c["x"].shape, c["w"].shape
        chosen = rt.conv_select(x_shape, w_shape, c["stride"], c["padding"], c["dilation"])
        if c["dilation"] == (1, 1):        # the op table knows no dilation; it plans one batch
            fn, call, scratch = OPS["conv"].kernel(conv_op(c), (1,) + x_shape[1:], (1,) + c["out_shape"][1:],
                                                   rt.path_name)
            assert (chosen, call) == (fn, "arm_convolve_wrapper_s8"), c
        else:
            assert chosen == "arm_convolve_s8"
            scratch = rt.size("arm_convolve_s8_get_buffer_size", dims(x_shape), dims(w_shape))
        params = conv_params(c["stride"], c["padding"], c["dilation"])
        assert rt.size("arm_convolve_wrapper_s8_get_buffer_size", params, dims(x_shape), dims(w_shape),
                       dims(c["out_shape"])) == scratch
        seen.add(chosen)
        status, out = run_conv(rt, "arm_convolve_wrapper_s8", c, scratch, rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}: {chosen}")
        status, out = run_conv(rt, chosen, c, scratch, rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}: {chosen} called directly")
        vis.add(expected, c["act"], c["shift"])
    assert seen == set(CONV_BRANCHES)
    vis.check(positive_shifts=True)


@pytest.mark.parametrize("n_cases", CASES)
def test_arm_convolve_s8_computes_every_geometry(rt, n_cases):
    """The general kernel on every case of every branch (1x1, 1xN, dilated, batched), with its
    own scratch size."""
    rng = np.random.default_rng(2)
    for i in range(n_cases):
        c = conv_case(rng, CONV_BRANCHES[i % 4])
        scratch = rt.size("arm_convolve_s8_get_buffer_size", dims(c["x"].shape), dims(c["w"].shape))
        status, out = run_conv(rt, "arm_convolve_s8", c, scratch, rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, conv_reference(c), err_msg=f"case {i}")


def test_arm_convolve_s8_runs_grouped_convolutions(rt):
    """filter_dims.c < C_in: groups of C_in / filter_dims.c input channels, each feeding its own
    C_out / groups outputs (the reference: one intops.conv_s8 per group)."""
    rng = np.random.default_rng(3)
    for _ in range(12):
        groups, kc, opg = int(rng.integers(2, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
        k, s = int(rng.choice([1, 3])), int(rng.choice([1, 2]))
        c = weighted_case(rng, (1, 6, 5, groups * kc), (groups * opg, k, k, kc), groups * opg, k * k * kc)
        p = k // 2
        expected = np.concatenate([
            intops.conv_s8(c["x"][..., g * kc:(g + 1) * kc], c["w"][g * opg:(g + 1) * opg],
                           None if c["bias"] is None else c["bias"][g * opg:(g + 1) * opg],
                           c["input_offset"], c["output_offset"], c["mult"][g * opg:(g + 1) * opg],
                           c["shift"][g * opg:(g + 1) * opg], stride=s, padding=p,
                           act_min=c["act"][0], act_max=c["act"][1]) for g in range(groups)], axis=-1)
        scratch = rt.size("arm_convolve_s8_get_buffer_size", dims(c["x"].shape), dims(c["w"].shape))
        args = {key: c[key] for key in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift",
                                        "act")}
        status, out = rt.conv("arm_convolve_s8", **args, stride=(s, s), padding=(p, p),
                              out_shape=expected.shape, scratch=scratch, rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected)


def test_arm_convolve_s8_upscales_its_input_with_zero_points(rt):
    """upscale_dims 2 reads the stored input as if a zero-point row (column) followed each row
    (column): the same as convolving the explicitly upscaled tensor."""
    rng = np.random.default_rng(4)
    for up in [(2, 2), (2, 1), (1, 2)]:
        for _ in range(4):
            c = weighted_case(rng, (1, 3, 4, 3), (4, 3, 3, 3), 4, 27)
            zp = -c["input_offset"]
            big = np.full((1, 3 * up[0], 4 * up[1], 3), zp, np.int8)
            big[:, ::up[0], ::up[1], :] = c["x"]
            expected = intops.conv_s8(big, c["w"], c["bias"], c["input_offset"], c["output_offset"],
                                      c["mult"], c["shift"], stride=1, padding=1, act_min=c["act"][0],
                                      act_max=c["act"][1])
            scratch = rt.size("arm_convolve_s8_get_buffer_size", dims(big.shape), dims(c["w"].shape))
            rt_args = {k: c[k] for k in ("w", "bias", "input_offset", "output_offset", "mult", "shift",
                                         "act")}
            # input_dims give the upscaled size; the data is the stored (small) tensor
            status, out = rt.conv("arm_convolve_s8", c["x"], **rt_args, stride=(1, 1), padding=(1, 1),
                                  out_shape=expected.shape, scratch=scratch, upscale=up, in_shape=big.shape,
                                  rng=rng)
            assert status == SUCCESS
            np.testing.assert_array_equal(out, expected)


def test_conv_kernels_reject_what_cmsis_nn_rejects(rt):
    rng = np.random.default_rng(5)
    c = weighted_case(rng, (1, 4, 4, 4), (3, 1, 1, 4), 3, 4)
    base = {k: c[k] for k in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift", "act")}

    def status(fn, stride=(1, 1), padding=(0, 0), out_shape=(1, 4, 4, 3), scratch=0, **kw):
        args = {**base, **kw}
        return rt.conv(fn, **args, stride=stride, padding=padding, out_shape=out_shape, scratch=scratch)[0]

    assert status("arm_convolve_1x1_s8_fast", padding=(0, 1), out_shape=(1, 4, 6, 3)) == ARG_ERROR
    assert status("arm_convolve_1x1_s8_fast", stride=(2, 2), out_shape=(1, 2, 2, 3)) == ARG_ERROR
    assert status("arm_convolve_1x1_s8", padding=(1, 0), out_shape=(1, 6, 4, 3)) == ARG_ERROR
    assert status("arm_convolve_1x1_s8", stride=(2, 2), out_shape=(1, 2, 2, 3)) == SUCCESS
    assert status("arm_convolve_s8") == ARG_ERROR                      # no scratch buffer
    assert status("arm_convolve_s8", scratch=15) == ARG_ERROR          # smaller than asked (2·4·int16)
    assert status("arm_convolve_s8", scratch=16) == SUCCESS
    # groups: C_in 4 over filter channels 3 is not a whole number of groups; C_out 3 over 2 groups
    assert status("arm_convolve_s8", scratch=64, w=np.zeros((3, 1, 1, 3), np.int8)) == ARG_ERROR
    assert status("arm_convolve_s8", scratch=64, w=np.zeros((3, 1, 1, 2), np.int8)) == ARG_ERROR
    row = {**base, "x": c["x"][:, :1]}
    assert rt.conv("arm_convolve_1_x_n_s8", **row, stride=(1, 1), padding=(0, 0), out_shape=(1, 1, 4, 3),
                   scratch=0)[0] == ARG_ERROR                          # needs its buffer
    assert status("arm_convolve_1_x_n_s8", scratch=64) == ARG_ERROR    # input height 4
    odd = {**base, "x": c["x"][:, :1, :, :3], "w": c["w"][..., :3]}    # stride.w * C_in = 3
    assert rt.conv("arm_convolve_1_x_n_s8", **odd, stride=(1, 1), padding=(0, 0), out_shape=(1, 1, 4, 3),
                   scratch=64)[0] == ARG_ERROR


# --------------------------------------------------------------------------------------------
# depthwise convolution
# --------------------------------------------------------------------------------------------


def run_dw(rt, fn, c, scratch, rng):
    args = {k: c[k] for k in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift", "ch_mult",
                              "act", "out_shape")}
    return rt.depthwise(fn, **args, stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                        scratch=scratch, rng=rng)


@pytest.mark.parametrize("n_cases", CASES)
def test_depthwise_wrapper_dispatches_like_the_op_table_and_matches_intops(rt, n_cases):
    rng = np.random.default_rng(6)
    seen, vis = set(), Visibility()
    for i in range(n_cases):
        c = dw_case(rng, DW_BRANCHES[i % 3])
        expected = dw_reference(c)
        x_shape, w_shape = c["x"].shape, c["w"].shape
        chosen = rt.dw_select(x_shape, w_shape, c["ch_mult"], c["stride"], c["padding"], c["dilation"])
        if c["dilation"] == (1, 1) and x_shape[0] == 1:
            fn, call, scratch = OPS["depthwise_conv"].kernel(dw_op(c), x_shape, c["out_shape"], rt.path_name)
            assert (chosen, call) == (fn, "arm_depthwise_conv_wrapper_s8"), c
        else:
            assert chosen == "arm_depthwise_conv_s8"
            scratch = 0
        params = dw_params(c["ch_mult"], c["stride"], c["padding"], c["dilation"])
        assert rt.size("arm_depthwise_conv_wrapper_s8_get_buffer_size", params, dims(x_shape), dims(w_shape),
                       dims(c["out_shape"])) == scratch
        seen.add(chosen)
        status, out = run_dw(rt, "arm_depthwise_conv_wrapper_s8", c, scratch, rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}: {chosen}")
        status, out = run_dw(rt, chosen, c, scratch, rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}: {chosen} called directly")
        if c["ch_mult"] == 1:   # the generic kernel computes every ch_mult 1 case too
            status, out = run_dw(rt, "arm_depthwise_conv_s8", c, 0, rng)
            assert status == SUCCESS
            np.testing.assert_array_equal(out, expected, err_msg=f"case {i}: generic")
        vis.add(expected, c["act"], c["shift"])
    assert seen == set(DW_BRANCHES)
    vis.check(positive_shifts=True)


def test_depthwise_kernels_reject_what_cmsis_nn_rejects(rt):
    rng = np.random.default_rng(7)
    c = dw_case(rng, "arm_depthwise_conv_s8", ch_mult=2)
    c.update(padding=(0, 0), stride=(1, 1))
    assert run_dw(rt, "arm_depthwise_conv_3x3_s8", c, 0, rng)[0] == ARG_ERROR    # ch_mult 2
    assert run_dw(rt, "arm_depthwise_conv_s8_opt", c, 4096, rng)[0] == ARG_ERROR  # ch_mult 2
    c = dw_case(rng, "arm_depthwise_conv_s8_opt")
    c3 = dw_case(rng, "arm_depthwise_conv_3x3_s8")
    wide = {**c3, "padding": (1, 2), "out_shape": c3["out_shape"][:2]
            + (out_size(c3["x"].shape[2], 3, c3["stride"][1], 2),) + c3["out_shape"][3:]}
    assert run_dw(rt, "arm_depthwise_conv_3x3_s8", wide, 0, rng)[0] == ARG_ERROR  # padding.w 2
    if c["w"].shape[1:3] != (3, 3):
        assert run_dw(rt, "arm_depthwise_conv_3x3_s8", c, 0, rng)[0] == ARG_ERROR
    # the opt kernel needs its buffer exactly when it has a size (DSP path)
    needs = rt.size("arm_depthwise_conv_s8_opt_get_buffer_size", dims(c["x"].shape), dims(c["w"].shape))
    assert (needs > 0) == (rt.path_name == "dsp")
    assert run_dw(rt, "arm_depthwise_conv_s8_opt", c, 0, rng)[0] == (ARG_ERROR if needs else SUCCESS)


# --------------------------------------------------------------------------------------------
# in-place depthwise
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_cases", CASES)
def test_inplace_depthwise_writes_the_output_over_its_input_and_nothing_else(rt, n_cases):
    """The data buffer ends with intops' output in its first OH*OW*C bytes and the input's own bytes
    after them; canaries around the buffer and around the OH*OW temporary (exactly the op table's
    in-place scratch) are untouched."""
    rng = np.random.default_rng(8)
    for i in range(n_cases):
        c = dw_case(rng, DW_BRANCHES[i % 2])        # ch_mult 1, one batch
        if rng.random() < 0.2:
            c = dw_case(rng, "arm_depthwise_conv_s8", ch_mult=1)
            if c["x"].shape[0] != 1 or c["ch_mult"] != 1:
                continue
        expected = dw_reference(c)
        if c["dilation"] == (1, 1):
            _, _, scratch = OPS["depthwise_conv"].kernel(dw_op(c), c["x"].shape, c["out_shape"], rt.path_name,
                                                         in_place=True)
        else:
            scratch = int(np.prod(c["out_shape"][1:3]))
        assert rt.size("tjx_depthwise_conv_inplace_s8_get_buffer_size", dims(c["out_shape"])) == scratch
        args = {k: c[k] for k in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift", "act",
                                  "out_shape")}
        status, out, data, _ = rt.depthwise_inplace(**args, stride=c["stride"], padding=c["padding"],
                                                    dilation=c["dilation"], scratch=scratch, rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}")
        rest = data.array[expected.size:]
        np.testing.assert_array_equal(rest, c["x"].reshape(-1)[expected.size:expected.size + rest.size])


@pytest.mark.parametrize("n_cases", CASES)
def test_inplace_depthwise_fast_paths_and_fallbacks(rt, n_cases):
    """inplace_dw_case's cases (every DSP span, requantisation mode and fallback): bit exact, the
    rest of the buffer untouched, canaries intact."""
    rng = np.random.default_rng(18)
    for i in range(2 * n_cases):
        c = inplace_dw_case(rng)
        expected = dw_reference(c)
        _, _, scratch = OPS["depthwise_conv"].kernel(dw_op(c), c["x"].shape, c["out_shape"], rt.path_name,
                                                     in_place=True)
        assert scratch == int(np.prod(c["out_shape"][1:3]))
        args = {k: c[k] for k in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift", "act",
                                  "out_shape")}
        status, out, data, _ = rt.depthwise_inplace(**args, stride=c["stride"], padding=c["padding"],
                                                    dilation=c["dilation"], scratch=scratch, rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}")
        rest = data.array[expected.size:]
        np.testing.assert_array_equal(rest, c["x"].reshape(-1)[expected.size:expected.size + rest.size])


def test_inplace_depthwise_rejects_what_it_cannot_do_in_place(rt):
    rng = np.random.default_rng(9)
    c = dw_case(rng, "arm_depthwise_conv_3x3_s8")
    args = {k: c[k] for k in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift", "act",
                              "out_shape")}
    geo = dict(stride=c["stride"], padding=c["padding"], rng=rng)
    small = int(np.prod(c["out_shape"][1:3])) - 1
    assert rt.depthwise_inplace(**args, **geo, scratch=small)[0] == ARG_ERROR
    assert rt.depthwise_inplace(**args, **geo)[0] == SUCCESS
    two = {**args, "x": np.concatenate([c["x"]] * 2), "out_shape": (2,) + c["out_shape"][1:]}
    assert rt.depthwise_inplace(**two, **geo)[0] == ARG_ERROR          # two batches
    m = dw_case(rng, "arm_depthwise_conv_s8", ch_mult=2)
    if m["x"].shape[0] == 1 and m["ch_mult"] == 2:
        margs = {k: m[k] for k in ("x", "w", "bias", "input_offset", "output_offset", "mult", "shift", "act",
                                   "out_shape")}
        assert rt.depthwise_inplace(**margs, stride=m["stride"], padding=m["padding"],
                                    dilation=m["dilation"], rng=rng)[0] == ARG_ERROR


# --------------------------------------------------------------------------------------------
# fully connected, requantisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_cases", CASES)
def test_fully_connected_matches_intops(rt, n_cases):
    rng = np.random.default_rng(10)
    vis = Visibility()
    for i in range(n_cases):
        n, n_in, n_out = int(rng.integers(1, 4)), int(rng.integers(1, 41)), int(rng.integers(1, 13))
        c = weighted_case(rng, (n, n_in), (n_out, n_in), n_out, n_in)
        w_zp = 0 if i % 2 else int(rng.integers(-127, 128))     # the op table's dense uses 0
        c["mult"], c["shift"] = c["mult"][0], c["shift"][0]
        expected = intops.fully_connected_s8(c["x"], c["w"], c["bias"], c["input_offset"], -w_zp,
                                             c["output_offset"], c["mult"], c["shift"], *c["act"])
        status, out = rt.fully_connected(c["x"], c["w"], c["bias"], c["input_offset"], -w_zp,
                                         c["output_offset"], c["mult"], c["shift"], act=c["act"], rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}")
        vis.add(expected, c["act"])
    vis.check()


@pytest.mark.parametrize("n_cases", [pytest.param(120, id="quick"),
                                     pytest.param(3000, id="sweep", marks=pytest.mark.slow)])
def test_requantisation_rounds_like_intops_for_every_shift(rt, n_cases):
    """arm_nn_requantize through a fully connected layer whose accumulator is its bias (zero
    weights): shifts -31..+8, any positive multiplier, accumulators aimed at visible outputs (so
    ties of both roundings are hit) and some whose left shift wraps, compared with
    fixedpoint.requantize directly."""
    rng = np.random.default_rng(11)
    n_out = 64
    x = np.zeros((1, 1), np.int8)
    w = np.zeros((n_out, 1), np.int8)
    for i in range(n_cases):
        shift = int(-31 + i % 40)
        mult = int(np.exp(rng.uniform(0, math.log(2**31 - 1))))
        target = rng.uniform(-120, 120, n_out)
        acc = np.round(target * 2.0**31 / (mult * 2.0**shift)) + rng.integers(-3, 4, n_out)
        # every other case lets ``acc << shift`` wrap around int32, as the C does (and intops)
        limit = 2**31 - 1 if shift <= 0 or i % 2 else (2**31 - 1) >> shift
        acc = np.clip(acc, -limit, limit).astype(np.int64)
        if i % 2 and shift > 0:
            acc[::4] = rng.integers(-(2**31), 2**31, size=acc[::4].size)
        acc = acc.astype(np.int32)
        expected = np.clip(fixedpoint.requantize(acc, mult, shift), -128, 127).astype(np.int8)
        status, out = rt.fully_connected(x, w, acc, 0, 0, 0, mult, shift, rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out[0], expected, err_msg=f"multiplier {mult}, shift {shift}")


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_cases", CASES)
def test_avgpool_matches_intops_with_the_op_tables_scratch(rt, n_cases):
    rng = np.random.default_rng(12)
    for i in range(n_cases):
        n, h, w, ch = int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9)), \
            int(rng.choice([1, 2, 3, 4, 5, 8, 13]))
        if i % 4 == 0:
            kernel, stride, pad = (h, w), (1, 1), (0, 0)     # global pool
        else:
            kernel = (int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1)))
            stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            pad = (int(rng.integers(0, kernel[0] // 2 + 1)), int(rng.integers(0, kernel[1] // 2 + 1)))
        x = rng.integers(-128, 128, size=(n, h, w, ch)).astype(np.int8)
        act = rand_act(rng, int(rng.integers(-128, 128)))
        expected = intops.avgpool_s8(x, kernel, stride, pad, *act)
        op = Op.make("pool", "avg_pool", ["x"], kernel=kernel, stride=stride, padding=pad)
        _, _, scratch = OPS["avg_pool"].kernel(op, x.shape, expected.shape, rt.path_name)
        assert rt.size("arm_avgpool_s8_get_buffer_size", expected.shape[2], ch) == scratch
        status, out = rt.avgpool(x, kernel, stride, pad, act, out_shape=expected.shape, scratch=scratch,
                                 rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected, err_msg=f"case {i}")


def test_avgpool_rejects_windows_in_the_padding_and_empty_batches(rt):
    x = np.ones((1, 2, 2, 3), np.int8)
    scratch = rt.size("arm_avgpool_s8_get_buffer_size", 4, 3)
    # 1x1 windows with padding 1: the corners of the 4x4 output see no input cell
    assert rt.avgpool(x, (1, 1), (1, 1), (1, 1), out_shape=(1, 4, 4, 3), scratch=scratch)[0] == ARG_ERROR
    assert rt.avgpool(x[:0], (1, 1), (1, 1), (0, 0), out_shape=(0, 2, 2, 3), scratch=scratch)[0] == ARG_ERROR
    status = rt.avgpool(x, (2, 2), (1, 1), (0, 0), out_shape=(1, 1, 1, 3), scratch=0)[0]
    assert status == (ARG_ERROR if rt.path_name == "dsp" else SUCCESS)   # the DSP path sums in its buffer


# --------------------------------------------------------------------------------------------
# elementwise: add, channel gate, table, pad
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_cases", CASES)
def test_elementwise_add_matches_intops_with_tflites_left_shift(rt, n_cases):
    rng = np.random.default_rng(13)
    vis = Visibility()
    for i in range(n_cases):
        a, b, p, act = add_case(rng)
        expected = pointwise.elementwise_add_s8(a, b, **p._asdict(), act_min=act[0], act_max=act[1])
        for in_place in (None, 0, 1):
            status, out = rt.add(a, b, p, act, in_place=in_place, rng=rng)
            assert status == SUCCESS
            np.testing.assert_array_equal(out, expected, err_msg=f"case {i}, in place over {in_place}")
        vis.add(expected, act)
    vis.check()


@pytest.mark.parametrize("left_shift", [0, 7, 15, 16, 24, 31])
def test_elementwise_add_is_exact_for_any_left_shift_on_both_paths(rt, left_shift):
    """CMSIS-NN's DSP loop is only right for left shifts >= 16 (docs/deployment.md); tinyjax's is right
    for all. The multipliers are random, as TFLite's parameters assume a shift of 20."""
    rng = np.random.default_rng(14)
    for _ in range(40):
        a, b, p, act = add_case(rng, left_shift)
        m = rng.integers(1 << 30, 1 << 31, size=3)
        s = rng.integers(-28, 1, size=3)
        p = p._replace(in1_mult=int(m[0]), in1_shift=int(s[0]), in2_mult=int(m[1]), in2_shift=int(s[1]),
                       out_mult=int(m[2]), out_shift=int(s[2]))
        try:
            expected = pointwise.elementwise_add_s8(a, b, **p._asdict(), act_min=act[0], act_max=act[1])
        except OverflowError:     # the sum of the rescaled inputs leaves int32: the C would wrap
            continue
        status, out = rt.add(a, b, p, act, rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("n_cases", CASES)
def test_channel_mul_matches_intops_broadcasting_the_gate(rt, n_cases):
    rng = np.random.default_rng(15)
    vis = Visibility()
    for i in range(n_cases):
        shape = tuple(int(v) for v in rng.integers((1, 1, 1, 1), (3, 6, 6, 18)))
        z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
        p = pointwise.mul_quant_params(rand_scale(rng), z1, rand_scale(rng) / 8, z2, rand_scale(rng), zo)
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        gate = rng.integers(-128, 128, size=(shape[0], 1, 1, shape[3])).astype(np.int8)
        act = rand_act(rng, zo)
        expected = pointwise.elementwise_mul_s8(x, gate, **p._asdict(), act_min=act[0], act_max=act[1])
        for in_place in (False, True):
            status, out = rt.channel_mul(x, gate, p, act, in_place=in_place, rng=rng)
            assert status == SUCCESS
            np.testing.assert_array_equal(out, expected, err_msg=f"case {i}, in place {in_place}")
        vis.add(expected, act)
    vis.check(min_fraction=0.2)


def test_lut_maps_every_code_through_its_table_in_place_or_not(rt):
    rng = np.random.default_rng(16)
    table = rng.integers(-128, 128, size=256).astype(np.int8)
    x = np.concatenate([np.arange(-128, 128), rng.integers(-128, 128, size=77)]).astype(np.int8)
    for in_place in (False, True):
        status, out = rt.lut(x, table, in_place=in_place, rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, pointwise.lut_s8(x, table))
    assert rt.lib.tjx_lut_s8(x.ctypes.data, table.ctypes.data, x.ctypes.data, -1) == ARG_ERROR


def test_pad_surrounds_the_input_with_the_pad_value(rt):
    rng = np.random.default_rng(17)
    for _ in range(30):
        x = rng.integers(-128, 128, size=(int(rng.integers(1, 3)), int(rng.integers(1, 6)),
                                          int(rng.integers(1, 6)), int(rng.integers(1, 7)))).astype(np.int8)
        padding = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(2))
        value = int(rng.integers(-128, 128))
        status, out = rt.pad(x, padding, value, rng=rng)
        assert status == SUCCESS
        np.testing.assert_array_equal(out, np.pad(x, ((0, 0), *padding, (0, 0)), constant_values=value))
    assert rt.pad(x, ((1, 0), (0, 0)), 0, out_shape=x.shape)[0] == ARG_ERROR     # not the padded shape
    assert rt.pad(x, ((0, 0), (0, 0)), 128)[0] == ARG_ERROR                       # not an int8 code
    assert rt.pad(x, ((-1, 1), (0, 0)), 0, out_shape=x.shape)[0] == ARG_ERROR


# --------------------------------------------------------------------------------------------
# scratch sizes: every path's numbers against the op table
# --------------------------------------------------------------------------------------------


def test_buffer_sizes_equal_the_op_tables_on_every_path(rt):
    """``*_get_buffer_size`` answers for the build's path; ``*_dsp`` and ``*_mve`` for theirs, on any
    build: each equals the op table's ``kernel()`` scratch for the same shapes."""
    rng = np.random.default_rng(18)
    build_path = rt.path_name
    for i in range(300):
        c = conv_case(rng, CONV_BRANCHES[i % 4])
        if c["dilation"] != (1, 1):
            continue
        x1, o1 = (1,) + c["x"].shape[1:], (1,) + c["out_shape"][1:]     # the op table plans one batch
        params, x_d, w_d, o_d = conv_params(c["stride"], c["padding"]), dims(x1), dims(c["w"].shape), dims(o1)
        for suffix, path in (("", build_path), ("_dsp", "dsp"), ("_mve", "mve")):
            want = OPS["conv"].kernel(conv_op(c), x1, o1, path)[2]
            got = rt.size("arm_convolve_wrapper_s8_get_buffer_size" + suffix, params, x_d, w_d, o_d)
            assert got == want, (suffix, c["x"].shape, c["w"].shape, c["stride"], c["padding"])
    for i in range(300):
        c = dw_case(rng, DW_BRANCHES[i % 3])
        if i % 7 == 0:                                  # one input channel: MVE runs it as a conv
            c = dw_case(rng, "arm_depthwise_conv_s8")
            c["x"] = c["x"][..., :1]
            c["w"] = c["w"][..., :c["ch_mult"]]
            c["out_shape"] = c["out_shape"][:3] + (c["ch_mult"],)
        if c["dilation"] != (1, 1) or c["x"].shape[0] != 1:
            continue
        params = dw_params(c["ch_mult"], c["stride"], c["padding"], c["dilation"])
        for suffix, path in (("", build_path), ("_dsp", "dsp"), ("_mve", "mve")):
            want = OPS["depthwise_conv"].kernel(dw_op(c), c["x"].shape, c["out_shape"], path)[2]
            got = rt.size("arm_depthwise_conv_wrapper_s8_get_buffer_size" + suffix, params,
                          dims(c["x"].shape), dims(c["w"].shape), dims(c["out_shape"]))
            assert got == want, (suffix, c["x"].shape, c["w"].shape, c["stride"], c["padding"])
    for n_in, n_out in [(1, 1), (7, 10), (1280, 1000)]:
        op = Op.make("fc", "dense", ["x"], in_features=n_in, out_features=n_out, act="none")
        for suffix, path in (("", build_path), ("_dsp", "dsp"), ("_mve", "mve")):
            want = OPS["dense"].kernel(op, (1, n_in), (1, n_out), path)[2]
            assert rt.size("arm_fully_connected_s8_get_buffer_size" + suffix, dims((n_in, n_out))) == want
    for ch, ow in [(1, 1), (13, 4), (320, 1)]:
        op = Op.make("pool", "avg_pool", ["x"], kernel=(2, 2), stride=(2, 2), padding=(0, 0))
        for suffix, path in (("", build_path), ("_dsp", "dsp"), ("_mve", "mve")):
            want = OPS["avg_pool"].kernel(op, (1, 2 * ow, 2 * ow, ch), (1, ow, ow, ch), path)[2]
            assert rt.size("arm_avgpool_s8_get_buffer_size" + suffix, ow, ch) == want


def test_per_kernel_buffer_sizes_are_cmsis_nns(rt):
    x, w = dims((1, 5, 5, 7)), dims((3, 3, 3, 7))
    assert rt.size("arm_convolve_s8_get_buffer_size", x, w) == 2 * 64 * 2      # 2 · align4(63) · int16
    assert rt.size("arm_convolve_1_x_n_s8_get_buffer_size", conv_params(), x, w, x) == 256
    assert rt.size("arm_convolve_1x1_s8_fast_get_buffer_size", x) == 0
    want_opt = 7 * 9 * 2 if rt.path_name == "dsp" else 0
    assert rt.size("arm_depthwise_conv_s8_opt_get_buffer_size", x, dims((1, 3, 3, 7))) == want_opt


# --------------------------------------------------------------------------------------------
# sanitizers, cross compilers
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(SANITIZE, reason="this is the sanitizer run")
def test_the_suite_passes_under_the_sanitizers(tmp_path):
    """This module again, in a subprocess, on ASan+UBSan builds of both paths (quick cases)."""
    cc = require_compiler()
    libasan = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not os.path.isabs(libasan):
        msg = f"{cc} has no AddressSanitizer runtime"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    env = {**os.environ, "TJX_C_SANITIZE": "1", "LD_PRELOAD": libasan,
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    # --capture=sys: a sanitizer's report (written to fd 2) survives the abort; no faulthandler:
    # the report, not Python's traceback of the abort, ends the output
    cmd = [sys.executable, "-m", "pytest", __file__, "-q", "-x", "-m", "not slow", "--capture=sys",
           "-p", "no:cacheprovider", "-p", "no:faulthandler", f"--basetemp={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    out = proc.stdout + proc.stderr
    reports = [line for line in out.splitlines() if "Sanitizer" in line or "runtime error:" in line]
    assert proc.returncode == 0, "\n".join(reports[:20]) + "\n...\n" + out[-4000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout, out[-4000:]


ARM_CPUS = {"cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
            "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
            "cortex-m3": ["-mcpu=cortex-m3"]}


@pytest.mark.skipif(SANITIZE, reason="no cross build in the sanitizer run")
@pytest.mark.parametrize("cpu", sorted(ARM_CPUS))
def test_the_runtime_cross_compiles_for_cortex_m(cpu, tmp_path):
    """arm-none-eabi-gcc builds every source with -Werror; on M4/M7 the DSP paths are compiled (the
    objects hold SMLAD), on M3 (no DSP extension) the plain ones."""
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        pytest.skip("arm-none-eabi-gcc is not installed (docs/testing.md: the C toolchain)")
    objs = []
    for src in c_runtime.sources():
        obj = tmp_path / (src.stem + ".o")
        cmd = [cc, *ARM_CPUS[cpu], "-mthumb", "-O2", *WARNINGS, "-I", str(c_runtime.include_dir()), "-c",
               str(src), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        objs.append(obj)
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump:
        disasm = subprocess.run([objdump, "-d", *map(str, objs)], capture_output=True, text=True).stdout
        assert ("smlad" in disasm) == (cpu != "cortex-m3")
        assert ("smlabb" in disasm) == (cpu != "cortex-m3")
