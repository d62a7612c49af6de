"""``--patch auto``: the search's fit check with patch-based inference (MCUNetV2). A network whose
layer-by-layer plan exceeds the budget fits when the patch plan the export will use does; stage 1,
the evolution's check and its verified re-plan agree with ``codegen.patch.choose_patch_plan``."""

from __future__ import annotations

import random

import pytest

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.plan.graph_plan import plan_graph
from tinyjax.codegen.plan.patch import choose_patch_plan
from tinyjax.counting import count
from tinyjax.errors import run_cli
from tinyjax.search.__main__ import main
from tinyjax.search.tinynas.evolution import MemoryCheck
from tinyjax.search.tinynas.run import Budget
from tinyjax.search.tinynas.space import SearchSpace
from tinyjax.search.tinynas.stage1 import evaluate_space, space_seed

KB, MB = 1024, 1024 ** 2
SPACE = SearchSpace(0.5, 144, 10)
BUDGET = 128 * KB


def truth(spec, budget: int = BUDGET, cap: float = 0.15) -> tuple[bool, int]:
    """(fits, peak) from the public planners: layer by layer, else the patch plan under the budget."""
    graph = graph_from_spec(spec)
    layer = plan_graph(graph, "cortex-m7").peak_bytes
    if layer <= budget:
        return True, layer
    pp = choose_patch_plan(graph, "cortex-m7", max_mac_overhead=cap, budget=budget)
    peak = layer if pp is None else min(layer, pp.peak_bytes)
    return peak <= budget, peak


def test_memory_check_with_patches_is_the_patch_plan_and_verify_agrees():
    check = MemoryCheck(SPACE, BUDGET, target="cortex-m7", patch=True)
    plain = MemoryCheck(SPACE, BUDGET, target="cortex-m7")
    rng = random.Random(3)
    patched_fits = 0
    for _ in range(12):
        arch = SPACE.sample(rng)
        fit = check(arch)
        fits, peak = truth(SPACE.spec(arch))
        assert (fit.fits, fit.peak_sram_bytes) == (fits, peak)
        assert check.verify(arch) == fit
        if fit.fits and not plain(arch).fits:
            patched_fits += 1
    assert patched_fits > 0          # the case the option exists for occurs in this space


def test_stage1_with_patches_counts_exactly_the_networks_that_fit():
    samples = 15
    stats = evaluate_space(SPACE, BUDGET, 1 * MB, "cortex-m7", samples=samples, seed=1, patch=0.15)
    plain = evaluate_space(SPACE, BUDGET, 1 * MB, "cortex-m7", samples=samples, seed=1)
    rng = random.Random(space_seed(1, SPACE))
    specs = [SPACE.spec(SPACE.sample(rng)) for _ in range(samples)]
    expect = [truth(s) for s in specs]
    assert stats.fitting == sum(f for f, _ in expect)
    assert stats.macs == tuple(sorted(count(s).macs for s, (f, _) in zip(specs, expect) if f))
    assert stats.fitting > plain.fitting
    assert stats.min_peak == min(p for _, p in expect)


def test_a_tighter_cap_fits_fewer_networks():
    loose = evaluate_space(SPACE, BUDGET, 1 * MB, "cortex-m7", samples=10, seed=2, patch=0.5)
    tight = evaluate_space(SPACE, BUDGET, 1 * MB, "cortex-m7", samples=10, seed=2, patch=0.0)
    plain = evaluate_space(SPACE, BUDGET, 1 * MB, "cortex-m7", samples=10, seed=2)
    assert tight.fitting <= loose.fitting
    assert plain.fitting <= tight.fitting


def test_a_layer_by_layer_budget_keeps_its_fingerprint():
    plain = Budget(BUDGET, MB, "cortex-m7")
    assert set(plain.to_dict()) == {"sram_bytes", "flash_bytes", "target", "reserve_bytes", "device",
                                    "in_place"}
    patched = Budget(BUDGET, MB, "cortex-m7", patch=True, max_mac_overhead=0.1)
    assert patched.to_dict()["patch"] is True and patched.to_dict()["max_mac_overhead"] == 0.1
    assert "patch-based inference allowed (at most 10% more MACs)" in patched.text()


def cli(capsys, *args):
    try:
        rc = run_cli(main, list(args), prog="tinyjax.search")
    except SystemExit as e:          # argparse's own usage errors
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("args, match", [
    (["--budget", "128kB", "--patch", "sometimes"], "invalid choice: 'sometimes'"),
    (["--budget", "128kB", "--patch", "auto", "--max-mac-overhead", "lots"],
     "'lots' is not a MAC-overhead fraction"),
    (["--budget", "128kB", "--patch", "auto", "--max-mac-overhead", "-0.1"],
     "'-0.1' is not a MAC-overhead fraction"),
    (["--budget", "128kB", "--max-mac-overhead", "0.2"], "give it with --patch auto"),
    (["--flops", "24M", "--patch", "auto"], "--patch applies to the TinyNAS search"),
])
def test_bad_patch_options_are_one_line_and_exit_2(capsys, tmp_path, args, match):
    wd = tmp_path / "wd"
    extra = [] if "--flops" in args else ["--workdir", str(wd)]
    rc, out, err = cli(capsys, *args, *extra)
    lines = err.strip().splitlines()
    assert rc == 2 and match in lines[-1], err
    assert not wd.exists()
