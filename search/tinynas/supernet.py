"""TinyNAS stage 2: the weight-sharing supernet of a :class:`~tinyjax.search.tinynas.space.SearchSpace`
(Once-for-All's techniques, docs/papers.md), its sub-networks and their scores.

* **Elastic kernel**: the supernet's depthwise kernels are the largest choice; smaller ones are
  its centre mapped by learned 25×25 / 9×9 transforms (``EfficientNet(elastic_kernels=…)``, see
  :func:`tinyjax.models.elastic_kernel`), selected by the kernel mask of
  :meth:`SearchSpace.masks`.
* **Elastic expansion**: a sub-network keeps the first middle channels of each block;
  :func:`sort_channels` orders them by importance (L1 norm of the projection's weights) so the
  first are the best. Training calls it once, on the initial weights, at the start of its phase
  (:func:`tinyjax.search.tinynas.supernet_train.train_supernet`): the sort is free for the largest
  network and idempotent, so a phase that starts from trained weights keeps what they learnt.
* **Elastic depth**: the first d blocks of a stage (the ``keep`` mask).
* :func:`subnet_variables` cuts a sub-network's own weights out of the supernet (what the
  winner is fine-tuned from and exported with); :class:`SubnetEvaluator` scores archs with
  recalibrated BatchNorm statistics (what the evolution calls hundreds of times).

Training (sandwich rule, vmapped sub-networks, checkpoints) lives in
:mod:`tinyjax.search.tinynas.supernet_train`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import ml_collections
import numpy as np

from tinyjax.errors import TinyJaxError
from tinyjax.search.tinynas.space import Arch, SearchSpace

__all__ = ["supernet_model", "supernet_defaults", "stack_masks", "sort_channels", "subnet_variables",
           "SubnetEvaluator", "normalise_images", "IMAGENET_MEAN", "IMAGENET_STD"]

# tinyjax.data.pipeline's normalisation (0..1 units), repeated here so that scoring does not
# import TensorFlow with the input pipeline.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def supernet_defaults() -> ml_collections.ConfigDict:
    """The supernet section of the search config, sized for the whole search (stage 1, supernet,
    evolution, fine-tuning, export) to end in 20 minutes on 2 CPU cores, of which the supernet
    gets about 6–7 minutes wall, XLA compilation included.

    Measured with ``benchmarks/supernet_vmap.py --width 0.4 --batch 32 --no-sequential`` on 2 CPU
    cores shared with other jobs (load average 5–6, so an idle machine should be 2–3× faster):

    ===========  ===  ===============  =========  =====================
    resolution   K    compile + 1st s  step s     sub-network images/s
    ===========  ===  ===============  =========  =====================
    64           2    279              6.8        9.4
    64           3    286              8.7        11.0
    96           2    245              8.0        8.0
    96           3    131              13.8       6.9
    96           4    218              11.4       11.2
    144          3    251              27.8       3.4
    ===========  ===  ===============  =========  =====================

    The vmapped step costs about K× the largest network's (masks zero channels, they do not
    remove them), so images·K per second is the budget, and a step grows with r². Training
    below the space's resolution is therefore the main lever: 64 px costs ≈ (64/144)² ≈ 0.2× the
    144 px step, and :class:`SubnetEvaluator` recalibrates BN at the space's resolution for
    every scored arch, which removes most of the train/test resolution gap (FixRes). At 64 px,
    K = 3 (largest, smallest, one random) costs only 1.3× K = 2 per step for 1.5× the
    sub-networks. Expected on an idle 2-core machine (an estimate from the loaded figures):
    ≈ 1.5–2 min compilation and ≈ 3 s per step, so ≈ 100 steps in the 6–7 minutes: a short
    warm start of the shared weights, not OFA's schedule; more steps, K and resolution pay off
    on an accelerator.
    """
    c = ml_collections.ConfigDict()
    c.largest_steps = 0        # a first phase training the largest sub-network alone (OFA, BigNAS)
    c.steps = 100              # optimisation steps (each: K sub-networks on one batch)
    c.batch_size = 32
    c.k = 3                    # sub-networks per step: largest, smallest and K-2 random (sandwich)
    c.resolution = 64          # training resolution in pixels (0: the data's own)
    c.optimizer = "adamw"      # "adamw" | "sgd_nesterov"
    c.lr = 3e-3
    c.momentum = 0.9           # sgd_nesterov only
    c.weight_decay = 1e-4      # conv/dense kernels only (not BN, biases or kernel transforms)
    c.warmup_steps = 10        # linear warm-up, then cosine to 0
    c.label_smoothing = 0.1
    c.distill = False          # in-place distillation: the largest teaches the others (BigNAS)
    c.flip = True              # random horizontal flips
    c.seed = 0
    c.checkpoint_every = 25    # steps
    c.checkpoint_keep = 2
    c.log_every = 5            # steps per progress line
    # scoring (SubnetEvaluator)
    c.calib_images = 64        # BN recalibration images per arch
    c.eval_batch_size = 64
    return c


def supernet_model(space: SearchSpace, resolution: int | None = None, **kwargs):
    """The supernet's Flax module: ``EfficientNet(space.supernet_spec(), elastic_kernels=…)``.
    ``resolution`` overrides the spec's (only shapes at init depend on it)."""
    from tinyjax.models import EfficientNet

    spec = space.supernet_spec()
    if resolution:
        spec = spec.with_(resolution=int(resolution))
    return EfficientNet(spec, elastic_kernels=tuple(space.kernels), **kwargs)


