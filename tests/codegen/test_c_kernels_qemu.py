"""The C runtime on emulated Cortex-M cores (QEMU), DSP and plain builds against the same vectors.

Random cases of every wrapper branch, the in-place depthwise, fully connected, avgpool and add
(``kernel_cases``) are written as C data with intops' outputs and the op table's scratch sizes
(``cases.c``); ``mcu/kernel_check.c`` runs them on the target with exactly that scratch and canary
bytes around it. Boards: ``mps2-an500`` (Cortex-M7) and ``mps2-an386`` (Cortex-M4) build the DSP
path with the real intrinsics, ``mps2-an385`` (Cortex-M3, no DSP extension) the plain path. Needs
``arm-none-eabi-gcc``, newlib's rdimon and ``qemu-system-arm`` (docs/testing.md: the C toolchain);
skips without them, fails without them on CI (``tests/toolchain_gate.py``). Built and run with
:mod:`tinyjax.codegen.emit.toolchain`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
    rand_act,
    weighted_case,
)
from toolchain_gate import MCU_TOOLS, require_tools

from tinyjax.codegen.emit import c_runtime, toolchain
from tinyjax.codegen.graph import Op
from tinyjax.codegen.numerics import intops, pointwise
from tinyjax.codegen.ops import OPS

MCU = Path(__file__).resolve().parent / "mcu"


def _array(name: str, a, ctype: str) -> str:
    values = ",".join(str(int(v)) for v in np.asarray(a).reshape(-1))
    return f"static const {ctype} {name}[] = {{{values}}};\n"


def _dims(shape) -> str:
    return "{" + ",".join(str(int(s)) for s in shape) + "}"


def _as4(shape) -> tuple[int, ...]:
    """NHWC as is; ``(n, features)`` as ``(n, 1, 1, features)``; a flat vector as ``(1, 1, 1, size)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4:
        return shape
    return (shape[0], 1, 1, shape[1]) if len(shape) == 2 else (1, 1, 1, shape[0])


def _tile(pair) -> str:
    y, x = pair
    return f"{{{int(x)},{int(y)}}}"   # cmsis_nn_tile is {w, h}


def _scratch(kind_record, op, in_shape, out_shape, **kw) -> dict[str, int]:
    return {f"scratch_{p}": kind_record.kernel(op, in_shape, out_shape, p, **kw)[2] for p in ("dsp", "plain")}


