"""Helpers of the export tests: a quantised model with random weights, an export written to disk
with its test vectors, and the export's own Makefile run on it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from tinyjax.codegen.emit.emitter import emit
from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.plan.graph_plan import plan_graph
from tinyjax.codegen.quant.interpreter import run_int8
from tinyjax.codegen.quant.quantize import calibrate, quantize, quantize_input


def random_params(graph, rng) -> dict:
    """He-initialised float weights and small random biases for every weighted op."""
    params = {}
    for op in graph.ops:
        shape = op.weight_shape
        if shape is None:
            continue
        fan_in = shape[1] * shape[2] if op.kind == "depthwise_conv" else int(np.prod(shape[1:]))
        params[op.name] = {"weight": (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32),
                           "bias": (0.1 * rng.standard_normal(op.out_channels)).astype(np.float32)}
    return params


def random_qmodel(spec, seed: int = 0, calib_images: int = 2):
    """``(qmodel, rng)``: ``spec`` with random weights, calibrated on random images."""
    rng = np.random.default_rng(seed)
    graph = graph_from_spec(spec)
    params = random_params(graph, rng)
    r = graph.tensor(graph.inputs[0]).shape
    calib = [rng.standard_normal((calib_images,) + r[1:]).astype(np.float32)]
    return quantize(graph, params, calibrate(graph, params, calib)), rng


def export(qmodel, out: Path, *, target: str = "cortex-m7", prefix: str = "model", images=None,
           rng=None, n: int = 1, kernels: str = "tinyjax") -> dict:
    """Write the export of ``qmodel`` into ``out`` with ``input.bin`` / ``expected.bin`` of ``images``
    (float NHWC; default ``n`` random ones), planned for the kernel set ``kernels``. Returns the
    emitted files."""
    plan = plan_graph(qmodel.graph, target, kernels=kernels)
    files = emit(qmodel, plan, prefix)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if images is None:
        rng = rng or np.random.default_rng(0)
        shape = qmodel.graph.tensor(qmodel.graph.inputs[0]).shape
        images = rng.standard_normal((n,) + shape[1:]).astype(np.float32)
    x = quantize_input(qmodel, images)
    y = run_int8(qmodel, x)[qmodel.graph.outputs[0]]
    (out / "input.bin").write_bytes(x.tobytes())
    (out / "expected.bin").write_bytes(y.tobytes())
    return files


def make(out: Path, *targets: str, jobs: int = 2, **variables) -> subprocess.CompletedProcess:
    """``make -C out targets`` with ``VAR=value`` overrides; the result (check returncode)."""
    cmd = ["make", "-s", "-C", str(out), f"-j{jobs}", *targets, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MAKEFLAGS": ""})
