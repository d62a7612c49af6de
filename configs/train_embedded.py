"""The default small run: an MCU-sized inverted-residual network on the embedded dataset.

    python -m tinyjax.train --config configs/train_embedded.py --workdir runs/embedded

No download: the dataset (``tinyjax_shapes``, 10 classes, 32×32) is generated deterministically
into $TINYJAX_DATA_DIR or ~/tensorflow_datasets on first use.

The network is what TinyNAS would pick for this input: MobileNetV2/MCUNet blocks with ReLU6 and
no squeeze-excite (so it lowers to plain CMSIS-NN int8 kernels), a stride-1 stem because 32×32
is already small, 4 stages down to 4×4, and a 128-channel head: 61,290 parameters and 2.16M
MACs. AdamW with a cosine schedule, 13 epochs (598 steps of 128).

Expected (measured on 2 CPU cores): 2.5–4 minutes of wall time including compilation and eval
top-1 ≈ 0.88–0.91 (0.9133 in 2 min 34 s in the README's run), against ≈ 0.2 for a linear
classifier on raw pixels (``python benchmarks/linear_baseline.py``) and 0.1 for chance.
TinyNet-E itself at 32×32 (``--config.spec= --config.model=tinynet_e --config.resolution=32``)
learns too, but reached only ≈ 0.77 in 11 minutes: its stride-2 stem and 1280-channel head are
built for 106×106 ImageNet images.

ARG: ``runlocal`` shortens the run to a smoke test (a few steps, one evaluation).
"""

from tinyjax.spec import BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec
from tinyjax.train.config import train_defaults

BLOCKS = (("ds_r1_k3_s2_c16",), ("ir_r2_k3_s2_e4_c24",), ("ir_r2_k3_s2_e4_c40",),
          ("ir_r1_k3_s1_e4_c64",))


def shapes_net() -> ModelSpec:
    stages = tuple(StageSpec(tuple(BlockSpec.from_string(s) for s in stage)) for stage in BLOCKS)
    return ModelSpec(name="shapes_net", stem=StemSpec(16, 3, 1), stages=stages,
                     head=HeadSpec(128, dropout=0.0), resolution=32, num_classes=10, act="relu6")


def get_config(arg=None):
    c = train_defaults()
    c.spec = shapes_net().to_json(indent=None)
    c.data.name = "tinyjax_shapes"
    c.data.randaugment_n = 0          # the shapes are the signal; photometric RandAugment only hurts
    c.data.min_crop_area = 0.35
    c.batch_size = 128
    c.eval_batch_size = 400
    c.num_epochs = 13.0
    c.optimizer = "adamw"
    c.schedule = "cosine"
    c.lr = 5e-3
    c.warmup_epochs = 1.0
    c.weight_decay = 1e-4
    c.label_smoothing = 0.0
    c.ema_decay = 0.0                 # a 600-step run: evaluate the weights themselves
    c.log_every_steps = 20
    c.eval_every_steps = 200
    c.checkpoint_every_steps = 200
    if arg == "runlocal":
        c.total_steps = 20
        c.eval_every_steps = 20
        c.log_every_steps = 5
    elif arg:
        raise ValueError(f"unknown argument {arg!r}; use 'runlocal' or nothing")
    return c
