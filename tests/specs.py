"""Hypothesis strategies for random, small ModelSpecs (kept small so tests stay fast)."""

from __future__ import annotations

from hypothesis import strategies as st

from tinyjax.spec import ACTIVATIONS, BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec

channels = st.sampled_from([8, 16, 24, 32, 40, 48])


@st.composite
def block_specs(draw, first: bool = False, stage_start: bool = True) -> BlockSpec:
    btype = draw(st.sampled_from(["ds", "ir"])) if first else "ir"
    return BlockSpec(
        type=btype,
        kernel=draw(st.sampled_from([3, 5, 7])),
        stride=draw(st.sampled_from([1, 2])) if stage_start else 1,
        out_chs=draw(channels),
        expand=1.0 if btype == "ds" else draw(st.sampled_from([2.0, 3.0, 4.0, 6.0])),
        se=draw(st.sampled_from([0.0, 0.25])),
        repeats=draw(st.integers(1, 3)),
        act=draw(st.one_of(st.none(), st.sampled_from(ACTIVATIONS))),
        skip=draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else True,
    )


@st.composite
def model_specs(draw, max_stages: int = 4) -> ModelSpec:
    n_stages = draw(st.integers(1, max_stages))
    stages = []
    for i in range(n_stages):
        n_blocks = draw(st.integers(1, 2))
        stages.append(StageSpec(tuple(draw(block_specs(first=(i == 0 and j == 0), stage_start=j == 0))
                                      for j in range(n_blocks))))
    return ModelSpec(
        name="random",
        stem=StemSpec(out_chs=draw(channels), kernel=draw(st.sampled_from([3, 5]))),
        stages=tuple(stages),
        head=HeadSpec(out_chs=draw(st.one_of(st.none(), st.sampled_from([32, 64]))), dropout=0.0),
        resolution=draw(st.integers(16, 48)),
        num_classes=draw(st.sampled_from([10, 17])),
        act=draw(st.sampled_from(ACTIVATIONS)),
    )
