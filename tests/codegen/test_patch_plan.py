"""Patch schedules (``tinyjax.codegen.plan.patch``): the patched integer reference equals layer by layer
on every zoo model and on random networks and schedules; every patch plan passes the verifier, and
an arena simulation that runs the plan at its offsets (the loop over patches included) gives the
reference's logits, so no live byte is overwritten; the chooser keeps its cap and budget."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from export_support import random_qmodel
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from specs import model_specs

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.ops import OPS
from tinyjax.codegen.plan.buffers import verify
from tinyjax.codegen.plan.graph_plan import plan_graph
from tinyjax.codegen.plan.patch import (
    choose_patch_plan,
    make_schedule,
    patch_summary,
    plan_patches,
    region_buffer,
    stage_cuts,
)
from tinyjax.codegen.quant.interpreter import run_int8, run_int8_patched
from tinyjax.codegen.quant.quantize import quantize_input
from tinyjax.errors import GraphError, PlanError
from tinyjax.zoo import get_spec, list_models

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def image(qm, rng, n: int = 1):
    shape = qm.graph.tensor(qm.graph.inputs[0]).shape
    return quantize_input(qm, rng.standard_normal((n,) + shape[1:]).astype(np.float32))


def assert_same(qm, x, schedule) -> None:
    ref = run_int8(qm, x)
    got = run_int8_patched(qm, x, schedule)
    assert set(got) >= {qm.graph.inputs[0], schedule.output, qm.graph.outputs[0]}
    for name, value in got.items():
        assert np.array_equal(value, ref[name]), name


def schedules(graph):
    """The chosen schedule (or the first cut in 2 x 2) and the deepest cut in up to 3 x 3."""
    cuts = stage_cuts(graph)
    chosen = choose_patch_plan(graph, verify=False)
    out = [chosen.schedule if chosen is not None else make_schedule(graph, cuts[0], 2)]
    _, h, w, _ = graph.tensor(graph.ops[cuts[-1] - 1].output).shape
    out.append(make_schedule(graph, cuts[-1], min(3, h, w)))
    return out


#: in the default suite; the rest of the zoo (the 224-px networks, EfficientNet/TinyNet, the int4
#: variants) is ``slow``, which CI runs too (.ci/run)
DEFAULT_ZOO = ("mcunet_in0", "mcunet_in1", "mcunet_in2", "mcunet_in3", "mcunet_in4", "mcunet_mbv2_w035",
               "mcunet_proxyless_w03", "tinynet_e")


@pytest.mark.parametrize("name", [n if n in DEFAULT_ZOO else pytest.param(n, marks=pytest.mark.slow)
                                  for n in list_models()])
def test_patched_reference_equals_layer_by_layer_on_every_zoo_model(name):
    qm, rng = random_qmodel(get_spec(name), calib_images=1)
    x = image(qm, rng)
    for sch in schedules(qm.graph):
        assert_same(qm, x, sch)


def arena_run(qm, plan, x) -> np.ndarray:
    """Run ``plan`` in a byte arena at its offsets (the generated C's semantics, in numpy): a
    patch's input region is copied in, each stage op reads its inputs' regions from the arena and
    writes its output region there, the result is copied into the stage output map; then the rest
    runs layer by layer at the whole tensors' offsets. Returns the logits."""
    graph, sch = qm.graph, plan.schedule
    arena = np.zeros(plan.peak_bytes, np.int8)

    def put(off, arr):
        flat = np.asarray(arr, np.int8).reshape(-1)
        arena[off:off + flat.size] = flat

    def get(off, shape):
        return arena[off:off + int(np.prod(shape))].reshape(shape).copy()

    x_in = graph.inputs[0]
    full_in = graph.tensor(x_in).shape
    if plan.input_mode == "arena":
        assert x_in in plan.tensor_offsets
        put(plan.tensor_offsets[x_in], x)
        whole_image = lambda: get(plan.tensor_offsets[x_in], full_in)   # noqa: E731
    else:                # the caller's buffer: read, never written (read-only here)
        assert x_in not in plan.tensor_offsets
        caller = np.array(x, np.int8)
        caller.flags.writeable = False
        whole_image = lambda: caller                                      # noqa: E731
    y = sch.output
    full_y = graph.tensor(y).shape
    for i, j in sch.patches():
        y0, y1, x0, x1 = sch.region(x_in, i, j)
        put(plan.region_offsets[x_in], whole_image()[:, y0:y1, x0:x1])
        for op in sch.stage_ops:
            oy0, oy1, ox0, ox1 = sch.region(op.output, i, j)
            ins = []
            for t in op.inputs:
                a = get(plan.region_offsets[t], sch.region_shape(t, i, j))
                if OPS[op.kind].patch == "pointwise":
                    ty0, _, tx0, _ = sch.region(t, i, j)
                    a = a[:, oy0 - ty0:oy1 - ty0, ox0 - tx0:ox1 - tx0]
                ins.append(a)
            out = OPS[op.kind].run_int8(sch.patch_op(op, i, j), qm.params[op.name], ins,
                                        sch.region_shape(op.output, i, j))
            put(plan.region_offsets[op.output], out)
        y0, y1, x0, x1 = sch.region(y, i, j)
        whole = get(plan.tensor_offsets[y], full_y)
        whole[:, y0:y1, x0:x1] = get(plan.region_offsets[y], sch.region_shape(y, i, j))
        put(plan.tensor_offsets[y], whole)
    for op in graph.ops[sch.n:]:
        ins = [get(plan.tensor_offsets[t], graph.tensor(t).shape) for t in op.inputs]
        put(plan.tensor_offsets[op.output],
            OPS[op.kind].run_int8(op, qm.params[op.name], ins, graph.tensor(op.output).shape))
    logits = graph.outputs[0]
    return get(plan.tensor_offsets[logits], graph.tensor(logits).shape)


@PROPERTY
@given(spec=model_specs(), data=st.data())
def test_random_networks_and_schedules(spec, data):
    """Over 100 random networks and schedules: the patched reference equals layer by layer, the
    plan passes the verifier, and running it in one arena at its offsets gives the same logits."""
    graph = graph_from_spec(spec)
    cuts = stage_cuts(graph)
    assume(cuts)
    n = data.draw(st.sampled_from(cuts), label="n")
    _, h, w, _ = graph.tensor(graph.ops[n - 1].output).shape
    p = data.draw(st.integers(1, min(h, w, 4)), label="p")
    sch = make_schedule(graph, n, p)
    qm, rng = random_qmodel(spec, seed=n * 10 + p, calib_images=1)
    x = image(qm, rng)
    assert_same(qm, x, sch)
    ref = run_int8(qm, x)[graph.outputs[0]]
    plan = plan_patches(qm.graph, sch, "cortex-m7")
    verify(plan.memory_plan)
    assert np.array_equal(arena_run(qm, plan, x), ref)
    outside = plan_patches(qm.graph, sch, "cortex-m7", input_mode="caller")
    verify(outside.memory_plan)
    assert np.array_equal(arena_run(qm, outside, x), ref)
    assert outside.peak_bytes <= plan.peak_bytes
    if p == 1:
        assert sch.mac_overhead == 0
    assert sch.macs() >= sch.layer_macs()


def test_the_verifier_catches_a_region_buffer_over_the_live_image():
    graph = graph_from_spec(get_spec("mcunet_in0"))
    plan = choose_patch_plan(graph)
    mp = plan.memory_plan
    names = [b.name for b in mp.buffers]
    k = names.index(region_buffer(plan.schedule.output))
    image_at = mp.offsets[names.index(graph.inputs[0])]
    bad = dataclasses.replace(mp, offsets=mp.offsets[:k] + (image_at,) + mp.offsets[k + 1:])
    with pytest.raises(PlanError, match="overlap in memory"):
        verify(bad)


def test_a_wrong_offset_changes_the_arena_run():
    """The arena simulation is not vacuous: a region buffer moved onto the image corrupts it."""
    qm, rng = random_qmodel(get_spec("mcunet_in0"), calib_images=1)
    plan = choose_patch_plan(qm.graph)
    x = image(qm, rng)
    ref = run_int8(qm, x)[qm.graph.outputs[0]]
    assert np.array_equal(arena_run(qm, plan, x), ref)
    y = plan.schedule.stage_ops[0].output
    moved = dict(plan.region_offsets, **{y: plan.tensor_offsets[qm.graph.inputs[0]]})
    broken = dataclasses.replace(plan, region_offsets=moved)
    assert not np.array_equal(arena_run(qm, broken, x), ref)


@pytest.mark.parametrize("name", ["mcunet_in0", "mcunet_in1", "mcunet_in2", "mcunet_in3", "mcunet_in4",
                                  "mcunet_mbv2_w035", "mcunet_proxyless_w03"])
def test_the_image_in_the_callers_buffer(name):
    """``input_mode="caller"``: the image has no arena offset and no buffer, the patch's region
    buffer still does; the plan runs to the reference's logits reading a read-only image, and is
    never above the arena-mode plan of the same schedule; the chosen one is at most that."""
    qm, rng = random_qmodel(get_spec(name), calib_images=1)
    graph, x_in = qm.graph, qm.graph.inputs[0]
    x = image(qm, rng)
    ref = run_int8(qm, x)[graph.outputs[0]]
    inside = choose_patch_plan(graph)
    outside = choose_patch_plan(graph, input_mode="caller")
    assert (inside.input_mode, outside.input_mode) == ("arena", "caller")
    assert outside.image_bytes == inside.image_bytes == graph.tensor(x_in).nbytes
    names = [b.name for b in outside.memory_plan.buffers]
    assert x_in not in names and region_buffer(x_in) in names
    assert x_in in [b.name for b in inside.memory_plan.buffers]
    assert np.array_equal(arena_run(qm, outside, x), ref)
    same = plan_patches(graph, inside.schedule, input_mode="caller")
    assert same.peak_bytes <= inside.peak_bytes and outside.peak_bytes <= same.peak_bytes
    assert outside.layer_peak_bytes == plan_graph(graph, input_mode="caller").peak_bytes


def test_layer_by_layer_with_the_image_outside_never_writes_it():
    """A network whose first op may run in place (a depthwise conv on the image): in the arena it
    overwrites the image, in the caller's buffer it may not, and the image has no offset."""
    from tinyjax.codegen.graph import Graph, Op, Tensor

    graph = Graph(
        (Tensor("input", (1, 16, 16, 8)), Tensor("dw", (1, 16, 16, 8)), Tensor("pw", (1, 16, 16, 4))),
        (Op.make("dw", "depthwise_conv", ["input"], kernel=(3, 3), stride=(1, 1), padding=(1, 1),
                 channels=8, ch_mult=1, act="relu"),
         Op.make("pw", "conv", ["dw"], kernel=(1, 1), stride=(1, 1), padding=(0, 0), in_chs=8,
                 out_chs=4, act="none")),
        ("input",), ("pw",)).validate()
    inside, outside = plan_graph(graph), plan_graph(graph, input_mode="caller")
    x_in = graph.inputs[0]
    assert x_in in inside.tensor_offsets and x_in not in outside.tensor_offsets
    readers = [k for k, op in enumerate(graph.ops) if x_in in op.inputs]
    assert all(inside.in_place[k] for k in readers) and not any(outside.in_place[k] for k in readers)
    assert all(b.name != x_in for b in outside.memory_plan.buffers)
    assert outside.peak_bytes <= inside.peak_bytes


def test_an_unknown_input_mode_is_one_line():
    graph = graph_from_spec(get_spec("mcunet_in0"))
    for call in (lambda: plan_graph(graph, input_mode="flash"),
                 lambda: choose_patch_plan(graph, input_mode="flash"),
                 lambda: plan_patches(graph, (stage_cuts(graph)[0], 2), input_mode="flash")):
        with pytest.raises(PlanError, match="unknown input mode 'flash': use 'arena'.*or 'caller'") as e:
            call()
        assert "\n" not in str(e.value)


def test_bad_schedules_are_one_line_errors():
    graph = graph_from_spec(get_spec("mcunet_in0"))
    cuts = stage_cuts(graph)
    with pytest.raises(GraphError, match=r"the first 2 ops are not a patch stage.*valid stage lengths: "
                                         + ", ".join(map(str, cuts))) as e:
        make_schedule(graph, 2, 2)
    assert "\n" not in str(e.value)
    _, h, w, _ = graph.tensor(graph.ops[cuts[-1] - 1].output).shape
    assert make_schedule(graph, cuts[-1], np.int64(2)).p == 2      # any integer type
    for p in (0, min(h, w) + 1):
        with pytest.raises(GraphError, match=f"use 1 to {min(h, w)}$") as e:
            make_schedule(graph, cuts[-1], p)
        assert "\n" not in str(e.value)


def test_se_blocks_end_the_stage():
    """EfficientNet's squeeze-excite pools the whole map: only its stem can be patched."""
    graph = graph_from_spec(get_spec("efficientnet_b0"))
    assert stage_cuts(graph)
    for c in stage_cuts(graph):
        assert all(OPS[op.kind].patch is not None for op in graph.ops[:c])
    assert max(stage_cuts(graph)) < next(i for i, op in enumerate(graph.ops) if op.kind == "channel_mul")


MCUNET = ["mcunet_in0", "mcunet_in1", "mcunet_in2", "mcunet_in3", "mcunet_in4", "mcunet_mbv2_w035",
          "mcunet_proxyless_w03"]


def brute_force(graph, cap, budget=None):
    """(overhead fraction, peak, n, p) of every schedule with p in 2..8 within the cap."""
    total = graph.total_macs()
    out = []
    for c in stage_cuts(graph):
        _, h, w, _ = graph.tensor(graph.ops[c - 1].output).shape
        for p in range(2, min(8, h, w) + 1):
            sch = make_schedule(graph, c, p)
            if sch.mac_overhead / total <= cap:
                peak = plan_patches(graph, sch, verify=False).peak_bytes
                out.append((sch.mac_overhead / total, peak, c, p))
    return out


@pytest.mark.parametrize("name", MCUNET)
def test_the_chooser_keeps_its_cap_and_finds_the_smallest_peak(name):
    graph = graph_from_spec(get_spec(name))
    layer = plan_graph(graph).peak_bytes
    plan = choose_patch_plan(graph)
    assert plan is not None and plan.peak_bytes < layer and plan.layer_peak_bytes == layer
    assert 0 < plan.mac_overhead_fraction <= 0.15
    assert plan.peak_bytes == min(peak for _, peak, _, _ in brute_force(graph, 0.15))
    s = patch_summary(plan, layer)
    assert (s["peak_sram_bytes"], s["layer_peak_sram_bytes"], s["patch_stage_ops"], s["patches_per_side"]) \
        == (plan.peak_bytes, layer, plan.n, plan.p)


@pytest.mark.parametrize("name", ["mcunet_in1", "mcunet_in4", "mcunet_proxyless_w03"])
def test_under_a_budget_the_least_overhead_that_fits(name):
    graph = graph_from_spec(get_spec(name))
    layer = plan_graph(graph).peak_bytes
    assert choose_patch_plan(graph, budget=layer) is None           # layer by layer fits
    options = brute_force(graph, 0.15)
    best = min(options, key=lambda o: o[1])
    budget = (best[1] + layer) // 2
    plan = choose_patch_plan(graph, budget=budget)
    assert plan.peak_bytes <= budget
    assert plan.mac_overhead_fraction == pytest.approx(min(f for f, peak, _, _ in options if peak <= budget))


@pytest.mark.parametrize("name", ["mcunet_in1", "mcunet_in4"])
def test_a_tighter_cap_is_kept(name):
    """At 2% the cap binds (the default 15% picks more overhead) and the chooser still finds the
    smallest peak within it; at 0 no schedule with p >= 2 is allowed."""
    graph = graph_from_spec(get_spec(name))
    assert choose_patch_plan(graph).mac_overhead_fraction > 0.02
    plan = choose_patch_plan(graph, max_mac_overhead=0.02)
    assert plan is not None and 0 < plan.mac_overhead_fraction <= 0.02
    assert plan.peak_bytes == min(peak for _, peak, _, _ in brute_force(graph, 0.02))
    assert choose_patch_plan(graph, max_mac_overhead=0.0) is None


def test_both_plan_kinds_are_plans_and_say_their_schedule():
    """One protocol (tinyjax.codegen.plan.protocol.Plan): what the emitter, the export and the
    reports read, whichever kind of plan they get; ``schedule`` tells the kinds apart."""
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.plan.patch import choose_patch_plan
    from tinyjax.codegen.plan.protocol import Plan
    from tinyjax.zoo import get_spec

    graph = graph_from_spec(get_spec("mcunet_in0"))
    layer = plan_graph(graph, "cortex-m7")
    patch = choose_patch_plan(graph, "cortex-m7")
    assert isinstance(layer, Plan) and isinstance(patch, Plan)
    assert layer.schedule is None and layer.layer_peak_bytes == layer.peak_bytes
    assert patch.schedule is not None and patch.layer_peak_bytes == layer.peak_bytes
    assert patch.peak_bytes == patch.memory_plan.peak_bytes < layer.peak_bytes
    assert layer.lower_bound_bytes == layer.memory_plan.lower_bound_bytes
    assert not isinstance(graph, Plan)
