"""A trained run through the whole deployment path: export, build on the host, run every validation image.

    python -m tinyjax.train --config configs/train_embedded.py --workdir W
    python benchmarks/export_accuracy.py --workdir W [--out DIR] [--images N]

``python -m tinyjax.export --checkpoint W`` writes the int8 C of the run's latest checkpoint with
the first N images of its evaluation split as test vectors (default: all of them) and the integer
reference's logits; the export's Makefile builds the host program (``-Wall -Wextra -Werror -O2``),
which runs the network on every image, compares each output with the integer reference's bit for
bit and writes its logits. Printed: how many images are bit-exact, how often the C predictions
equal the integer reference's, and the top-1 of the float model (Flax, ``model.apply``), the
integer reference and the C program on the same images.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None):
    p = argparse.ArgumentParser(prog="python benchmarks/export_accuracy.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, help="work directory of python -m tinyjax.train")
    p.add_argument("--out", help="export directory (default: a temporary one)")
    p.add_argument("--images", type=int, default=1_000_000, help="validation images (default: all)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import jax
    import numpy as np

    from tinyjax.errors import TinyJaxError
    from tinyjax.export import main as export_main
    from tinyjax.train.runs import eval_images, load_run

    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="tjx-e2e-") as tmp:
        out = Path(args.out or Path(tmp) / "export")
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            rc = export_main(["--checkpoint", args.workdir, "--out", str(out), "--vectors", str(args.images)])
        if rc:
            raise TinyJaxError(f"export failed: {log.getvalue().strip()[-300:]}")
        print(next(line for line in log.getvalue().splitlines() if line.startswith("memory")), flush=True)
        build = subprocess.run(["make", "-s", "-C", str(out), "-j2", "host"], capture_output=True, text=True)
        if build.returncode:
            raise TinyJaxError(f"make host failed: {build.stderr.strip()[-500:]}")
        t_c = time.time()
        run_c = subprocess.run([str(out / "build/host/model_check"), "input.bin", "expected.bin",
                                "output.bin"], cwd=out, capture_output=True, text=True)
        t_c = time.time() - t_c
        print(f"C program: {run_c.stdout.strip().splitlines()[-1]} ({t_c:.2f} s)")
        c_logits = np.frombuffer((out / "output.bin").read_bytes(), np.int8)
        ref_logits = np.frombuffer((out / "expected.bin").read_bytes(), np.int8)
        run = load_run(args.workdir)
        images, labels = eval_images(run, args.images)
        n, classes = len(labels), run.spec.num_classes
        c_logits, ref_logits = c_logits.reshape(n, classes), ref_logits.reshape(n, classes)
        apply = jax.jit(run.model.apply)
        float_logits = np.concatenate([np.asarray(apply(run.variables, images[i:i + 256]))
                                       for i in range(0, n, 256)])
    p_c, p_ref, p_float = c_logits.argmax(-1), ref_logits.argmax(-1), float_logits.argmax(-1)
    same_logits = int((c_logits == ref_logits).all(axis=1).sum())
    weights = "EMA" if run.ema else "raw"
    print(f"{run.spec.name} @ {run.spec.resolution}px, step {run.step} ({weights} weights), "
          f"{n} validation images")
    print(f"logits bit-exact C vs integer reference   {same_logits}/{n} images")
    print(f"predictions C == integer reference         {100 * float((p_c == p_ref).mean()):6.2f} %")
    print(f"top-1 float (Flax)                         {100 * float((p_float == labels).mean()):6.2f} %")
    print(f"top-1 int8 integer reference (Python)      {100 * float((p_ref == labels).mean()):6.2f} %")
    print(f"top-1 int8 C program (host)                {100 * float((p_c == labels).mean()):6.2f} %")
    print(f"total {time.time() - t0:.0f} s")
    return 0 if run_c.returncode == 0 and same_logits == n else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from tinyjax.errors import run_cli

    sys.exit(run_cli(main, prog="export_accuracy"))
