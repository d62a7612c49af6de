"""A model on ImageNet-100 (100 ImageNet classes, chosen by a fixed seed), the proxy task of the
MCUNet search (stage-1 FLOPs-CDF study) and of quick TinyNet ablations.

    python -m tinyjax.train --config configs/imagenet100.py:mcunet_in3 --workdir runs/in100 \
        --config.data.data_dir=/path/to/tensorflow_datasets

ARG is a zoo name (default tinynet_e). SGD-Nesterov with cosine decay, 150 epochs, batch 256.
Expected: TinyNet-E ≈ 70–75% top-1 on the 100 classes (estimate from the class count; not
measured here). Runtime: about 12 h on one modern GPU (≈ 130k images per epoch).
"""

from tinyjax.train.config import train_defaults


def get_config(arg=None):
    c = train_defaults()
    c.model = arg or "tinynet_e"
    c.data.name = "imagenet2012"
    c.data.num_classes_subset = 100
    c.data.subset_seed = 0
    c.batch_size = 256
    c.optimizer = "sgd_nesterov"
    c.schedule = "cosine"
    c.lr = 0.1 * c.batch_size / 256
    c.warmup_epochs = 5.0
    c.weight_decay = 4e-5
    c.num_epochs = 150.0
    c.ema_decay = 0.9998
    c.eval_every_steps = 2000
    return c
