"""TinyNAS (MCUNet) on the embedded dataset: the default config of

    python -m tinyjax.search --budget 320kB [--config configs/search_embedded.py[:runlocal]]

The budget is the command line's (``--budget``, ``--flash``, ``--device``, ``--reserve``,
``--target``). Stages and why they are built this way:

``space`` — the MCUNet space (``tinyjax.search.tinynas.space``): width multiplier × resolution pick a
    *space*; inside it a kernel and an expansion per block and a depth per stage pick a
    *sub-network*. Defaults are the paper's 9 widths × 12 resolutions (48–224 px).
``stage1`` — space optimisation without training: for every (w, r), ``samples`` random sub-networks
    are planned by the same memory planner as the generated C; those that fit give a MACs CDF,
    and the space with the largest mean MACs of fitting networks wins (MCUNet: more FLOPs under
    the same memory means a better space), among spaces where at least ``min_fraction`` of the
    samples fit (a CDF resting on a few networks at the budget's edge leaves evolution nothing
    to choose from). All 108 spaces × 1000 samples take 15 s on 2 idle cores.
``supernet`` — one weight-sharing network of the chosen space (every block at the largest kernel,
    expansion and depth), trained with the sandwich rule: each step trains ``k`` sub-networks on
    the same batch (the largest, the smallest, and k-2 random ones), vmapped over their masks.
    On 2 CPU cores it trains at a *proxy* resolution (``resolution``, 64 px: a step costs
    ≈ (64/r)² of one at the space's resolution r) and the evolution scores at that proxy too;
    memory is always planned at r, and the winner is trained at r. Sixty steps are a short warm
    start, not OFA's schedule. Measured on 2 idle cores: 2.3 s a step at K = 3, the stage 4 min
    with compilation; evolution 48 s. ``configs/search_imagenet.py`` trains at the space's own resolution.
``evolution`` — OFA's evolutionary search: a random ``population`` of sub-networks that fit, then
    ``generations`` rounds keeping the best ``parent_ratio`` as parents, filling ``mutation_ratio``
    of the rest by mutation (each gene resampled with ``mutate_prob``) and the remainder by
    crossover. Every candidate is planned before it is scored (a candidate that does not fit is
    redrawn); scoring re-estimates its BN statistics on ``supernet.calib_images`` training images
    and measures top-1 on the ``data.holdout`` training images held out of supernet training, so
    the validation split stays unseen until the winner is evaluated.
``finetune_init``, ``finetune``, ``scratch`` — how the winner is trained (``--finetune``):
    ``"inherit"`` starts from its own weights cut out of the supernet (BN recalibrated,
    ``winner_inherited.msgpack``) with the ``finetune`` recipe, ``"scratch"`` from a random init
    with the ``scratch`` recipe (the co-design benchmark's fair comparison). Both are
    ``tinyjax.train`` configs (the search fills ``spec``; the data is the embedded dataset drawn at
    the winner's resolution, ``tinyjax_shapes_sized/<r>px``). ``scratch``: AdamW, cosine, 100 steps
    of 32 — what 2 cores train at ≈ 190 px in a few minutes (measured at 192 px: 2.4 s a step, the
    stage 7.6 min with drawing the data, compiling and evaluating; the whole search 14.5 min, under
    20 with the install), far from the 13 epochs ``configs/train_embedded.py`` gives its 32-px
    network. ``finetune``: the same at a tenth of the learning rate (MCUNet's fine-tuning).
    The default is ``scratch``.
``data`` — ``tinyjax_shapes`` drawn at the resolutions the search needs (the same scenes as the
    32-px dataset, ``tinyjax.data.embedded_sized``; drawn once into the TFDS data dir, about a
    minute at 192 px).
``export`` — int8 export of the trained winner (``tinyjax.export``): ``calibration_images``
    training images fix the activation ranges; the first ``test_images`` validation images are
    the test vectors the C is checked on, bit for bit, and give the int8 top-1.

ARG ``runlocal``: a smoke test (two widths, two resolutions, a few samples, steps and candidates).
"""

import importlib.util
from pathlib import Path

from ml_collections import ConfigDict

from tinyjax.search.tinynas.space import RESOLUTIONS, WIDTHS, SearchSpace
from tinyjax.search.tinynas.supernet import supernet_defaults


