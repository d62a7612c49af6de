import pytest
from ml_collections import ConfigDict

from tinyjax.train.config import ConfigFileError, apply_overrides, load_config


def base():
    return ConfigDict({"lr": 0.1, "batch_size": 8, "model": "tinynet_e", "flag": True,
                       "data": {"name": "x", "crop_pct": 0.875}, "scales": (1.0,)})


def test_dotted_overrides_parse_by_field_type():
    c = apply_overrides(base(), ["lr=1", "batch_size=16", "model=mcunet_in0", "flag=False",
                                 "data.name=imagenet2012", "scales=(0.5, 2.0)"])
    assert c.lr == 1.0 and isinstance(c.lr, float) and c.batch_size == 16
    assert c.model == "mcunet_in0" and c.flag is False and c.data.name == "imagenet2012"
    assert c.scales == (0.5, 2.0)


@pytest.mark.parametrize("override, message", [
    ("lrr=0.1", "unknown config key 'lrr'"),
    ("data.nam=x", "unknown config key 'data.nam'"),
    ("nothing.here=1", "unknown config key 'nothing'"),
    ("batch_size=big", "is an int;"),
    ("lr=big", "is a float;"),
    ("lr", "key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigFileError, match=message):
        apply_overrides(base(), [override])


def test_load_config_passes_the_argument(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("from ml_collections import ConfigDict\n"
                 "def get_config(arg=None):\n    return ConfigDict({'arg': arg or ''})\n")
    assert load_config(f"{f}:runlocal").arg == "runlocal"
    assert load_config(str(f)).arg == ""
    with pytest.raises(ConfigFileError, match="not found"):
        load_config(str(tmp_path / "absent.py"))


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    for name in ("tinynet_imagenet.py:a", "tinynet_imagenet.py:e", "imagenet100.py:mcunet_in3"):
        cfg = load_config(f"{root / name}")
        assert cfg.batch_size > 0 and cfg.data.name == "imagenet2012"
    assert load_config(f"{root}/tinynet_imagenet.py:c").model == "tinynet_c"
    with pytest.raises(ConfigFileError, match="unknown TinyNet variant"):
        load_config(f"{root}/tinynet_imagenet.py:z")
