"""Population training: K models in one vmapped program vs K separate steps, images/s.

    python benchmarks/population.py [--model mcunet_in0] [--resolution 48] [--batch 32] [--steps 5]

For K = 1, 2, 4, 8: the vmapped step over K stacked states (one program, every member sees the
same batch) against K calls of the plain step (the sequential reference), both jitted, median of
``--steps`` after compilation. images/s counts K × batch images per population step. The ratio
> 1 is what vmap buys; K = 1 shows the population machinery costs nothing over the plain step.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from tinyjax import optim, trainer
from tinyjax.zoo import get_spec


def median_time(fn, steps):
    fn()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mcunet_in0")
    p.add_argument("--resolution", type=int, default=48)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--ks", default="1,2,4,8")
    a = p.parse_args()

    spec = get_spec(a.model, a.resolution).with_(num_classes=10)
    model = trainer.build_model(ConfigDict({"dtype": "float32", "drop_path_rate": 0.0}), spec)
    schedule = optim.exponential_schedule(0.01, 100)
    tx = optim.rmsprop_tf(schedule)
    step = functools.partial(trainer.train_step, model=model, tx=tx, schedule=schedule,
                             num_classes=10, label_smoothing=0.1, ema_decay=0.999, ema_warmup=True)
    plain = jax.jit(step)
    pop = jax.jit(jax.vmap(step, in_axes=(0, None)))
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.standard_normal((a.batch, a.resolution, a.resolution, 3)),
                                  jnp.float32),
             "label": jnp.asarray(rng.integers(0, 10, a.batch), jnp.int32),
             "mask": jnp.ones((a.batch,), jnp.float32)}
    print(f"{a.model}@{a.resolution}, batch {a.batch}, {jax.device_count()} {jax.default_backend()} device(s)")
    print(f"{'K':>3}{'vmapped img/s':>15}{'sequential img/s':>18}{'ratio':>8}")
    for k in [int(x) for x in a.ks.split(",")]:
        states = [trainer.create_train_state(model, tx, s) for s in range(k)]
        stacked = trainer.stack_states(states)
        box = {"pop": stacked, "seq": states}

        def vmapped():
            box["pop"], m = pop(box["pop"], batch)
            jax.block_until_ready(m)

        def sequential():
            out = []
            for st in box["seq"]:
                st, m = plain(st, batch)
                out.append(st)
            jax.block_until_ready(m)
            box["seq"] = out

        tv = median_time(vmapped, a.steps)
        ts = median_time(sequential, a.steps)
        n = k * a.batch
        print(f"{k:>3}{n / tv:>15.1f}{n / ts:>18.1f}{ts / tv:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
