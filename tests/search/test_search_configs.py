"""The TinyNAS configs (``configs/search_embedded.py``, ``configs/search_imagenet.py``): they load
the way the CLI loads them, hold every section and key the search reads, agree with the search
space's defaults, and their ``runlocal`` variants are smaller."""

from pathlib import Path

import pytest

from tinyjax.search.tinynas.space import RESOLUTIONS, WIDTHS, SearchSpace
from tinyjax.search.tinynas.supernet import supernet_defaults
from tinyjax.train.config import ConfigFileError, apply_overrides, load_config, train_defaults

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EMBEDDED = str(CONFIGS / "search_embedded.py")
IMAGENET = str(CONFIGS / "search_imagenet.py")

# What the search reads, section by section (``finetune`` and ``scratch`` are training configs:
# checked apart).
KEYS = {
    "": {"space", "stage1", "supernet", "evolution", "finetune_init", "finetune", "scratch", "data",
         "export"},
    "space": {"widths", "resolutions", "kernels", "expands", "depths", "stem_stride", "first_stride",
              "stage_strides", "base_channels", "min_channels"},
    "stage1": {"samples", "patch_samples", "seed", "min_fraction", "workers"},
    "supernet": set(supernet_defaults().keys()),
    "evolution": {"population", "generations", "parent_ratio", "mutation_ratio", "mutate_prob", "seed"},
    "data": {"name", "num_classes", "num_classes_subset", "subset_seed", "holdout", "max_images",
             "data_dir"},
    "export": {"calibration_images", "test_images"},
}


def _section(cfg, dotted):
    for part in filter(None, dotted.split(".")):
        cfg = cfg[part]
    return cfg


def _keys(cfg, prefix=""):
    """Every dotted key of a ConfigDict tree."""
    out = set()
    for k, v in cfg.items():
        out.add(prefix + k)
        if hasattr(v, "items"):
            out |= _keys(v, prefix + k + ".")
    return out


@pytest.mark.parametrize("path", [EMBEDDED, f"{EMBEDDED}:runlocal", IMAGENET, f"{IMAGENET}:in100",
                                  f"{IMAGENET}:full", f"{IMAGENET}:runlocal"])
def test_every_section_and_key(path):
    cfg = load_config(path)
    for section, keys in KEYS.items():
        assert set(_section(cfg, section).keys()) == keys, (path, section)
    # the winner's two recipes are training configs: exactly train_defaults()'s keys
    assert _keys(cfg.finetune) == _keys(cfg.scratch) == _keys(train_defaults())
    assert cfg.finetune_init in ("inherit", "scratch")
    assert cfg.finetune.lr < cfg.scratch.lr   # fine-tuning at a fraction of the scratch rate
    # the search space's own defaults, and a space they describe can be built
    s = cfg.space
    space = SearchSpace(s.widths[0], s.resolutions[-1], cfg.data.num_classes, s.kernels, s.expands,
                        s.depths, stem_stride=s.stem_stride, first_stride=s.first_stride,
                        stage_strides=s.stage_strides, min_channels=s.min_channels,
                        base_channels=s.base_channels)
    assert space.spec().num_classes == cfg.data.num_classes
    assert cfg.supernet.k >= 2
    assert 0 < cfg.evolution.parent_ratio and cfg.evolution.parent_ratio + cfg.evolution.mutation_ratio <= 1
    assert cfg.supernet.calib_images >= cfg.supernet.eval_batch_size   # at least one full batch
    for train in (cfg.finetune, cfg.scratch):
        assert train.data.name == cfg.data.name
        assert train.data.num_classes_subset == cfg.data.num_classes_subset


