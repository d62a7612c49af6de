"""Build and run C: host executables (optionally under ASan+UBSan) and bare-metal Cortex-M images run
on QEMU's MPS2 boards, with sizes, symbols and exact instruction counts. The one module tests and
benchmarks call for a compiler or the emulator.

Plain functions; each returns paths or figures and raises :class:`~tinyjax.errors.ToolchainError`
(a missing tool names the Debian packages to install; a compiler error carries the compiler's full
messages in ``.stderr``). Tools are looked up on ``PATH`` at each call: ``$CC`` or ``gcc`` for the
host, ``arm-none-eabi-gcc``/``-size``/``-nm``/``-objdump`` with newlib's rdimon for the MCU, and
``qemu-system-arm``.

MCU images (:func:`build_mcu`) link the package's ``runtime/mcu/startup.c`` and ``mps2.ld``
(:mod:`tinyjax.codegen.emit.c_runtime`) with ``--specs=rdimon.specs -nostartfiles``: semihosting gives the
guest ``printf``, ``fopen`` of host files (relative to the QEMU process's working directory,
``cwd``), ``main(argc, argv)`` from ``-semihosting-config arg=...`` and its return value as QEMU's
exit code. newlib's rdimon crt0 would split the command line into ``argv``, but it locks up on these
boards and is left out (``-nostartfiles``), so ``startup.c`` does it: ``argv[0]`` is the image's
file name, arguments cannot hold spaces, at most 32 of them in 511 bytes.

Instruction counts (:func:`count_instructions`): a QEMU TCG plugin of ours,
``runtime/qemu/tjx_insn_count.c``, compiled on first use with the host compiler into
``$XDG_CACHE_HOME/tinyjax`` (``~/.cache/tinyjax``) under a name keyed by its source's hash. Every
translated block adds its length to a counter with an inline add (no call per block: a loop of 100M
instructions counts in about 0.3 s); the blocks that start at the function's entry or at a return
site (the address after each ``bl <function>``, found with ``objdump``) instead get a callback that
reads the counter and then adds its own block's length, so each call's count is exact whatever order
QEMU runs inline ops and callbacks in. Why not ``-icount`` with a SysTick or DWT timer: that
measures time in ticks of the guest clock, rounded to the timer's granularity and disturbed by the
interrupt handler, and QEMU does not model the M4/M7 pipelines, so cycles would be fiction anyway;
an exact count of executed instructions is deterministic (the same number every run) and is what
QEMU knows. What counts: everything from the function's first instruction through its return,
callees, any interrupt handler that runs meanwhile and condition-failed (IT-block) instructions
included, the calling ``bl`` excluded; recursion and loops back to the first instruction do not
restart a call. The function must be called with ``bl`` (mark it ``noinline``; calls through a
pointer or a tail call are not seen).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tinyjax.codegen.emit import c_runtime
from tinyjax.errors import ToolchainError

__all__ = ["CPUS", "C_STD", "Cpu", "Counted", "SANITIZERS", "Size", "WARNINGS", "build_host",
           "build_mcu", "count_instructions", "insn_count_plugin", "require", "run_counted",
           "require_newlib", "run_qemu", "size", "symbol_address", "symbol_size"]

APT_INSTALL = ("apt-get install --no-install-recommends gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi "
               "qemu-system-arm")
#: the Debian package that provides each tool this module runs
PACKAGES = {"gcc": "gcc", "make": "make", "arm-none-eabi-gcc": "gcc-arm-none-eabi",
            "arm-none-eabi-size": "binutils-arm-none-eabi", "arm-none-eabi-nm": "binutils-arm-none-eabi",
            "arm-none-eabi-objdump": "binutils-arm-none-eabi", "qemu-system-arm": "qemu-system-arm"}

C_STD = "-std=c99"
#: warnings every build compiles cleanly with (they are errors); the runtime's own set
WARNINGS = ("-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion", "-Wpedantic")
#: AddressSanitizer + UBSan, stopping at the first report (host builds only)
SANITIZERS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")


@dataclass(frozen=True)
class Cpu:
    """A Cortex-M core: its QEMU board and the compiler flags that target it."""

    name: str
    board: str               # qemu-system-arm -M
    flags: tuple[str, ...]   # arm-none-eabi-gcc flags
    dsp: bool                # has the DSP extension (the runtime's SIMD path)


CPUS = {c.name: c for c in (
    Cpu("cortex-m3", "mps2-an385", ("-mcpu=cortex-m3", "-mthumb"), dsp=False),
    Cpu("cortex-m4", "mps2-an386", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb"),
        dsp=True),
    Cpu("cortex-m7", "mps2-an500", ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-mthumb"),
        dsp=True),
)}


class Size(NamedTuple):
    """Section sizes of an image in bytes (``arm-none-eabi-size``, Berkeley format)."""

    text: int   # code and constants (flash)
    data: int   # initialised data: in flash, copied to RAM at start
    bss: int    # zero-initialised RAM

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        """Static RAM, without stack and heap."""
        return self.data + self.bss


class Counted(NamedTuple):
    """What :func:`run_counted` measured: instructions per completed call (call order), all
    instructions of the run, and the run itself (``returncode``, ``stdout``, ``stderr``)."""

    calls: list[int]
    total: int
    run: subprocess.CompletedProcess


def require(tool: str) -> str:
    """The path of ``tool`` on ``PATH``; :class:`ToolchainError` naming its package when missing."""
    path = shutil.which(tool)
    if path is None:
        package = PACKAGES.get(tool, tool)
        raise ToolchainError(f"{tool} not found on PATH (Debian package {package}): install with "
                             f"`{APT_INSTALL}`")
    return path


def require_newlib() -> str:
    """The path of newlib's ``rdimon.specs`` (semihosting); ToolchainError naming its package."""
    cc = require("arm-none-eabi-gcc")
    path = subprocess.run([cc, "-print-file-name=rdimon.specs"], capture_output=True, text=True).stdout
    path = path.strip()
    if not Path(path).is_file():
        raise ToolchainError("newlib's rdimon.specs not found (Debian package libnewlib-arm-none-eabi): "
                             f"install with `{APT_INSTALL}`")
    return path


