"""Top-1 of a trained model in float (Flax) and in int8 (the integer reference interpreter).

    python -m tinyjax.train --config configs/train_embedded.py --workdir W
    python benchmarks/quant_accuracy.py --workdir W [--config FILE.py]
                                        [--calib-batches 8] [--method minmax|percentile]

Loads the latest checkpoint of the run in ``W`` with :func:`tinyjax.train.runs.load_run` (the EMA
weights when the config enables an EMA, else the weights themselves), folds BatchNorm, calibrates
activation ranges on ``--calib-batches`` training batches (the training pipeline, augmentation
included), quantises to int8 (TFLite/CMSIS-NN scheme) and evaluates on the whole evaluation split:

* the float model (``model.apply`` under ``jax.jit``),
* the int8 model run by :func:`tinyjax.codegen.quant.interpreter.run_int8` (bit-exact CMSIS-NN
  kernels, what the generated C computes),
* the fake-quantised float simulation of the same int8 model (the float model with the deployed
  kernels' rounding rules, :func:`tinyjax.codegen.quant.interpreter.run_fake_quant`).

It prints both top-1s, their difference in points, how often the predictions agree, and how
closely the integer logits follow the float simulation (share of logits within one int8 step of
it, and share identical; the two differ only where a Q31 multiplier's approximation of a real
scale crosses a rounding boundary). The config is the run's ``config.json``
(``--config`` for runs trained before tinyjax wrote it; the checkpoint's fingerprint is checked).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None):
    p = argparse.ArgumentParser(
        prog="python benchmarks/quant_accuracy.py",
        description="Float vs int8 (integer reference interpreter) top-1 of a training run.")
    p.add_argument("--workdir", required=True, help="work directory of python -m tinyjax.train")
    p.add_argument("--config", metavar="FILE.py[:ARG]",
                   help="the config the run was trained with (default: the run's config.json; "
                   "needed only for runs trained before tinyjax wrote it)")
    p.add_argument("--calib-batches", type=int, default=8,
                   help="training batches used to calibrate activation ranges (default 8)")
    p.add_argument("--method", choices=("minmax", "percentile"), default="minmax",
                   help="calibration: min/max (default) or percentiles")
    p.add_argument("--percentile", type=float, default=99.99)
    p.add_argument("--json", action="store_true", help="also print the numbers as one JSON line")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import jax
    import numpy as np

    from tinyjax.codegen.quant import interpreter
    from tinyjax.codegen.quant import quantize as Q
    from tinyjax.data import pipeline
    from tinyjax.errors import TinyJaxError
    from tinyjax.train.runs import load_run, train_images

    if args.calib_batches < 1:
        raise TinyJaxError("--calib-batches must be at least 1")
    t0 = time.time()
    run = load_run(Path(args.workdir), args.config)
    cfg, spec, model, variables = run.cfg, run.spec, run.model, run.variables
    print(f"model {spec.name} @ {spec.resolution}px, checkpoint step {run.step} "
          f"({'EMA' if run.ema else 'raw'} weights)", flush=True)

    calib = train_images(run, args.calib_batches * cfg.batch_size)
    qmodel = Q.quantize_variables(spec, variables, calib, method=args.method,
                                  percentile=args.percentile)
    graph = qmodel.graph
    print(f"calibrated on {sum(len(b) for b in calib)} training images ({args.method})", flush=True)

    apply = jax.jit(model.apply)
    out = graph.outputs[0]
    labels, p_float, p_int8, p_fake = [], [], [], []
    lsb_ok = lsb_same = lsb_total = 0
    t_int8 = 0.0
    for batch in pipeline.eval_dataset(cfg.data, batch_size=cfg.eval_batch_size,
                                       resolution=spec.resolution).as_numpy_iterator():
        keep = batch["mask"] > 0
        x = batch["image"][keep]
        if not len(x):
            continue
        labels.append(batch["label"][keep])
        p_float.append(np.asarray(apply(variables, x)).argmax(-1))
        t = time.time()
        q_logits = interpreter.run_int8(qmodel, Q.quantize_input(qmodel, x))[out]
        t_int8 += time.time() - t
        p_int8.append(q_logits.argmax(-1))
        fake = interpreter.run_fake_quant(qmodel, x)[out]
        p_fake.append(fake.argmax(-1))
        info = qmodel.quant(out)
        fake_codes = np.round(fake / info.scale) + info.zero_point
        lsb_diff = np.abs(fake_codes - q_logits.astype(np.int64))
        lsb_ok += int((lsb_diff <= 1).sum())
        lsb_same += int((lsb_diff == 0).sum())
        lsb_total += q_logits.size
    if not labels:
        raise TinyJaxError("the evaluation split is empty")
    labels = np.concatenate(labels)
    p_float, p_int8, p_fake = map(np.concatenate, (p_float, p_int8, p_fake))
    n = len(labels)
    top1_float = float((p_float == labels).mean())
    top1_int8 = float((p_int8 == labels).mean())
    top1_fake = float((p_fake == labels).mean())
    agree = float((p_float == p_int8).mean())
    agree_fake = float((p_fake == p_int8).mean())
    logits_1lsb = lsb_ok / lsb_total
    logits_same = lsb_same / lsb_total
    print(f"evaluation split: {n} images")
    print(f"top-1 float (Flax)              {100 * top1_float:6.2f} %")
    print(f"top-1 int8  (integer reference) {100 * top1_int8:6.2f} %")
    print(f"difference int8 - float         {100 * (top1_int8 - top1_float):+6.2f} points")
    print(f"predictions agreeing float/int8 {100 * agree:6.2f} %")
    print(f"top-1 fake-quant (float sim.)   {100 * top1_fake:6.2f} %   predictions agreeing with "
          f"int8 {100 * agree_fake:.2f} %")
    print(f"int8 logits vs fake-quant       {100 * logits_1lsb:6.2f} % within 1 LSB, "
          f"{100 * logits_same:.2f} % identical")
    print(f"int8 interpreter {t_int8:.1f} s for {n} images; total {time.time() - t0:.1f} s")
    if args.json:
        print(json.dumps({"images": n, "top1_float": top1_float, "top1_int8": top1_int8,
                          "delta_points": 100 * (top1_int8 - top1_float), "agreement": agree,
                          "top1_fake_quant": top1_fake, "agreement_fake_int8": agree_fake,
                          "logits_within_1lsb": logits_1lsb,
                          "logits_identical": logits_same, "step": run.step}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from tinyjax.errors import run_cli

    sys.exit(run_cli(main, prog="quant_accuracy"))
