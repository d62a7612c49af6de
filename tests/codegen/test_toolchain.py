"""tinyjax.codegen.emit.toolchain: host builds with warnings as errors and sanitizers, MCU images with
sizes and symbols, QEMU runs with argv and semihosted files, and exact instruction counts.

MCU tests need ``arm-none-eabi-gcc``, newlib and ``qemu-system-arm``: they skip without them, and fail
on CI (``tests/toolchain_gate.py``).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from toolchain_gate import MCU_TOOLS, require_tools

from tinyjax.codegen.emit import toolchain
from tinyjax.errors import ToolchainError

MCU = Path(__file__).resolve().parent / "mcu"
TRIPS = (3, 10, 1000, 1)


@pytest.fixture(scope="module")
def spin_elves(tmp_path_factory) -> dict[str, Path]:
    """insn_spin.S + insn_main.c built for every cpu."""
    require_tools(*MCU_TOOLS)
    out = tmp_path_factory.mktemp("spin")
    return {cpu: toolchain.build_mcu([MCU / "insn_main.c", MCU / "insn_spin.S"], [], out / f"{cpu}.elf", cpu)
            for cpu in toolchain.CPUS}


@pytest.mark.parametrize("cpu", sorted(toolchain.CPUS))
def test_each_call_counts_exactly_the_instructions_it_executes(cpu, spin_elves):
    elf, args = spin_elves[cpu], [str(n) for n in TRIPS]
    # spin is called from main and from spin_nested: both calls of each round are counted
    assert toolchain.count_instructions(elf, cpu, "spin", args) == [5 * n + 2 for n in TRIPS for _ in "ab"]
    # a loop back to the function's first instruction does not restart the count
    assert toolchain.count_instructions(elf, cpu, "spin_to_entry", args) == [2 * n + 1 for n in TRIPS]
    # callees are counted, the calling bl is not
    assert toolchain.count_instructions(elf, cpu, "spin_nested", args) == [5 * n + 5 for n in TRIPS]


def test_counts_are_the_same_on_every_run_and_a_hundred_million_take_seconds(spin_elves):
    elf, n = spin_elves["cortex-m4"], 20_000_000
    start = time.perf_counter()
    first = toolchain.run_counted(elf, "cortex-m4", "spin", [str(n)])
    seconds = time.perf_counter() - start
    second = toolchain.run_counted(elf, "cortex-m4", "spin", [str(n)])
    assert first.calls == [5 * n + 2] * 2
    assert (second.calls, second.total) == (first.calls, first.total)
    assert first.total > 2e8 and seconds < 20, (first.total, seconds)
    assert "spun 1" in first.run.stdout


def test_a_function_never_called_with_bl_is_refused(spin_elves):
    with pytest.raises(ToolchainError, match="no `bl reset_handler`"):
        toolchain.count_instructions(spin_elves["cortex-m3"], "cortex-m3", "reset_handler")


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_run_qemu_passes_argv_and_semihosted_files_relative_to_cwd(cpu, tmp_path):
    require_tools(*MCU_TOOLS)
    elf = toolchain.build_mcu([MCU / "semihost_io.c"], [], tmp_path / "io.elf", cpu)
    (tmp_path / "in.bin").write_bytes(bytes(range(200)))
    run = toolchain.run_qemu(elf, cpu, ["in.bin", "out.bin"], cwd=tmp_path)
    assert run.returncode == 7, run.stdout + run.stderr
    assert run.stdout.splitlines() == ["argv[0]=io.elf", "argv[1]=in.bin", "argv[2]=out.bin"]
    assert (tmp_path / "out.bin").read_bytes() == bytes(range(200))


def test_size_and_symbol_size_report_a_known_array(tmp_path):
    require_tools(*MCU_TOOLS)
    source = tmp_path / "arrays.c"
    source.write_text("#include <stdint.h>\n"
                      "uint8_t scratch[SCRATCH];\n"
                      "const int32_t table[50] = {1};\n"
                      "int main(void) { scratch[0] = (uint8_t)table[0]; return scratch[0] - 1; }\n")
    small = toolchain.build_mcu([source], [], tmp_path / "small.elf", "cortex-m4", defines=["SCRATCH=1000"])
    big = toolchain.build_mcu([source], [], tmp_path / "big.elf", "cortex-m4", defines=["SCRATCH=3000"])
    assert toolchain.symbol_size(small, "scratch") == 1000
    assert toolchain.symbol_size(small, "table") == 200
    assert toolchain.symbol_address(small, "scratch") >= 0x20000000      # RAM
    assert toolchain.symbol_address(small, "table") < 0x20000000         # flash
    a, b = toolchain.size(small), toolchain.size(big)
    assert (b.text, b.data, b.bss - a.bss) == (a.text, a.data, 2000)
    assert a.ram == a.data + a.bss and a.flash == a.text + a.data
    assert toolchain.run_qemu(small, "cortex-m4").returncode == 0


def test_a_warning_fails_the_build_and_the_message_says_so(tmp_path):
    source = tmp_path / "warns.c"
    source.write_text("int main(void) { int unused_value = 1; return 0; }\n")
    require_tools("gcc")
    with pytest.raises(ToolchainError, match=r"unused.*-Werror") as e:
        toolchain.build_host([source], [], tmp_path / "warns")
    assert "\n" not in str(e.value) and "unused_value" in e.value.stderr
    require_tools(*MCU_TOOLS)
    with pytest.raises(ToolchainError, match=r"arm-none-eabi-gcc failed.*-Werror"):
        toolchain.build_mcu([source], [], tmp_path / "warns.elf", "cortex-m7")


def test_the_sanitizer_build_catches_an_out_of_bounds_write(tmp_path):
    require_tools("gcc")
    source = tmp_path / "oob.c"
    source.write_text("#include <stdlib.h>\n"
                      "int main(int argc, char **argv)\n{\n"
                      "    (void)argv;\n"
                      "    char *a = malloc(8);\n"
                      "    a[7 + argc] = 1; /* one past the end with no arguments */\n"
                      "    int r = a[0];\n    free(a);\n    return r & 0;\n}\n")
    plain = toolchain.build_host([source], [], tmp_path / "oob")
    checked = toolchain.build_host([source], [], tmp_path / "oob_san", sanitize=True, opt="-O1")
    assert subprocess.run([plain], capture_output=True).returncode == 0    # silently corrupts the heap
    run = subprocess.run([checked], capture_output=True, text=True)
    # UBSan's object-size check or ASan's heap-buffer-overflow, whichever sees it first, at that line
    assert run.returncode != 0 and "oob.c:6" in run.stderr, run.stderr[-2000:]


@pytest.mark.parametrize("tool, call", [
    ("qemu-system-arm", lambda p: toolchain.run_qemu(p / "x.elf", "cortex-m4")),
    ("gcc-arm-none-eabi", lambda p: toolchain.build_mcu([p / "x.c"], [], p / "x.elf", "cortex-m4")),
    ("binutils-arm-none-eabi", lambda p: toolchain.size(p / "x.elf")),
    ("gcc", lambda p: toolchain.build_host([p / "x.c"], [], p / "x")),
])
def test_a_missing_tool_names_its_debian_package(tool, call, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))       # an empty folder: no tool at all
    monkeypatch.delenv("CC", raising=False)
    expected = f"Debian package {tool}\\b.*apt-get install --no-install-recommends"
    with pytest.raises(ToolchainError, match=expected):
        call(tmp_path)


def test_the_gate_skips_a_missing_tool_locally_and_fails_it_on_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_tools("qemu-system-arm")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing tool qemu-system-arm under CI=true; .ci/run"):
        require_tools("qemu-system-arm")


def test_an_unknown_cpu_lists_the_known_ones():
    with pytest.raises(ToolchainError, match="cortex-m3, cortex-m4, cortex-m7"):
        toolchain.cpu_of("cortex-m33")
