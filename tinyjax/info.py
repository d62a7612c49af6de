"""``python -m tinyjax.info``: what a model is (params, MACs, per-stage shapes), without tracing.

Examples::

    python -m tinyjax.info                       # the whole zoo, one line per model
    python -m tinyjax.info tinynet_e             # per-stage table
    python -m tinyjax.info tinynet_e --json      # one JSON object (name, resolution, params, macs, ...)
    python -m tinyjax.info mcunet-320kb-1mb_imagenet.json --resolution 160   # a net-config file
    python -m tinyjax.info my_spec.json          # a ModelSpec JSON (ModelSpec.to_json)
    python -m tinyjax.info mcunet_in3 --layers   # per-layer kernels, scratch, live bytes, offsets
    python -m tinyjax.info mcunet_in3 --target cortex-m4 --plan-png plan.png
    python -m tinyjax.info mcunet_in4 --patch auto   # patch-based inference (MCUNetV2)
    python -m tinyjax.info mcunet_in4 --patch auto --max-mac-overhead 0.05 --json
    python -m tinyjax.info mobilenetv2_100 --patch auto --input caller --json   # image not counted

The memory figures (``peak_sram_bytes``: the planned arena with input image, activations, scratch
and alignment; ``sram_lower_bound_bytes``; ``flash_bytes``: weights, biases, requantisation
parameters, lookup tables) come from the int8 deployment graph and the memory planner the C
emitter uses, for ``--target`` (default cortex-m7).

``--patch auto`` adds patch-based inference (MCUNetV2, ``tinyjax.codegen.plan.patch``): the first blocks
run patch by patch, recomputing the overlap of neighbouring patches. The schedule is the one of
``choose_patch_plan``: the smallest peak whose recomputed MACs are at most ``--max-mac-overhead``
(a fraction of the network's MACs, default 0.15), or layer by layer when none is lower. The text
report gains one line with the schedule; ``--json`` gains the fields of ``patch_summary``:
``peak_sram_bytes`` is then the arena of the plan used (``sram_lower_bound_bytes`` that plan's
lower bound), ``layer_peak_sram_bytes`` the layer-by-layer arena, ``patch_mac_overhead`` the
recomputed fraction, ``patch_stage_ops`` (n) and ``patches_per_side`` (p), null for layer by layer,
and ``patch_stage_output`` (the stage's output tensor) when a schedule is used. Without ``--patch``
(or with ``--patch off``) the report is the layer-by-layer one.

``--input arena|caller`` says where the input image lives: ``arena`` (default) counts it in every
peak, as the firmware that writes it into the arena needs (TFLite Micro and X-CUBE-AI count it
so too); ``caller`` leaves it in a buffer the caller keeps (MCUNetV2's and TinyEngine's patch
figures count so). ``--json`` always has ``input_mode``, ``image_bytes`` and
``peak_sram_bytes_image_outside``: the peak with the image outside under the same options (with
``--patch auto`` the schedule is chosen again for that mode), whichever mode is asked for.

Imports neither JAX nor TensorFlow: it answers in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tinyjax.cli import (
    PatchChoice,
    add_input_argument,
    add_patch_arguments,
    check_resolution,
    choose_patch,
    image_text,
    memory_plan,
    patch_cap,
    patch_text,
    positive_int,
    resolve_model,
)
from tinyjax.counting import ModelStats, count
from tinyjax.devices import DEFAULT_TARGET
from tinyjax.errors import TinyJaxError, run_cli
from tinyjax.spec import ModelSpec
from tinyjax.units import format_kb


def _fmt_count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}K"


def summary(spec: ModelSpec, stats: ModelStats | None = None, target: str = DEFAULT_TARGET,
            plan=None, patch: PatchChoice | None = None) -> dict:
    """The JSON report of a model (memory figures in bytes, for ``target``); with ``patch`` (what
    ``--patch auto`` chose, see :func:`choose_patch`), the memory figures of the plan used and the
    fields of :func:`tinyjax.codegen.plan.patch.patch_summary`."""
    stats = stats or count(spec)
    gp, flash = plan or memory_plan(spec, target)
    out = {
        "name": spec.name,
        "resolution": spec.resolution,
        "num_classes": spec.num_classes,
        "params": stats.params,
        "macs": stats.macs,
        "max_layer_io_elems": stats.max_layer_io_elems,
        "target": gp.target,
        "peak_sram_bytes": gp.peak_bytes,
        "sram_lower_bound_bytes": gp.lower_bound_bytes,
        "flash_bytes": flash,
        "layers": [{"name": x.name, "op": x.op, "in_shape": list(x.in_shape),
                    "out_shape": list(x.out_shape), "params": x.params, "macs": x.macs}
                   for x in stats.layers],
        "spec": spec.to_dict(),
    }
    if patch is not None:
        from tinyjax.codegen.plan.patch import patch_summary

        if patch.plan is not None:
            out["sram_lower_bound_bytes"] = patch.plan.lower_bound_bytes
        out.update(patch_summary(patch.plan, gp.peak_bytes))
    out["input_mode"] = gp.input_mode
    out["image_bytes"] = gp.image_bytes
    out["peak_sram_bytes_image_outside"] = (
        out["peak_sram_bytes"] if gp.input_mode == "caller" else _image_outside(gp, patch))
    return out


def _image_outside(gp, patch: PatchChoice | None) -> int:
    """The peak of the same options with the image in the caller's buffer: the layer-by-layer
    plan again, and with ``--patch auto`` the schedule chosen again for that mode."""
    from tinyjax.codegen.plan.graph_plan import plan_graph

    outside = plan_graph(gp.graph, gp.target, kernels=gp.kernel_set, input_mode="caller")
    if patch is None:
        return outside.peak_bytes
    choice = choose_patch(outside, patch.max_mac_overhead, patch.budget)
    return outside.peak_bytes if choice.plan is None else choice.plan.peak_bytes


def stage_table(spec: ModelSpec, stats: ModelStats) -> str:
    """A readable per-stage table: blocks, output shape, params, MACs."""
    rows = []
    groups: dict[str, list] = {}
    for layer in stats.layers:
        top = layer.name.split("/")[0]
        key = "stage " + top.split("_")[1] if top.startswith("blocks_") else top
        groups.setdefault(key, []).append(layer)
    blocks_of_stage = {f"stage {i}": " ".join(b.to_string() for b in s.blocks)
                       for i, s in enumerate(spec.stages)}
    for key, layers in groups.items():
        h, w, c = layers[-1].out_shape
        rows.append((key, f"{h}x{w}x{c}", _fmt_count(sum(x.params for x in layers)),
                     _fmt_count(sum(x.macs for x in layers)), blocks_of_stage.get(key, "")))
    header = ("layer", "output", "params", "MACs", "blocks")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines = [f"{spec.name} @ {spec.resolution}x{spec.resolution}, {spec.num_classes} classes, "
             f"act {spec.act}"]
    fmt = "  ".join(f"{{:{'<' if i in (0, 1) else '>'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*header[:4]) + "  " + header[4])
    for r in rows:
        lines.append(fmt.format(*r[:4]) + "  " + r[4])
    lines.append(f"total: {stats.params:,} params, {stats.macs:,} MACs")
    return "\n".join(lines)


def zoo_table() -> str:
    from tinyjax.zoo import get_spec, list_models

    lines = [f"{'model':<24}{'res':>5}{'params':>10}{'MACs':>10}"]
    for name in list_models():
        spec = get_spec(name)
        s = count(spec)
        lines.append(f"{name:<24}{spec.resolution:>5}{_fmt_count(s.params):>10}{_fmt_count(s.macs):>10}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyjax.info",
        description="Parameters, MACs and per-stage shapes of a model, counted from its spec. "
                    "Without MODEL, lists the zoo.")
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="zoo name (e.g. tinynet_e, mcunet_in3), a ModelSpec JSON file, or a "
                             "ProxylessNAS/MCUNet net-config JSON file")
    parser.add_argument("--resolution", type=positive_int, metavar="R",
                        help="input resolution in pixels, at least the network's total stride "
                             "(default: the model's own)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--target", default=DEFAULT_TARGET, metavar="T",
                        help="deployment target for the memory figures: cortex-m4, cortex-m7, "
                             "cortex-m55 or host (default: %(default)s)")
    parser.add_argument("--layers", action="store_true",
                        help="print the per-layer table: kernel, shapes, MACs, scratch, live "
                             "bytes, arena offsets")
    parser.add_argument("--plan-png", metavar="FILE",
                        help="write a picture of the memory plan (arena offset x op index) as "
                             "PNG and print its path (with --patch auto: the plan used)")
    add_patch_arguments(parser, "for the memory figures, where it lowers the peak")
    add_input_argument(parser)
    parser.add_argument("--list", action="store_true", help="list zoo names and exit")
    args = parser.parse_args(argv)

    from tinyjax.codegen.targets import get_target
    get_target(args.target)  # one-line error naming the valid targets, exit 2
    cap = patch_cap(args)

    if args.list:
        from tinyjax.zoo import list_models
        print("\n".join(list_models()))
        return 0
    if args.model is None:
        if args.json:
            from tinyjax.zoo import get_spec, list_models

            def short(spec: ModelSpec) -> dict:
                plan = memory_plan(spec, args.target, input_mode=args.input)
                patch = None if cap is None else choose_patch(plan[0], cap)
                return {k: v for k, v in summary(spec, target=args.target, plan=plan, patch=patch).items()
                        if k not in ("layers", "spec")}

            out = [short(get_spec(n)) for n in list_models()]
            print(json.dumps(out, indent=2))
        else:
            print(zoo_table())
        return 0
    spec = resolve_model(args.model, args.resolution)
    stats = count(spec)
    check_resolution(spec, stats)
    plan = memory_plan(spec, args.target, input_mode=args.input)
    patch = None if cap is None else choose_patch(plan[0], cap)
    if args.plan_png:
        from tinyjax.codegen.plan.report import plan_png
        drawn = patch.plan if patch is not None and patch.plan is not None else plan[0]
        try:
            Path(args.plan_png).write_bytes(plan_png(drawn, spec.name))
        except OSError as e:
            raise TinyJaxError(f"cannot write {args.plan_png}: {e.strerror or e}") from None
    if args.json:
        print(json.dumps(summary(spec, stats, args.target, plan, patch), indent=2))
    elif args.layers:
        from tinyjax.codegen.plan.report import layer_table
        print(layer_table(plan[0]))
        if patch is not None:
            print(patch_text(patch))
    else:
        gp, flash = plan
        print(stage_table(spec, stats))
        print(f"memory ({gp.target}): peak SRAM {format_kb(gp.peak_bytes)} (lower bound "
              f"{format_kb(gp.lower_bound_bytes)}), flash {format_kb(flash)} "
              f"(weights and constants){image_text(gp)}")
        if patch is not None:
            print(patch_text(patch))
    if args.plan_png:  # after the report, on stderr under --json so that stdout stays JSON
        print(f"wrote {args.plan_png}", file=sys.stderr if args.json else sys.stdout)
    return 0


def __getattr__(name: str):
    """Names that moved out of this module still resolve, with a DeprecationWarning
    (:data:`tinyjax._moved.MOVED_ATTRIBUTES`)."""
    from tinyjax import _moved

    return _moved.moved_attribute(__name__, name)


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="tinyjax.info"))