def scratch_config() -> ConfigDict:
    """``configs/train_embedded.py``'s recipe for a searched network trained from a random init
    (no ``spec`` yet), shortened to what 2 CPU cores train at ≈ 190 px in a few minutes."""
    path = Path(__file__).with_name("train_embedded.py")
    module_spec = importlib.util.spec_from_file_location("tinyjax_config_train_embedded", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    c = module.get_config()
    c.spec = ""
    c.batch_size = 32
    c.eval_batch_size = 200
    c.total_steps = 100               # 0.5 epoch: what 2 CPU cores train at ~190 px in ~4 minutes
    c.warmup_epochs = 0.1
    c.log_every_steps = 10
    c.eval_every_steps = 100
    c.checkpoint_every_steps = 50
    return c


def finetune_config() -> ConfigDict:
    """The recipe for the winner fine-tuned from its inherited weights: :func:`scratch_config`'s at
    a tenth of the learning rate (MCUNet fine-tunes its searched networks at lr / 10)."""
    c = scratch_config()
    c.lr = c.lr / 10
    return c


def get_config(arg=None):
    defaults = SearchSpace(1.0, RESOLUTIONS[-1])
    c = ConfigDict()
    # The budget is the command line's (--budget, --flash, --device, --reserve, --target).

    c.space = ConfigDict()
    c.space.widths = tuple(WIDTHS)
    c.space.resolutions = tuple(RESOLUTIONS)    # pixels
    c.space.kernels = defaults.kernels
    c.space.expands = defaults.expands
    c.space.depths = defaults.depths
    c.space.stem_stride = 2           # MCUNet's; 1 keeps small images' resolution through the stem

    c.stage1 = ConfigDict()
    c.stage1.samples = 1000           # random sub-networks planned per (width, resolution)
    c.stage1.seed = 0
    c.stage1.min_fraction = 0.1       # a space needs this share of its samples to fit
    c.stage1.patch_samples = 100      # with --patch auto (each may plan tens of patch schedules)
    c.stage1.workers = 0              # processes (0: one per CPU)

    # steps, batch, K sub-networks per step, proxy resolution, optimiser, BN recalibration; sized
    # for 2 CPU cores (a supernet step at 64 px with K = 3 takes ≈ 4 s there, compiling ≈ 2 min)
    c.supernet = supernet_defaults()
    c.supernet.steps = 60
    c.supernet.warmup_steps = 6
    c.supernet.checkpoint_every = 20

    c.evolution = ConfigDict()
    c.evolution.population = 12
    c.evolution.generations = 3
    c.evolution.parent_ratio = 0.25
    c.evolution.mutation_ratio = 0.5
    c.evolution.mutate_prob = 0.1
    c.evolution.seed = 0

    # how the winner is trained (--finetune): "inherit" fine-tunes its supernet weights with the
    # `finetune` recipe, "scratch" trains it from a random init with the `scratch` recipe
    c.finetune_init = "scratch"
    c.finetune = finetune_config()
    c.scratch = scratch_config()

    c.data = ConfigDict()
    c.data.name = "tinyjax_shapes"
    c.data.num_classes = 10
    c.data.num_classes_subset = 0     # 0: all classes; N: a seeded N-class subset, labels 0..N-1
    c.data.subset_seed = 0
    c.data.holdout = 256              # training images kept out of the supernet to score candidates
    c.data.max_images = 0             # per split, for datasets read by the pipeline (0: all)
    c.data.data_dir = ""              # TFDS data dir ("" = $TINYJAX_DATA_DIR or ~/tensorflow_datasets)

    c.export = ConfigDict()
    c.export.calibration_images = 256  # training images fixing the int8 activation ranges
    c.export.test_images = 100         # validation images: C vs integer reference, int8 top-1

    if arg == "runlocal":
        runlocal(c)
    elif arg:
        raise ValueError(f"unknown argument {arg!r}; use 'runlocal' or nothing")
    return c


def runlocal(c: ConfigDict) -> ConfigDict:
    """Shrink a search config in place to a smoke test (also used by ``configs/search_imagenet.py``)."""
    c.space.widths = (0.3, 0.5)
    c.space.resolutions = (48, 64)
    c.stage1.samples = 20
    c.stage1.workers = 1
    c.supernet.steps = 4
    c.supernet.batch_size = 8
    c.supernet.resolution = 48
    c.supernet.warmup_steps = 1
    c.supernet.log_every = 2
    c.supernet.checkpoint_every = 2
    c.supernet.calib_images = 16
    c.supernet.eval_batch_size = 16
    c.evolution.population = 6
    c.evolution.generations = 2
    c.data.holdout = 48
    c.data.max_images = 256
    for train in (c.finetune, c.scratch):
        train.total_steps = 4
        train.batch_size = 16
        train.eval_batch_size = 100
        train.eval_every_steps = 4
        train.log_every_steps = 2
        train.checkpoint_every_steps = 2
    c.export.calibration_images = 16
    c.export.test_images = 8
    return c
