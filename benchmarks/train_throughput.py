"""Training throughput, tinyjax vs timm, side by side in one run (same model, batch, resolution,
float32, thread count, synthetic data). Goal on CPU: tinyjax >= 0.5x timm.

    python benchmarks/train_throughput.py [--models tinynet_e@106,tinynet_a@192] [--batch 32]
        [--threads 2] [--steps 10] [--dtype float32|bfloat16] [--device cpu|gpu]

Each side trains with its TinyNet optimiser (TF-style RMSProp) on random images; one warm-up
step (compilation for JAX), then the median of ``--steps`` timed steps. Prints images/s and the
ratio tinyjax / timm. Run it with MALLOC_MMAP_THRESHOLD_=4294967296 in the environment (the
script re-executes itself with it): both frameworks speed up on these VMs and both get it.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:  # same allocator setting for both sides
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "4294967296"
    os.execv(sys.executable, [sys.executable] + sys.argv)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from timing import median_times  # noqa: E402  (benchmarks/timing.py)


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tinynet_e@106,tinynet_a@192")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    return p.parse_args()


def tinyjax_step(name, res, batch, dtype):
    """One training step of tinyjax (a closure over its state)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from ml_collections import ConfigDict

    from tinyjax.train import optim, run_setup, steps
    from tinyjax.zoo import get_spec

    spec = get_spec(name, res)
    model = run_setup.build_model(ConfigDict({"dtype": dtype, "drop_path_rate": 0.2}), spec)
    schedule = optim.exponential_schedule(0.048 * batch / 1024, 1000)
    tx = optim.rmsprop_tf(schedule)
    step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, schedule=schedule,
                                     num_classes=spec.num_classes, label_smoothing=0.1,
                                     ema_decay=0.9999, ema_warmup=False), donate_argnums=0)
    rng = np.random.default_rng(0)
    batch_ = {"image": jnp.asarray(rng.standard_normal((batch, res, res, 3)), jnp.float32),
              "label": jnp.asarray(rng.integers(0, 1000, batch), jnp.int32),
              "mask": jnp.ones((batch,), jnp.float32)}
    box = {"state": steps.create_train_state(model, tx, 0)}

    def one():
        box["state"], m = step(box["state"], batch_)
        jax.block_until_ready(m)

    return one


def timm_step(name, res, batch, dtype, threads, device):
    """One training step of timm (a closure over model and optimiser)."""
    from conftest import import_timm

    timm = import_timm()
    import torch

    torch.set_num_threads(threads)
    dev = "cuda" if device == "gpu" else "cpu"
    model = timm.create_model(name, drop_path_rate=0.2).to(dev).train()
    from timm.optim import create_optimizer_v2

    opt = create_optimizer_v2(model, "rmsproptf", lr=0.048 * batch / 1024,
                                         weight_decay=1e-5)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, res, res, device=dev)
    y = torch.randint(0, 1000, (batch,), device=dev)
    autocast = torch.autocast(dev, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

    def one():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    return one


def main():
    a = parse()
    if a.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    print(f"batch {a.batch}, {a.dtype}, {a.threads} threads, device {a.device}, median of {a.steps} steps")
    print(f"{'model':<18}{'tinyjax img/s':>15}{'timm img/s':>12}{'ratio':>8}")
    for item in a.models.split(","):
        name, res = item.split("@")
        res = int(res)
        t_ours, t_ref = median_times([tinyjax_step(name, res, a.batch, a.dtype),
                                      timm_step(name, res, a.batch, a.dtype, a.threads, a.device)],
                                     a.steps)
        ours, ref = a.batch / t_ours, a.batch / t_ref
        print(f"{name + '@' + str(res):<18}{ours:>15.1f}{ref:>12.1f}{ours / ref:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