def stack_masks(space: SearchSpace, archs: Sequence[Arch]) -> dict:
    """The masks of ``archs`` (:meth:`SearchSpace.masks`) stacked on a leading axis: one vmapped
    program runs them all. The kernel mask also selects the transformed kernel (the number of
    ones names the size), so no other entry is needed."""
    masks = [space.masks(a) for a in archs]
    return {name: {key: np.stack([m[name][key] for m in masks]) for key in masks[0][name]}
            for name in masks[0]}


# -- channel importance ----------------------------------------------------------------------------

_MIDDLE_AXIS = {("conv_pw", "kernel"): -1, ("conv_dw", "kernel"): -1, ("conv_pwl", "kernel"): 2}
_MIDDLE_BN = ("bn1", "bn2")


def _ir_names(space: SearchSpace) -> list[str]:
    return [b.name for b in space.supernet_spec().resolved_blocks() if b.type == "ir"]


def middle_permutations(space: SearchSpace, params: dict) -> dict[str, np.ndarray]:
    """Per inverted-residual block, the order of its middle channels by importance: the L1 norm
    of the projection (``conv_pwl``) weights reading each channel, descending (a stable sort:
    an already sorted block gets the identity)."""
    out = {}
    for name in _ir_names(space):
        w = np.asarray(params[name]["conv_pwl"]["kernel"])[0, 0]          # [mid, out]
        out[name] = np.argsort(-np.abs(w).sum(axis=1), kind="stable")
    return out


def permute_middle(tree, perms: dict[str, np.ndarray]):
    """``tree`` (params, batch_stats, or anything with their paths, e.g. an optimiser state) with
    each block's middle channels reordered by ``perms``: the expand conv's outputs, ``bn1``, the
    depthwise conv, ``bn2`` and the projection's inputs."""
    import jax

    def apply(path, leaf):
        keys = [getattr(p, "key", None) for p in path]
        for i, k in enumerate(keys):
            if k in perms and i + 1 < len(keys):
                layer, leafname = keys[i + 1], keys[-1]
                if layer in _MIDDLE_BN:
                    return np.take(np.asarray(leaf), perms[k], axis=0)
                axis = _MIDDLE_AXIS.get((layer, leafname))
                if axis is not None:
                    return np.take(np.asarray(leaf), perms[k], axis=axis)
        return leaf

    return jax.tree_util.tree_map_with_path(apply, tree)


def sort_channels(space: SearchSpace, variables: dict) -> dict:
    """OFA's channel sorting: ``variables`` (``{"params", "batch_stats"}`` of the supernet) with
    every inverted-residual block's middle channels reordered by importance, descending, so a
    smaller expansion keeps the most important ones. The largest network computes the same
    function (a permutation of its hidden channels)."""
    perms = middle_permutations(space, variables["params"])
    return {coll: permute_middle(tree, perms) for coll, tree in variables.items()}


