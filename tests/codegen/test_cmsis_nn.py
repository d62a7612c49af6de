"""Linking Arm's CMSIS-NN: the export's Makefile with ``CMSIS_NN=``, and the ``cmsis-nn`` kernel set.

Offline (the default suite): a stand-in checkout laid out like Arm's (``Include/``, ``Source/*/``)
holding tinyjax's own CMSIS-NN-API files, an extra Arm-only marker function, and float sources that
cannot compile (as Arm's ``*_f16.c`` do not without ``ARM_NN_ENABLE_F16``). With it: the float
files are left out, switching ``CMSIS_NN`` or ``EXTRA_CFLAGS`` in a built folder rebuilds it (and
an unchanged command does not), the check program names its kernels, the sanitize build drops
only the shift-base check and only in Arm's sources; the ``cmsis-nn`` kernel set plans depthwise
out of place and calls nothing but CMSIS-NN's API, and refuses networks CMSIS-NN cannot run.

With Arm's real library (``slow``; skipped, with the reason, unless ``TINYJAX_CMSIS_NN`` points at a
checkout of its default branch and ``TINYJAX_CMSIS_NN_V7`` at one of tag v7.0.0; CI has neither,
docs/testing.md says how to get them): the issue's sequence on ``mcunet_in1`` in one folder, and
``cmsis-nn`` exports of ``mcunet_in1`` and ``mcunet_in2`` on QEMU's Cortex-M4 and M7.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from export_support import export, make, random_qmodel
from family_specs import FAMILIES
from toolchain_gate import require_tools

from tinyjax.codegen.emit import c_runtime
from tinyjax.codegen.emit.emitter import emit, tjx_functions
from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.plan.graph_plan import plan_graph
from tinyjax.errors import PlanError
from tinyjax.zoo import get_spec

MARKER = "arm_nn_stand_in_marker"
NEGATIVE_SHIFT = "arm_nn_stand_in_negative_shift"


def kernels_line(stdout: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ": kernels: " in ln]
    assert len(lines) == 1, stdout
    return lines[0]


def symbols(binary: Path, nm: str = "nm") -> set[str]:
    out = subprocess.run([nm, str(binary)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()}


def assert_bit_exact(r, images: int) -> None:
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{images} images, {images} bit-exact, 0 failed, 0 with writes outside the arena" in r.stdout


# -- a stand-in checkout --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> Path:
    """A folder laid out like a CMSIS-NN checkout, a git repository tagged v7.0.0 when git is there."""
    root = tmp_path_factory.mktemp("stand-in") / "CMSIS-NN"
    rt = c_runtime.RUNTIME_DIR
    (root / "Include").mkdir(parents=True)
    for name in ("arm_nnfunctions.h", "arm_nn_types.h"):
        shutil.copy(rt / "include" / name, root / "Include" / name)
    conv, basic, support = (root / "Source" / d for d in ("ConvolutionFunctions", "BasicMathFunctions",
                                                          "NNSupportFunctions"))
    for d in (conv, basic, support):
        d.mkdir(parents=True)
    for src in sorted((rt / "src").glob("arm_*.c")):
        shutil.copy(src, (conv if "conv" in src.name else basic) / src.name)
    # an Arm-only internal, and a negative left shift run before main (UBSan's shift-base)
    (support / "arm_nn_stand_in_s8.c").write_text(
        "#include <stdint.h>\n"
        f"int32_t {MARKER}(void);\n"
        f"int32_t {MARKER}(void) {{ return 7; }}\n"
        "volatile int32_t stand_in_value = -29;\n"
        "volatile int32_t stand_in_shifted;\n"
        f"void {NEGATIVE_SHIFT}(void) __attribute__((constructor));\n"
        f"void {NEGATIVE_SHIFT}(void) {{ stand_in_shifted = stand_in_value << 20; }}\n")
    # float sources as on Arm's default branch: they do not compile in an int8 build
    (basic / "arm_elementwise_add_f16.c").write_text("float16_t broken_without_arm_nn_enable_f16;\n")
    (basic / "arm_elementwise_add_f32.c").write_text("#error float32 extension built\n")
    (support / "arm_nntables_flt.c").write_text("#error float tables built\n")
    git = shutil.which("git")
    if git:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
        for cmd in (["init", "-q"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "stand-in"],
                    ["tag", "v7.0.0"]):
            subprocess.run([git, "-C", str(root), *cmd], check=True, capture_output=True, env=env)
    return root


@pytest.fixture(scope="module")
def small_export(tmp_path_factory) -> Path:
    """A small MCUNet-like network (in-place depthwise, adds) exported for cortex-m7, 2 vectors."""
    qm, rng = random_qmodel(FAMILIES["mcunet"](3))
    out = tmp_path_factory.mktemp("export") / "net"
    export(qm, out, rng=rng, n=2)
    return out


def test_switching_cmsis_nn_or_extra_cflags_in_a_built_folder_rebuilds(small_export, stand_in, tmp_path):
    require_tools("gcc", "make")
    out = tmp_path / "net"
    shutil.copytree(small_export, out)
    binary = out / "build/host/model_check"

    r = make(out, "check-host")
    assert_bit_exact(r, 2)
    assert "kernels: tinyjax's kernels" in kernels_line(r.stdout)
    assert MARKER not in symbols(binary) and "arm_convolve_wrapper_s8" in symbols(binary)

    # the same folder with "Arm's" library: rebuilt, its float files left out, its internals linked
    r = make(out, "check-host", CMSIS_NN=stand_in)
    assert_bit_exact(r, 2)
    line = kernels_line(r.stdout)
    assert f"Arm's CMSIS-NN {'v7.0.0' if shutil.which('git') else '(version unknown'}" in line, line
    assert str(stand_in) in line and "tjx_depthwise_conv_inplace_s8" in line, line
    assert MARKER in symbols(binary)
    built = binary.stat().st_mtime_ns

    # the same command again: nothing to rebuild
    assert_bit_exact(make(out, "check-host", CMSIS_NN=stand_in), 2)
    assert binary.stat().st_mtime_ns == built

    # other flags: rebuilt with them (the canary build has guard bands instead of the arena symbol)
    r = make(out, "check-host", CMSIS_NN=stand_in, EXTRA_CFLAGS="-DTJX_CANARY")
    assert_bit_exact(r, 2)
    assert binary.stat().st_mtime_ns != built
    assert "model_arena" not in symbols(binary)
    assert "-DTJX_CANARY" in (out / "build/host/built_from.h").read_text()

    # back to tinyjax's kernels: no object of Arm's build stays behind
    r = make(out, "check-host")
    assert_bit_exact(r, 2)
    assert "tinyjax's kernels" in kernels_line(r.stdout) and MARKER not in symbols(binary)
    assert "model_arena" in symbols(binary)


def test_sanitize_leaves_out_only_the_shift_base_check_and_only_in_arms_sources(small_export, stand_in,
                                                                                tmp_path):
    require_tools("gcc", "make")
    out = tmp_path / "net"
    shutil.copytree(small_export, out)
    r = subprocess.run(["make", "-C", str(out), "check-sanitize", f"CMSIS_NN={stand_in}"],
                       capture_output=True, text=True, env={**os.environ, "MAKEFLAGS": ""})
    # the stand-in's constructor shifts -29 left before main: UBSan would stop the run
    assert_bit_exact(r, 2)
    assert "note: Arm's CMSIS-NN sources are built with -fno-sanitize=shift-base" in r.stdout
    assert "Arm's sources built with -fno-sanitize=shift-base" in kernels_line(r.stdout)
    compiles = [ln for ln in r.stdout.splitlines() if " -c " in ln]
    arm = [ln for ln in compiles if f"{stand_in}/Source/" in ln]
    ours = [ln for ln in compiles if "tinyjax_runtime/src/tjx_" in ln]
    assert arm and ours, r.stdout
    assert all("-fno-sanitize=shift-base" in ln for ln in arm)
    assert not any("-fno-sanitize=shift-base" in ln for ln in ours)
    assert "-fno-sanitize=shift-base" not in next(ln for ln in r.stdout.splitlines() if "model_check.c" in ln)


def test_a_folder_that_is_not_a_checkout_is_refused_in_one_line(small_export, tmp_path):
    require_tools("make")
    r = make(small_export, "check-host", CMSIS_NN=tmp_path / "no_such_dir")
    assert r.returncode == 2
    assert "is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h)" in r.stderr
    assert "git clone https://github.com/ARM-software/CMSIS-NN" in r.stderr
    headers_only = tmp_path / "headers-only"
    shutil.copytree(c_runtime.RUNTIME_DIR / "include", headers_only / "Include")
    r = make(small_export, "check-host", CMSIS_NN=headers_only)
    assert r.returncode == 2 and "holds no integer sources (Source/*/*.c)" in r.stderr


# -- the cmsis-nn kernel set ------------------------------------------------------------------------

def test_cmsis_nn_kernel_set_runs_depthwise_out_of_place_through_arms_wrapper():
    graph = graph_from_spec(get_spec("mcunet_in2"))
    ours = plan_graph(graph, "cortex-m7")
    arms = plan_graph(graph, "cortex-m7", kernels="cmsis-nn")
    assert arms.kernel_set == "cmsis-nn" and ours.kernel_set == "tinyjax"
    dw = [op.name for op in graph.ops if op.kind == "depthwise_conv"]
    assert dw and all(ours.kernels[n].call == "tjx_depthwise_conv_inplace_s8" for n in dw[1:])
    assert {arms.kernels[n].call for n in dw} == {"arm_depthwise_conv_wrapper_s8"}
    assert not any(arms.kernels[n].in_place for n in dw)
    assert all(k.call is None or k.call.startswith("arm_") for k in arms.kernels.values())
    assert any(k.in_place for k in arms.kernels.values())      # Arm's add still runs in place
    assert (ours.peak_bytes, arms.peak_bytes) == (204_800, 342_208)     # 200.0 and 334.2 kB
    assert tjx_functions(arms) == () and "tjx_depthwise_conv_inplace_s8" in tjx_functions(ours)


def test_a_cmsis_nn_export_calls_nothing_but_cmsis_nns_api():
    qm, _ = random_qmodel(FAMILIES["mcunet"](3))
    files = emit(qm, plan_graph(qm.graph, "cortex-m7", kernels="cmsis-nn"))
    assert "tjx_" not in files["model_model.c"]
    assert re.search(r"^TJX_SRC := *$", files["Makefile"], re.M)
    assert "CMSIS-NN's API alone" in files["model_model.h"]
    ours = emit(qm, plan_graph(qm.graph, "cortex-m7"))
    assert re.search(r"^TJX_SRC := tjx_depthwise_conv_inplace_s8\.c$", ours["Makefile"], re.M)


def test_cmsis_nn_kernel_set_refuses_ops_cmsis_nn_lacks():
    graph = graph_from_spec(FAMILIES["tinynet"](0))        # SiLU tables and squeeze-excite gates
    with pytest.raises(PlanError) as e:
        plan_graph(graph, "cortex-m7", kernels="cmsis-nn")
    msg = str(e.value)
    assert "CMSIS-NN has no kernel for its lut ops" in msg and "tjx_lut_s8" in msg
    assert "channel_mul ops" in msg and "tjx_channel_mul_s8" in msg
    assert "--kernels tinyjax" in msg and "\n" not in msg
    with pytest.raises(PlanError, match="unknown kernel set 'arm'; valid kernel sets: tinyjax, cmsis-nn"):
        plan_graph(graph, "cortex-m7", kernels="arm")


# -- Arm's CMSIS-NN itself (slow; needs checkouts) ------------------------------------------------------

def checkout(variable: str, what: str) -> Path:
    """The CMSIS-NN checkout ``$variable`` names; a skip saying how to get one (also under CI=true:
    CI is offline, and Arm's library is not a tool it installs)."""
    path = os.environ.get(variable)
    if not path:
        pytest.skip(f"{variable} is not set: point it at a checkout of Arm's CMSIS-NN ({what}); "
                    "docs/testing.md says how")
    if not (Path(path) / "Include" / "arm_nnfunctions.h").is_file():
        pytest.fail(f"{variable}={path} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h)")
    return Path(path)


@pytest.mark.slow
def test_arms_library_in_one_folder_host_sanitizers_and_cortex_m7(tmp_path):
    main = checkout("TINYJAX_CMSIS_NN", "its default branch")
    v7 = checkout("TINYJAX_CMSIS_NN_V7", "tag v7.0.0")
    require_tools("gcc", "make", "arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm")
    qm, rng = random_qmodel(get_spec("mcunet_in1"))
    out = tmp_path / "in1"
    export(qm, out, rng=rng, n=2)
    host = out / "build/host/model_check"

    r = make(out, "check-host")
    assert_bit_exact(r, 2)
    assert "tinyjax's kernels" in kernels_line(r.stdout)
    assert not {s for s in symbols(host) if s.startswith("arm_nn_")}

    r = make(out, "check-host", CMSIS_NN=main)
    assert_bit_exact(r, 2)
    assert "Arm's CMSIS-NN v7.0.0-" in kernels_line(r.stdout)     # a later commit of the default branch
    assert "arm_nn_mat_mult_nt_t_s8" in symbols(host)

    r = make(out, "check-sanitize", CMSIS_NN=main, EXTRA_CFLAGS="-DTJX_DSP_EMULATION -DTJX_CANARY")
    assert_bit_exact(r, 2)
    assert "arm_nn_mat_mult_nt_t_s8" in symbols(out / "build/sanitize/model_check")

    r = make(out, "check-m7", CMSIS_NN=v7)
    assert_bit_exact(r, 2)
    assert "Arm's CMSIS-NN v7.0.0 at" in kernels_line(r.stdout)
    assert "arm_nn_mat_mult_kernel_s8_s16" in symbols(out / "build/cortex-m7/model_check.elf",
                                                      "arm-none-eabi-nm")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mcunet_in1", "mcunet_in2"])
def test_a_cmsis_nn_export_runs_only_arms_code_on_cortex_m4_and_m7(name, tmp_path):
    main = checkout("TINYJAX_CMSIS_NN", "its default branch")
    require_tools("make", "arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm")
    qm, rng = random_qmodel(get_spec(name))
    out = tmp_path / name
    export(qm, out, rng=rng, n=2, kernels="cmsis-nn")
    for cpu in ("m7", "m4"):
        r = make(out, f"check-{cpu}", CMSIS_NN=main)
        assert_bit_exact(r, 2)
        assert "Arm's CMSIS-NN" in kernels_line(r.stdout) and "tinyjax's" not in kernels_line(r.stdout)
    elf = symbols(out / "build/cortex-m7/model_check.elf", "arm-none-eabi-nm")
    assert not {s for s in elf if s.startswith("tjx_")}
    assert "arm_depthwise_conv_wrapper_s8" in elf and "arm_nn_mat_mult_kernel_s8_s16" in elf
