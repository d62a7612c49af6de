"""``tinyjax_shapes_sized``: the embedded scenes at another resolution through TFDS, the pixels
:func:`render_split` draws, in drawing order, readable by the training pipeline."""

import numpy as np
import pytest

from tinyjax.data import DataError
from tinyjax.data.embedded import render_split
from tinyjax.data.embedded_sized import dataset_name, load_numpy_sized


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_the_tfds_copy_holds_the_drawn_pixels_in_drawing_order(data_dir):
    x, y = load_numpy_sized("validation", 32, data_dir)
    a, b = render_split("validation", 32)
    assert x.shape == (1200, 32, 32, 3) and x.dtype == np.uint8
    assert np.array_equal(x, a) and np.array_equal(y, b)


def test_the_training_pipeline_reads_it_by_name(data_dir):
    from tinyjax.data import pipeline

    cfg = pipeline.default_data_config()
    cfg.name, cfg.data_dir = dataset_name(32), data_dir
    info = pipeline.get_info(cfg)
    assert (info.num_classes, info.num_train, info.num_eval) == (10, 6000, 1200)
    batch = next(pipeline.eval_dataset(cfg, batch_size=8, resolution=32).as_numpy_iterator())
    assert batch["image"].shape == (8, 32, 32, 3)


@pytest.mark.parametrize("size", [40, 33, "64", True])
def test_a_size_without_a_builder_config_is_a_data_error(size):
    with pytest.raises(DataError, match="is drawn at"):
        dataset_name(size)
