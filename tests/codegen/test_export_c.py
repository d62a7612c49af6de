"""The generated C (``tinyjax.codegen.emit``) against the integer reference, bit for bit.

* host: every MCUNet/Proxyless zoo model and tinynet_e at their own resolutions through the
  export's own Makefile (``-Wall -Wextra -Werror -O2``), a few also under ASan/UBSan and on the
  DSP code path; random networks of the MCUNet and TinyNet families, many models linked into one
  binary (different prefixes, which also shows that exports coexist), with an exact-size heap
  arena so the sanitizers see any byte past it;
* emulated Cortex-M4 and M7 (QEMU): mcunet_in0 and mbv2-w0.35-r144 (a 283.5 kB plan; mcunet_in1..4
  in the slow target);
* memory: the arena symbol of the Cortex-M7 image is exactly the plan's peak, guard bands around
  the arena are never written, and the model file has no writable data.

The 200-network sweep and the sanitizer runs of every zoo model are ``slow``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from export_support import export, make, random_qmodel
from family_specs import FAMILIES
from toolchain_gate import require_tools

from tinyjax.codegen.emit import c_runtime
from tinyjax.codegen.emit.emitter import emit
from tinyjax.codegen.plan.graph_plan import peak_sram_bytes, plan_graph
from tinyjax.codegen.quant.interpreter import run_int8
from tinyjax.codegen.quant.quantize import quantize_input
from tinyjax.errors import GraphError
from tinyjax.zoo import get_spec, list_models

ZOO = sorted(n for n in list_models() if n.startswith(("mcunet", "proxyless"))) + ["tinynet_e"]
SANITIZED = ("mcunet_in0", "mcunet_proxyless_w03", "tinynet_e")
WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
#: the stack a network's invoke may use on a Cortex-M (kernel frames; no buffers on the stack)
MAX_STACK_BYTES = 4096
SANITIZERS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")


def need(*tools: str) -> None:
    """The tools (``"cc"`` is the host compiler): skip without them, fail under CI=true."""
    require_tools(*("gcc" if t == "cc" else t for t in tools))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """name -> export directory (made on first use, shared by the tests of this module)."""
    root = tmp_path_factory.mktemp("exports")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            qm, rng = random_qmodel(get_spec(name))
            export(qm, root / name, rng=rng, n=2)
            made[name] = root / name
        return made[name]

    return get


def assert_checked(result, images: int = 2) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{images} images, {images} bit-exact, 0 failed, 0 with writes outside the arena" in result.stdout


# -- host ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_is_bit_exact_on_the_host(name, exports):
    need("cc", "make")
    assert_checked(make(exports(name), "check-host"))


@pytest.mark.parametrize("name", SANITIZED)
def test_zoo_model_is_clean_under_asan_and_ubsan(name, exports):
    need("cc", "make")
    assert_checked(make(exports(name), "check-sanitize"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(ZOO) - set(SANITIZED)))
def test_every_zoo_model_is_clean_under_asan_and_ubsan(name, exports):
    need("cc", "make")
    assert_checked(make(exports(name), "check-sanitize"))


@pytest.mark.parametrize("name", ["mcunet_in0", "tinynet_e"])
def test_dsp_code_path_on_the_host_with_guard_bands(name, exports, tmp_path):
    need("cc", "make")
    out = tmp_path / name
    shutil.copytree(exports(name), out, ignore=shutil.ignore_patterns("build"))
    assert_checked(make(out, "check-sanitize", EXTRA_CFLAGS="-DTJX_DSP_EMULATION -DTJX_CANARY"))


def test_check_program_fails_on_a_wrong_expected_vector(exports, tmp_path):
    need("cc", "make")
    out = tmp_path / "in0"
    shutil.copytree(exports("mcunet_in0"), out, ignore=shutil.ignore_patterns("build"))
    expected = bytearray((out / "expected.bin").read_bytes())
    expected[-1] = (expected[-1] + 1) % 256
    (out / "expected.bin").write_bytes(bytes(expected))
    r = make(out, "check-host")
    assert r.returncode != 0
    assert "2 images, 1 bit-exact" in r.stdout and "image 1: logit" in r.stdout


# -- random networks of the two families, many per binary --------------------------------------------

DRIVER = r"""
#define _POSIX_C_SOURCE 200112L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
%(includes)s
typedef int (*invoke_fn)(const int8_t *, int8_t *, void *);
static const struct { const char *name; invoke_fn invoke; size_t in, out, arena, align; } models[] = {
%(rows)s
};