# -- sub-network weights ------------------------------------------------------------------------------

def subnet_variables(space: SearchSpace, variables: dict, arch: Arch) -> dict:
    """The weights of ``EfficientNet(space.spec(arch))`` cut out of the supernet's ``variables``:
    depthwise kernels transformed to their size (:func:`tinyjax.models.elastic_kernel`), middle
    channels sliced to the first ``mid``, blocks beyond a stage's depth dropped (the kept ones
    have the same names in both specs: the first d blocks of a stage). Numpy float32 leaves."""
    from tinyjax.models import elastic_kernel, transform_name

    sub = space.spec(arch)
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    new_params = {k: v for k, v in params.items() if not k.startswith("blocks_")}
    new_stats = {k: v for k, v in stats.items() if not k.startswith("blocks_")}
    choices = tuple(sorted(space.kernels, reverse=True))
    for b in sub.resolved_blocks():
        p, s = params[b.name], stats.get(b.name, {})
        if b.type != "ir":
            new_params[b.name], new_stats[b.name] = p, s
            continue
        m = b.mid_chs
        dw = p["conv_dw"]
        if len(choices) > 1:
            matrices = {transform_name(x, y): dw[transform_name(x, y)]
                        for x, y in zip(choices, choices[1:])}
            kernel = elastic_kernel(np.asarray(dw["kernel"]), matrices, choices, b.kernel)
        else:
            kernel = dw["kernel"]
        new_params[b.name] = {
            "conv_pw": {"kernel": np.asarray(p["conv_pw"]["kernel"])[..., :m]},
            "bn1": {k: np.asarray(v)[:m] for k, v in p["bn1"].items()},
            "conv_dw": {"kernel": np.asarray(kernel)[..., :m]},
            "bn2": {k: np.asarray(v)[:m] for k, v in p["bn2"].items()},
            "conv_pwl": {"kernel": np.asarray(p["conv_pwl"]["kernel"])[:, :, :m]},
            "bn3": p["bn3"]}
        if s:
            new_stats[b.name] = {"bn1": {k: np.asarray(v)[:m] for k, v in s["bn1"].items()},
                                 "bn2": {k: np.asarray(v)[:m] for k, v in s["bn2"].items()},
                                 "bn3": s["bn3"]}
    import jax

    out = {"params": new_params, "batch_stats": new_stats} if stats else {"params": new_params}
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), out)


# -- scoring -------------------------------------------------------------------------------------------

def normalise_images(images):
    """uint8 NHWC -> float32 normalised as the input pipeline does (works in numpy and jnp)."""
    mean = np.asarray(IMAGENET_MEAN, np.float32) * 255.0
    std = np.asarray(IMAGENET_STD, np.float32) * 255.0
    return (images.astype(np.float32) - mean) / std


def check_images(what: str, images, labels=None) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[-1] != 3:
        raise TinyJaxError(f"{what}: expected uint8 images [N, H, W, 3] as a numpy array, got "
                           f"{getattr(images, 'dtype', type(images).__name__)} "
                           f"{getattr(images, 'shape', '')}")
    if labels is not None and (np.asarray(labels).shape != (images.shape[0],)):
        raise TinyJaxError(f"{what}: {images.shape[0]} images but labels of shape "
                           f"{np.asarray(labels).shape}; give one int label per image")


