"""Patch-based inference in the generated C: the patch loop (``emit`` of a ``PatchPlan``) against
the integer reference, bit for bit.

* host: every MCUNet zoo model with the schedule ``choose_patch_plan`` picks (its own
  Makefile, ``-Wall -Wextra -Werror``), two images each; mcunet_in0 and mcunet_in4 also under
  ASan/UBSan with the DSP code path emulated and guard bands around the arena;
* emulated Cortex-M7 (QEMU): mcunet_in0 (and Cortex-M4);
* ``slow`` (run by CI after the default suite): the other MCUNet models on the host, mcunet_in4
  under the sanitizers, Cortex-M4;
* the header's arena is the patch plan's peak, and the model file has one patch loop;
* ``--input caller`` (the image in the caller's buffer): every MCUNet model on the host (default
  or ``slow``), each image through ``model_invoke`` and through ``model_invoke_rows`` (the row
  callback), the caller's image and guard bands around it checked unchanged; mcunet_in0 and
  mcunet_in4 under the sanitizers; QEMU Cortex-M7 on every MCUNet model (mcunet_in0 by default);
  a layer-by-layer plan with the image outside; a network that writes the image is caught.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from export_support import make, random_qmodel
from toolchain_gate import require_tools

from tinyjax.codegen.emit.emitter import emit
from tinyjax.codegen.plan.graph_plan import plan_graph
from tinyjax.codegen.plan.patch import choose_patch_plan
from tinyjax.codegen.quant.interpreter import run_int8, run_int8_patched
from tinyjax.codegen.quant.quantize import quantize_input
from tinyjax.zoo import get_spec, list_models

MCUNET = sorted(n for n in list_models() if n.startswith("mcunet"))
#: in the default suite; the other MCUNet models are ``slow``, which CI runs too (.ci/run)
DEFAULT = ("mcunet_in0", "mcunet_in2", "mcunet_in4")


def slow_unless(names, default):
    return [n if n in default else pytest.param(n, marks=pytest.mark.slow) for n in names]


def need(*tools: str) -> None:
    require_tools(*("gcc" if t == "cc" else t for t in tools))


@pytest.fixture(scope="module")
def patch_exports(tmp_path_factory):
    """(name, input mode) -> (export directory, patch plan), made on first use; the mode defaults
    to ``arena``, ``caller-layers`` is a layer-by-layer plan with the image outside."""
    root = tmp_path_factory.mktemp("patch_exports")
    made = {}

    def get(name: str, mode: str = "arena"):
        if (name, mode) not in made:
            qm, rng = random_qmodel(get_spec(name))
            if mode == "caller-layers":
                plan = plan_graph(qm.graph, "cortex-m7", input_mode="caller")
            else:
                plan = choose_patch_plan(qm.graph, "cortex-m7", input_mode=mode)
                assert plan is not None and plan.peak_bytes < plan.layer_peak_bytes
            out = root / f"{name}-{mode}"
            for rel, text in emit(qm, plan, "model").items():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_text(text)
            shape = qm.graph.tensor(qm.graph.inputs[0]).shape
            x = quantize_input(qm, rng.standard_normal((2,) + shape[1:]).astype(np.float32))
            logits = qm.graph.outputs[0]
            y = run_int8(qm, x)[logits]
            if plan.schedule is not None:
                assert np.array_equal(run_int8_patched(qm, x, plan)[logits], y)
            (out / "input.bin").write_bytes(x.tobytes())
            (out / "expected.bin").write_bytes(y.tobytes())
            made[name, mode] = (out, plan)
        return made[name, mode]

    return get


def assert_checked(result, images: int = 2) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{images} images, {images} bit-exact, 0 failed, 0 with writes outside the arena" in result.stdout


@pytest.mark.parametrize("name", slow_unless(MCUNET, DEFAULT))
def test_patch_c_is_bit_exact_on_the_host(name, patch_exports):
    need("cc", "make")
    out, plan = patch_exports(name)
    assert_checked(make(out, "check-host"))
    c = (out / "model_model.c").read_text()
    assert c.count("for (int32_t t = 0; t <") == 1
    assert f"patch stage: ops 0..{plan.n - 1} in {plan.p}x{plan.p} patches" in c
    h = (out / "model_model.h").read_text()
    assert int(re.search(r"#define MODEL_ARENA_BYTES (\d+)u", h).group(1)) == plan.peak_bytes


@pytest.mark.parametrize("name", slow_unless(["mcunet_in0", "mcunet_in4"], ("mcunet_in0",)))
def test_patch_c_under_the_sanitizers_on_the_dsp_path(name, patch_exports, tmp_path):
    need("cc", "make")
    src, _ = patch_exports(name)
    out = tmp_path / name
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("build"))
    assert_checked(make(out, "check-sanitize", EXTRA_CFLAGS="-DTJX_DSP_EMULATION -DTJX_CANARY"))


@pytest.mark.parametrize("cpu", slow_unless(["m7", "m4"], ("m7",)))
def test_patch_c_is_bit_exact_on_emulated_cortex_m(cpu, patch_exports):
    need("arm-none-eabi-gcc", "qemu-system-arm", "make")
    out, _ = patch_exports("mcunet_in0")
    assert_checked(make(out, f"check-{cpu}"))


def test_a_wrong_patch_table_is_caught_by_the_check_program(patch_exports, tmp_path):
    """The check is not vacuous: shifting one patch's output region breaks bit-exactness."""
    need("cc", "make")
    src, _ = patch_exports("mcunet_in0")
    out = tmp_path / "broken"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("build"))
    c = (out / "model_model.c").read_text()
    m = re.search(r"static const int32_t p_out_1\[\d+\] = \{\n    (\d+),", c)
    assert m, "the output-region row table is where the test expects it"
    c = c[:m.start(1)] + str(int(m.group(1)) + 1) + c[m.end(1):]
    (out / "model_model.c").write_text(c)
    r = make(out, "check-host")
    assert r.returncode != 0 or "0 failed" not in r.stdout


