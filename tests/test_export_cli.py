"""``python -m tinyjax.export``: refusals (device too small, unknown model, not a run, bad prefix,
foreign output folder) are one line and exit 2 with nothing written; a random-weights export and
a checkpoint export write every file, their test vectors are the integer reference's, and the
host build of the export reproduces them bit for bit."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from toolchain_gate import require_tools

from tinyjax import export
from tinyjax.codegen.quant import interpreter, quantize
from tinyjax.devices import DEVICES, UnknownDeviceError, get_device
from tinyjax.errors import run_cli

REPO = Path(__file__).resolve().parents[1]


def cli(argv, capsys) -> tuple[int, str, str]:
    code = run_cli(export.main, [str(a) for a in argv], prog="tinyjax.export")
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_cli(*argv):
    return subprocess.run([sys.executable, "-m", "tinyjax.export", *map(str, argv)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def one_error(err: str) -> str:
    errors = [x for x in err.splitlines() if x.startswith("tinyjax.export: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.fixture
def captured(monkeypatch):
    """The QuantizedModel (and the float variables) the CLI quantises."""
    seen = {}
    real = quantize.quantize_variables

    def spy(spec, variables, batches, **kw):
        seen["variables"] = variables
        seen["qmodel"] = real(spec, variables, batches, **kw)
        return seen["qmodel"]

    monkeypatch.setattr(quantize, "quantize_variables", spy)
    return seen


def header_value(header: str, name: str) -> int:
    m = re.search(rf"#define MODEL_{name} (\d+)u", header)
    assert m, name
    return int(m.group(1))


def check_vectors(out: Path, qmodel, n: int) -> np.ndarray:
    """input.bin / expected.bin: sizes from the header, expected = run_int8(input)."""
    header = (out / "model_model.h").read_text()
    in_bytes, out_bytes = header_value(header, "INPUT_BYTES"), header_value(header, "OUTPUT_BYTES")
    x = np.frombuffer((out / "input.bin").read_bytes(), np.int8)
    y = np.frombuffer((out / "expected.bin").read_bytes(), np.int8)
    assert x.size == n * in_bytes and y.size == n * out_bytes
    shape = qmodel.graph.tensor(qmodel.graph.inputs[0]).shape
    ref = interpreter.run_int8(qmodel, x.reshape((n,) + shape[1:]))[qmodel.graph.outputs[0]]
    np.testing.assert_array_equal(y.reshape(n, -1), ref)
    return x.reshape((n,) + shape[1:])


# -- refusals -----------------------------------------------------------------------------------------

def test_a_network_too_big_for_the_device_is_refused_with_both_numbers_and_nothing_written(
        tmp_path, capsys):
    out = tmp_path / "x"
    code, _, err = cli(["--device", "stm32f412", "--model", "mcunet_in4", "--out", out], capsys)
    line = one_error(err)
    assert code == 2
    assert "400.0 kB of SRAM" in line and "256 kB" in line, line        # the plan's and the chip's
    assert re.search(r"1,[78]\d\d\.\d kB of flash", line) and "1024 kB" in line, line
    assert not out.exists()


def test_the_refusal_exits_2_from_the_command_line(tmp_path):
    r = subprocess_cli("--device", "stm32f412", "--model", "mcunet_in4", "--out", tmp_path / "x")
    assert r.returncode == 2 and "stm32f412 has 256 kB" in one_error(r.stderr)
    assert not (tmp_path / "x").exists()


def test_an_unknown_model_names_close_ones_exit_2(tmp_path):
    r = subprocess_cli("--model", "mcunet_in9", "--out", tmp_path / "x")
    assert r.returncode == 2
    line = one_error(r.stderr)
    assert "unknown model 'mcunet_in9'" in line and "mcunet_in" in line.split("did you mean")[1]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv, message", [
    (["--prefix", "1model"], "not a C identifier"),
    (["--prefix", "int"], "not a C identifier"),
    (["--device", "stm32f999"], "valid devices: stm32f412, stm32f746, stm32h743"),
    (["--target", "cortex-m0"], "unknown target"),
    (["--config", "c.py"], "--config applies to --checkpoint only"),
])
def test_bad_options_are_one_line_and_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "x"
    code, _, err = cli(["--model", "mcunet_in0", "--out", out, *argv], capsys)
    assert code == 2 and message in one_error(err)
    assert not out.exists()


@pytest.mark.parametrize("where, error", [
    ("tinyjax.codegen.graph.graph_from_spec", "LoweringError"),
    ("tinyjax.codegen.graph.graph_from_spec", "GraphError"),
    ("tinyjax.codegen.quant.quantize.quantize_variables", "QuantizationError"),
])
def test_a_network_codegen_cannot_handle_is_one_line_exit_2(where, error, tmp_path, capsys,
                                                             monkeypatch):
    import tinyjax.errors as codegen_errors

    def refuse(*args, **kwargs):
        raise getattr(codegen_errors, error)("gelu has no int8 kernel")

    monkeypatch.setattr(where, refuse)
    code, _, err = cli(["--model", "mcunet_in0", "--resolution", "48", "--out", tmp_path / "x"],
                       capsys)
    assert code == 2 and "gelu has no int8 kernel" in one_error(err)
    assert not (tmp_path / "x").exists()


def test_a_directory_that_is_not_a_run_says_what_is_missing(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = cli(["--checkpoint", tmp_path, "--out", tmp_path / "x"], capsys)
    line = one_error(err)
    assert code == 2 and "not a tinyjax training run: no checkpoints/" in line
    assert "python -m tinyjax.train" in line and not (tmp_path / "x").exists()


def test_a_missing_run_is_named_as_typed_with_no_progress_line_before(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["--checkpoint", "./no_such_run", "--out", "x"], capsys)
    assert code == 2 and err.splitlines() == [one_error(err)], err
    assert "error: ./no_such_run does not exist" in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv, message", [
    (["--model", "tinynet_e"], "tinynet_e: the cmsis-nn kernel set cannot run this network: CMSIS-NN "
                               "has no kernel for its lut ops"),
    (["--model", "mcunet_in0", "--patch", "auto"], "--patch auto copies each patch's region with "
                                                   "tinyjax's tjx_copy_region_s8"),
])
def test_what_cmsis_nn_kernels_cannot_run_is_refused_in_one_line(argv, message, tmp_path, capsys):
    code, _, err = cli([*argv, "--kernels", "cmsis-nn", "--out", tmp_path / "x"], capsys)
    assert code == 2 and message in one_error(err)
    assert "--kernels tinyjax" in one_error(err) and not (tmp_path / "x").exists()


def test_an_output_folder_holding_other_files_is_refused(tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, _, err = cli(["--model", "mcunet_in0", "--out", out], capsys)
    assert code == 2 and "thesis.tex" in one_error(err)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_an_earlier_export_of_another_prefix_is_not_overwritten(tmp_path):
    (tmp_path / "det_model.h").write_text("")
    (tmp_path / "Makefile").write_text("")
    export.check_out_dir(tmp_path, "det")                                      # same prefix: fine
    with pytest.raises(export.ExportError, match="holds an export with prefix 'det'; pass --prefix det"):
        export.check_out_dir(tmp_path, "model")


def test_devices_table_and_lookup():
    assert get_device("STM32F746") == DEVICES["stm32f746"]
    assert DEVICES["stm32f412"].sram_bytes == 256 * 1024 and DEVICES["stm32h743"].flash_bytes == 2 << 20
    assert get_device("stm32f746").fits(320 * 1024, 1 << 20)
    assert not get_device("stm32f746").fits(320 * 1024 + 1, 1 << 20)
    with pytest.raises(UnknownDeviceError, match="did you mean stm32f412"):
        get_device("stm32f41")


# -- a random-weights export --------------------------------------------------------------------------

def test_a_zoo_model_with_random_weights_exports_every_file_and_says_so(tmp_path, capsys, captured):
    out = tmp_path / "x"
    code, stdout, err = cli(["--model", "mcunet_in0", "--resolution", "48", "--out", out,
                             "--vectors", "2", "--device", "stm32f746"], capsys)
    assert code == 0, err
    for stage in ("planning", "calibrating on 32 random images", "quantising", "writing"):
        assert stage in err, err
    assert "note: RANDOM WEIGHTS" in stdout
    header = (out / "model_model.h").read_text()
    assert "RANDOM WEIGHTS" in header and "mcunet_in0" in header
    names = {p.name for p in out.iterdir()}
    assert {"model_model.h", "model_model.c", "model_weights.c", "model_check.c", "Makefile",
            "input.bin", "expected.bin", "memory.md", "memory.png", "tinyjax_runtime"} <= names
    assert not [n for n in names if ".tmp-" in n]
    for name in names - {"tinyjax_runtime"}:
        assert f"wrote {out / name}" in stdout
    assert (out / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    memory = (out / "memory.md").read_text()
    assert "fits stm32f746" in memory and "blocks_0_0/conv_dw" in memory and "RANDOM" in memory
    check_vectors(out, captured["qmodel"], 2)
    last = stdout.strip().splitlines()[-1]
    assert last.endswith(f"make -C {out} host && {out}/build/host/model_check {out}/input.bin "
                         f"{out}/expected.bin"), last

    # the same command again overwrites its own earlier export
    assert cli(["--model", "mcunet_in0", "--resolution", "48", "--out", out], capsys)[0] == 0



def test_the_export_builds_on_the_host_and_reproduces_its_expected_logits(tmp_path, capsys):
    require_tools("gcc", "make")
    out = tmp_path / "x"
    code, _, err = cli(["--model", "mcunet_in0", "--resolution", "48", "--out", out, "--vectors", "2",
                        "--target", "host"], capsys)
    assert code == 0, err
    r = subprocess.run(["make", "-s", "-C", str(out), "check-host"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "2 bit-exact, 0 failed" in r.stdout, r.stdout + r.stderr


def test_a_cmsis_nn_kernels_export_calls_only_cmsis_nn_and_says_what_in_place_saves(tmp_path, capsys):
    out = tmp_path / "x"
    code, stdout, err = cli(["--model", "mcunet_in0", "--resolution", "48", "--out", out,
                             "--kernels", "cmsis-nn"], capsys)
    assert code == 0, err
    line = next(ln for ln in stdout.splitlines() if ln.startswith("memory ("))
    saved = re.search(r"tinyjax's in-place kernels \(--kernels tinyjax\) would save [\d.,]+ kB "
                      r"\(([\d,]+) B\): peak [\d.,]+ kB", line)
    assert saved, line
    peak = int(re.search(r"peak SRAM [\d.,]+ kB \(([\d,]+) B", line).group(1).replace(",", ""))
    header = (out / "model_model.h").read_text()
    assert header_value(header, "ARENA_BYTES") == peak
    assert "tjx_" not in (out / "model_model.c").read_text() and "CMSIS-NN's API alone" in header
    memory = (out / "memory.md").read_text()
    assert "peak SRAM with tinyjax's kernels (`--kernels tinyjax`: in-place depthwise)" in memory
    assert saved.group(0) in memory and "arm_depthwise_conv_wrapper_s8" in memory


# -- a checkpoint export ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run of configs/train_embedded.py (EMA on) with one real checkpoint, made by the trainer's
    own setup and checkpointing, without training steps (their compilation would take a minute).
    The EMA weights are made to differ from the raw ones, so that picking them is visible."""
    from tinyjax.progress import Progress
    from tinyjax.train.config import apply_overrides, load_config
    from tinyjax.train.run_setup import setup

    work = tmp_path_factory.mktemp("run")
    cfg = apply_overrides(load_config(str(REPO / "configs/train_embedded.py")), [
        "batch_size=32", "eval_batch_size=64", "tensorboard=False", "ema_decay=0.99"])
    run = setup(cfg, work, Progress("t", stream=io.StringIO()))
    state = run.state.replace(ema_params=jax.tree_util.tree_map(lambda p: p * 0.5, run.state.params))
    run.checkpoints.save(state, run.meta)
    return work, jax.device_get(state.ema_params)


