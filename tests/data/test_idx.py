import gzip
import os
import shutil

import numpy as np
import pytest

from pipelines.data import idx
from pipelines.errors import PipelineError
from tests.conftest import REAL_IDX_DIR, write_idx


@pytest.fixture
def idx_copy(fake_idx_dir, tmp_path) -> str:
    folder = str(tmp_path / "idx")
    shutil.copytree(fake_idx_dir, folder)
    return folder


def test_valid_files_load_as_tfds_shaped_features(fake_idx_dir):
    test = idx.load_idx_split(fake_idx_dir, "test")
    assert test["image"].shape == (10000, 28, 28, 1) and test["image"].dtype == np.uint8
    assert test["label"].shape == (10000,) and test["label"].dtype == np.int64
    np.testing.assert_array_equal(test["label"][:12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    assert test["image"][3].max() == 75


def test_missing_file_names_the_file_and_the_debian_package(idx_copy):
    os.remove(os.path.join(idx_copy, "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(PipelineError, match="missing data file .*t10k-labels-idx1-ubyte.gz.*dataset-fashion-mnist"):
        idx.load_idx_split(idx_copy, "test")


def test_truncated_file_names_the_file(idx_copy):
    path = os.path.join(idx_copy, "t10k-images-idx3-ubyte.gz")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(PipelineError, match="corrupt data file .*t10k-images-idx3-ubyte.gz"):
        idx.load_idx_split(idx_copy, "test")


def test_file_that_is_not_gzip_names_the_file(idx_copy):
    path = os.path.join(idx_copy, "train-labels-idx1-ubyte.gz")
    with open(path, "wb") as f:
        f.write(b"<html>404 not found</html>")
    with pytest.raises(PipelineError, match="corrupt data file .*train-labels-idx1-ubyte.gz"):
        idx.load_idx_split(idx_copy, "train")


def test_wrong_magic_number_is_reported(idx_copy):
    write_idx(os.path.join(idx_copy, "t10k-images-idx3-ubyte.gz"), idx.LABEL_MAGIC, np.zeros((10000, 28, 28)))
    with pytest.raises(PipelineError, match="IDX magic 2049, expected 2051"):
        idx.load_idx_split(idx_copy, "test")


def test_wrong_example_count_is_reported(idx_copy):
    write_idx(os.path.join(idx_copy, "t10k-labels-idx1-ubyte.gz"), idx.LABEL_MAGIC, np.zeros(9999))
    with pytest.raises(PipelineError, match=r"shape \(9999,\), expected \(10000,\)"):
        idx.load_idx_split(idx_copy, "test")


def test_body_shorter_than_header_says_is_reported(idx_copy):
    path = os.path.join(idx_copy, "t10k-labels-idx1-ubyte.gz")
    header = np.array([idx.LABEL_MAGIC, 10000], dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(5000))
    with pytest.raises(PipelineError, match="5000 data bytes, expected 10000"):
        idx.load_idx_split(idx_copy, "test")


def test_label_outside_class_range_is_reported(idx_copy):
    labels = np.zeros(10000)
    labels[17] = 12
    write_idx(os.path.join(idx_copy, "t10k-labels-idx1-ubyte.gz"), idx.LABEL_MAGIC, labels)
    with pytest.raises(PipelineError, match="label 12 outside 0..9"):
        idx.load_idx_split(idx_copy, "test")


def test_debian_fashion_mnist_validates_by_content():
    """The real files (installed by `make test`) pass the content checks: 6000 train images of every class."""
    train = idx.load_idx_split(REAL_IDX_DIR, "train")
    assert train["image"].shape == (60000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(train["label"]), [6000] * 10)
    assert 60 < train["image"].mean() < 80  # real clothing pictures, not an empty file of the right size


def test_a_file_that_inflates_past_the_data_sets_size_is_refused_without_reading_it_all(idx_copy):
    """A gzip bomb: 512 MB of zeros behind a valid header would take 512 MB of memory if read whole."""
    path = os.path.join(idx_copy, "t10k-labels-idx1-ubyte.gz")
    header = np.array([idx.LABEL_MAGIC, 10000], dtype=">u4").tobytes()
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        chunk = bytes(1 << 24)
        for _ in range(32):
            f.write(chunk)
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PipelineError, match="corrupt data file .*t10k-labels-idx1-ubyte.gz .*expected 10000"):
        idx.load_idx_split(idx_copy, "test")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: far below 512 MB
