"""TinyNet-A..E on ImageNet-2012 with the released recipe (RMSProp-TF, 450 epochs).

    python -m tinyjax.train --config configs/tinynet_imagenet.py:e --workdir gs://BUCKET/tinynet_e \
        --config.data.data_dir=gs://BUCKET/tensorflow_datasets [--multihost]

Recipe (authors' release): RMSProp decay 0.9, momentum 0.9, eps 1e-3; lr 0.048 per 1024 images,
×0.97 every 2.4 epochs after 3 warm-up epochs; weight decay 1e-5 (not on BN/biases); EMA 0.9999;
dropout 0.2; label smoothing 0.1; bicubic random-resized crop; RandAugment m9 mstd0.5 (timm's
rand-m9-mstd0.5), drop-path 0.2, random erasing 0.2. Global batch 1024 (e.g. 8 × 128).

Expected result: the paper's top-1 (A 76.8, B 75.0, C 71.2, D 67.0, E 59.9). Runtime: roughly
2–4 days for TinyNet-E and 5–8 days for TinyNet-A on a v3-8 (estimates, not measured here: no
TPU or ImageNet copy on the development machines).
"""

from tinyjax.train.config import train_defaults

VARIANTS = {"a": "tinynet_a", "b": "tinynet_b", "c": "tinynet_c", "d": "tinynet_d", "e": "tinynet_e"}


def get_config(arg=None):
    variant = (arg or "e").lower()
    if variant not in VARIANTS:
        raise ValueError(f"unknown TinyNet variant {arg!r}; use one of {', '.join(VARIANTS)}")
    c = train_defaults()
    c.model = VARIANTS[variant]
    c.data.name = "imagenet2012"
    c.data.random_erasing = 0.2
    c.batch_size = 1024
    c.lr = 0.048 * c.batch_size / 1024
    c.num_epochs = 450.0
    c.drop_path_rate = 0.2
    c.dropout = 0.2
    c.ema_decay = 0.9999
    c.eval_every_steps = 5000
    c.checkpoint_every_steps = 2000
    c.log_every_steps = 100
    return c