def make_cases(seed: int = 0, per_branch: int = 6) -> list[dict]:
    """The cases as dicts of ``kernel_case`` fields (arrays under ``input``, ``filter``, ...)."""
    rng = np.random.default_rng(seed)
    cases: list[dict] = []

    def one_batch(gen):       # the firmware passes dilation 1 and the op table plans one batch
        while True:
            c = gen()
            if c["x"].shape[0] == 1 and c["dilation"] == (1, 1):
                return c

    for i in range(per_branch * 4):
        c = one_batch(lambda i=i: conv_case(rng, CONV_BRANCHES[i % 4]))
        cases.append(dict(kind="CASE_CONV", c=c, expected=conv_reference(c),
                          **_scratch(OPS["conv"], conv_op(c), c["x"].shape, c["out_shape"])))
    for i in range(per_branch * 3):
        c = one_batch(lambda i=i: dw_case(rng, DW_BRANCHES[i % 3]))
        cases.append(dict(kind="CASE_DW", c=c, expected=dw_reference(c),
                          **_scratch(OPS["depthwise_conv"], dw_op(c), c["x"].shape, c["out_shape"])))
    for i in range(per_branch * 2):
        c = one_batch(lambda i=i: dw_case(rng, DW_BRANCHES[i % 2]))
        cases.append(dict(kind="CASE_DW_INPLACE", c=c, expected=dw_reference(c),
                          **_scratch(OPS["depthwise_conv"], dw_op(c), c["x"].shape, c["out_shape"],
                                     in_place=True)))
    for _ in range(per_branch * 2):
        c = inplace_dw_case(rng)
        if c["x"].size > 2048:          # wide planes: the host tests cover them
            continue
        cases.append(dict(kind="CASE_DW_INPLACE", c=c, expected=dw_reference(c),
                          **_scratch(OPS["depthwise_conv"], dw_op(c), c["x"].shape, c["out_shape"],
                                     in_place=True)))
    for _ in range(per_branch):
        n, n_in, n_out = int(rng.integers(1, 3)), int(rng.integers(1, 70)), int(rng.integers(1, 13))
        c = weighted_case(rng, (n, n_in), (n_out, n_in), n_out, n_in)
        c.update(filter_offset=int(rng.integers(-127, 129)), out_shape=(n, n_out))
        c["expected"] = intops.fully_connected_s8(c["x"], c["w"], c["bias"], c["input_offset"],
                                                  c["filter_offset"], c["output_offset"], c["mult"][0],
                                                  c["shift"][0], *c["act"])
        op = Op.make("fc", "dense", ["x"], in_features=n_in, out_features=n_out, act="none")
        cases.append(dict(kind="CASE_FC", c=c, expected=c["expected"],
                          **_scratch(OPS["dense"], op, (1, n_in), (1, n_out))))
    for _ in range(per_branch):
        h, w, ch = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.choice([1, 3, 4, 7, 16]))
        kernel = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = (int(rng.integers(0, kernel[0] // 2 + 1)), int(rng.integers(0, kernel[1] // 2 + 1)))
        x = rng.integers(-128, 128, size=(1, h, w, ch)).astype(np.int8)
        act = rand_act(rng, int(rng.integers(-128, 128)))
        expected = intops.avgpool_s8(x, kernel, stride, pad, *act)
        op = Op.make("pool", "avg_pool", ["x"], kernel=kernel, stride=stride, padding=pad)
        c = dict(x=x, w=None, kernel=kernel, stride=stride, padding=pad, act=act, out_shape=expected.shape)
        cases.append(dict(kind="CASE_AVGPOOL", c=c, expected=expected,
                          **_scratch(OPS["avg_pool"], op, x.shape, expected.shape)))
    for _ in range(per_branch):
        a, b, p, act = add_case(rng)
        expected = pointwise.elementwise_add_s8(a, b, **p._asdict(), act_min=act[0], act_max=act[1])
        c = dict(x=a, x2=b, add=p, act=act, out_shape=a.shape)
        cases.append(dict(kind="CASE_ADD", c=c, expected=expected, scratch_dsp=0, scratch_plain=0))
    return cases


def cases_c(cases: list[dict]) -> str:
    """C source defining ``kernel_cases`` and ``kernel_case_count`` (mcu/kernel_check.h)."""
    data, rows = [], []
    for i, case in enumerate(cases):
        c, kind = case["c"], case["kind"]
        f = {"kind": kind, "act": f"{{{c['act'][0]},{c['act'][1]}}}",
             "scratch_dsp": case["scratch_dsp"], "scratch_plain": case["scratch_plain"],
             "expected_size": case["expected"].size, "expected": f"e{i}", "input": f"x{i}"}
        data.append(_array(f"e{i}", case["expected"], "int8_t"))
        data.append(_array(f"x{i}", c["x"], "int8_t"))
        f["input_dims"], f["output_dims"] = _dims(_as4(c["x"].shape)), _dims(_as4(c["out_shape"]))
        if kind in ("CASE_CONV", "CASE_DW", "CASE_DW_INPLACE", "CASE_FC"):
            data.append(_array(f"w{i}", c["w"], "int8_t"))
            f["filter"] = f"w{i}"
            if c["bias"] is not None:
                data.append(_array(f"b{i}", c["bias"], "int32_t"))
                f["bias"] = f"b{i}"
            f.update(input_offset=c["input_offset"], output_offset=c["output_offset"])
        if kind in ("CASE_CONV", "CASE_DW", "CASE_DW_INPLACE"):
            data.append(_array(f"m{i}", c["mult"], "int32_t"))
            data.append(_array(f"s{i}", c["shift"], "int32_t"))
            f.update(multiplier=f"m{i}", shift=f"s{i}", stride=_tile(c["stride"]),
                     padding=_tile(c["padding"]), filter_dims=_dims(c["w"].shape),
                     ch_mult=c.get("ch_mult", 1))
        if kind == "CASE_FC":
            n_out, n_in = c["w"].shape
            f.update(filter_dims=_dims((n_in, 1, 1, n_out)), filter_offset=c["filter_offset"],
                     out_mult=int(c["mult"][0]), out_shift=int(c["shift"][0]))
        if kind == "CASE_AVGPOOL":
            f.update(filter_dims=_dims((1, *c["kernel"], 1)), stride=_tile(c["stride"]),
                     padding=_tile(c["padding"]))
        if kind == "CASE_ADD":
            p = c["add"]
            data.append(_array(f"y{i}", c["x2"], "int8_t"))
            f.update(input2=f"y{i}", input_offset=p.in1_offset, input2_offset=p.in2_offset,
                     output_offset=p.out_offset, in1_mult=p.in1_mult, in1_shift=p.in1_shift,
                     in2_mult=p.in2_mult, in2_shift=p.in2_shift, left_shift=p.left_shift,
                     out_mult=p.out_mult, out_shift=p.out_shift)
        rows.append("    {" + ", ".join(f".{k} = {v}" for k, v in f.items()) + "},\n")
    return ("/* written by test_c_kernels_qemu.py: random cases and intops' outputs */\n"
            "#include <stddef.h>\n#include \"kernel_check.h\"\n\n" + "".join(data)
            + "\nconst kernel_case kernel_cases[] = {\n" + "".join(rows) + "};\n"
            + f"const int32_t kernel_case_count = {len(cases)};\n")


@pytest.fixture(scope="module")
def cases_source(tmp_path_factory) -> tuple[Path, int]:
    cases = make_cases()
    path = tmp_path_factory.mktemp("mcu") / "cases.c"
    path.write_text(cases_c(cases))
    return path, len(cases)


@pytest.mark.parametrize("cpu", [pytest.param("cortex-m7", id="cortex-m7-dsp"),
                                 pytest.param("cortex-m4", id="cortex-m4-dsp"),
                                 pytest.param("cortex-m3", id="cortex-m3-plain")])
def test_kernels_are_bit_exact_on_an_emulated_cortex_m(cpu, cases_source, tmp_path):
    require_tools(*MCU_TOOLS)
    path_name = "dsp" if toolchain.CPUS[cpu].dsp else "plain"
    source, n_cases = cases_source
    elf = toolchain.build_mcu([*c_runtime.sources(), MCU / "kernel_check.c", source],
                              [MCU, c_runtime.include_dir()], tmp_path / "kernel_check.elf", cpu)
    run = toolchain.run_qemu(elf, cpu, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"tjx-mcu {path_name}: {n_cases} of {n_cases} cases passed" in run.stdout, run.stdout[-2000:]
