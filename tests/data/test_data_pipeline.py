"""Train and eval pipelines on ``tinyjax_shapes``: shapes, determinism, resumption, sharding, masks."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from tinyjax.data import pipeline
from tinyjax.data.embedded import CLASS_NAMES

B = 32  # examples per batch
R = 24  # pixels


@pytest.fixture
def small_cfg(shapes_cfg):
    """Two classes of tinyjax_shapes (1,200 train / 240 validation examples): quick to read."""
    shapes_cfg.num_classes_subset = 2
    shapes_cfg.subset_seed = 1
    return shapes_cfg


def _take(ds, n):
    return list(itertools.islice(ds.as_numpy_iterator(), n))


def _same(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x) and len(a) == len(b)


def test_config_defaults():
    cfg = pipeline.default_data_config()
    assert cfg.name == "tinyjax_shapes" and cfg.num_classes_subset == 0
    assert (cfg.randaugment_n, cfg.randaugment_m, cfg.randaugment_mstd) == (2, 9, 0.5)
    assert cfg.crop_pct == 0.875 and cfg.min_crop_area == 0.08 and cfg.cache is True
    assert tuple(cfg.mean) == pipeline.IMAGENET_MEAN and tuple(cfg.std) == pipeline.IMAGENET_STD


def test_info_counts_and_names(shapes_cfg):
    info = pipeline.get_info(shapes_cfg)
    assert info == pipeline.DatasetInfo("tinyjax_shapes", 10, 6000, 1200, info.class_names)
    assert info.class_names[0] == "circle" and len(info.class_names) == 10


def test_class_subset_counts_only_kept_classes(shapes_cfg):
    shapes_cfg.num_classes_subset = 3
    shapes_cfg.subset_seed = 7
    info = pipeline.get_info(shapes_cfg)
    kept = np.sort(np.random.default_rng(7).permutation(10)[:3])
    assert info.num_classes == 3 and info.num_train == 1800 and info.num_eval == 360
    assert info.class_names == tuple(CLASS_NAMES[i] for i in kept)
    labels = np.concatenate([b["label"] for b in pipeline.eval_dataset(
        shapes_cfg, batch_size=200, resolution=16).as_numpy_iterator()])
    assert set(labels.tolist()) == {0, 1, 2}


def test_train_batches_have_the_promised_shapes_and_types(small_cfg):
    (batch,) = _take(pipeline.train_dataset(small_cfg, batch_size=B, resolution=24, seed=0), 1)
    assert set(batch) == {"image", "label", "mask"}
    assert batch["image"].shape == (B, 24, 24, 3) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (B,) and batch["label"].dtype == np.int32
    assert batch["mask"].dtype == np.float32 and np.all(batch["mask"] == 1)
    assert np.all(np.isfinite(batch["image"]))
    # Normalised by ImageNet's mean/std: roughly zero-centred, unit scale.
    assert abs(batch["image"].mean()) < 1.0 and 0.3 < batch["image"].std() < 2.0
    assert set(batch["label"].tolist()) == {0, 1}


def _augmented(cfg, seed, n=2):
    cfg = cfg.copy_and_resolve_references()
    cfg.randaugment_n = 2  # the full augmentation: crop, flip, RandAugment, random erasing
    cfg.random_erasing = 0.5
    return _take(pipeline.train_dataset(cfg, batch_size=B, resolution=R, seed=seed), n)


def test_train_stream_is_deterministic_given_the_seed(small_cfg):
    first, again, other = _augmented(small_cfg, 3), _augmented(small_cfg, 3), _augmented(small_cfg, 4)
    assert _same(first, again)
    assert not np.array_equal(first[0]["image"], other[0]["image"])
    assert not np.array_equal(first[0]["label"], other[0]["label"])

    # Augmentation changes pixels (the same records in the same order: the shuffle does not
    # depend on augmentation settings) but keeps them finite and in the normalised 0..255 range.
    small_cfg.min_crop_area = 1.0  # whole (square) image: only the flip is left
    (plain,) = _take(pipeline.train_dataset(small_cfg, batch_size=B, resolution=R, seed=3), 1)
    np.testing.assert_array_equal(plain["label"], first[0]["label"])
    diff = np.abs(plain["image"] - first[0]["image"]).mean(axis=(1, 2, 3))
    assert np.mean(diff > 0.05) > 0.8, diff
    assert all(np.all(np.isfinite(b["image"])) and np.abs(b["image"]).max() < 10 for b in first)


def test_start_step_resumes_the_same_stream(small_cfg):
    fresh = _take(pipeline.train_dataset(small_cfg, batch_size=B, resolution=R, seed=1), 5)
    resumed = _take(pipeline.train_dataset(small_cfg, batch_size=B, resolution=R, seed=1,
                                           start_step=3), 2)
    assert _same(fresh[3:], resumed)


def test_eval_counts_every_example_once(small_cfg):
    batches = list(pipeline.eval_dataset(small_cfg, batch_size=100, resolution=R).as_numpy_iterator())
    assert len(batches) == 3  # 240 = 100 + 100 + 40 real and 60 padding
    masks = np.concatenate([b["mask"] for b in batches])
    assert masks.sum() == 240 == pipeline.get_info(small_cfg).num_eval and masks.dtype == np.float32
    assert np.all(masks[:240] == 1) and np.all(masks[240:] == 0)
    assert all(b["image"].shape == (100, R, R, 3) for b in batches)
    assert np.all(batches[-1]["image"][40:] == 0)
    assert np.all(np.isfinite(np.concatenate([b["image"] for b in batches])))


def _eval_digests(cfg, process_index=0, process_count=1):
    out = []
    for b in pipeline.eval_dataset(cfg, batch_size=256, resolution=R, process_index=process_index,
                                   process_count=process_count).as_numpy_iterator():
        for image, label, m in zip(b["image"], b["label"], b["mask"]):
            if m:
                out.append(hashlib.sha1(image.tobytes() + bytes([int(label)])).hexdigest())
    return out


def test_eval_is_deterministic_and_shards_are_disjoint_and_cover(small_cfg):
    whole = _eval_digests(small_cfg)
    assert len(whole) == 240 and whole == _eval_digests(small_cfg)  # same order, same pixels
    p0 = _eval_digests(small_cfg, 0, 2)
    p1 = _eval_digests(small_cfg, 1, 2)
    assert len(p0) + len(p1) == 240 and len(p0) > 80 and len(p1) > 80
    assert not set(p0) & set(p1)
    assert sorted(p0 + p1) == sorted(whole)


def test_eval_processes_yield_the_same_number_of_batches(shapes_cfg):
    counts = [sum(1 for _ in pipeline.eval_dataset(shapes_cfg, batch_size=100, resolution=4,
                                                   process_index=i, process_count=7))
              for i in range(7)]
    # 1200 / 7 = 171.4: slices of 172 and 171 examples, all padded to 2 batches.
    assert counts == [2] * 7


def test_train_shards_are_disjoint(shapes_cfg):
    shapes_cfg.num_classes_subset = 1  # 600 train examples, about 300 per process
    shapes_cfg.min_crop_area = 1.0  # the whole (square) image: only the flip is random

    def images(pi):
        ds = pipeline.train_dataset(shapes_cfg, batch_size=100, resolution=R, seed=0,
                                    process_index=pi, process_count=2)
        batch = np.concatenate([b["image"] for b in _take(ds, 2)])  # within the first epoch
        # Identify an image by the sum of it and its mirror (flip-invariant).
        return [hashlib.sha1(np.round(im + im[:, ::-1], 3).tobytes()).hexdigest() for im in batch]

    a, b = images(0), images(1)
    assert len(set(a)) == len(a) == 200 and len(set(b)) == 200  # no repeats within an epoch
    assert not set(a) & set(b)


def test_bad_process_index_is_a_data_error(shapes_cfg):
    from tinyjax.data import DataError

    with pytest.raises(DataError, match="process_index"):
        pipeline.eval_dataset(shapes_cfg, batch_size=8, resolution=8, process_index=2, process_count=2)


def test_prefetch_to_device_yields_jax_arrays_with_batches_in_flight():
    import jax

    pulled = []

    def source():
        for i in range(5):
            pulled.append(i)
            yield {"x": np.full((2, 3), i, np.float32), "y": np.arange(2, dtype=np.int32) + i}

    it = pipeline.prefetch_to_device(source(), size=3)
    first = next(it)
    assert len(pulled) == 3  # three batches were put on the device before the first was used
    assert isinstance(first["x"], jax.Array) and float(first["x"][0, 0]) == 0
    rest = list(it)
    assert [int(b["y"][0]) for b in rest] == [1, 2, 3, 4]

    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    (only,) = list(pipeline.prefetch_to_device(iter([{"x": np.ones(4)}]), 2, sharding=sharding))
    assert only["x"].sharding == sharding


def test_prefetch_accepts_a_dataset(small_cfg):
    import jax

    ds = pipeline.eval_dataset(small_cfg, batch_size=200, resolution=8)
    batches = list(pipeline.prefetch_to_device(ds, 2))
    assert len(batches) == 2 and isinstance(batches[0]["image"], jax.Array)
    assert float(sum(b["mask"].sum() for b in batches)) == 240