def test_a_checkpoint_exports_its_ema_weights_with_vectors_from_its_eval_split(
        tiny_run, tmp_path, capsys, captured):
    work, ema_params = tiny_run
    out = tmp_path / "x"
    code, stdout, err = cli(["--checkpoint", work, "--out", out, "--calibration", "40",
                             "--vectors", "3"], capsys)
    assert code == 0, err
    assert "calibrating on 40 training images" in err
    assert f"EMA weights of step 0 of {work}" in stdout and "RANDOM" not in stdout
    assert "RANDOM" not in (out / "model_model.h").read_text()
    jax.tree_util.tree_map(np.testing.assert_array_equal, captured["variables"]["params"], ema_params)
    x = check_vectors(out, captured["qmodel"], 3)

    from tinyjax.train.runs import eval_images, load_run
    images, _ = eval_images(load_run(work), 3)
    np.testing.assert_array_equal(x, quantize.quantize_input(captured["qmodel"], images))


def test_a_run_without_config_json_asks_for_its_config(tiny_run, tmp_path, capsys):
    work, _ = tiny_run
    old = tmp_path / "old_run"
    shutil.copytree(work, old)
    (old / "config.json").unlink()
    code, _, err = cli(["--checkpoint", old, "--out", tmp_path / "x"], capsys)
    assert code == 2 and "has no config.json" in one_error(err) and "--config" in one_error(err)
    assert not (tmp_path / "x").exists()


