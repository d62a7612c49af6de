"""TinyNAS (MCUNet) on ImageNet: the stages of ``configs/search_embedded.py`` (read its docstring)
on an ImageNet-100 class subset (MCUNet's proxy task) or on all 1,000 classes, from a TFDS copy.

    python -m tinyjax.search --budget 320kB --config configs/search_imagenet.py \\
        --workdir runs/tinynas_in100 --config.data.data_dir=/path/to/tensorflow_datasets

ARG: nothing or ``in100`` = 100 classes chosen by ``data.subset_seed`` (as ``configs/imagenet100.py``),
``full`` = ImageNet-1k, ``runlocal`` = a smoke test of the ImageNet-100 settings.

Devices: the supernet's k sub-networks run vmapped in one jitted step on the default device; the
winner is trained by ``tinyjax.train`` over the usual ``(population, data)`` mesh. The supernet
reads its images from memory (``data.max_images`` per split; ImageNet-100 at 176 px is ≈ 12 GB).

Sizes: ImageNet-100 has about 1,300 training images per class and 50 validation images per class.

EXPECTED (to be filled in with measured figures: wall time per stage and device, chosen (w, r),
supernet top-1, winner's MACs, peak SRAM, flash, float and int8 top-1; MCUNet reports 62.2/61.8%
ImageNet-1k top-1 for mcunet-in3 at 320 kB / 1 MB): not measured yet.
Smoke-tested end to end (``:runlocal``, export and C check included) on
``tfds.testing.mock_data`` by ``tests/search/test_tinynas_imagenet_mock.py`` (slow target).
"""

import importlib.util
from pathlib import Path

from tinyjax.search.tinynas.space import RESOLUTIONS, WIDTHS, SearchSpace


def _sibling(name: str):
    """The config module ``configs/<name>.py`` (the one definition of its sections, not a copy)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"tinyjax_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finetune_config(num_classes_subset: int):
    """ImageNet training of the winner: ``configs/imagenet100.py``'s recipe (SGD-Nesterov, cosine,
    150 epochs) on ``num_classes_subset`` classes (0: all)."""
    c = _sibling("imagenet100").get_config()
    c.data.num_classes_subset = num_classes_subset
    return c


def get_config(arg=None):
    if arg not in (None, "in100", "full", "runlocal"):
        raise ValueError(f"unknown argument {arg!r}; use 'in100', 'full', 'runlocal' or nothing")
    embedded = _sibling("search_embedded")
    c = embedded.get_config()
    subset = 0 if arg == "full" else 100

    # MCUNet's own space (the embedded config's is built for 64-px scenes on 2 CPU cores)
    mcunet = SearchSpace(1.0, RESOLUTIONS[-1])
    c.space.widths = tuple(WIDTHS)
    c.space.resolutions = tuple(RESOLUTIONS)
    c.space.kernels, c.space.expands, c.space.depths = mcunet.kernels, mcunet.expands, mcunet.depths
    c.space.stem_stride, c.space.first_stride = mcunet.stem_stride, mcunet.first_stride
    c.space.stage_strides = mcunet.stage_strides
    c.space.base_channels = mcunet.base_channels
    c.space.min_channels = mcunet.min_channels

    c.supernet.steps = 60_000 if subset else 500_000  # ≈ 120 / 100 epochs at batch 256
    c.supernet.batch_size = 256
    c.supernet.k = 4                  # OFA's sandwich: largest, smallest, 2 random
    c.supernet.resolution = 0         # the chosen space's own resolution (no proxy)
    c.supernet.optimizer = "sgd_nesterov"
    c.supernet.lr = 0.1
    c.supernet.warmup_steps = 2500
    c.supernet.checkpoint_every = 1000
    c.supernet.log_every = 100
    c.supernet.calib_images = 2000    # OFA re-estimates BN statistics on 2,000 training images
    c.supernet.eval_batch_size = 250
    c.supernet.label_smoothing = 0.1
    c.supernet.largest_steps = 0      # the sandwich from the start (BigNAS); OFA would train it first
    c.supernet.distill = True         # the largest teaches the others in place (OFA, BigNAS)

    c.evolution.population = 100
    c.evolution.generations = 30

    c.scratch = finetune_config(subset)
    c.finetune = finetune_config(subset)   # from inherited weights: MCUNet's 10 epochs at lr / 10
    c.finetune.num_epochs = 10.0
    c.finetune.lr = c.scratch.lr / 10
    c.finetune.warmup_epochs = 0.0

    c.data.name = "imagenet2012"
    c.data.num_classes = subset or 1000
    c.data.num_classes_subset = subset
    c.data.holdout = 10_000 if subset == 0 else 5000
    c.data.max_images = 0             # every training image in memory at the space's resolution

    c.export.calibration_images = 1000
    c.export.test_images = 5000

    if arg == "runlocal":
        embedded.runlocal(c)
    return c