def host_compiler() -> str:
    """``$CC`` (default ``gcc``), resolved on ``PATH``."""
    return require(os.environ.get("CC", "gcc"))


def _run_tool(cmd: Sequence[str], what: str, **kw) -> subprocess.CompletedProcess:
    """Run a build tool; a non-zero exit becomes a ToolchainError with its first error line."""
    cmd = [str(c) for c in cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        lines = proc.stderr.splitlines() or proc.stdout.splitlines() or ["(no output)"]
        first = next((ln for ln in lines if "error" in ln.lower()), lines[0])
        if "rdimon.specs" in proc.stderr:
            first += f" (newlib's rdimon is missing: Debian package libnewlib-arm-none-eabi; `{APT_INSTALL}`)"
        raise ToolchainError(f"{what} failed (exit {proc.returncode}): {first.strip()}",
                             stderr=proc.stderr, command=tuple(cmd))
    return proc


def _flags(include_dirs: Sequence[Path | str], defines: Sequence[str]) -> list[str]:
    return [f for d in include_dirs for f in ("-I", str(d))] + [f"-D{d}" for d in defines]


def build_host(sources: Sequence[Path | str], include_dirs: Sequence[Path | str], out: Path | str, *,
               defines: Sequence[str] = (), sanitize: bool = False, opt: str = "-O2",
               warnings: Sequence[str] = WARNINGS, flags: Sequence[str] = ()) -> Path:
    """Compile and link ``sources`` into the host executable ``out`` (C99, ``warnings`` as errors).
    ``defines`` are ``NAME`` or ``NAME=VALUE``; ``sanitize`` adds :data:`SANITIZERS` (and ``-g``);
    ``flags`` go last (``-shared -fPIC`` makes a library). Returns ``out``."""
    out = Path(out)
    cc = host_compiler()
    cmd = [cc, C_STD, *warnings, opt, *_flags(include_dirs, defines)]
    if sanitize:
        cmd += [*SANITIZERS, "-g"]
    _run_tool([*cmd, *flags, *map(str, sources), "-o", str(out)], Path(cc).name)
    return out


def build_mcu(sources: Sequence[Path | str], include_dirs: Sequence[Path | str], out: Path | str,
              cpu: str, *, defines: Sequence[str] = (), opt: str = "-O2",
              warnings: Sequence[str] = WARNINGS, flags: Sequence[str] = ()) -> Path:
    """Compile ``sources`` for ``cpu`` (a key of :data:`CPUS`) and link them with the package's
    MPS2 start-up code and linker script and newlib's rdimon into the ELF image ``out``, which
    :func:`run_qemu` runs. ``sources`` hold ``main(argc, argv)`` (or ``main(void)``). Returns ``out``."""
    out = Path(out)
    target = cpu_of(cpu)
    cc = require("arm-none-eabi-gcc")
    mcu = c_runtime.RUNTIME_DIR / "mcu"
    cmd = [cc, *target.flags, C_STD, *warnings, opt, *_flags(include_dirs, defines), *flags,
           *map(str, sources), str(mcu / "startup.c"), "--specs=rdimon.specs", "-nostartfiles",
           "-T", str(mcu / "mps2.ld"), "-o", str(out)]
    _run_tool(cmd, "arm-none-eabi-gcc")
    return out


def cpu_of(name: str) -> Cpu:
    """The :class:`Cpu` called ``name``; ToolchainError listing the known ones otherwise."""
    if name not in CPUS:
        raise ToolchainError(f"unknown cpu {name!r}: one of {', '.join(sorted(CPUS))}")
    return CPUS[name]


# --------------------------------------------------------------------------------------------
# sizes and symbols
# --------------------------------------------------------------------------------------------

def size(elf: Path | str) -> Size:
    """``text``, ``data``, ``bss`` of an ELF image in bytes."""
    proc = _run_tool([require("arm-none-eabi-size"), "-B", str(elf)], "arm-none-eabi-size")
    text, data, bss = (int(v) for v in proc.stdout.splitlines()[1].split()[:3])
    return Size(text, data, bss)


def _symbols(elf: Path | str) -> dict[str, tuple[int, int, str]]:
    """name -> (address, size in bytes, nm type letter) of the ELF's sized symbols."""
    proc = _run_tool([require("arm-none-eabi-nm"), "-S", str(elf)], "arm-none-eabi-nm")
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[3]] = (int(parts[0], 16), int(parts[1], 16), parts[2])
        elif len(parts) == 3 and parts[2] not in out:
            out[parts[2]] = (int(parts[0], 16), 0, parts[1])
    return out


