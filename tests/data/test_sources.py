import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines.data import sources
from pipelines.errors import PipelineError


def test_auto_reads_fashion_mnist_from_the_idx_mirror_when_it_exists(fake_idx_dir, tmp_path):
    data = sources.load_dataset("fashion_mnist", data_dir=str(tmp_path), idx_dir=fake_idx_dir)
    assert data.source == f"idx:{fake_idx_dir}"
    assert data.label_names[0] == "T-shirt/top" and data.num_classes == 10
    assert data.train.count == 60000 and data.test.count == 10000
    example = next(iter(data.test.read()))
    assert example["image"].shape == (28, 28, 1) and example["label"].dtype.name == "int64"


def test_auto_falls_back_to_tfds_without_the_mirror_and_for_other_data_sets(tmp_path):
    assert not sources.uses_idx_mirror("fashion_mnist", "auto", str(tmp_path / "absent"))
    assert not sources.uses_idx_mirror("mnist", "auto", str(tmp_path))
    assert not sources.uses_idx_mirror("fashion_mnist", "tfds", str(tmp_path))
    assert sources.uses_idx_mirror("fashion_mnist", "idx", str(tmp_path / "absent"))


@pytest.mark.parametrize("name,feature,shape,classes", [
    ("mnist", "image", (28, 28, 1), 10),
    ("cifar10", "image", (32, 32, 3), 10),
    ("imdb_reviews", "text", (), 2),
])
def test_tfds_data_sets_load_with_their_info(name, feature, shape, classes, tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        data = sources.load_dataset(name, data_dir=str(tmp_path), data_source="tfds")
    assert data.source.startswith("tfds:") and data.num_classes == classes
    example = next(iter(data.train.read()))
    assert example[feature].shape == shape
    assert data.test.count == len(list(data.test.read())) == 6


def test_tfds_failure_offline_is_one_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve storage.googleapis.com")
    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(PipelineError, match="could not load TFDS data set 'cifar10'.*network"):
        sources.load_dataset("cifar10", data_dir=str(tmp_path), data_source="tfds")


def test_an_offline_download_fails_in_one_line_within_seconds_and_leaves_tfds_as_it_was(tmp_path):
    """No network here but the package registries: TFDS' ten retries with back-off took 3½ minutes."""
    import time

    from tensorflow_datasets.core.download import downloader
    start = time.perf_counter()
    with pytest.raises(PipelineError, match=r"could not load TFDS data set 'mnist' .* run once with network"):
        sources.load_dataset("mnist", data_dir=str(tmp_path), data_source="tfds")
    assert time.perf_counter() - start < 30
    assert downloader.MAX_RETRIES == 10


def test_any_registered_image_set_with_a_label_loads_as_tfds_colon_name(tmp_path):
    with tfds.testing.mock_data(num_examples=8):
        with pytest.raises(PipelineError, match=r"tfds:tf_flowers has images of varying size: give --image_size"):
            sources.load_dataset("tfds:tf_flowers", data_dir=str(tmp_path))
        data = sources.load_dataset("tfds:tf_flowers", data_dir=str(tmp_path), image_size=(32, 24))
        gray = sources.load_dataset("tfds:tf_flowers", data_dir=str(tmp_path), image_size=(32, 24),
                                    color_mode="grayscale")
        example, gray_example = next(iter(data.train.read())), next(iter(gray.test.read()))
    assert data.label_names[0] == "dandelion" and data.num_classes == 5 and data.modality == "image"
    assert example["image"].shape == (32, 24, 3) and example["image"].dtype == tf.uint8
    assert set(example) == {"image", "label"}  # only what the tasks read
    assert gray_example["image"].shape == (32, 24, 1)


@pytest.mark.parametrize("name,problem", [
    ("tfds:no_such_set", "TFDS has no data set named 'no_such_set'"),
    ("tfds:celeb_a", "has no 'label' class feature"),
    ("tfds:../../etc", r"'../../etc' is not a TFDS data set name"),
])
def test_a_tfds_name_that_is_not_a_labelled_image_or_text_set_is_one_line(tmp_path, name, problem):
    with pytest.raises(PipelineError, match=problem):
        sources.load_dataset(name, data_dir=str(tmp_path))
