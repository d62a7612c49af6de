import copy
import json

import pytest

from tinyjax.counting import count
from tinyjax.errors import SpecError
from tinyjax.netconfig import load_net_config, spec_from_net_config
from tinyjax.zoo import get_spec

# Published figures (MCUNet paper / model zoo, STM32F746 table in docs/papers.md): MACs, params.
PUBLISHED = {
    "mcunet_in0": ("mcunet-10fps", 6.4e6, 0.75e6),
    "mcunet_in1": ("mcunet-5fps", 12.8e6, 0.64e6),
    "mcunet_in2": ("mcunet-256kb-1mb", 67.3e6, 0.73e6),
    "mcunet_in3": ("mcunet-320kb-1mb", 81.8e6, 0.74e6),
    "mcunet_in4": ("mcunet-512kb-2mb", 125.9e6, 1.73e6),
    "mcunet_mbv2_w035": ("mbv2-w0.35-r144", 23.5e6, 0.75e6),
    "mcunet_proxyless_w03": ("proxyless-w0.3-r176", 38.3e6, 0.75e6),
}


def _printed_half_unit(value: float) -> float:
    """Half a unit of the last digit the table prints (6.4M -> 0.05M, 0.75M -> 0.005M)."""
    text = f"{value / 1e6:.3g}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10 ** -decimals * 1e6


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_official_configs_match_the_published_table(name):
    """Within 0.5%, or within the table's own printed precision where that is coarser (6.4M is
    6.35..6.45M: ±0.8%). Both bounds are printed on failure."""
    _, macs, params = PUBLISHED[name]
    stats = count(get_spec(name))
    for got, want in ((stats.macs, macs), (stats.params, params)):
        tol = max(0.005 * want, _printed_half_unit(want))
        assert abs(got - want) <= tol, f"{name}: {got} vs published {want} (tolerance {tol:.0f})"


def test_most_official_figures_are_within_half_a_percent():
    rel = [abs(c - w) / w for n, (_, m, p) in PUBLISHED.items()
           for c, w in ((count(get_spec(n)).macs, m), (count(get_spec(n)).params, p))]
    assert sum(r <= 0.005 for r in rel) >= 11 and max(rel) < 0.006


def test_every_reference_config_loads_to_its_zoo_entry(mcunet_configs):
    files = sorted(mcunet_configs.glob("*.json"))
    assert len(files) == 13
    for path in files:
        spec = load_net_config(path)
        zoo = get_spec(path.stem)  # official names are zoo aliases
        assert spec.with_(name=zoo.name) == zoo, path.name


def test_zero_layers_are_dropped_and_lists_unwrapped(mcunet_configs):
    raw = json.loads((mcunet_configs / "proxyless-w0.25-r112_imagenet.json").read_text())
    zero = sum(b["mobile_inverted_conv"]["name"] == "ZeroLayer" for b in raw["blocks"])
    spec = spec_from_net_config(raw)
    assert zero > 0 and spec.num_blocks == len(raw["blocks"]) - zero
    # A shortcut-free block whose shapes would allow a residual keeps it off: 'noskip'.
    assert not spec.resolved_blocks()[0].has_skip
    listy = json.loads((mcunet_configs / "mcunet-10fps_imagenet.json").read_text())
    assert any(isinstance((b["shortcut"] or {}).get("in_channels"), list) for b in listy["blocks"])
    assert spec_from_net_config(listy).num_blocks == len(listy["blocks"])


@pytest.fixture
def config(mcunet_configs):
    return json.loads((mcunet_configs / "mcunet-320kb-1mb_imagenet.json").read_text())


@pytest.mark.parametrize("mutate, field", [
    (lambda c: c["blocks"][3]["mobile_inverted_conv"].__setitem__("kernel_size", "7"),
     "blocks[3].mobile_inverted_conv.kernel_size"),
    (lambda c: c["blocks"][2]["mobile_inverted_conv"].__setitem__("in_channels", 99),
     "blocks[2].mobile_inverted_conv.in_channels"),
    (lambda c: c["blocks"][1]["mobile_inverted_conv"].__setitem__("name", "MixedConv"),
     "blocks[1].mobile_inverted_conv.name"),
    (lambda c: c["blocks"][1]["mobile_inverted_conv"].__setitem__("act_func", "gelu"),
     "blocks[1].mobile_inverted_conv.act_func"),
    (lambda c: c["first_conv"].pop("out_channels"), "first_conv.out_channels"),
    (lambda c: c["classifier"].__setitem__("in_features", 7), "classifier.in_features"),
    (lambda c: c["blocks"][1].__setitem__("shortcut", {"name": "IdentityLayer"}), "blocks[1].shortcut"),
    (lambda c: c["blocks"][1]["mobile_inverted_conv"].__setitem__("mid_channels", 5),
     "blocks[1].mobile_inverted_conv.mid_channels"),
])
def test_malformed_net_config_names_the_field(config, mutate, field):
    bad = copy.deepcopy(config)
    mutate(bad)
    with pytest.raises(SpecError) as e:
        spec_from_net_config(bad)
    assert str(e.value).startswith(field), str(e.value)