def _symbol(elf: Path | str, name: str) -> tuple[int, int, str]:
    symbols = _symbols(elf)
    if name not in symbols:
        raise ToolchainError(f"symbol {name!r} not in {elf} (static or inlined away? mark it noinline "
                             "and keep it external)")
    address, nbytes, kind = symbols[name]
    if kind in "tTwW":      # a Thumb function's symbol value has bit 0 set: the code starts below
        address &= ~1
    return address, nbytes, kind


def symbol_size(elf: Path | str, name: str) -> int:
    """The size of symbol ``name`` in bytes (``nm -S``): an array's storage, a function's code."""
    return _symbol(elf, name)[1]


def symbol_address(elf: Path | str, name: str) -> int:
    """The address of symbol ``name``; for a function, that of its first instruction (the Thumb
    bit cleared)."""
    return _symbol(elf, name)[0]


_BL = re.compile(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{4}\s+)*bl\s+([0-9a-f]+)\s+<([^>]+)>", re.M)


def return_sites(elf: Path | str, function: str) -> list[int]:
    """The addresses right after each ``bl <function>`` outside ``function`` itself (where its calls
    return), sorted."""
    entry, nbytes, _ = _symbol(elf, function)
    proc = _run_tool([require("arm-none-eabi-objdump"), "-d", "--no-show-raw-insn", str(elf)],
                     "arm-none-eabi-objdump")
    sites = {int(m[1], 16) + 4 for m in _BL.finditer(proc.stdout)
             if int(m[2], 16) == entry and not entry <= int(m[1], 16) < entry + nbytes}
    return sorted(sites)


# --------------------------------------------------------------------------------------------
# QEMU
# --------------------------------------------------------------------------------------------

def _option_value(value: str) -> str:
    """A value inside a QEMU ``-opt a=b,c=d`` list: commas are doubled."""
    return value.replace(",", ",,")


