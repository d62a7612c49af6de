"""Training config of the Rubik's-cube sampler on the embedded dataset (``tinyjax_shapes``).

    python -m tinyjax.search.sampling --config configs/rubik_embedded.py --targets 2M,4M \\
        --samples 16 --d 0.5,1.5 --w 0.5,1.5 --workdir runs/rubik

Every sampled network is trained with this config; its model at its resolution is the base the
sampler scales by (r, d, w). The default base is the MCU-style ``shapes_net`` of
``configs/train_embedded.py`` at 48 px (4.87M MACs, 6 blocks), trained for 150 steps of 64 (1.6
epochs, one seed): the whole run (16 models, frontier, formula) takes about 15 minutes on 2 CPU
cores, most of it XLA compiling 16 different networks.

ARG ``b0``: EfficientNet-B0 itself at 64 px (32M MACs with 10 classes; use targets such as 3M,6M
and the default ranges). Faithful to the paper's base, but each sampled network takes 1-2
minutes to compile on 2 CPU cores, so 16 of them take 45 minutes or more.
ARG ``runlocal``: a smoke test (a few steps each).
"""

import importlib.util
from pathlib import Path

from tinyjax.config import train_defaults


def _shapes_net():
    # the one network definition of configs/train_embedded.py, not a copy of it
    path = Path(__file__).with_name("train_embedded.py")
    spec = importlib.util.spec_from_file_location("tinyjax_config_train_embedded", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.shapes_net()


def get_config(arg=None):
    c = train_defaults()
    c.spec = _shapes_net().to_json(indent=None)
    c.resolution = 48                 # the base's resolution; r scales it
    c.data.name = "tinyjax_shapes"
    c.data.randaugment_n = 0
    c.data.min_crop_area = 0.35
    c.batch_size = 64
    c.eval_batch_size = 400
    c.total_steps = 80
    c.optimizer = "adamw"
    c.schedule = "cosine"
    c.lr = 5e-3
    c.warmup_epochs = 0.2
    c.weight_decay = 1e-4
    c.label_smoothing = 0.0
    c.ema_decay = 0.0
    c.log_every_steps = 20
    c.eval_every_steps = 1000        # once, at the end
    c.checkpoint_every_steps = 40
    c.tensorboard = False
    if arg == "b0":
        c.spec = ""
        c.model = "efficientnet_b0"
        c.resolution = 64
        c.dropout = 0.0
    elif arg == "runlocal":
        c.total_steps = 6
        c.log_every_steps = 2
        c.checkpoint_every_steps = 2
    elif arg:
        raise ValueError(f"unknown argument {arg!r}; use 'b0', 'runlocal' or nothing")
    return c
