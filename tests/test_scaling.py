import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from specs import model_specs

from tinyjax.counting import count
from tinyjax.errors import SpecError
from tinyjax.scaling import EFFICIENTNET, TINYNET, efficientnet_compound, scale, scale_stage_depth
from tinyjax.zoo import efficientnet_b0, get_spec

factor = st.floats(0.3, 1.5)


@settings(max_examples=60, deadline=None)
@given(model_specs(), st.sampled_from(["tinynet", "efficientnet", "mobilenetv2"]))
def test_scale_is_identity_at_one(spec, rule):
    assert scale(spec, 1, 1, 1, rule=rule) == spec


@settings(max_examples=60, deadline=None)
@given(factor, factor, factor, st.floats(1.05, 1.6))
def test_macs_grow_with_each_of_r_d_w(r, d, w, grow):
    base = efficientnet_b0()
    macs = count(scale(base, r, d, w)).macs
    # Rounding makes small steps flat; a step of >= 5% in one factor never lowers MACs and a
    # large enough step always raises them.
    assert count(scale(base, r * grow, d, w)).macs >= macs
    assert count(scale(base, r, d * grow, w)).macs >= macs
    assert count(scale(base, r, d, w * grow)).macs >= macs
    assert count(scale(base, r * 2, d, w)).macs > macs
    assert count(scale(base, r, d * 2.5, w)).macs > macs
    assert count(scale(base, r, d, w * 2)).macs > macs


def test_tinynets_come_out_as_published():
    expected = {  # resolution, repeats per stage, stage widths, head: timm's tinynet_a..e
        "tinynet_a": (192, [1, 2, 2, 4, 4, 5, 1], [16, 24, 40, 80, 112, 192, 320], 1280),
        "tinynet_b": (188, [1, 2, 2, 3, 3, 4, 1], [16, 24, 32, 64, 88, 144, 240], 1280),
        "tinynet_c": (184, [1, 2, 2, 3, 3, 3, 1], [8, 16, 24, 40, 64, 104, 176], 1280),
        "tinynet_d": (152, [1, 1, 1, 2, 2, 3, 1], [8, 16, 24, 40, 64, 104, 176], 1280),
        "tinynet_e": (106, [1, 1, 1, 2, 2, 2, 1], [8, 16, 24, 40, 56, 96, 160], 1280),
    }
    for name, (res, depths, widths, head) in expected.items():
        s = get_spec(name)
        assert s.resolution == res
        assert [st.depth for st in s.stages] == depths
        assert [st.blocks[0].out_chs for st in s.stages] == widths
        assert s.stem.out_chs == 32 and s.head.out_chs == head


def test_efficientnet_rule_scales_stem_and_head_and_ceils_depth():
    r, d, w = efficientnet_compound(-2)
    s = scale(efficientnet_b0(), r, d, w, rule=EFFICIENTNET)
    assert s.stem.out_chs == 24 and s.head.out_chs == 1056  # make_divisible(32/1.21), (1280/1.21)
    assert [st.depth for st in s.stages] == [1, 2, 2, 3, 3, 3, 1]  # ceil(n / 1.44)
    t = scale(efficientnet_b0(), r, d, w, rule=TINYNET)
    assert t.stem.out_chs == 32 and t.head.out_chs == 1280
    assert [st.depth for st in t.stages] == [1, 1, 1, 2, 2, 3, 1]  # round(n / 1.44)


def test_stage_depth_is_handed_out_in_reverse():
    assert scale_stage_depth([2], 1.2, "round") == [2]
    assert scale_stage_depth([3], 1.2, "round") == [4]
    assert scale_stage_depth([1, 1, 1], 0.5, "round") == [1, 1, 1]  # each definition keeps one
    assert scale_stage_depth([2, 2], 1.5, "ceil") == [3, 3]
    assert scale_stage_depth([1, 3], 2.0, "ceil") == [2, 6]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1"])
def test_bad_scaling_factors_are_rejected(bad):
    with pytest.raises(SpecError, match="scaling factor r"):
        scale(efficientnet_b0(), r=bad)
