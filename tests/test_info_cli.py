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


def test_zoo_listing_and_no_framework_import():
    code = ("import sys; from tinyjax.info import main; main([]); main(['tinynet_a', '--json']); "
            "assert not {'jax', 'tensorflow', 'torch'} & set(sys.modules), 'heavy import'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "mcunet_in3" in r.stdout and "tinynet_a" in r.stdout