# -- patch-based inference (--patch auto) -------------------------------------------------------------

def test_patch_auto_exports_the_patch_loop_with_its_arena(tmp_path, capsys, captured):
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.plan.patch import choose_patch_plan

    out = tmp_path / "x"
    code, stdout, err = cli(["--model", "mcunet_in0", "--out", out, "--patch", "auto"], capsys)
    assert code == 0, err
    graph = captured["qmodel"].graph
    pp, layer = choose_patch_plan(graph, "cortex-m7"), plan_graph(graph, "cortex-m7")
    assert pp is not None and pp.peak_bytes < layer.peak_bytes
    header = (out / "model_model.h").read_text()
    assert header_value(header, "ARENA_BYTES") == pp.peak_bytes
    source = (out / "model_model.c").read_text()
    assert f"patch stage: ops 0..{pp.n - 1} in {pp.p}x{pp.p} patches" in source
    schedule = (f"patch-based: first {pp.n} ops in {pp.p}x{pp.p} patches, peak "
                f"{pp.peak_bytes / 1024:.1f} kB (layer by layer {layer.peak_bytes / 1024:.1f} kB), "
                f"+{pp.mac_overhead_fraction:.1%} MACs")
    memory_line = [x for x in stdout.splitlines() if x.startswith("memory (cortex-m7)")]
    assert len(memory_line) == 1 and schedule in memory_line[0], memory_line
    assert f"peak SRAM {pp.peak_bytes / 1024:,.1f} kB ({pp.peak_bytes:,} B" in memory_line[0]
    memory = (out / "memory.md").read_text()
    assert f"| {pp.peak_bytes:,} |" in memory and f"| {layer.peak_bytes:,} |" in memory
    assert f"{pp.p}x{pp.p} patches" in memory and f"+{pp.mac_overhead_fraction:.1%}" in memory
    assert f"{pp.mac_overhead:,} more MACs" in memory and "patch@input" in memory
    check_vectors(out, captured["qmodel"], 1)


