"""Class-activation maps of trained runs (TinyNet's Figure 4): where a network looks.

    python -m tinyjax.train.cam --workdir RUN [RUN ...] --out cam.png [--images 8]

CAM (Zhou et al., 2016) for a network that ends in global average pooling and one linear layer:
the last feature map before the pooling (the head conv's output, or the last block's when the
spec has no head conv) ``F [h, w, C]``, weighted by the classifier's weights of the predicted
class ``W[:, c]``, is ``Σ_C F·W[:, c]``: the class score before pooling, per position. It is
scaled to [0, 1] per image, upsampled bilinearly to the input and drawn over it. Each run
(``python -m tinyjax.train`` work directory, read with :func:`tinyjax.train.runs.load_run`) is one row
of the grid, on the first ``--images`` validation images of its dataset.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinyjax.errors import TinyJaxError, run_cli

__all__ = ["class_activation_maps", "class_scores", "draw_grid", "feature_module"]

PROG = "tinyjax.train.cam"


def feature_module(spec) -> str:
    """The name of the module whose output the pooling averages: ``head`` (the head conv) or,
    without a head conv, the last block."""
    return "head" if spec.head.out_chs is not None else spec.resolved_blocks()[-1].name


def class_scores(model, variables: dict, images: np.ndarray):
    """``(maps [N, h, w], predicted class [N], logits [N, classes])``: the predicted class's score
    at each position of the pooled feature map (``h × w``), before pooling, so that
    ``maps.mean((1, 2)) + bias[pred] == logits[pred]``. ``images``: float NHWC, preprocessed as
    in evaluation; ``model``: a :class:`tinyjax.models.EfficientNet`."""
    import jax
    import jax.numpy as jnp

    name = feature_module(model.spec)

    @jax.jit
    def forward(variables, x):
        logits, state = model.apply(
            variables, x, capture_intermediates=lambda m, method: m.name == name and method == "__call__",
            mutable=["intermediates"])
        return logits, state["intermediates"][name]["__call__"][0]

    logits, feats = forward(variables, jnp.asarray(images, jnp.float32))
    pred = jnp.argmax(logits, axis=-1)
    weights = jnp.asarray(variables["params"]["classifier"]["kernel"])[:, pred]    # [C, N]
    maps = jnp.einsum("nhwc,cn->nhw", feats.astype(jnp.float32), weights)
    return np.asarray(maps), np.asarray(pred), np.asarray(logits)


def class_activation_maps(model, variables: dict, images: np.ndarray):
    """``(cams [N, H, W] in [0, 1], predicted class [N], logits)``: :func:`class_scores` scaled
    to [0, 1] per image and upsampled bilinearly to the images' ``H × W``."""
    import jax

    maps, pred, logits = class_scores(model, variables, images)
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    maps = (maps - lo) / np.maximum(hi - lo, 1e-12)
    n, h, w = images.shape[:3]
    cams = np.asarray(jax.image.resize(maps, (n, h, w), "bilinear"))
    return np.clip(cams, 0.0, 1.0), pred, logits


def _show(image: np.ndarray) -> np.ndarray:
    """A normalised image back to [0, 1] for display (per-image min-max)."""
    lo, hi = image.min(), image.max()
    return (image - lo) / max(hi - lo, 1e-12)


def draw_grid(rows: list[dict], class_names: Sequence[str], path: Path) -> Path:
    """One PNG: the images, then one row of CAM overlays per run. ``rows``: ``{"title", "images",
    "labels", "cams", "pred"}`` each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows[0]["images"])
    fig, axes = plt.subplots(len(rows) + 1, n, figsize=(1.6 * n, 1.75 * (len(rows) + 1)), squeeze=False)
    name = lambda i: class_names[i] if i < len(class_names) else str(i)  # noqa: E731
    for j in range(n):
        ax = axes[0, j]
        ax.imshow(_show(rows[0]["images"][j]))
        ax.set_title(name(int(rows[0]["labels"][j])), fontsize=8)
    for i, row in enumerate(rows, start=1):
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(_show(row["images"][j]))
            ax.imshow(row["cams"][j], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            right = int(row["pred"][j]) == int(row["labels"][j])
            ax.set_title(name(int(row["pred"][j])), fontsize=8, color="green" if right else "red")
        axes[i, 0].set_ylabel(row["title"], fontsize=7)
    axes[0, 0].set_ylabel("image (label)", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("class-activation maps of the predicted class (green: right, red: wrong)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_args(argv: Sequence[str] | None):
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Draw class-activation maps of trained runs on validation images (one PNG grid: "
                    "the images, then one row per run).")
    parser.add_argument("--workdir", nargs="+", required=True, metavar="RUN",
                        help="work directories of python -m tinyjax.train runs (one row each)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--images", type=int, default=8, help="validation images (default 8)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.images <= 64:
        raise TinyJaxError(f"--images must be between 1 and 64, got {args.images}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise TinyJaxError(f"--out must name a .png file, got {args.out}")
    print(f"{PROG}: loading {len(args.workdir)} run(s)...", file=sys.stderr, flush=True)
    from tinyjax.data import pipeline
    from tinyjax.train.runs import eval_images, load_run

    rows, names = [], ()
    for workdir in args.workdir:
        run = load_run(workdir)
        images, labels = eval_images(run, args.images)
        cams, pred, _ = class_activation_maps(run.model, run.variables, images)
        names = names or pipeline.get_info(run.cfg.data).class_names
        top1 = float(np.mean(pred == labels))
        rows.append({"title": f"{Path(workdir).name}\n{run.spec.resolution} px", "images": images,
                     "labels": labels, "cams": cams, "pred": pred})
        print(f"{PROG}: {workdir}: step {run.step}, {run.spec.name} at {run.spec.resolution} px, "
              f"{top1:.0%} of the {len(labels)} images right", file=sys.stderr, flush=True)
    n = min(len(r["images"]) for r in rows)
    rows = [{k: (v[:n] if k != "title" else v) for k, v in r.items()} for r in rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_grid(rows, names, out)
    print(f"{PROG}: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog=PROG))
