"""Where examples come from: TFDS, the offline IDX mirror of Fashion-MNIST, or a folder of your own (folders.py).

All give the same thing: train and test `tf.data.Dataset`s of TFDS feature dicts (`image` uint8 [H, W, C],
`label` int64, or `text` string), the label names (from TFDS' info, which TFDS knows offline, or the class
folders' names, or a table's label values) and the kind of example (image, text, or a table's columns).
"""

import contextlib
import dataclasses
import hashlib
import logging
import os

import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import downloader as tfds_downloader

from pipelines.data import folders, idx, tables
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
    modality: str = "image"  # or "text", "table": what one example's features hold
    problem: str = "classification"  # or "regression" (a table's numeric label)
    table: tables.Table | None = None  # a table's columns, dropped rows and missing cells, for the report

    @property
    def report(self) -> dict:
        """What reading the data left out or filled in, for metrics.json (a table's dropped rows, missing cells)."""
        if self.table is None:
            return {}
        return {"table": {"problem": self.problem, "dropped_rows_without_label": self.table.dropped_rows,
                          "missing_cells": {c: n for c, n in self.table.missing.items() if n},
                          "numeric_columns": list(self.table.numeric),
                          "categorical_columns": list(self.table.categorical),
                          "input_names": self.table.inputs}}

    @property
    def num_classes(self) -> int:
        """The model's outputs: one per class, or the one value a regressor predicts."""
        return 1 if self.problem == "regression" else len(self.label_names)


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


TFDS_PREFIX = "tfds:"  # --dataset=tfds:NAME: any registered TFDS set of images or texts with a class label

# The settings that say where a data set is and how it is read; each applies to some kinds of data set only.
DATA_SETTINGS = ("data_source", "data_dir", "idx_dir", "test_split", "image_size", "color_mode", "label_column",
                 "problem")


def settings_that_apply(name: str, source: str, idx_dir: str) -> set[str]:
    """Of DATA_SETTINGS, those that change how `name` is read (a report lists these, not the others)."""
    if tables.is_table_dataset(name):
        return {"test_split", "label_column", "problem"}
    if folders.is_folder_dataset(name):
        return {"test_split", "image_size", "color_mode"}
    if uses_idx_mirror(name, source, idx_dir):
        return {"data_source", "idx_dir"}
    return {"data_source", "data_dir", "test_split", "image_size", "color_mode"}


def load_dataset(name: str, *, data_dir: str, idx_dir: str = idx.DEFAULT_IDX_DIR, source: str = "auto",
                 test_split: float = 0.2, image_size: tuple[int, int] | None = None,
                 color_mode: str = "auto", label_column: str | None = None, problem: str = "auto") -> DataSet:
    """Loads `name`'s train and test splits, in file order (shuffling is the input pipeline's job). `name` is a
    registered name, `tfds:NAME`, a folder, or a CSV file (label_column, problem: tables.py). A set without a test
    split gives the last `test_split` of its train split; image_size and color_mode reshape images (sets of
    varying image sizes need image_size)."""
    if folders.is_folder_dataset(name):
        return load_folder(name, test_split=test_split, image_size=image_size, color_mode=color_mode)
    if tables.is_table_dataset(name):
        table = tables.read_table(name, label_column, problem, test_split)
        train, test = (tf.data.Dataset.from_tensor_slices(table.splits[split]) for split in ("train", "test"))
        return DataSet(name, train, test, table.label_names, source=f"csv:{name}", modality="table",
                       problem=table.problem, table=table)
    tfds_name = name.removeprefix(TFDS_PREFIX)
    try:  # the builder's info (features, label names) is part of TFDS' code: no download, no cloud lookup
        builder = tfds.builder(tfds_name, data_dir=data_dir, try_gcs=False)
    except tfds.core.registered.DatasetNotFoundError:
        raise PipelineError(f"--dataset={name}: TFDS has no data set named {tfds_name!r} "
                            "(tfds.list_builders() names them)") from None
    kind = _example_kind(name, builder.info.features)
    label_names = tuple(builder.info.features["label"].names)
    if uses_idx_mirror(name, source, idx_dir):
        train, test = (tf.data.Dataset.from_tensor_slices(idx.load_idx_split(idx_dir, split))
                       for split in ("train", "test"))
        return DataSet(name, train, test, label_names, source=f"idx:{idx_dir}")
    known = list(builder.info.splits)  # empty until prepared: assume the usual train and test
    cut = round(100 * (1 - test_split))
    splits = ["train", "test"] if not known or "test" in known else [f"train[:{cut}%]", f"train[{cut}%:]"]
    try:
        with _few_download_retries():
            train, test = tfds.load(tfds_name, split=splits, data_dir=data_dir, try_gcs=False,
                                    download=True, shuffle_files=False)
    except Exception as e:  # TFDS raises many types offline (DNS, HTTP, checksum); all mean the same to a user.
        raise PipelineError(
            f"could not load TFDS data set {tfds_name!r} into {data_dir} ({type(e).__name__}): run once with network "
            f"access, or copy a prepared TFDS folder to --data_dir") from None
    train, test = (ds.map(lambda f: {kind: f[kind], "label": f["label"]}) for ds in (train, test))
    if kind == "image":
        shape = builder.info.features["image"].shape
        train, test = (_shaped_images(ds, name, shape, image_size, color_mode) for ds in (train, test))
    return DataSet(name, train, test, label_names, source=f"tfds:{data_dir}", modality=kind)