# -- the image in the caller's buffer (--input caller) ------------------------------------------------

@pytest.mark.parametrize("name", slow_unless(MCUNET, DEFAULT))
def test_caller_mode_c_is_bit_exact_through_the_pointer_and_the_row_callback(name, patch_exports):
    """The check program runs each image through model_invoke (the image read from the caller's
    pointer) and model_invoke_rows (its regions asked of a callback), compares both with the
    integer reference and checks the caller's image and the guard bands around it unchanged."""
    need("cc", "make")
    out, plan = patch_exports(name, "caller")
    assert plan.input_mode == "caller"
    assert_checked(make(out, "check-host"))
    h = (out / "model_model.h").read_text()
    assert int(re.search(r"#define MODEL_ARENA_BYTES (\d+)u", h).group(1)) == plan.peak_bytes
    assert "#define MODEL_INPUT_IN_ARENA 0" in h and "#define MODEL_HAS_INVOKE_ROWS 1" in h
    assert "MODEL_INPUT_OFFSET" not in h and "#define MODEL_INPUT(arena)" not in h
    assert "int model_invoke_rows(model_read_rows_fn read_rows, void *ctx" in h
    assert "must stay valid and unchanged until\n * model_invoke returns" in h
    assert plan.peak_bytes <= choose_patch_plan(plan.graph, "cortex-m7").peak_bytes
    c = (out / "model_model.c").read_text()
    assert c.count("tjx_copy_region_s8(input,") == 1 and c.count("read_rows(read_ctx,") == 1


@pytest.mark.parametrize("name", slow_unless(["mcunet_in0", "mcunet_in4"], ("mcunet_in0",)))
def test_caller_mode_c_under_the_sanitizers(name, patch_exports, tmp_path):
    need("cc", "make")
    src, _ = patch_exports(name, "caller")
    out = tmp_path / name
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("build"))
    assert_checked(make(out, "check-sanitize", EXTRA_CFLAGS="-DTJX_DSP_EMULATION -DTJX_CANARY"))


@pytest.mark.parametrize("name", slow_unless(MCUNET, ("mcunet_in0",)))
def test_caller_mode_c_on_emulated_cortex_m7(name, patch_exports):
    need("arm-none-eabi-gcc", "qemu-system-arm", "make")
    out, _ = patch_exports(name, "caller")
    assert_checked(make(out, "check-m7"))


def test_layer_by_layer_with_the_image_outside(patch_exports, tmp_path):
    """No patch loop: the first op reads the caller's pointer; no row callback is declared."""
    need("cc", "make")
    src, plan = patch_exports("mcunet_in0", "caller-layers")
    out = tmp_path / "layers"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("build"))
    assert_checked(make(out, "check-sanitize", EXTRA_CFLAGS="-DTJX_CANARY"))
    h = (out / "model_model.h").read_text()
    assert "#define MODEL_HAS_INVOKE_ROWS 0" in h and "model_invoke_rows" not in h
    assert int(re.search(r"#define MODEL_ARENA_BYTES (\d+)u", h).group(1)) == plan.peak_bytes
    assert "(input," in (out / "model_model.c").read_text()


def test_a_network_that_writes_the_callers_image_is_caught(patch_exports, tmp_path):
    """The image check is not vacuous: one byte of the image flipped inside model_invoke."""
    need("cc", "make")
    src, _ = patch_exports("mcunet_in0", "caller")
    out = tmp_path / "writes"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("build"))
    c = (out / "model_model.c").read_text()
    anchor = "/* the image must be the caller's, outside the arena */\n    }\n"
    assert c.count(anchor) == 1
    flip = "    if (input != NULL)\n    {\n        ((int8_t *)(uintptr_t)input)[7] ^= 1;\n    }\n"
    c = c.replace(anchor, anchor + flip)
    (out / "model_model.c").write_text(c)
    r = make(out, "check-host")
    assert r.returncode != 0
    assert "bytes of the caller's image or its guard bands were written" in r.stdout
