"""Where examples come from: TFDS, the offline IDX mirror of Fashion-MNIST, or a folder of your own (folders.py).

All give the same thing: train and test `tf.data.Dataset`s of TFDS feature dicts (`image` uint8 [H, W, C],
`label` int64, or `text` string), the label names (from TFDS' info, which TFDS knows offline, or the class
folders' names) and the kind of example (image or text).
"""

import contextlib
import dataclasses
import logging
import os

import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import downloader as tfds_downloader

from pipelines.data import folders, idx
from pipelines.errors import PipelineError

# Registered TFDS data sets the tasks know how to read; the offline mirror serves the first.
DATASETS = ("fashion_mnist", "mnist", "cifar10", "imdb_reviews")
SOURCES = ("auto", "idx", "tfds")


@dataclasses.dataclass(frozen=True)
class DataSet:
    """One data set's splits, as TFDS feature dicts, and what its labels mean."""
    name: str
    train: tf.data.Dataset
    test: tf.data.Dataset
    label_names: tuple[str, ...]
    source: str
    modality: str = "image"  # or "text": what one example's features hold

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def uses_idx_mirror(name: str, source: str, idx_dir: str) -> bool:
    """`auto` reads Fashion-MNIST from the offline mirror when its folder exists, everything else from TFDS."""
    if source == "idx":
        return True
    return source == "auto" and name == "fashion_mnist" and os.path.isdir(idx_dir)


@contextlib.contextmanager
def _few_download_retries(retries: int = 1):
    """TFDS retries a failed request 10 times with exponential back-off: offline, that is 3½ minutes before the
    error (measured here). Its only knob is a module constant, read per request; a retry or two is enough for a
    flaky network, and offline fails in seconds."""
    saved, urllib3_log = tfds_downloader.MAX_RETRIES, logging.getLogger("urllib3")
    saved_level = urllib3_log.level
    tfds_downloader.MAX_RETRIES = retries
    urllib3_log.setLevel(logging.ERROR)  # its "Retrying …" warning per attempt; the failure is our one line
    try:
        yield
    finally:
        tfds_downloader.MAX_RETRIES = saved
        urllib3_log.setLevel(saved_level)


def load_dataset(name: str, *, data_dir: str, idx_dir: str = idx.DEFAULT_IDX_DIR, source: str = "auto",
                 test_split: float = 0.2, image_size: tuple[int, int] | None = None,
                 color_mode: str = "auto") -> DataSet:
    """Loads `name`'s train and test splits, in file order (shuffling is the input pipeline's job). `name` is a
    registered TFDS name or a folder; test_split, image_size and color_mode apply to folders."""
    if folders.is_folder_dataset(name):
        return load_folder(name, test_split=test_split, image_size=image_size, color_mode=color_mode)
    # The builder's info (features, label names) is part of TFDS' code: no download, no cloud lookup.
    info = tfds.builder(name, data_dir=data_dir, try_gcs=False).info
    label_names = tuple(info.features["label"].names)
    modality = "text" if "text" in info.features else "image"
    if uses_idx_mirror(name, source, idx_dir):
        train, test = (tf.data.Dataset.from_tensor_slices(idx.load_idx_split(idx_dir, split))
                       for split in ("train", "test"))
        return DataSet(name, train, test, label_names, source=f"idx:{idx_dir}")
    try:
        with _few_download_retries():
            train, test = tfds.load(name, split=["train", "test"], data_dir=data_dir, try_gcs=False,
                                    download=True, shuffle_files=False)
    except Exception as e:  # TFDS raises many types offline (DNS, HTTP, checksum); all mean the same to a user.
        raise PipelineError(
            f"could not load TFDS data set {name!r} into {data_dir} ({type(e).__name__}): run once with network "
            f"access, or copy a prepared TFDS folder to --data_dir") from None
    return DataSet(name, train, test, label_names, source=f"tfds:{data_dir}", modality=modality)


def load_folder(root: str, *, test_split: float, image_size, color_mode: str) -> DataSet:
    folder = folders.scan(root, test_split)
    splits = (folders.read_texts(folder) if folder.modality == "text"
              else folders.read_images(folder, image_size, color_mode))
    train, test = (tf.data.Dataset.from_tensor_slices(splits[split]) for split in ("train", "test"))
    return DataSet(root, train, test, folder.classes, source=f"folder:{folder.root}", modality=folder.modality)


def identity(name: str) -> str | None:
    """For a folder, a hash of its files (a changed folder is another data set); None for a registered name."""
    return folders.identity(name) if folders.is_folder_dataset(name) else None
