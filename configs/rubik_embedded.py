"""Training config of the Rubik's-cube sampler on the embedded dataset (``tinyjax_shapes``).

    python -m tinyjax.search.rubik.sampling --config configs/rubik_embedded.py --targets 2M,4M \\
        --samples 16 --d 0.5,1.5 --w 0.5,1.5 --workdir runs/rubik

Every sampled network is trained with this config; its model at its resolution is the base the
sampler scales by (r, d, w). The default base is the MCU-style ``shapes_net`` of
``configs/train_embedded.py`` at 48 px (4.87M MACs, 6 blocks), each model trained for 80 steps
of 64 (0.85 epochs, one seed; ``--config.population.size=3`` trains 3 seeds as one vmapped
program, on a CPU as 3 XLA host devices).

Measured (the command above, 2 CPU cores shared with two other jobs, load average 4-6): 31 min
34 s of wall time, 914 CPU-seconds; a model took 37-208 s (compiling its train and eval steps,
then 80 steps), 37-42 s when the machine was quiet, so about 12 minutes for the 16 on 2 free
cores (an estimate from those, not a run). Top-1 0.33-0.45 (chance 0.10); frontier 1.91M
(r .738 d .758 w .656, 0.413), 2.07M (.537 .570 1.369, 0.418), 3.99M (.790 .691 1.476, 0.446),
4.00M (.762 .589 1.482, 0.447). A rerun with everything trained only refits (57 s).

ARG ``b0``: EfficientNet-B0 itself at 64 px (32M MACs with 10 classes; use targets such as 3M,6M
and the default ranges). Faithful to the paper's base, but each sampled network takes 1-2
minutes to compile on 2 CPU cores, so 16 of them take 45 minutes or more.
ARG ``runlocal``: a smoke test (a few steps each).
"""

import importlib.util
from pathlib import Path

from tinyjax.train.config import train_defaults


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