def qemu_command(elf: Path | str, cpu: str, args: Sequence[str] = (),
                 plugin: Sequence[str] = ()) -> list[str]:
    """The ``qemu-system-arm`` command line that runs ``elf`` on ``cpu``'s board with semihosting,
    argv ``[elf's name, *args]`` and, when given, ``plugin`` (its ``.so`` then ``key=value``s)."""
    target = cpu_of(cpu)
    argv = [Path(elf).name, *map(str, args)]
    bad = [a for a in argv if not a or any(c.isspace() for c in a)]
    if bad:
        raise ToolchainError(f"semihosting arguments cannot be empty or hold spaces: {bad!r}")
    semihosting = "enable=on,target=native" + "".join(f",arg={_option_value(a)}" for a in argv)
    cmd = [require("qemu-system-arm"), "-M", target.board, "-nographic", "-monitor", "none",
           "-semihosting-config", semihosting, "-kernel", str(elf)]
    if plugin:
        cmd += ["-plugin", ",".join(_option_value(str(p)) for p in plugin)]
    return cmd


def run_qemu(elf: Path | str, cpu: str, args: Sequence[str] = (), *, cwd: Path | str | None = None,
             timeout: float = 120.0, plugin: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run ``elf`` on ``cpu``'s QEMU board until its ``main`` returns: the result's ``returncode``
    is ``main``'s return value, ``stdout`` what it printed. Files the guest opens are relative to
    ``cwd``. A guest still running after ``timeout`` seconds raises ToolchainError."""
    cmd = qemu_command(elf, cpu, args, plugin)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise ToolchainError(f"{Path(elf).name} on {cpu} did not finish within {timeout:g} s",
                             stderr=out[-4000:], command=tuple(cmd)) from None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyjax"


def insn_count_plugin() -> Path:
    """The instruction-counting plugin, compiled with the host compiler on first use into the cache
    folder (one file per version of its source)."""
    source = c_runtime.RUNTIME_DIR / "qemu" / "tjx_insn_count.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    out = _cache_dir() / f"tjx_insn_count-{digest}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)   # built aside, then renamed: atomic
    os.close(fd)
    try:
        build_host([source], [], tmp, flags=("-shared", "-fPIC"))
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def run_counted(elf: Path | str, cpu: str, function: str, args: Sequence[str] = (), *,
                cwd: Path | str | None = None, timeout: float = 300.0) -> Counted:
    """Run ``elf`` like :func:`run_qemu` with the counting plugin on ``function`` (module
    docstring). Raises ToolchainError when no ``bl`` calls it or the guest returns non-zero."""
    entry = symbol_address(elf, function)
    sites = return_sites(elf, function)
    if not sites:
        raise ToolchainError(f"no `bl {function}` in {Path(elf).name}: calls through a pointer or tail "
                             "calls cannot be counted (mark it noinline and call it directly)")
    with tempfile.TemporaryDirectory(prefix="tjx-count-") as tmp:
        out = Path(tmp) / "counts.txt"
        plugin = [insn_count_plugin(), f"out={out}", f"entry={entry:#x}", *(f"ret={s:#x}" for s in sites)]
        run = run_qemu(elf, cpu, args, cwd=cwd, timeout=timeout, plugin=plugin)
        if run.returncode != 0:
            raise ToolchainError(f"{Path(elf).name} on {cpu} exited with {run.returncode}: "
                                 f"{(run.stderr or run.stdout).strip()[-300:]}",
                                 stderr=run.stderr, command=tuple(run.args))
        if not out.exists():
            raise ToolchainError(f"the counting plugin wrote nothing: {run.stderr.strip()[-300:]}",
                                 stderr=run.stderr, command=tuple(run.args))
        rows = [line.split() for line in out.read_text().splitlines()]
    calls = [int(v) for k, v in rows if k == "call"]
    total = next(int(v) for k, v in rows if k == "total")
    return Counted(calls, total, run)


def count_instructions(elf: Path | str, cpu: str, function: str, args: Sequence[str] = (), *,
                       cwd: Path | str | None = None, timeout: float = 300.0) -> list[int]:
    """Guest instructions executed inside each completed call of ``function`` on ``cpu``'s emulated
    core, in call order: exact and the same on every run (module docstring)."""
    return run_counted(elf, cpu, function, args, cwd=cwd, timeout=timeout).calls
