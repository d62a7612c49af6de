"""Exact parity with timm 1.0.31: parameters, MACs (FlopCounterMode / 2) and logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from specs import model_specs

from tinyjax.counting import count
from tinyjax.errors import WeightImportError
from tinyjax.models import EfficientNet
from tinyjax.spec import ModelSpec
from tinyjax.timm_import import from_timm, variables_from_timm
from tinyjax.zoo import TIMM_MODELS, get_spec, list_models


def timm_macs(torch, model, resolution: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def timm_from_spec(timm, spec: ModelSpec):
    """timm's own EfficientNet class built from our spec's block strings (no rounding applied)."""
    from timm.layers import get_act_layer
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet as TimmEfficientNet

    arch = [[b.to_string() for b in stage.blocks] for stage in spec.stages]
    act = {"silu": "swish"}.get(spec.act, spec.act)
    return TimmEfficientNet(
        block_args=decode_arch_def(arch), num_classes=spec.num_classes,
        stem_size=spec.stem.out_chs, stem_kernel_size=spec.stem.kernel, fix_stem=True,
        num_features=spec.head.out_chs or 0, round_chs_fn=lambda c: c,
        act_layer=get_act_layer(act)).eval()


def randomise_bn(torch, model, seed: int = 0):
    """Non-trivial BatchNorm statistics and affine parameters, so a wrong BN mapping shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.2)
    return model


def assert_logits_match(torch, tmodel, model, variables, resolution, batch=2, seed=0):
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = tmodel(x).numpy()
    out = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(x.numpy().transpose(0, 2, 3, 1))))
    diff = np.abs(out - ref).max()
    span = ref.max() - ref.min()
    assert diff <= 1e-4 * span, f"max |diff| {diff:.3g} > 1e-4 x logit range {span:.3g}"
    return diff / span


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_params_and_macs_equal_timm(timm, name):
    import torch

    tmodel = timm.create_model(name).eval()
    resolution = tmodel.pretrained_cfg["input_size"][-1]
    spec = get_spec(name)
    assert spec.resolution == resolution
    stats = count(spec)
    assert stats.params == sum(p.numel() for p in tmodel.parameters())
    assert stats.macs == timm_macs(torch, tmodel, resolution)


@pytest.mark.parametrize("name", [n for n in list_models() if n not in TIMM_MODELS])
def test_params_and_macs_of_other_zoo_entries_equal_timm_built_from_the_spec(timm, name):
    import torch

    spec = get_spec(name)
    tmodel = timm_from_spec(timm, spec)
    stats = count(spec)
    assert stats.params == sum(p.numel() for p in tmodel.parameters())
    assert stats.macs == timm_macs(torch, tmodel, spec.resolution)


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_from_timm_logits_match_timm(timm, name):
    import torch

    tmodel = randomise_bn(torch, timm.create_model(name).eval())
    model, variables = from_timm(name, tmodel.state_dict())
    assert_logits_match(torch, tmodel, model, variables, model.spec.resolution)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_specs(max_stages=3))
def test_random_specs_match_timm(timm, spec):
    """Counting and the Flax network agree with timm on random architectures, MCUNet-style
    (no head, per-block kernels and expansions, act overrides, noskip) included."""
    import torch

    tmodel = randomise_bn(torch, timm_from_spec(timm, spec))
    stats = count(spec)
    assert stats.params == sum(p.numel() for p in tmodel.parameters())
    assert stats.macs == timm_macs(torch, tmodel, spec.resolution)
    model = EfficientNet(spec, dw_impl="xla")
    variables = variables_from_timm(model, tmodel.state_dict())
    assert_logits_match(torch, tmodel, model, variables, spec.resolution)


def test_mcunet_network_matches_timm_semantics(timm):
    """An official MCUNet network (ReLU6, no head, mixed kernels) through the same import path."""
    import torch

    spec = get_spec("mcunet_in1")
    tmodel = randomise_bn(torch, timm_from_spec(timm, spec))
    model = EfficientNet(spec)
    assert_logits_match(torch, tmodel, model, variables_from_timm(model, tmodel.state_dict()),
                        spec.resolution)


def test_from_timm_accepts_numpy_state_dicts_and_other_class_counts(timm):
    tmodel = timm.create_model("tinynet_e", num_classes=10).eval()
    sd = {k: v.numpy() for k, v in tmodel.state_dict().items()}  # as safetensors.numpy loads it
    model, variables = from_timm("tinynet_e", sd)
    assert model.spec.num_classes == 10
    assert variables["params"]["classifier"]["kernel"].shape == (1280, 10)


def test_from_timm_rejects_a_mismatched_state_dict(timm):
    sd = timm.create_model("tinynet_e").state_dict()
    with pytest.raises(WeightImportError, match="shape"):
        from_timm("tinynet_d", sd)
    del sd["blocks.0.0.conv_dw.weight"]
    with pytest.raises(WeightImportError, match="lacks 1 entries"):
        from_timm("tinynet_e", sd)
    with pytest.raises(WeightImportError, match="no timm counterpart"):
        from_timm("mcunet_in0", sd)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_specs(max_stages=4))
def test_many_random_specs_match_timm(timm, spec):
    """The slow target (``pytest -m slow``): the random-architecture parity check, 80 examples."""
    test_random_specs_match_timm.hypothesis.inner_test(timm, spec)
