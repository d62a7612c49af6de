"""``python -m tinyjax.info``: the user-facing report and its error handling."""

import json
import subprocess
import sys

import pytest

from tinyjax.counting import count
from tinyjax.info import main
from tinyjax.zoo import get_spec


def run(*args):
    return subprocess.run([sys.executable, "-m", "tinyjax.info", *args], capture_output=True,
                          text=True, timeout=120)


def test_json_report_of_tinynet_e():
    r = run("tinynet_e", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    stats = count(get_spec("tinynet_e"))
    assert report["name"] == "tinynet_e" and report["resolution"] == 106
    assert (report["params"], report["macs"]) == (stats.params, stats.macs) == (2042972, 24356848)


def test_unknown_model_is_one_line_with_the_closest_names():
    r = run("tinynet_f")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "tinynet_e" in lines[0] and "Traceback" not in r.stderr


def test_malformed_spec_json_names_the_field(tmp_path):
    d = get_spec("tinynet_e").to_dict()
    d["stages"][2] = ["ir_r2_k5_s2_e6"]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(d))
    r = run(str(path))
    assert r.returncode == 2
    assert "stages[2][0]" in r.stderr and "missing token c" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_broken_json_and_missing_file_exit_2(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert run(str(path)).returncode == 2
    r = run(str(tmp_path / "absent.json"))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_net_config_file_and_resolution_override(mcunet_configs, capsys):
    path = mcunet_configs / "mcunet-320kb-1mb_imagenet.json"
    assert main([str(path), "--json", "--resolution", "160"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resolution"] == 160
    assert report["macs"] == count(get_spec("mcunet_in3", resolution=160)).macs


def test_spec_json_written_by_to_json_is_accepted(tmp_path, capsys):
    path = tmp_path / "mine.json"
    path.write_text(get_spec("mcunet_in1").to_json())
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "stage 6" in out and f"{count(get_spec('mcunet_in1')).macs:,} MACs" in out


@pytest.mark.parametrize("args", [["tinynet_e", "--resolution", "0"], ["tinynet_e", "--resolution", "x"]])
def test_bad_resolution_exits_2(args):
    assert run(*args).returncode == 2


def test_resolution_below_the_total_stride_names_the_smallest_valid_one(capsys):
    from tinyjax.cli import min_resolution
    from tinyjax.errors import run_cli

    assert min_resolution(count(get_spec("mcunet_in2"))) == 32   # stem 2 x five stride-2 stages
    assert run_cli(main, ["mcunet_in2", "--resolution", "3"], prog="tinyjax.info") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resolution 3" in err[0] and "smallest valid resolution is 32" in err[0]
    assert run_cli(main, ["mcunet_in2", "--resolution", "31", "--json"]) == 2
    capsys.readouterr()
    assert main(["mcunet_in2", "--resolution", "32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolution"] == 32


def test_zoo_listing_and_no_framework_import():
    code = ("import sys; from tinyjax.info import main; main([]); main(['tinynet_a', '--json']); "
            "assert not {'jax', 'tensorflow', 'torch', 'matplotlib'} & set(sys.modules), 'heavy'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "mcunet_in3" in r.stdout and "tinynet_a" in r.stdout


# --------------------------------------------------------------------------- memory report


def test_json_has_the_planned_memory(capsys):
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.targets import flash_bytes

    assert main(["mcunet_in1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    g = graph_from_spec(get_spec("mcunet_in1"))
    p = plan_graph(g, "cortex-m7")
    assert report["target"] == "cortex-m7"
    assert report["peak_sram_bytes"] == p.peak_bytes
    assert report["sram_lower_bound_bytes"] == p.lower_bound_bytes <= report["peak_sram_bytes"]
    assert report["flash_bytes"] == flash_bytes(g)
    # the input image alone is 96*96*3 bytes: the arena holds it and more
    assert report["peak_sram_bytes"] > 96 * 96 * 3


def test_target_option_changes_the_scratch(capsys):
    # stem 3x3x3 im2col: 2*align4(27)*2 = 112 B on the DSP path, 4*ceil(27/16)*16 = 128 B on MVE
    def stem_scratch(target):
        assert main(["mcunet_in0", "--layers", "--target", target]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(f"target {target}:")
        row = next(line.split() for line in out if line.split()[1:2] == ["stem/conv"])
        return int(row[7])

    assert stem_scratch("cortex-m7") == stem_scratch("cortex-m4") == stem_scratch("host") == 112
    assert stem_scratch("cortex-m55") == 128
    assert main(["mcunet_in0", "--json", "--target", "host"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == "host"


def test_unknown_target_exits_2_naming_the_targets():
    r = run("mcunet_in0", "--target", "cortex-m99")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert all(t in lines[0] for t in ("cortex-m99", "cortex-m4", "cortex-m7", "cortex-m55", "host"))


def test_layers_table_and_plan_png(tmp_path):
    from matplotlib.image import imread

    png = tmp_path / "plan.png"
    r = run("mcunet_in0", "--layers", "--plan-png", str(png))
    assert r.returncode == 0, r.stderr
    assert "target cortex-m7: peak" in r.stdout
    assert "blocks_1_0/conv_dw" in r.stdout and "tjx_depthwise_conv_inplace_s8" in r.stdout
    assert r.stdout.splitlines()[-1] == f"wrote {png}"
    h, w, _ = imread(png).shape
    assert w > h >= 400


def test_plan_png_with_json_keeps_stdout_json(tmp_path):
    png = tmp_path / "plan.png"
    r = run("mcunet_in0", "--json", "--plan-png", str(png))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "mcunet_in0"
    assert r.stderr.strip() == f"wrote {png}" and png.stat().st_size > 0


def test_plan_png_to_an_unwritable_place_exits_2(tmp_path):
    r = run("mcunet_in0", "--plan-png", str(tmp_path / "no" / "such" / "dir.png"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_model_without_int8_form_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from tinyjax.codegen import graph as graph_mod
    from tinyjax.errors import run_cli

    spec = get_spec("mcunet_in0").with_(act="hard_swish")
    path = tmp_path / "hs.json"
    path.write_text(spec.to_json())
    monkeypatch.setattr(graph_mod, "ACTIVATIONS_LUT", ("silu", "sigmoid"))
    assert run_cli(main, [str(path), "--json"], prog="tinyjax.info") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hard_swish" in err[0] and "int8" in err[0]


def test_memory_fields_without_jax():
    code = ("import sys, json, io, contextlib; from tinyjax.info import main; f = io.StringIO()\n"
            "with contextlib.redirect_stdout(f): main(['mcunet_in2', '--json'])\n"
            "assert json.loads(f.getvalue())['peak_sram_bytes'] > 0\n"
            "with contextlib.redirect_stdout(f): main(['mcunet_in2', '--layers'])\n"
            "assert not {'jax', 'tensorflow', 'torch', 'matplotlib'} & set(sys.modules), 'heavy'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------- patch-based inference


def _patch_plan(name, **kw):
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.plan.patch import choose_patch_plan

    g = graph_from_spec(get_spec(name))
    return choose_patch_plan(g, "cortex-m7", **kw), plan_graph(g, "cortex-m7")


def test_json_with_patch_auto_gains_the_patch_summary_of_the_chosen_plan(capsys):
    from tinyjax.codegen.plan.patch import patch_summary

    assert main(["mcunet_in0", "--json"]) == 0
    layer = json.loads(capsys.readouterr().out)
    assert main(["mcunet_in0", "--json", "--patch", "auto"]) == 0
    report = json.loads(capsys.readouterr().out)
    pp, gp = _patch_plan("mcunet_in0")
    expected = patch_summary(pp, gp.peak_bytes)
    assert set(report) == set(layer) | set(expected)
    assert {k: report[k] for k in expected} == expected
    # the schedule lowers the peak within the default 15% cap
    assert report["peak_sram_bytes"] == pp.peak_bytes < report["layer_peak_sram_bytes"]
    assert report["layer_peak_sram_bytes"] == layer["peak_sram_bytes"] == gp.peak_bytes
    assert 0 < report["patch_mac_overhead"] <= 0.15
    n, p = report["patch_stage_ops"], report["patches_per_side"]
    assert type(n) is int and type(p) is int and (n, p) == (pp.n, pp.p) and n >= 1 and p >= 2
    # the arena still holds the whole input image, and the lower bound stays a lower bound
    assert 48 * 48 * 3 < report["peak_sram_bytes"]
    assert report["sram_lower_bound_bytes"] == pp.lower_bound_bytes <= report["peak_sram_bytes"]
    # everything else is the layer-by-layer report's
    changed = {"peak_sram_bytes", "sram_lower_bound_bytes", "peak_sram_bytes_image_outside"}
    assert {k: v for k, v in report.items() if k in set(layer) - changed} == \
        {k: v for k, v in layer.items() if k not in changed}


@pytest.mark.parametrize("patch", [[], ["--patch", "auto"]])
def test_input_caller_leaves_the_image_out_of_every_peak(capsys, patch):
    """``--input caller``: the peak is the plan's with the image in the caller's buffer (with
    ``--patch auto`` the schedule chosen for that mode); ``peak_sram_bytes_image_outside`` is that
    figure in either mode, and ``image_bytes`` the image's."""
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import plan_graph
    from tinyjax.codegen.plan.patch import choose_patch_plan
    from tinyjax.zoo import get_spec

    graph = graph_from_spec(get_spec("mcunet_in1"))
    if patch:
        inside, outside = choose_patch_plan(graph), choose_patch_plan(graph, input_mode="caller")
    else:
        inside, outside = plan_graph(graph), plan_graph(graph, input_mode="caller")
    reports = {}
    for mode in ("arena", "caller"):
        assert main(["mcunet_in1", "--json", "--input", mode] + patch) == 0
        reports[mode] = json.loads(capsys.readouterr().out)
    assert main(["mcunet_in1", "--json"] + patch) == 0
    assert json.loads(capsys.readouterr().out) == reports["arena"]       # arena is the default
    arena, caller = reports["arena"], reports["caller"]
    assert (arena["input_mode"], caller["input_mode"]) == ("arena", "caller")
    assert arena["image_bytes"] == caller["image_bytes"] == 96 * 96 * 3
    assert arena["peak_sram_bytes"] == inside.peak_bytes
    assert caller["peak_sram_bytes"] == outside.peak_bytes
    assert arena["peak_sram_bytes_image_outside"] == caller["peak_sram_bytes_image_outside"] \
        == outside.peak_bytes
    if patch:       # here the image is live at the patch plan's peak: leaving it out lowers it
        assert outside.peak_bytes < inside.peak_bytes
        assert caller["layer_peak_sram_bytes"] == plan_graph(graph, input_mode="caller").peak_bytes
    assert main(["mcunet_in1", "--input", "caller"] + patch) == 0
    assert "the image (27.0 kB) in the caller's buffer, not counted" in capsys.readouterr().out


def test_patch_off_is_the_layer_by_layer_report(capsys):
    assert main(["mcunet_in0", "--json"]) == 0
    default = capsys.readouterr().out
    assert main(["mcunet_in0", "--json", "--patch", "off"]) == 0
    assert capsys.readouterr().out == default
    assert "patch_mac_overhead" not in json.loads(default)
    assert main(["mcunet_in0"]) == 0
    assert "patch-based" not in capsys.readouterr().out


def test_a_cap_no_schedule_meets_gives_layer_by_layer_with_null_n_and_p(capsys):
    assert _patch_plan("mcunet_in0", max_mac_overhead=0.01)[0] is None
    assert main(["mcunet_in0", "--json", "--patch", "auto", "--max-mac-overhead", "0.01"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["peak_sram_bytes"] == report["layer_peak_sram_bytes"] > 0
    assert report["patch_stage_ops"] is None and report["patches_per_side"] is None
    assert report["patch_mac_overhead"] == 0.0
    assert main(["mcunet_in0", "--patch", "auto", "--max-mac-overhead", "0.01"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("patch-based: no schedule within +1% MACs lowers the peak"), last


def test_text_report_prints_the_schedule_in_one_line(capsys):
    import re

    assert main(["mcunet_in0", "--patch", "auto"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("patch-based")]
    assert len(lines) == 1
    m = re.fullmatch(r"patch-based: first (\d+) ops in (\d+)x(\d+) patches, peak ([\d.]+) kB "
                     r"\(layer by layer ([\d.]+) kB\), \+([\d.]+)% MACs", lines[0])
    assert m, lines[0]
    pp, gp = _patch_plan("mcunet_in0")
    assert (int(m[1]), int(m[2]), int(m[3])) == (pp.n, pp.p, pp.p)
    assert (m[4], m[5]) == (f"{pp.peak_bytes / 1024:.1f}", f"{gp.peak_bytes / 1024:.1f}")
    assert m[6] == f"{100 * pp.mac_overhead_fraction:.1f}"


@pytest.mark.parametrize("argv, message", [
    (["--patch", "auto", "--max-mac-overhead", "-1"], "'-1' is not a MAC-overhead fraction"),
    (["--patch", "auto", "--max-mac-overhead", "abc"], "'abc' is not a MAC-overhead fraction"),
    (["--patch", "auto", "--max-mac-overhead", "nan"], "'nan' is not a MAC-overhead fraction"),
    (["--patch", "sometimes"], "invalid choice: 'sometimes'"),
])
def test_bad_patch_options_are_one_argparse_error_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["mcunet_in0", *argv])
    assert e.value.code == 2
    out, err = capsys.readouterr()
    errors = [x for x in err.splitlines() if "error:" in x]
    assert not out and len(errors) == 1 and message in errors[0], err


def test_a_cap_without_patch_auto_is_one_line_exit_2(capsys):
    from tinyjax.errors import run_cli

    assert run_cli(main, ["mcunet_in0", "--max-mac-overhead", "0.1"], prog="tinyjax.info") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--patch auto" in err[0]