class SubnetEvaluator:
    """Top-1 of sub-networks of a trained supernet, each with its own BatchNorm statistics.

    For every arch, BN statistics are reset and recomputed in train mode over the calibration
    images (OFA: the mean of the per-batch means and variances), then the validation images are
    classified with them. One program is compiled for every arch (masks are inputs) and runs
    ``archs_per_call`` archs vmapped per call; calibration and evaluation batches are a
    ``lax.scan`` inside it. Images are uint8 ``[N, r, r, 3]`` (normalised here); calibration uses
    ``len(calib_images) // batch_size`` full batches.
    """

    def __init__(self, space: SearchSpace, variables: dict, calib_images: np.ndarray,
                 val_images: np.ndarray, val_labels: np.ndarray, batch_size: int = 128,
                 archs_per_call: int = 1):
        import jax
        import jax.numpy as jnp

        from tinyjax.models import BN_MOMENTUM

        check_images("calibration images", calib_images)
        check_images("validation images", val_images, val_labels)
        if batch_size < 1 or archs_per_call < 1:
            raise TinyJaxError(f"batch_size ({batch_size}) and archs_per_call ({archs_per_call}) "
                               "must be at least 1")
        n_calib = len(calib_images) // batch_size
        if n_calib == 0:
            raise TinyJaxError(f"{len(calib_images)} calibration images make no full batch of "
                               f"{batch_size}; give more images or a smaller batch_size")
        self.space, self.batch_size, self.archs_per_call = space, batch_size, archs_per_call
        self.num_val = len(val_images)
        r = val_images.shape[1]
        self.model = model = supernet_model(space, r)
        self.params = jax.device_put(variables["params"])
        calib = calib_images[: n_calib * batch_size].reshape(n_calib, batch_size, *calib_images.shape[1:])
        n_val = math.ceil(len(val_images) / batch_size)
        pad = n_val * batch_size - len(val_images)
        val = np.concatenate([val_images, np.zeros((pad, *val_images.shape[1:]), np.uint8)])
        labels = np.concatenate([np.asarray(val_labels, np.int32), np.full(pad, -1, np.int32)])
        self.calib = jax.device_put(calib)
        self.val = jax.device_put(val.reshape(n_val, batch_size, *val.shape[1:]))
        self.labels = jax.device_put(labels.reshape(n_val, batch_size))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, variables["batch_stats"])

        def one(params, masks, calib, val, labels):
            def stats_of(total, images):
                # from zero running statistics, one train-mode update leaves (1 - momentum) times
                # the batch's own mean and variance
                _, upd = model.apply({"params": params, "batch_stats": zeros},
                                     normalise_images(images), train=True, mutable=["batch_stats"],
                                     masks=masks)
                return jax.tree_util.tree_map(lambda t, u: t + u / (1.0 - BN_MOMENTUM), total,
                                              upd["batch_stats"]), None

            total, _ = jax.lax.scan(stats_of, zeros, calib)
            stats = jax.tree_util.tree_map(lambda t: t / calib.shape[0], total)

            def hits_of(count, xy):
                images, y = xy
                logits = model.apply({"params": params, "batch_stats": stats},
                                     normalise_images(images), masks=masks)
                return count + jnp.sum(jnp.argmax(logits, -1) == y), None

            hits, _ = jax.lax.scan(hits_of, jnp.zeros((), jnp.int32), (val, labels))
            return hits, stats

        self._one = one
        self._score = jax.jit(jax.vmap(one, in_axes=(None, 0, None, None, None)))

    def evaluate(self, archs: Sequence[Arch]) -> list[float]:
        """Top-1 accuracy (0..1) of each arch, in order."""
        archs = [self.space.canonical(a) for a in archs]
        g = self.archs_per_call
        out: list[float] = []
        for i in range(0, len(archs), g):
            group = list(archs[i:i + g])
            group += [group[-1]] * (g - len(group))      # one compiled shape: pad the last call
            hits, _ = self._score(self.params, stack_masks(self.space, group), self.calib, self.val,
                                  self.labels)
            out.extend(float(h) / self.num_val for h in np.asarray(hits)[: len(archs) - i])
        return out

    def recalibrated_stats(self, arch: Arch) -> dict:
        """The supernet's BN statistics recalibrated for ``arch`` (what :meth:`evaluate` uses);
        with :func:`subnet_variables` they give the sub-network's own statistics."""
        import jax

        _, stats = self._score(self.params, stack_masks(self.space, [arch] * self.archs_per_call),
                               self.calib, self.val, self.labels)
        return jax.tree_util.tree_map(lambda a: np.asarray(a[0]), stats)
