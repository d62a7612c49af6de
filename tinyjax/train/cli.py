"""``python -m tinyjax.train --config configs/FILE.py[:ARG] --workdir DIR [--config.key=VALUE ...]``

Trains the model of a config on its dataset (tf.data over TFDS), on every local device (a mesh
``population × data``), with Orbax checkpoints, ``metrics.jsonl`` and TensorBoard events in the
work directory. Running the same command again resumes from the last checkpoint. SIGTERM (a TPU
preemption) and Ctrl-C save a checkpoint at the next step boundary and exit (code 0 after SIGTERM,
130 after Ctrl-C); a second Ctrl-C quits at once, keeping the last complete checkpoint.
``--multihost`` calls ``jax.distributed.initialize()`` first (Cloud TPU pods / multi-node GPU:
coordinator from the environment).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tinyjax.errors import run_cli


def parse_args(argv: Sequence[str] | None):
    parser = argparse.ArgumentParser(
        prog="python -m tinyjax.train",
        description="Train a tinyjax model from a Python config file (get_config(arg) -> ConfigDict).",
        epilog="Overrides: --config.KEY=VALUE, e.g. --config.batch_size=64 --config.data.name=imagenet2012")
    parser.add_argument("--config", required=True, metavar="FILE.py[:ARG]",
                        help="config file, optionally with an argument after a colon")
    parser.add_argument("--workdir", required=True, help="checkpoints, metrics.jsonl, tensorboard/")
    parser.add_argument("--multihost", action="store_true",
                        help="call jax.distributed.initialize() before anything else")
    from tinyjax.train.config import parse_with_overrides

    return parse_with_overrides(parser, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    from tinyjax.progress import Progress

    # The display first: its first line comes before the seconds of TensorFlow/JAX imports.
    with Progress("tinyjax.train", stream=sys.stderr) as progress:
        progress.status(f"loading {args.config} (TensorFlow and JAX take a few seconds to import)...")
        if args.multihost:
            import jax

            jax.distributed.initialize()
        from tinyjax.train.config import apply_overrides, load_config

        cfg = apply_overrides(load_config(args.config), overrides)
        from tinyjax.train.trainer import train_and_evaluate

        result = train_and_evaluate(cfg, args.workdir, progress=progress)
    if result.preempted:
        # Ctrl-C: the shell's convention for "interrupted" (128 + SIGINT), so scripts stop too.
        # SIGTERM (a preemption notice) is a clean exit a scheduler may simply rerun.
        return 130 if result.signal_name == "SIGINT" else 0
    final = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in result.final_eval.items()}
    print(json.dumps({"step": result.step, **final}))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="tinyjax.train"))
