"""``python -m tinyjax.export``: a network as int8 C for a microcontroller, with test vectors and its
memory plan.

Examples::

    python -m tinyjax.export --checkpoint runs/embedded --out export/      # a trained run
    python -m tinyjax.export --model mcunet_in1 --device stm32f746 --out export/  # random weights
    python -m tinyjax.export --spec my_spec.json --resolution 96 --prefix det --out export/
    python -m tinyjax.export --model mcunet_in4 --device stm32f746 --patch auto --out export/

Pipeline: load (a training run's latest checkpoint, EMA weights when it keeps an EMA, or random
weights for ``--model`` / ``--spec``), plan the memory (``tinyjax.codegen.plan.graph_plan.plan_graph``;
with ``--device`` a network that does not fit is refused before anything is written), calibrate
(training images of the run's own dataset, or random images), quantise to int8, write the C files
of ``tinyjax.codegen.emit``, ``input.bin`` / ``expected.bin`` (``--vectors`` int8 images and the
integer reference's int8 logits, concatenated), ``memory.md`` and ``memory.png``.

``--patch auto`` lets the first blocks run patch by patch (MCUNetV2, ``tinyjax.codegen.plan.patch``):
``choose_patch_plan`` picks the schedule, at most ``--max-mac-overhead`` (default 0.15) more MACs;
under a budget (``--budget``, else the ``--device``'s SRAM) the least recomputation whose plan
fits, and none when the layer-by-layer plan fits; without one, the smallest peak. The C then runs
that stage as one loop over the patches, and the printed memory line and ``memory.md`` give the
schedule, the peak with and without it and the recomputed MACs. ``--patch off`` (default): layer
by layer.

``--input caller`` keeps the input image out of the arena (a camera frame buffer, external RAM):
``<prefix>_invoke`` reads it through its input pointer and never writes it, the plan (and the
patch schedule) is made without it, and ``memory.md`` and the header say so; with a patch schedule
the header also declares ``<prefix>_invoke_rows(read_rows, ctx, output, arena)``, whose callback
hands over each patch's input region (a row-streamed source). ``--input arena`` (default): the
image is in the arena and counted.

``--kernels cmsis-nn`` makes every op call CMSIS-NN's API (``tinyjax.codegen.targets``): the
depthwise convolutions through ``arm_depthwise_conv_wrapper_s8``, planned out of place, so a build
with Arm's library (``make ... CMSIS_NN=DIR``) runs Arm's code for the whole network; the memory
line and ``memory.md`` say what tinyjax's in-place kernels would have saved. A network with an op
CMSIS-NN has no kernel for (table activations, squeeze-excite gates, padding) is refused, and so
is ``--patch auto`` (its loop copies regions with a tinyjax kernel).

Random weights are for profiling only (memory, flash, speed): the CLI says so and so does the
generated header. Every file is written through a temporary file and a rename, so a killed export
leaves no half-written file. ``--out`` must be a new or empty directory, or hold an earlier export
with the same ``--prefix`` (which is then overwritten); anything else is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tinyjax.devices import DEFAULT_TARGET
from tinyjax.errors import ExportError, run_cli
from tinyjax.units import format_kb

CHECKPOINT_CALIBRATION = 1024      # training images, for a checkpoint
RANDOM_CALIBRATION = 32            # random images, for random weights
RANDOM_SEED = 0
#: float bytes one calibration batch may hold (the float pass keeps every tensor of the batch)
CALIBRATION_BATCH_BYTES = 256 * 2**20
RUNTIME = "tinyjax_runtime"
#: what an export writes besides ``<prefix>_*`` files (and ``build/``, where its Makefile builds)
OWN_NAMES = frozenset({"Makefile", "input.bin", "expected.bin", "memory.md", "memory.png", RUNTIME,
                       "build"})


@dataclasses.dataclass(frozen=True)
class Source:
    """What is exported: the model's spec and float variables, where they come from (``what``,
    one line), a note for the header when the weights are not trained ones, and functions
    giving ``n`` calibration images (in batches of at most ``batch``) and ``n`` test images."""

    spec: object
    variables: dict
    what: str
    note: str
    calibration: Callable[[int, int], list[np.ndarray]]
    vectors: Callable[[int], np.ndarray]


def _size(text: str) -> int:
    """argparse type of ``--budget``: ``320kB``, ``0.5MB`` or bytes (a one-line error otherwise)."""
    from tinyjax.units import UnitError, parse_bytes

    try:
        return parse_bytes(text)
    except UnitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from tinyjax.cli import add_input_argument, add_patch_arguments, positive_int
    from tinyjax.codegen.targets import KERNEL_SETS

    p = argparse.ArgumentParser(
        prog="python -m tinyjax.export",
        description="Export a network as int8 C (CMSIS-NN API) with its memory plan and test vectors.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="WORKDIR",
                     help="the work directory of a python -m tinyjax.train run (latest checkpoint)")
    src.add_argument("--model", metavar="NAME", help="a zoo model, with random weights (profiling)")
    src.add_argument("--spec", metavar="FILE",
                     help="a ModelSpec JSON (or MCUNet net-config) file, with random weights (profiling)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: new, empty, or an earlier export with the same prefix")
    p.add_argument("--config", metavar="FILE.py[:ARG]",
                   help="with --checkpoint: the config the run was trained with (default: the "
                        "run's config.json; needed for runs trained before tinyjax wrote it)")
    p.add_argument("--target", metavar="T",
                   help="kernel target the plan is made for: cortex-m4, cortex-m7, cortex-m55 or "
                        f"host (default: the device's core, else {DEFAULT_TARGET})")
    p.add_argument("--device", metavar="NAME",
                   help="refuse a network that does not fit this board: stm32f412, stm32f746, stm32h743")
    p.add_argument("--prefix", default="model", help="C prefix of every generated name (default: model)")
    p.add_argument("--calibration", type=positive_int, metavar="N",
                   help=f"images to calibrate on (default: {CHECKPOINT_CALIBRATION} training images "
                        f"of a checkpoint's dataset, {RANDOM_CALIBRATION} random images otherwise)")
    p.add_argument("--resolution", type=positive_int, metavar="R",
                   help="with --model/--spec: input resolution in pixels (default: the model's own)")
    p.add_argument("--vectors", type=positive_int, default=1, metavar="N",
                   help="test images in input.bin / expected.bin (default: 1)")
    p.add_argument("--kernels", choices=KERNEL_SETS, default="tinyjax",
                   help="'tinyjax' (default): CMSIS-NN's API plus tinyjax's own kernels where they "
                        "save memory (in-place depthwise) or CMSIS-NN has none (table activations, "
                        "squeeze-excite gates); 'cmsis-nn': every op calls CMSIS-NN's API, so that "
                        "linking Arm's library runs Arm's code for the whole network (no in-place "
                        "depthwise: more SRAM)")
    add_patch_arguments(p, "in the plan and the C, where it lowers the peak (under --budget or "
                           "--device: only where layer by layer does not fit)")
    add_input_argument(p)
    p.add_argument("--budget", type=_size, metavar="SIZE",
                   help="with --patch auto: the SRAM the patch plan is chosen to fit, e.g. 320kB "
                        "(default: the --device's SRAM; without either, the smallest peak)")
    return p.parse_args(argv)


# -- checks that come before any work ---------------------------------------------------------------

def check_out_dir(out: Path, prefix: str) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty folder that is not an earlier export with
    this prefix (its ``<prefix>_model.h`` present, and nothing but export files, ``build/`` and
    temporary files of a killed export)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a directory")
    if not out.is_dir():
        return
    names = {p.name for p in out.iterdir()}
    if not names:
        return
    foreign = sorted(n for n in names if n not in OWN_NAMES and not n.startswith(prefix + "_")
                     and not (n.startswith(".") and ".tmp-" in n))
    if f"{prefix}_model.h" in names and not foreign:
        return
    others = sorted(n[:-len("_model.h")] for n in foreign if n.endswith("_model.h"))
    if others:
        raise ExportError(f"--out {out} holds an export with prefix {others[0]!r}; pass --prefix "
                          f"{others[0]} to overwrite it, or give a new or empty directory")
    what = (f"holds files that are not an export's ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''})" if foreign
            else f"holds no export with prefix {prefix!r} ({prefix}_model.h)")
    raise ExportError(f"--out {out} is not empty and {what}; give a new or empty directory, or an "
                      "earlier export's directory with its --prefix")


def check_fit(name: str, plan, flash: int, device) -> str:
    """One line saying whether ``plan`` (arena bytes) and ``flash`` (bytes) fit ``device``;
    :class:`ExportError` with both sets of numbers when they do not."""
    peak = plan.peak_bytes
    if device is None:
        return "no --device given: fit not checked"
    if device.fits(peak, flash):
        sram_left = format_kb(device.sram_bytes - peak, grouped=True)
        flash_left = format_kb(device.flash_bytes - flash, grouped=True)
        return (f"fits {device.name} ({device.size_text()}): {sram_left} of SRAM and {flash_left} of flash "
                "left for the rest")
    short = " and ".join(w for w, bad in (("SRAM", peak > device.sram_bytes),
                                          ("flash", flash > device.flash_bytes)) if bad)
    raise ExportError(
        f"{name} needs {format_kb(peak, grouped=True)} of SRAM (arena, {plan.target}) and "
        f"{format_kb(flash, grouped=True)} of flash (weights and constants); {device.name} has "
        f"{device.sram_bytes // 1024} kB and "
        f"{device.flash_bytes // 1024} kB: not enough {short}, nothing written. Choose a smaller "
        "model or --resolution, or a larger --device")


# -- sources ------------------------------------------------------------------------------------------

def _from_checkpoint(args, progress) -> Source:
    from tinyjax.train.runs import eval_images, load_run, train_images

    if args.resolution:
        raise ExportError("--resolution applies to --model/--spec; a checkpoint is exported at the "
                          "resolution it was trained at")
    progress.status(f"loading the latest checkpoint of {args.checkpoint} (JAX and TensorFlow "
                    "take a few seconds to import)...")
    run = load_run(args.checkpoint, args.config)
    weights = "EMA weights" if run.ema else "weights"
    what = (f"{run.spec.name} @ {run.spec.resolution}x{run.spec.resolution}: {weights} of step "
            f"{run.step} of {run.workdir}")
    return Source(run.spec, run.variables, what, "",
                  calibration=lambda n, batch: train_images(run, n, batch),
                  vectors=lambda n: eval_images(run, n)[0])


def _random_images(seed: int, n: int, spec) -> np.ndarray:
    r = spec.resolution
    return np.random.default_rng(seed).standard_normal((n, r, r, 3)).astype(np.float32)


def _random_spec(args):
    """The spec of ``--model`` / ``--spec`` (cheap: no JAX), at ``--resolution``."""
    from tinyjax.cli import check_resolution, resolve_model
    from tinyjax.counting import count
    from tinyjax.zoo import get_spec

    if args.config:
        raise ExportError("--config applies to --checkpoint only")
    if args.spec and not Path(args.spec).is_file():
        raise ExportError(f"spec file {args.spec} not found")
    spec = resolve_model(args.spec, args.resolution) if args.spec else get_spec(args.model,
                                                                               args.resolution)
    check_resolution(spec, count(spec))
    return spec


def _random_weights(spec, progress) -> Source:
    progress.status(f"building {spec.name} with random weights (JAX takes a few seconds to import)...")
    from tinyjax.models import EfficientNet, init_variables

    variables = init_variables(EfficientNet(spec), RANDOM_SEED)
    note = (f"RANDOM WEIGHTS (Flax init, seed {RANDOM_SEED}), calibrated on random images: for "
            "profiling memory, flash and speed only; the outputs mean nothing.")

    def calibration(n: int, batch: int) -> list[np.ndarray]:
        images = _random_images(RANDOM_SEED, n, spec)
        return [images[i:i + batch] for i in range(0, n, batch)]

    return Source(spec, variables, f"{spec.name} @ {spec.resolution}x{spec.resolution}", note,
                  calibration, vectors=lambda n: _random_images(RANDOM_SEED + 1, n, spec))


def calibration_batch(graph) -> int:
    """Images per calibration batch: the float pass holds every tensor of a batch at once."""
    per_image = 4 * sum(t.size for t in graph.tensors)
    return max(1, min(64, CALIBRATION_BATCH_BYTES // max(per_image, 1)))


# -- files --------------------------------------------------------------------------------------------

def patch_buffer_table(pp) -> str:
    """The buffers of a patch plan as text: name, arena offset, bytes, timeline positions."""
    rows = sorted(pp.memory_plan.as_table(), key=lambda r: (r["first_use"], r["offset"], r["name"]))
    header = ("buffer", "offset", "bytes", "positions")
    cells = [(r["name"], f"{r['offset']:,}", f"{r['size']:,}", f"{r['first_use']}-{r['last_use']}")
             for r in rows]
    widths = [max(len(c[i]) for c in cells + [header]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if i in (1, 2) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                     for line in [header] + cells)


def memory_markdown(name: str, prefix: str, plan, flash: int, fit: str, note: str,
                    layer_plan=None, patch: str = "", in_place_peak: int | None = None) -> str:
    """``memory.md``: the figures (bytes and kB = 1024 B), the fit, and the per-layer table.

    ``plan`` is the plan the C uses: a layer-by-layer ``GraphPlan``, or a ``PatchPlan`` with
    ``layer_plan`` the layer-by-layer one (its per-op table is then given for comparison);
    ``patch``: the ``--patch auto`` line (:func:`tinyjax.cli.patch_text`), ``""`` without it;
    ``in_place_peak``: with ``--kernels cmsis-nn``, the peak of the same network with tinyjax's
    kernels (in-place depthwise), to say what they would save."""
    from tinyjax.codegen.plan.report import layer_table
    from tinyjax.codegen.targets import get_target

    t = get_target(plan.target)
    schedule = plan.schedule

    def row(what: str, n: int) -> str:
        return f"| {what} | {n:,} | {n / 1024:,.1f} |"

    lines = [f"# Memory of {name} (prefix `{prefix}`)", ""]
    if note:
        lines += [f"**{note}**", ""]
    if plan.input_mode == "arena":
        arena = "the arena (input image, activations, kernel scratch, alignment)"
    else:
        arena = ("the arena (activations, kernel scratch, alignment; the input image is the "
                 "caller's, `--input caller`)")
    lines += ["| | bytes | kB |", "|---|---:|---:|",
              row(f"peak SRAM: {arena}" + (", patch-based" if schedule else ""), plan.peak_bytes)]
    if plan.input_mode == "caller":
        lines.append(row("the input image, in the caller's buffer (not in the arena; read, never "
                         "written)", plan.image_bytes))
    if schedule is not None:
        lines.append(row("peak SRAM layer by layer (without the patch schedule)", plan.layer_peak_bytes))
    if in_place_peak is not None:
        lines.append(row("peak SRAM with tinyjax's kernels (`--kernels tinyjax`: in-place depthwise)",
                         in_place_peak))
    lines += [row("lower bound of the arena (no placement of these buffers uses less)",
                  plan.lower_bound_bytes),
              row("flash: weights, biases, requantisation parameters, tables (code not included)",
                  flash), "",
              f"Target: {t.name} ({t.description}). Device: {fit}.", ""]
    if in_place_peak is not None:
        lines += ["Kernels: CMSIS-NN's API alone (`--kernels cmsis-nn`): every depthwise convolution "
                  "runs out of place through `arm_depthwise_conv_wrapper_s8`. "
                  f"{in_place_text(plan, in_place_peak)}.", ""]
    if patch and schedule is None:
        lines += [f"Patch schedule (`--patch auto`): {patch.removeprefix('patch-based: ')}.", ""]
    if schedule is not None:
        macs = plan.graph.total_macs()
        lines += [
            f"Patch-based inference (MCUNetV2): the first {schedule.n} ops, up to `{schedule.output}`, "
            f"run once per patch in {schedule.p}x{schedule.p} patches, each from its receptive field, "
            f"then the rest layer by layer. The overlap of neighbouring patches is computed again: "
            f"{plan.mac_overhead:,} more MACs, +{plan.mac_overhead_fraction:.1%} of the network's "
            f"{macs:,}. Peak {format_kb(plan.peak_bytes, grouped=True)} instead of "
            f"{format_kb(plan.layer_peak_bytes, grouped=True)} layer by layer.", "",
            f"Buffers of the patch plan (bytes; positions 0 to {schedule.n + 1} are one patch's loop: "
            f"0 copies the patch's input region out of the image, {schedule.n + 1} copies its output "
            f"region into `{schedule.output}`; `patch@` buffers hold one patch's region; then one "
            "position per remaining op). The picture is `memory.png`.", "",
            "```text", patch_buffer_table(plan), "```", ""]
    if schedule is None:
        lines += ["Per op in execution order (`*`: in place; live kB: every buffer alive during the op; "
                  "offsets in bytes). The picture is `memory.png`.", "",
                  "```text", layer_table(plan), "```", ""]
    elif layer_plan is not None:
        lines += ["For comparison, the layer-by-layer plan per op (`*`: in place; live kB: every "
                  "buffer alive during the op; offsets in bytes):", "",
                  "```text", layer_table(layer_plan), "```", ""]
    return "\n".join(lines)


def in_place_text(plan, in_place_peak: int) -> str:
    """What tinyjax's in-place kernels would save against ``plan`` (a ``--kernels cmsis-nn`` plan)."""
    saved = plan.peak_bytes - in_place_peak
    if saved <= 0:
        return "tinyjax's in-place kernels would save nothing on this network"
    return (f"tinyjax's in-place kernels (--kernels tinyjax) would save {format_kb(saved, grouped=True)} "
            f"({saved:,} B): peak {format_kb(in_place_peak, grouped=True)}")


