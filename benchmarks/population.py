"""Population training: K models in one vmapped program vs K separate steps, images/s.

    python benchmarks/population.py [--model mcunet_in0] [--resolution 48] [--batch 32] [--steps 5]

For K = 1, 2, 4, 8: the trainer's population step (``sharding.compile_program`` with population K:
one vmapped program over K stacked states, every member sees the same batch; for K = 1 the
trainer runs the plain step) against K calls of the plain step (the sequential reference), both
jitted exactly as ``python -m tinyjax.train`` jits them, median of ``--steps`` after compilation.
images/s counts K × batch images per population step. The ratio > 1 is what vmap buys; K = 1
shows that a population of one costs nothing over the plain step. ``--force-vmap`` also vmaps
K = 1 (to see what vmap itself costs on this backend).
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict
from timing import median_times  # benchmarks/timing.py (the script's own folder)

from tinyjax.train import optim, run_setup, sharding, steps
from tinyjax.zoo import get_spec


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mcunet_in0")
    p.add_argument("--resolution", type=int, default=48)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--ks", default="1,2,4,8")
    p.add_argument("--force-vmap", action="store_true")
    a = p.parse_args()

    spec = get_spec(a.model, a.resolution).with_(num_classes=10)
    model = run_setup.build_model(ConfigDict({"dtype": "float32", "drop_path_rate": 0.0}), spec)
    schedule = optim.exponential_schedule(0.01, 100)
    tx = optim.rmsprop_tf(schedule)
    cfg = ConfigDict({"label_smoothing": 0.1, "ema_decay": 0.999, "ema_warmup": True})
    mesh = sharding.make_mesh(population=1)  # every member on every device: K is a vmap axis
    plain = sharding.compile_program(cfg, model, tx, schedule, 10, mesh,
                                    steps.create_train_state(model, tx, 0), 1).train
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.standard_normal((a.batch, a.resolution, a.resolution, 3)),
                                  jnp.float32),
             "label": jnp.asarray(rng.integers(0, 10, a.batch), jnp.int32),
             "mask": jnp.ones((a.batch,), jnp.float32)}
    print(f"{a.model}@{a.resolution}, batch {a.batch}, "
          f"{jax.device_count()} {jax.default_backend()} device(s)")
    print(f"{'K':>3}{'vmapped img/s':>15}{'sequential img/s':>18}{'ratio':>8}")
    for k in [int(x) for x in a.ks.split(",")]:
        states = [steps.create_train_state(model, tx, s) for s in range(k)]
        vmapped_k = k > 1 or a.force_vmap
        stacked = (steps.stack_states(states) if vmapped_k
                   else jax.tree_util.tree_map(jnp.copy, states[0]))  # donated: not shared
        if vmapped_k and k == 1:  # what compile_program would build for K > 1
            step = functools.partial(steps.train_step, model=model, tx=tx, schedule=schedule,
                                     num_classes=10, label_smoothing=0.1, ema_decay=0.999,
                                     ema_warmup=True)
            pop = jax.jit(jax.vmap(step, in_axes=(0, None)), donate_argnums=0)
        else:
            pop = sharding.compile_program(cfg, model, tx, schedule, 10, mesh, stacked, k).train
        box = {"pop": stacked, "seq": states}

        def vmapped(box=box, pop=pop):
            box["pop"], m = pop(box["pop"], batch)
            jax.block_until_ready(m)

        def sequential(box=box):
            out = []
            for st in box["seq"]:
                st, m = plain(st, batch)
                out.append(st)
            jax.block_until_ready(m)
            box["seq"] = out

        tv, ts = median_times([vmapped, sequential], a.steps)
        n = k * a.batch
        print(f"{k:>3}{n / tv:>15.1f}{n / ts:>18.1f}{ts / tv:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
