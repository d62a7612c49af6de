"""The default small run: TinyNet-E on the embedded ``tinyjax_shapes`` dataset at 32×32.

    python -m tinyjax.train --config configs/train_embedded.py --workdir runs/embedded

No download: the dataset is generated (deterministically) into $TINYJAX_DATA_DIR or
~/tensorflow_datasets on first use. Runtime and result on 2 CPU cores: see the README
("Training"), measured with this exact command; a linear classifier on raw pixels
(``python benchmarks/linear_baseline.py``) is the baseline it is compared with.

ARG: ``runlocal`` shortens the run to a smoke test (a few steps, one evaluation).
"""

from tinyjax.config import train_defaults


def get_config(arg=None):
    c = train_defaults()
    c.model = "tinynet_e"
    c.resolution = 32
    c.dropout = 0.1
    c.data.name = "tinyjax_shapes"
    c.data.randaugment_n = 0          # shapes are the signal; photometric RandAugment only hurts
    c.data.min_crop_area = 0.5
    c.batch_size = 128
    c.eval_batch_size = 400
    c.num_epochs = 24.0
    c.optimizer = "rmsprop_tf"
    c.schedule = "cosine"
    c.lr = 0.01
    c.warmup_epochs = 1.0
    c.weight_decay = 1e-5
    c.label_smoothing = 0.1
    c.ema_decay = 0.998
    c.ema_warmup = True
    c.log_every_steps = 20
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
    if arg == "runlocal":
        c.total_steps = 20
        c.eval_every_steps = 20
        c.log_every_steps = 5
    elif arg:
        raise ValueError(f"unknown argument {arg!r}; use 'runlocal' or nothing")
    return c