def test_input_caller_plans_and_writes_the_image_outside_the_arena(tmp_path, capsys, captured):
    """``--input caller``: the arena and the schedule are the caller-mode plan's, the memory line
    and ``memory.md`` name the image's bytes outside, the header has no input slot, and the host
    build is bit-exact through the pointer and the row callback."""
    from tinyjax.codegen.plan.patch import choose_patch_plan

    require_tools("gcc", "make")
    out = tmp_path / "x"
    code, stdout, err = cli(["--model", "mcunet_in1", "--out", out, "--patch", "auto", "--input", "caller",
                             "--vectors", "2", "--target", "host"], capsys)
    assert code == 0, err
    graph = captured["qmodel"].graph
    pp, inside = choose_patch_plan(graph, "host", input_mode="caller"), choose_patch_plan(graph, "host")
    assert pp.peak_bytes < inside.peak_bytes          # mcunet_in1: the image is live at the peak
    header = (out / "model_model.h").read_text()
    assert header_value(header, "ARENA_BYTES") == pp.peak_bytes and "INPUT_OFFSET" not in header
    memory_line = [x for x in stdout.splitlines() if x.startswith("memory (host)")]
    assert "the image (27.0 kB) in the caller's buffer, not counted" in memory_line[0]
    memory = (out / "memory.md").read_text()
    assert f"| the input image, in the caller's buffer (not in the arena; read, never written) | " \
           f"{96 * 96 * 3:,} |" in memory
    r = subprocess.run(["make", "-s", "-C", str(out), "check-host"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "2 bit-exact, 0 failed, 0 with writes outside" in r.stdout, r.stdout


def test_patch_auto_export_builds_on_the_host_bit_exact(tmp_path, capsys):
    require_tools("gcc", "make")
    out = tmp_path / "x"
    code, _, err = cli(["--model", "mcunet_in0", "--out", out, "--vectors", "2", "--target", "host",
                        "--patch", "auto"], capsys)
    assert code == 0, err
    assert "patch stage" in (out / "model_model.c").read_text()
    r = subprocess.run(["make", "-s", "-C", str(out), "check-host"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "2 bit-exact, 0 failed" in r.stdout, r.stdout + r.stderr


def test_patch_auto_under_a_device_fits_its_sram_and_names_the_schedule_when_refused(tmp_path, capsys):
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.patch import choose_patch_plan
    from tinyjax.zoo import get_spec

    # mcunet_in4: 400 kB layer by layer; a patch schedule fits the F412's 256 kB, its flash does not
    pp = choose_patch_plan(graph_from_spec(get_spec("mcunet_in4")), "cortex-m4", budget=256 * 1024)
    assert pp is not None and pp.peak_bytes <= 256 * 1024 < pp.layer_peak_bytes
    out = tmp_path / "x"
    code, _, err = cli(["--device", "stm32f412", "--model", "mcunet_in4", "--out", out, "--patch", "auto"],
                       capsys)
    line = one_error(err)
    assert code == 2 and not out.exists()
    assert f"mcunet_in4 with its first {pp.n} ops in {pp.p}x{pp.p} patches needs" in line, line
    assert f"{pp.peak_bytes / 1024:,.1f} kB of SRAM (arena, cortex-m4)" in line, line
    assert "not enough flash," in line, line       # the SRAM fits


@pytest.mark.parametrize("argv, message", [
    (["--max-mac-overhead", "0.1"], "give it with --patch auto"),
    (["--budget", "300kB"], "give it with --patch auto"),
])
def test_patch_options_without_patch_auto_are_one_line(argv, message, tmp_path, capsys):
    out = tmp_path / "x"
    code, _, err = cli(["--model", "mcunet_in0", "--out", out, *argv], capsys)
    assert code == 2 and message in one_error(err)
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--max-mac-overhead", "-1"], "'-1' is not a MAC-overhead fraction"),
    (["--max-mac-overhead", "abc"], "'abc' is not a MAC-overhead fraction"),
    (["--budget", "lots"], "cannot read a size 'lots'"),
])
def test_bad_patch_values_are_one_argparse_error_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "x"
    with pytest.raises(SystemExit) as e:
        export.main(["--model", "mcunet_in0", "--out", str(out), "--patch", "auto", *argv])
    assert e.value.code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    assert len(errors) == 1 and message in errors[0], errors
    assert not out.exists()
