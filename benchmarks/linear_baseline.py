"""The linear baseline of ``tinyjax_shapes``: multinomial logistic regression on raw pixels.

    python benchmarks/linear_baseline.py [--data-dir DIR] [--steps 300]

Standardises every pixel (train mean/std), trains softmax regression (3072 × 10 weights + biases)
full-batch with Adam for ``--steps`` steps at each weight decay of a small grid, picks the weight
decay on a held-out 10% of train, and prints a table of train / held-out / validation top-1 beside
chance. This is the number reported next to the CNN: the dataset is built so that a linear model
stays near chance (about 0.15–0.2 validation top-1) while a small CNN reaches ~0.9 (see the
docstring of ``tinyjax.data.embedded``). Takes one to three minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def train_linear(x: np.ndarray, y: np.ndarray, num_classes: int, *, steps: int, lr: float,
                 weight_decay: float):
    """Softmax regression by full-batch Adam; returns (W [D, C], b [C]). L2 penalty on W only."""
    import jax
    import jax.numpy as jnp
    import optax

    opt = optax.adam(lr)
    params = (jnp.zeros((x.shape[1], num_classes), jnp.float32), jnp.zeros(num_classes, jnp.float32))
    state = opt.init(params)
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(p):
        w, b = p
        ce = optax.softmax_cross_entropy_with_integer_labels(x @ w + b, y).mean()
        return ce + weight_decay * jnp.sum(w * w)

    @jax.jit
    def run(p, s):
        def step(carry, _):
            p, s = carry
            updates, s = opt.update(jax.grad(loss)(p), s)
            return (optax.apply_updates(p, updates), s), None

        (p, s), _ = jax.lax.scan(step, (p, s), None, length=steps)
        return p

    return run(params, state)


def top1(params, x: np.ndarray, y: np.ndarray) -> float:
    w, b = (np.asarray(t) for t in params)
    return float(np.mean(np.argmax(x @ w + b, axis=1) == y))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data dir (default: $TINYJAX_DATA_DIR or ~/tensorflow_datasets); "
                             "tinyjax_shapes is built there if missing")
    parser.add_argument("--steps", type=int, default=300, help="full-batch Adam steps per fit")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    parser.add_argument("--weight-decays", type=float, nargs="+", default=[1e-3, 1e-2, 3e-2, 1e-1],
                        help="L2 penalties tried (chosen on the held-out 10%% of train)")
    args = parser.parse_args(argv)

    from tinyjax.data.embedded import NUM_CLASSES, load_numpy

    t0 = time.time()
    x_train, y_train = load_numpy("train", args.data_dir)
    x_val, y_val = load_numpy("validation", args.data_dir)
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32)
    x_val = x_val.reshape(len(x_val), -1).astype(np.float32)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    hold = len(x_train) // 10  # records are in TFDS's hash order: a random 10%
    x_fit, y_fit, x_hold, y_hold = x_train[hold:], y_train[hold:], x_train[:hold], y_train[:hold]

    print(f"tinyjax_shapes: {len(x_train)} train / {len(x_val)} validation, {NUM_CLASSES} classes, "
          f"{x_train.shape[1]} features (raw pixels, standardised); Adam lr {args.lr}, "
          f"{args.steps} full-batch steps")
    print(f"{'model':<34}{'train':>8}{'held-out':>10}{'val':>8}")
    print(f"{'chance (reference)':<34}{1 / NUM_CLASSES:>8.3f}{1 / NUM_CLASSES:>10.3f}"
          f"{1 / NUM_CLASSES:>8.3f}")
    best = None
    for wd in args.weight_decays:
        params = train_linear(x_fit, y_fit, NUM_CLASSES, steps=args.steps, lr=args.lr, weight_decay=wd)
        row = (top1(params, x_fit, y_fit), top1(params, x_hold, y_hold), top1(params, x_val, y_val))
        print(f"{f'linear, weight decay {wd:g}':<34}{row[0]:>8.3f}{row[1]:>10.3f}{row[2]:>8.3f}")
        if best is None or row[1] > best[1][1]:
            best = (wd, row)
    wd, (train_acc, _, val_acc) = best
    print(f"linear baseline (weight decay {wd:g}, chosen on held-out): train top-1 {train_acc:.3f}, "
          f"validation top-1 {val_acc:.3f}  [{time.time() - t0:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
