"""TensorFlow Datasets internals: the download retries, whose only knob is a module constant, and the error an
unknown data set name raises (which its public API does not export)."""

import contextlib
import logging

from pipelines.upstream import require

TESTED = "4.9.10"


@contextlib.contextmanager
def few_download_retries(retries: int = 1):
    """TFDS retries a failed request 10 times with exponential back-off: offline, minutes before the error. A retry
    or two is enough for a flaky network, and offline fails in seconds; TFDS is left as it was found."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import downloader
    require("TensorFlow Datasets", tfds.__version__, TESTED, "tensorflow-datasets")
    saved, urllib3_log = downloader.MAX_RETRIES, logging.getLogger("urllib3")
    saved_level = urllib3_log.level
    downloader.MAX_RETRIES = retries
    urllib3_log.setLevel(logging.ERROR)  # its "Retrying …" warning per attempt; the failure is our one line
    try:
        yield
    finally:
        downloader.MAX_RETRIES = saved
        urllib3_log.setLevel(saved_level)


def dataset_not_found_error() -> type:
    """What `tfds.builder` raises for a name no builder is registered under."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.registered import DatasetNotFoundError
    require("TensorFlow Datasets", tfds.__version__, TESTED, "tensorflow-datasets")
    return DatasetNotFoundError
