"""What the command lines share: argparse types, the patch options, and what a model argument means.

``tinyjax.info``, ``tinyjax.export`` and ``python -m tinyjax.search`` take the same ``--patch
auto|off`` and ``--max-mac-overhead F`` (:func:`add_patch_arguments`, :func:`patch_cap`), name a
model the same way (:func:`resolve_model`: a zoo name, a ModelSpec JSON or an MCUNet net-config)
and plan it the same way (:func:`memory_plan`, :func:`choose_patch`). A command-line module: the
library never imports it. Importing it costs no JAX, TensorFlow or numpy; the planner loads when
a plan is asked for.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import NamedTuple

from tinyjax.counting import ModelStats
from tinyjax.devices import DEFAULT_MAX_MAC_OVERHEAD, DEFAULT_TARGET
from tinyjax.errors import SpecError, TinyJaxError
from tinyjax.spec import ModelSpec
from tinyjax.units import format_kb


class PatchChoice(NamedTuple):
    """What ``--patch auto`` chose: ``plan``, the :class:`~tinyjax.codegen.plan.patch.PatchPlan` to use
    (``None``: layer by layer is as good, or fits the budget), under ``max_mac_overhead`` (a
    fraction of the network's MACs) and ``budget`` (bytes, or ``None``)."""

    plan: object
    layer_peak_bytes: int
    max_mac_overhead: float
    budget: int | None = None


def choose_patch(layer_plan, max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD,
                 budget: int | None = None, verify: bool = True) -> PatchChoice:
    """:func:`tinyjax.codegen.plan.patch.choose_patch_plan` of a layer-by-layer plan's graph and target."""
    from tinyjax.codegen.plan.patch import choose_patch_plan

    pp = choose_patch_plan(layer_plan.graph, layer_plan.target, max_mac_overhead=max_mac_overhead,
                           budget=budget, verify=verify, layer_peak_bytes=layer_plan.peak_bytes,
                           input_mode=layer_plan.input_mode)
    return PatchChoice(pp, layer_plan.peak_bytes, max_mac_overhead, budget)


def patch_text(choice: PatchChoice) -> str:
    """One line: the patch schedule, its peak, the layer-by-layer peak and the recomputed MACs; or
    why layer by layer is used."""
    pp, layer = choice.plan, choice.layer_peak_bytes
    if pp is not None:
        return (f"patch-based: first {pp.n} ops in {pp.p}x{pp.p} patches, peak {format_kb(pp.peak_bytes)} "
                f"(layer by layer {format_kb(layer)}), +{pp.mac_overhead_fraction:.1%} MACs")
    if choice.budget is not None and layer <= choice.budget:
        return (f"patch-based: not needed, layer by layer ({format_kb(layer)}) fits "
                f"{format_kb(choice.budget)}")
    return (f"patch-based: no schedule within +{choice.max_mac_overhead * 100:g}% MACs lowers the peak; "
            f"layer by layer {format_kb(layer)}")


def memory_plan(spec: ModelSpec, target: str = DEFAULT_TARGET, kernels: str = "tinyjax",
                input_mode: str = "arena"):
    """``(GraphPlan, flash_bytes)`` of ``spec`` on ``target`` with the kernel set ``kernels``, the
    image in the arena or the caller's buffer (``input_mode``; pure Python, no JAX)."""
    from tinyjax.codegen.graph import GraphError, graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.targets import flash_bytes, get_target
    from tinyjax.errors import PlanError

    get_target(target)  # UnknownTargetError before any work
    try:
        graph = graph_from_spec(spec)
    except GraphError as e:
        raise GraphError(f"{spec.name} cannot be deployed as int8: {e}") from None
    try:
        return plan_graph(graph, target, kernels=kernels, input_mode=input_mode), flash_bytes(graph)
    except PlanError as e:
        raise PlanError(f"{spec.name}: {e}") from None


def resolve_model(model: str, resolution: int | None = None) -> ModelSpec:
    """A zoo name, a ModelSpec JSON file or a ProxylessNAS/MCUNet net-config JSON file."""
    from tinyjax.netconfig import is_net_config, read_json, spec_from_net_config
    from tinyjax.zoo import get_spec

    if model.endswith(".json") or Path(model).is_file():
        path = Path(model)
        data = read_json(path)
        try:
            if is_net_config(data):
                name = path.stem.removesuffix("_imagenet")
                return spec_from_net_config(data, name=name, resolution=resolution)
            spec = ModelSpec.from_dict(data)
        except SpecError as e:
            raise SpecError(f"{path}: {e}") from None
    else:
        spec = get_spec(model)
    return spec.with_(resolution=resolution) if resolution else spec


def min_resolution(stats: ModelStats) -> int:
    """Smallest input resolution (pixels) of the counted network: its total stride (the product
    of every layer's stride), below which the last feature map holds less than one input pixel."""
    return math.prod(layer.stride for layer in stats.layers)


def check_resolution(spec: ModelSpec, stats: ModelStats) -> None:
    """A :class:`SpecError` when ``spec.resolution`` is below :func:`min_resolution`."""
    smallest = min_resolution(stats)
    if spec.resolution < smallest:
        raise SpecError(f"resolution {spec.resolution} is too small for {spec.name}: its strides "
                        f"reduce the input {smallest}x, below one pixel; the smallest valid "
                        f"resolution is {smallest}")


def positive_int(text: str) -> int:
    """argparse type of a positive integer (a one-line error otherwise)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def mac_overhead_fraction(text: str) -> float:
    """argparse type of ``--max-mac-overhead``: a fraction from 0 to 10 (a one-line error otherwise)."""
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 <= v <= 10:   # also NaN
        raise argparse.ArgumentTypeError(f"{text!r} is not a MAC-overhead fraction; give a number "
                                         "from 0 to 10, e.g. 0.15 for 15%")
    return v


def add_patch_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--patch auto|off`` and ``--max-mac-overhead F`` (shared by info and export); ``what``
    completes the help of ``auto``."""
    parser.add_argument("--patch", choices=["auto", "off"], default="off",
                        help="'auto': patch-based inference (MCUNetV2: the first blocks run patch by "
                             f"patch) {what}; 'off' (default): layer by layer")
    parser.add_argument("--max-mac-overhead", type=mac_overhead_fraction, default=None, metavar="F",
                        help="with --patch auto: the most recomputation a patch schedule may add, "
                             f"a fraction of the network's MACs (default {DEFAULT_MAX_MAC_OVERHEAD})")


def add_input_argument(parser: argparse.ArgumentParser) -> None:
    """``--input arena|caller``: where the input image lives (``graph_plan.INPUT_MODES``)."""
    parser.add_argument("--input", choices=["arena", "caller"], default="arena",
                        help="where the input image lives: 'arena' (default: in the arena, counted "
                             "in the peak, as tinyjax, TFLite Micro and X-CUBE-AI count it) or "
                             "'caller' (in a buffer the caller keeps, e.g. a camera frame buffer; "
                             "not counted, as MCUNetV2 and TinyEngine's patch code count it)")


def image_text(plan) -> str:
    """``""`` for a plan with the image in the arena, else a clause saying it is the caller's."""
    if plan.input_mode == "arena":
        return ""
    return f"; the image ({format_kb(plan.image_bytes)}) in the caller's buffer, not counted"


def patch_cap(args: argparse.Namespace) -> float | None:
    """The MAC-overhead cap of ``--patch auto`` (``None``: ``--patch off``); a
    :class:`TinyJaxError` for ``--max-mac-overhead`` without ``--patch auto``."""
    if args.patch != "auto":
        if args.max_mac_overhead is not None:
            raise TinyJaxError("--max-mac-overhead caps patch schedules; give it with --patch auto")
        return None
    return DEFAULT_MAX_MAC_OVERHEAD if args.max_mac_overhead is None else args.max_mac_overhead
