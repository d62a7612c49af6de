"""The search's last stage: export the trained winner with ``tinyjax.export``, build the C on the
host, run it on the test vectors and compare with the integer reference bit for bit; with the
Arm toolchain present, build the Cortex-M7 image and size it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tinyjax.errors import ExportCheckError
from tinyjax.units import format_kb

PREFIX = "model"


def _make(out: Path, target: str) -> None:
    r = subprocess.run(["make", "-s", "-C", str(out), "-j2", target], capture_output=True, text=True)
    if r.returncode:
        raise ExportCheckError(f"make {target} in {out} failed: {(r.stderr or r.stdout).strip()[-400:]}")


def export_and_check(train_dir: Path, out: Path, budget, vectors: int, calibration: int, log) -> dict:
    """Export ``train_dir``'s latest checkpoint into ``out`` with ``vectors`` validation images as
    test vectors; return ``top1_int8`` (the integer reference's top-1 on them), ``bit_exact`` /
    ``images`` (the host C program against the reference; ``bit_exact`` None without ``make`` and
    ``cc``) and ``firmware`` (``arm-none-eabi-size``
    of the Cortex-M7 image, or None without the toolchain)."""
    from tinyjax.train.runs import eval_images, load_run

    if out.exists():   # a killed export: start it again (it is a minute of work, all derived)
        shutil.rmtree(out)
    # the export CLI itself, as a user runs it (library code does not import command-line modules)
    cmd = [sys.executable, "-m", "tinyjax.export", "--checkpoint", str(train_dir), "--out", str(out),
           "--target", budget.target, "--vectors", str(vectors), "--calibration", str(calibration)]
    if getattr(budget, "patch", False):   # the patch plan the search's fit check used
        cmd += ["--patch", "auto", "--max-mac-overhead", str(budget.max_mac_overhead),
                "--budget", str(budget.sram_bytes)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise ExportCheckError(f"tinyjax.export of {train_dir} failed: {r.stderr.strip()[-300:]}")
    mem = next((x for x in r.stdout.splitlines() if x.startswith("memory")), "")
    log(f"export: {mem}")
    _, labels = eval_images(load_run(train_dir), vectors)
    expected = np.fromfile(out / "expected.bin", np.int8).reshape(len(labels), -1)
    top1_int8 = float(np.mean(np.argmax(expected, -1) == labels))
    missing = [t for t in ("make", "cc") if shutil.which(t) is None]
    if missing:
        log(f"export: {' and '.join(missing)} not found: the C is written to {out} but not built or "
            "checked on this machine (install with: apt-get install --no-install-recommends gcc make)")
        return {"top1_int8": top1_int8, "bit_exact": None, "images": len(labels), "firmware": None}
    _make(out, "host")
    run = subprocess.run([str(out / "build" / "host" / f"{PREFIX}_check"), str(out / "input.bin"),
                          str(out / "expected.bin"), str(out / "output.bin")], capture_output=True, text=True)
    got = np.fromfile(out / "output.bin", np.int8).reshape(expected.shape) if (out / "output.bin").is_file() \
        else np.zeros_like(expected)
    exact = int(np.sum(np.all(got == expected, axis=1)))
    if run.returncode or exact != len(labels):
        raise ExportCheckError(f"the exported C differs from the integer reference on "
                               f"{len(labels) - exact} of {len(labels)} images: {run.stdout.strip()[-300:]}")
    log(f"export: C on the host: {exact}/{len(labels)} images bit-exact with the integer reference; "
        f"int8 top-1 {top1_int8:.4f}")
    firmware = None
    if shutil.which("arm-none-eabi-gcc"):
        from tinyjax.codegen.emit.toolchain import size

        _make(out, "firmware")
        s = size(out / "build" / "firmware-m7" / f"{PREFIX}_firmware.elf")
        firmware = {"text": int(s.text), "data": int(s.data), "bss": int(s.bss)}
        log(f"export: Cortex-M7 image: text {s.text:,} B, data {s.data:,} B, bss {s.bss:,} B "
            f"(SRAM data + bss {format_kb(s.data + s.bss, grouped=True)}, flash text + data "
            f"{format_kb(s.text + s.data, grouped=True)})")
    else:
        log("export: arm-none-eabi-gcc not found: Cortex-M7 image not built")
    return {"top1_int8": top1_int8, "bit_exact": exact, "images": len(labels), "firmware": firmware}