static void *load(const char *name, const char *ext, size_t *size)
{
    char path[256];
    snprintf(path, sizeof path, "%%s.%%s", name, ext);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*size);
    if (p == NULL || fread(p, 1, *size, f) != *size) { fclose(f); free(p); return NULL; }
    fclose(f);
    return p;
}

int main(void)
{
    int bad = 0;
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++)
    {
        size_t n_in, n_out;
        int8_t *x = load(models[m].name, "in", &n_in), *y = load(models[m].name, "out", &n_out);
        if (x == NULL || y == NULL) { printf("%%s: no vectors\n", models[m].name); return 2; }
        size_t images = n_in / models[m].in;
        for (size_t i = 0; i < images; i++)
        {
            void *arena = NULL;   /* exactly the arena's size: the sanitizers see a byte past it */
            int8_t *in = malloc(models[m].in), *out = malloc(models[m].out);
            if (posix_memalign(&arena, models[m].align, models[m].arena) != 0 || !in || !out) return 2;
            memset(arena, (int)(i * 37u + m) & 0xFF, models[m].arena);
            memcpy(in, x + i * models[m].in, models[m].in);
            int status = models[m].invoke(in, out, arena);
            if (status != 0 || memcmp(out, y + i * models[m].out, models[m].out) != 0)
            {
                printf("MISMATCH %%s image %%zu status %%d\n", models[m].name, i, status);
                bad++;
            }
            free(arena); free(in); free(out);
        }
        free(x); free(y);
    }
    printf("%%zu models, %%d mismatches\n", sizeof models / sizeof models[0], bad);
    return bad != 0;
}
"""


@pytest.fixture(scope="module")
def runtime_objects(tmp_path_factory):
    """The runtime compiled once: ``{"plain": [objects], "sanitize": [objects]}``."""
    need("cc")
    root = tmp_path_factory.mktemp("runtime")
    out = {}
    for variant, flags in (("plain", ("-O2",)), ("sanitize", ("-O1", *SANITIZERS))):
        d = root / variant
        d.mkdir()
        subprocess.run(["cc", *WARNINGS, *flags, "-I", str(c_runtime.include_dir()), "-c",
                        *map(str, c_runtime.sources())], cwd=d, check=True, capture_output=True, text=True)
        out[variant] = sorted(d.glob("*.o"))
    return out


def check_family(family: str, seeds, out: Path, runtime_objects, sanitize: bool) -> None:
    """Export one network per seed (prefix ``<family><seed>``), link them all into one binary with
    a driver that runs each on its vectors, assert every output bit-exact."""
    out.mkdir(parents=True, exist_ok=True)
    sources, includes, rows, names = [], [], [], {}
    for seed in seeds:
        spec = FAMILIES[family](seed)
        prefix = f"{family}{seed}"
        qm, rng = random_qmodel(spec, seed)
        files = emit(qm, plan_graph(qm.graph, "cortex-m7"), prefix)
        for f in (f"{prefix}_model.h", f"{prefix}_model.c", f"{prefix}_weights.c"):
            (out / f).write_text(files[f])
        sources += [out / f"{prefix}_model.c", out / f"{prefix}_weights.c"]
        includes.append(f'#include "{prefix}_model.h"')
        P = prefix.upper()
        rows.append(f'    {{"{prefix}", {prefix}_invoke, {P}_INPUT_BYTES, {P}_OUTPUT_BYTES, {P}_ARENA_BYTES, '
                    f'{P}_ARENA_ALIGNMENT}},')
        shape = qm.graph.tensor(qm.graph.inputs[0]).shape
        x = quantize_input(qm, rng.standard_normal((2,) + shape[1:]).astype(np.float32))
        (out / f"{prefix}.in").write_bytes(x.tobytes())
        (out / f"{prefix}.out").write_bytes(run_int8(qm, x)[qm.graph.outputs[0]].tobytes())
        names[prefix] = (seed, spec)
    (out / "driver.c").write_text(DRIVER % {"includes": "\n".join(includes), "rows": "\n".join(rows)})
    flags = ("-O1", "-g", *SANITIZERS) if sanitize else ("-O2",)
    objs = runtime_objects["sanitize" if sanitize else "plain"]
    build = subprocess.run(["cc", *WARNINGS, *flags, "-I", str(c_runtime.include_dir()), "-I", str(out),
                            *map(str, sources), str(out / "driver.c"), *map(str, objs),
                            "-o", str(out / "driver")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(out / "driver")], cwd=out, capture_output=True, text=True, timeout=600)
    failed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("MISMATCH")]
    assert run.returncode == 0 and not failed, (
        "not bit-exact: " + "; ".join(f"{family}_spec(seed={names[p][0]})" for p in failed)
        + "\n" + run.stdout[-2000:] + run.stderr[-2000:])
    assert f"{len(list(seeds))} models, 0 mismatches" in run.stdout


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_random_networks_are_bit_exact_under_the_sanitizers(family, runtime_objects, tmp_path):
    check_family(family, range(12), tmp_path, runtime_objects, sanitize=True)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("block", range(4))
def test_200_random_networks_are_bit_exact(family, block, runtime_objects, tmp_path):
    # 2 families x 4 blocks x 25 seeds = 200 networks, seeds 100.. (the default suite has 0..11)
    check_family(family, range(100 + 25 * block, 125 + 25 * block), tmp_path, runtime_objects, sanitize=False)


# -- emulated Cortex-M -------------------------------------------------------------------------------

@pytest.mark.parametrize("cpu", ["m4", "m7"])
@pytest.mark.parametrize("name", ["mcunet_in0", "mcunet_mbv2_w035"])
def test_bit_exact_on_emulated_cortex_m(name, cpu, exports):
    need("arm-none-eabi-gcc", "qemu-system-arm", "make")
    if name != "mcunet_in0":    # a big plan: mbv2-w0.35-r144 283.5 kB (mcunet_in3 242 kB)
        assert peak_sram_bytes(get_spec(name)) >= 250 * 1024
    r = make(exports(name), f"check-{cpu}")
    assert_checked(r)
    # the network's only memory besides the arena is the stack of its calls, measured by painting
    stack = int(re.search(r"stack used by model_invoke: at most (\d+) bytes", r.stdout).group(1))
    assert 256 < stack <= MAX_STACK_BYTES


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["m4", "m7"])
@pytest.mark.parametrize("name", ["mcunet_in1", "mcunet_in2", "mcunet_in3", "mcunet_in4",
                                  "mcunet_proxyless_w03"])
def test_more_models_bit_exact_on_emulated_cortex_m(name, cpu, exports):
    need("arm-none-eabi-gcc", "qemu-system-arm", "make")
    assert_checked(make(exports(name), f"check-{cpu}"))


@pytest.mark.parametrize("name", ["mcunet_in0", "mcunet_mbv2_w035"])
def test_arena_symbol_of_the_cortex_m7_image_is_the_planned_peak(name, exports):
    need("arm-none-eabi-gcc", "make")
    out = exports(name)
    r = make(out, "firmware")
    assert r.returncode == 0, r.stderr
    nm = subprocess.run(["arm-none-eabi-nm", "-S", str(out / "build/firmware-m7/model_firmware.elf")],
                        capture_output=True, text=True, check=True).stdout
    sizes = {line.split()[-1]: int(line.split()[1], 16) for line in nm.splitlines() if len(line.split()) == 4}
    assert sizes["model_arena"] == peak_sram_bytes(get_spec(name))
    size = subprocess.run(["arm-none-eabi-size", str(out / "build/firmware-m7/model_firmware.elf")],
                          capture_output=True, text=True, check=True).stdout.splitlines()[1].split()
    text, data, bss = map(int, size[:3])
    assert data == 0 and bss == sizes["model_arena"]      # the arena is the only RAM the network uses


def test_no_byte_outside_the_arena_is_written_on_cortex_m7(exports, tmp_path):
    need("arm-none-eabi-gcc", "qemu-system-arm", "make")
    out = tmp_path / "in0"
    shutil.copytree(exports("mcunet_in0"), out, ignore=shutil.ignore_patterns("build"))
    assert_checked(make(out, "check-m7", EXTRA_CFLAGS="-DTJX_CANARY"))
    # the guard check itself works: a write before the arena is reported
    check = out / "model_check.c"
    check.write_text(check.read_text().replace("int status = model_invoke(", "guarded.before[7] = 0;\n"
                                                "        int status = model_invoke("))
    r = make(out, "check-m7", EXTRA_CFLAGS="-DTJX_CANARY")
    assert r.returncode != 0 and "1 guard bytes outside the arena were written" in r.stdout


def test_model_object_has_no_writable_data(exports, tmp_path):
    need("arm-none-eabi-gcc")
    out = exports("tinynet_e")
    obj = tmp_path / "model.o"
    subprocess.run(["arm-none-eabi-gcc", *WARNINGS, "-mcpu=cortex-m7", "-mthumb", "-O2", "-I",
                    str(out / "tinyjax_runtime/include"), "-c", str(out / "model_model.c"), "-o", str(obj)],
                   check=True, capture_output=True, text=True)
    size = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True)
    text, data, bss = map(int, size.stdout.splitlines()[1].split()[:3])
    assert text > 0 and data == 0 and bss == 0


# -- the emitter itself --------------------------------------------------------------------------------

def test_prefix_must_be_a_c_identifier():
    qm, _ = random_qmodel(FAMILIES["mcunet"](0))
    plan = plan_graph(qm.graph)
    for bad in ("1model", "my-model", "int", ""):
        with pytest.raises(GraphError, match="not a C identifier"):
            emit(qm, plan, bad)
    files = emit(qm, plan, "kws_v2")
    assert "int kws_v2_invoke(const int8_t *input, int8_t *output, void *arena);" in files["kws_v2_model.h"]
    assert "#define KWS_V2_ARENA_BYTES" in files["kws_v2_model.h"]


def test_emit_refuses_a_plan_of_another_graph():
    qm, _ = random_qmodel(FAMILIES["mcunet"](0))
    other, _ = random_qmodel(FAMILIES["mcunet"](1))
    with pytest.raises(GraphError, match="not the plan of this model"):
        emit(qm, plan_graph(other.graph), "model")


def test_every_kernel_call_is_checked_and_returned():
    qm, _ = random_qmodel(FAMILIES["tinynet"](0))
    src = emit(qm, plan_graph(qm.graph), "m")["m_model.c"]
    calls = src.count("    status = ")
    assert calls == sum(1 for op in qm.graph.ops if op.kind != "reshape")
    assert src.count("if (status != ARM_CMSIS_NN_SUCCESS)") == calls
    # tinynet: SE gate, SiLU table, in-place depthwise all appear
    for fn in ("tjx_channel_mul_s8", "tjx_lut_s8", "tjx_depthwise_conv_inplace_s8", "arm_fully_connected_s8"):
        assert fn in src
