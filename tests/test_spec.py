import json

import pytest
from hypothesis import given, settings
from specs import block_specs, model_specs

from tinyjax.errors import SpecError
from tinyjax.spec import BlockSpec, ModelSpec, make_divisible
from tinyjax.zoo import get_spec, list_models


@given(block_specs())
def test_block_string_round_trips(block):
    assert BlockSpec.from_string(block.to_string()) == block


def test_block_string_decodes_timm_notation():
    b = BlockSpec.from_string("ir_r2_k5_s2_e6_c40_se0.25")
    got = (b.type, b.repeats, b.kernel, b.stride, b.expand, b.out_chs, b.se)
    assert got == ("ir", 2, 5, 2, 6.0, 40, 0.25)
    assert b.act is None and b.skip
    d = BlockSpec.from_string("ds_r1_k3_s1_c16_noskip_nr6")
    assert d.type == "ds" and d.expand == 1.0 and not d.skip and d.act == "relu6"
    assert d.to_string() == "ds_r1_k3_s1_e1_c16_noskip_nr6"


@pytest.mark.parametrize("text, message", [
    ("ir_r2_kx_s1_e6_c16", "token 'kx' needs an integer"),
    ("ir_r1_k3_s1_c16", "needs an expansion token"),
    ("ir_r1_k4_s1_e6_c16", "kernel must be odd"),
    ("xx_r1_k3_s1_c16", "block type 'xx'"),
    ("ir_r1_k3_s1_e6_c16_zz", "unknown token 'zz'"),
    ("ir_r1_k3_e6_c16", "missing token s"),
    ("ds_r1_k3_s1_e6_c16", "no expansion"),
])
def test_bad_block_strings_say_what_is_wrong(text, message):
    with pytest.raises(SpecError, match=message):
        BlockSpec.from_string(text)


@pytest.mark.parametrize("name", list_models())
def test_zoo_specs_round_trip_through_json(name):
    spec = get_spec(name)
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec and hash(again) == hash(spec)


@settings(max_examples=50, deadline=None)
@given(model_specs())
def test_random_specs_round_trip_through_json(spec):
    assert ModelSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["stages"][1].__setitem__(0, "ir_r2_k3_s2_e6_c"), "stages[1][0]"),
    (lambda d: d.__setitem__("resolution", "big"), "resolution"),
    (lambda d: d["stem"].__setitem__("out_chs", 3.5), "stem.out_chs"),
    (lambda d: d.__setitem__("colour", 1), "colour"),
    (lambda d: d.__setitem__("act", "gelu"), "act"),
    (lambda d: d.pop("stages"), "stages"),
    (lambda d: d["stages"].__setitem__(0, []), "stages[0]"),
])
def test_malformed_spec_json_names_the_field(mutate, field):
    d = get_spec("tinynet_e").to_dict()
    mutate(d)
    with pytest.raises(SpecError) as e:
        ModelSpec.from_dict(json.loads(json.dumps(d)))
    assert str(e.value).startswith(field), str(e.value)


def test_make_divisible_matches_timm_rule():
    assert make_divisible(16 * 0.35) == 8          # floor at the divisor
    assert make_divisible(32 * 0.35) == 16         # 8 < 0.9 * 11.2, so one more step
    assert make_divisible(1280 * 1.4) == 1792
    assert make_divisible(112 * 0.54) == 64        # int(60.48 + 4) // 8 * 8
    assert make_divisible(40 * 0.51) == 24


def test_resolved_blocks_follow_timm_channel_rules():
    blocks = get_spec("tinynet_a").resolved_blocks()
    first_ir = blocks[1]  # stage 1, block 0 of tinynet_a: 16 -> 96 -> 24, SE width 4
    assert (first_ir.name, first_ir.in_chs, first_ir.mid_chs, first_ir.out_chs, first_ir.se_chs) == \
        ("blocks_1_0", 16, 96, 24, 4)
    ds = blocks[0]
    assert (ds.type, ds.in_chs, ds.mid_chs, ds.se_chs, ds.has_skip) == ("ds", 32, 32, 8, False)
    assert blocks[2].has_skip and not blocks[1].has_skip  # repeat 2 keeps shape, repeat 1 strides
    assert [b.index for b in blocks] == list(range(len(blocks)))