def _example_kind(name: str, features) -> str:
    """"image" or "text": what a TFDS set's examples hold beside their class label, or one line saying why not."""
    def feature(key):
        return features[key] if key in features else None
    if not isinstance(feature("label"), tfds.features.ClassLabel):
        raise PipelineError(f"--dataset={name} has no 'label' class feature (its features: {', '.join(features)}): "
                            "dlpipe learns classes of images or texts")
    if isinstance(feature("image"), tfds.features.Image):
        return "image"
    if isinstance(feature("text"), tfds.features.Text):
        return "text"
    raise PipelineError(f"--dataset={name} has neither an 'image' nor a 'text' feature (its features: "
                        f"{', '.join(features)}): dlpipe learns classes of images or texts")


def _shaped_images(ds: tf.data.Dataset, name: str, shape, image_size, color_mode: str) -> tf.data.Dataset:
    """Images brought to one size and colour, as folders' are (aspect kept, padded with black)."""
    height, width, channels = shape
    if image_size is None and (height is None or width is None):
        raise PipelineError(f"--dataset={name} has images of varying size: give --image_size=H,W")
    if image_size is None and color_mode == "auto":
        return ds

    def shaped(features):
        image = features["image"]
        if color_mode == "grayscale" and channels != 1:
            image = tf.image.rgb_to_grayscale(image)
        elif color_mode == "rgb" and channels == 1:
            image = tf.image.grayscale_to_rgb(image)
        if image_size is not None:
            image = tf.cast(tf.round(tf.image.resize_with_pad(image, *image_size)), tf.uint8)
        return {"image": image, "label": features["label"]}
    return ds.map(shaped, num_parallel_calls=tf.data.AUTOTUNE)


def load_folder(root: str, *, test_split: float, image_size, color_mode: str) -> DataSet:
    folder = folders.scan(root, test_split)
    splits = (folders.read_texts(folder) if folder.modality == "text"
              else folders.read_images(folder, image_size, color_mode))
    train, test = (tf.data.Dataset.from_tensor_slices(splits[split]) for split in ("train", "test"))
    return DataSet(root, train, test, folder.classes, source=f"folder:{folder.root}", modality=folder.modality)


def identity(name: str) -> str | None:
    """For a folder or a CSV file, a hash of its contents (changed data is another data set); None for a name."""
    if folders.is_folder_dataset(name):
        return folders.identity(name)
    if tables.is_table_dataset(name) and os.path.isfile(name):
        with open(name, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    return None