def test_embedded_defaults_are_a_small_space_and_the_recipe_of_the_brief():
    """The embedded config's space is built for 64-px scenes (three downsamplings after a stride-2
    stem, as the hand-made network, at most 1.0 x (16, 16, 24, 40, 64, 128) channels); the recipe
    is MCUNet's: the largest first, the sandwich with in-place distillation, the winner fine-tuned
    from its inherited weights."""
    cfg = load_config(EMBEDDED)
    assert (cfg.space.stem_stride, cfg.space.first_stride, cfg.space.stage_strides) == (2, 2, (2, 2, 1))
    assert max(cfg.space.resolutions) == 64 and max(cfg.space.widths) == 1.0
    assert cfg.stage1.samples == 1000
    assert cfg.supernet.k == 3 and cfg.supernet.distill and cfg.supernet.largest_steps > 0
    assert cfg.supernet.resolution == 0        # the space's own resolution: no proxy
    assert cfg.finetune_init == "inherit"
    assert cfg.evolution.population * cfg.evolution.generations >= 300
    assert (cfg.evolution.parent_ratio, cfg.evolution.mutation_ratio, cfg.evolution.mutate_prob) == (
        0.25, 0.5, 0.1)
    assert (cfg.data.name, cfg.data.num_classes) == ("tinyjax_shapes", 10)
    assert cfg.finetune.data.randaugment_n == 0 and cfg.finetune.total_steps == cfg.scratch.total_steps > 0


def test_imagenet_keeps_mcunets_space():
    cfg = load_config(IMAGENET)
    mcunet = SearchSpace(1.0, 224)
    assert cfg.space.widths == WIDTHS and cfg.space.resolutions == RESOLUTIONS
    for key in ("kernels", "expands", "depths", "stem_stride", "first_stride", "stage_strides",
                "base_channels", "min_channels"):
        assert cfg.space[key] == getattr(mcunet, key), key
    assert cfg.finetune.lr == pytest.approx(cfg.scratch.lr / 10)   # MCUNet fine-tunes at lr / 10


@pytest.mark.parametrize("path", [EMBEDDED, IMAGENET])
def test_runlocal_is_smaller(path):
    full, small = load_config(path), load_config(f"{path}:runlocal")
    assert _keys(full) == _keys(small)
    for key in ("stage1.samples", "supernet.steps", "supernet.batch_size", "evolution.population",
                "evolution.generations", "data.holdout", "supernet.calib_images",
                "export.calibration_images", "export.test_images"):
        section, _, leaf = key.rpartition(".")
        assert _section(small, section)[leaf] < _section(full, section)[leaf], (path, key)
    assert len(small.space.widths) * len(small.space.resolutions) <= len(full.space.widths) * len(
        full.space.resolutions)
    assert small.supernet.largest_steps <= 2
    for train in ("finetune", "scratch"):
        assert 0 < small[train].total_steps < (full[train].total_steps or 10 ** 9), train


def test_imagenet_is_the_same_search_on_imagenet():
    emb, in100, full = load_config(EMBEDDED), load_config(IMAGENET), load_config(f"{IMAGENET}:full")
    assert _keys(in100) == _keys(emb) == _keys(full)
    assert in100.data.name == full.data.name == in100.finetune.data.name == "imagenet2012"
    assert (in100.data.num_classes, in100.data.num_classes_subset) == (100, 100)
    assert (full.data.num_classes, full.data.num_classes_subset) == (1000, 0)
    assert in100.supernet.steps > emb.supernet.steps and in100.supernet.batch_size > emb.supernet.batch_size
    assert in100.evolution.population * in100.evolution.generations > (
        emb.evolution.population * emb.evolution.generations)


@pytest.mark.parametrize("path", [EMBEDDED, IMAGENET])
def test_unknown_argument_is_a_config_error(path):
    with pytest.raises(ConfigFileError, match="unknown argument 'fast'"):
        load_config(f"{path}:fast")


def test_command_line_overrides_reach_every_section():
    cfg = apply_overrides(load_config(EMBEDDED), [
        "stage1.samples=50", "data.data_dir=/data/tfds", "supernet.k=4", "space.resolutions=(96, 128)",
        "finetune.lr=0.01", "evolution.mutate_prob=0.2"])
    assert cfg.stage1.samples == 50 and cfg.data.data_dir == "/data/tfds" and cfg.supernet.k == 4
    assert cfg.space.resolutions == (96, 128) and cfg.finetune.lr == 0.01
    assert cfg.evolution.mutate_prob == 0.2
    with pytest.raises(ConfigFileError, match="unknown config key 'supernet.kk'"):
        apply_overrides(cfg, ["supernet.kk=4"])