def write_files(out: Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write ``files`` (relative path -> content) under ``out`` (created), each atomically."""
    from tinyjax.files import write_atomic

    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(write_atomic(path, content))
    except OSError as e:
        raise ExportError(f"cannot write into {out}: {e.strerror or e}") from None
    return written


def _print_written(out: Path, paths: list[Path]) -> None:
    runtime = [p for p in paths if p.relative_to(out).parts[0] == RUNTIME]
    for p in paths:
        if p not in runtime:
            print(f"wrote {p}")
    if runtime:
        print(f"wrote {out / RUNTIME}/ ({len(runtime)} files: the C kernels, start-up code and "
              "linker script)")


# -- main ---------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tinyjax.cli import choose_patch, image_text, patch_cap, patch_text
    from tinyjax.codegen.emit.emitter import c_identifier
    from tinyjax.codegen.targets import get_target
    from tinyjax.devices import get_device
    from tinyjax.progress import Progress

    prefix = c_identifier(args.prefix)
    cap = patch_cap(args)
    if args.budget is not None and cap is None:
        raise ExportError("--budget is the SRAM a patch plan is chosen to fit; give it with --patch auto")
    if cap is not None and args.kernels == "cmsis-nn":
        raise ExportError("--patch auto copies each patch's region with tinyjax's tjx_copy_region_s8, "
                          "which CMSIS-NN has no counterpart of; use --kernels tinyjax with --patch auto")
    if args.checkpoint:     # a wrong directory fails at once, before any progress line
        from tinyjax.train.runs import check_run_dir

        check_run_dir(args.checkpoint)
    device = get_device(args.device) if args.device else None
    target = get_target(args.target or (device.core if device else DEFAULT_TARGET)).name
    out = Path(args.out)
    check_out_dir(out, prefix)

    with Progress("tinyjax.export", stream=sys.stderr) as progress:
        from tinyjax.cli import memory_plan

        # The fit first: a network that does not fit is refused before the slow steps.
        if args.checkpoint:
            source = _from_checkpoint(args, progress)
            spec = source.spec
        else:
            spec = _random_spec(args)
        progress.status(f"planning the memory of {spec.name} for {target}...")
        plan, flash = memory_plan(spec, target, args.kernels, args.input)
        patch = None
        if cap is not None:
            progress.status(f"choosing a patch schedule (at most +{cap * 100:g}% MACs)...")
            budget = args.budget or (device.sram_bytes if device else None)
            patch = choose_patch(plan, cap, budget, verify=False)
        if patch is not None and patch.plan is not None:
            pp = patch.plan
            fit = check_fit(f"{spec.name} with its first {pp.n} ops in {pp.p}x{pp.p} patches", pp, flash,
                            device)
        else:
            fit = check_fit(spec.name, plan, flash, device)
        if not args.checkpoint:
            source = _random_weights(spec, progress)
            print(f"note: {source.note}", flush=True)

        from tinyjax.codegen.plan.graph_plan import plan_graph
        from tinyjax.codegen.plan.patch import plan_patches
        from tinyjax.codegen.quant import interpreter, quantize

        n_calib = args.calibration or (RANDOM_CALIBRATION if source.note else CHECKPOINT_CALIBRATION)
        kind = "random" if source.note else "training"
        progress.status(f"calibrating on {n_calib} {kind} images...")
        batches = source.calibration(n_calib, calibration_batch(plan.graph))
        progress.status("quantising to int8...")
        qmodel = quantize.quantize_variables(spec, source.variables, batches)
        plan = layer_plan = plan_graph(qmodel.graph, target, kernels=args.kernels, input_mode=args.input)
        in_place_peak = (plan_graph(qmodel.graph, target, input_mode=args.input).peak_bytes
                         if args.kernels == "cmsis-nn" else None)
        if patch is not None and patch.plan is not None:   # the schedule the fit was checked with
            plan = plan_patches(qmodel.graph, (patch.plan.n, patch.plan.p), target,
                                layer_peak_bytes=layer_plan.peak_bytes, input_mode=args.input)
        if patch is not None:      # as planned for the quantised graph
            patch = patch._replace(plan=None if plan is layer_plan else plan,
                                   layer_peak_bytes=layer_plan.peak_bytes)

        progress.status(f"computing {args.vectors} test vector(s) with the integer reference...")
        x = quantize.quantize_input(qmodel, source.vectors(args.vectors))
        y = interpreter.run_int8(qmodel, x)[qmodel.graph.outputs[0]]

        progress.status(f"writing {out}...")
        from tinyjax.codegen.emit.emitter import emit
        from tinyjax.codegen.plan.report import plan_png

        files: dict[str, str | bytes] = dict(emit(qmodel, plan, prefix, note=source.note,
                                                  model_name=spec.name))
        files["input.bin"] = np.ascontiguousarray(x, np.int8).tobytes()
        files["expected.bin"] = np.ascontiguousarray(y, np.int8).tobytes()
        files["memory.md"] = memory_markdown(spec.name, prefix, plan, flash, fit, source.note,
                                             layer_plan, patch_text(patch) if patch else "",
                                             in_place_peak)
        files["memory.png"] = plan_png(plan, spec.name)
        paths = write_files(out, files)

    print(f"exported {source.what}, {len(x)} test vector(s)")
    print(f"memory ({target}): peak SRAM {format_kb(plan.peak_bytes, grouped=True)} ({plan.peak_bytes:,} B; "
          f"lower bound {format_kb(plan.lower_bound_bytes, grouped=True)}), "
          f"flash {format_kb(flash, grouped=True)} ({flash:,} B, weights and constants)"
          f"{image_text(plan)}; "
          f"{patch_text(patch) + '; ' if patch else ''}"
          f"{in_place_text(plan, in_place_peak) + '; ' if in_place_peak is not None else ''}{fit}")
    _print_written(out, paths)
    d = shlex.quote(str(out))
    print(f"build and check on this machine: make -C {d} host && "
          f"{shlex.quote(str(out / 'build' / 'host' / (prefix + '_check')))} "
          f"{shlex.quote(str(out / 'input.bin'))} {shlex.quote(str(out / 'expected.bin'))}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="tinyjax.export"))
