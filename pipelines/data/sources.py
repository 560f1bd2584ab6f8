"""Where examples come from: TFDS, the offline IDX mirror of Fashion-MNIST, a folder of your own (folders.py) or a
CSV table (tables.py).

All give the same thing: train and test `Examples` (how many there are, and a tf.data.Dataset of any range of them,
as TFDS feature dicts: `image` uint8 [H, W, C], `label` int64, or `text` string, or a table's columns), the label
names (from TFDS' info, which TFDS knows offline, or the class folders' names, or a table's label values) and the
kind of example (image, text, or a table's columns). Folders and tables are read once into the prepared-example
cache (cache.py) and streamed from it; TFDS streams its own prepared files; the IDX mirror is 47 MB in memory.
"""

import dataclasses
import os
import re
from typing import Protocol

import tensorflow as tf

from pipelines.data import folders, idx, sequences, tables
from pipelines.data.sequences import Sequences
from pipelines.data.series import Series, Windows, prepare as prepare_series
from pipelines.artifacts import file_sha256
from pipelines.errors import PipelineError
from pipelines.upstream.tfds import dataset_not_found_error, few_download_retries

# Registered TFDS data sets the tasks know how to read; the offline mirror serves the first.
DATASETS = ("fashion_mnist", "mnist", "cifar10", "imdb_reviews")
SOURCES = ("auto", "idx", "tfds")


class Examples(Protocol):
    """One split's examples: how many, and any range of them as feature dicts (cache.Split is one: a prepared
    cache's shards)."""
    count: int

    def read(self, start: int = 0, stop: int | None = None, shuffle_seed: int | None = None,
             worker: tuple[int, int] = (0, 1)) -> tf.data.Dataset: ...


@dataclasses.dataclass(frozen=True)
class Streamed:
    """A split behind a tf.data.Dataset read in order (TFDS' files, arrays in memory)."""
    dataset: tf.data.Dataset
    count: int

    def read(self, start: int = 0, stop: int | None = None, shuffle_seed: int | None = None,
             worker: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
        """Examples [start, stop); a bounded shuffle buffer after it mixes them (`shuffle_seed` has no pieces to
        reorder here). `worker`: every count-th example from the index-th, a disjoint share for each worker."""
        ds = self.dataset.skip(start).take((self.count if stop is None else stop) - start)
        return ds.shard(worker[1], worker[0]) if worker[1] > 1 else ds


@dataclasses.dataclass(frozen=True)
class TableRows:
    """A prepared table's split, its columns gathered under "table" (what a task's to_example reads)."""
    split: Examples

    @property
    def count(self) -> int:
        return self.split.count

    def read(self, start: int = 0, stop: int | None = None, shuffle_seed: int | None = None,
             worker: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
        return self.split.read(start, stop, shuffle_seed, worker).map(
            lambda f: {"table": {k: v for k, v in f.items() if k != "label"}, "label": f["label"]})


def streamed(ds: tf.data.Dataset) -> Streamed:
    count = int(ds.cardinality())
    return Streamed(ds, count if count >= 0 else int(ds.reduce(0, lambda n, _: n + 1)))


@dataclasses.dataclass(frozen=True)
class DataSet:
    """One data set's splits and what its labels mean."""
    name: str
    train: Examples
    test: Examples
    label_names: tuple[str, ...]
    source: str
    modality: str = "image"  # or "text", "table", "series": what one example's features hold
    problem: str = "classification"  # or "regression" (a table's numeric label), "forecast" (a time series)
    table: tables.Table | None = None  # a table's columns, dropped rows and missing cells, for the report
    series: Series | None = None  # a time series' values, periods and windows
    sequences: Sequences | None = None  # sequences to classify, one per row of a wide file
    # Its own validation split, where carving one from the train split's end would not do (a series' windows
    # are split by time); None: the input pipeline carves it.
    validation: Examples | None = None

    @property
    def report(self) -> dict:
        """What reading the data left out or filled in, for metrics.json (a table's dropped rows, missing cells)."""
        if self.table is None:
            return {}
        return {"table": {"problem": self.problem, "dropped_rows_without_label": self.table.dropped_rows,
                          "missing_cells": {c: n for c, n in self.table.missing.items() if n},
                          "columns": self.table.usage(), "id_columns": list(self.table.ids),
                          "numeric_columns": list(self.table.numeric),
                          "categorical_columns": list(self.table.categorical),
                          "input_names": self.table.inputs}}

    @property
    def num_classes(self) -> int:
        """The model's outputs: one per class, the one value a regressor predicts, or a forecast's steps."""
        if self.series is not None:
            return self.series.horizon
        return 1 if self.problem == "regression" else len(self.label_names)

    @property
    def builder_args(self) -> dict:
        """Builder arguments the data themselves decide (a series' scaling, learned on its train periods)."""
        if self.series is not None:
            return {"series_scale": self.series.scale()}
        return {"series_scale": self.sequences.scale()} if self.sequences is not None else {}


def uses_idx_mirror(name: str, source: str, idx_dir: str) -> bool:
    """`auto` reads Fashion-MNIST from the offline mirror when its folder exists, everything else from TFDS."""
    if source == "idx":
        return True
    return source == "auto" and name == "fashion_mnist" and os.path.isdir(idx_dir)


TFDS_PREFIX = "tfds:"  # --dataset=tfds:NAME: any registered TFDS set of images or texts with a class label

# The settings that say where a data set is and how it is read; each applies to some kinds of data set only.
DATA_SETTINGS = ("data_source", "data_dir", "idx_dir", "test_split", "image_size", "color_mode", "label_column",
                 "problem", "id_column", "ignore_columns", "keep_columns", "time_column", "series_id_column",
                 "horizon", "window", "season", "test_dataset", "series_scaling")


def settings_that_apply(name: str, source: str, idx_dir: str, time_column: str | None = None,
                        rows_as_sequences: bool = False, problem: str = "") -> set[str]:
    """Of DATA_SETTINGS, those that change how `name` is read (a report lists these, not the others)."""
    if tables.is_table_dataset(name) and rows_as_sequences and not time_column:
        return {"test_split", "label_column", "test_dataset", "series_scaling"}
    if tables.is_table_dataset(name) and rows_as_sequences and problem == "classification":
        return {"test_split", "label_column", "ignore_columns", "time_column", "series_id_column", "test_dataset",
                "series_scaling"}
    if tables.is_table_dataset(name) and time_column:
        return {"test_split", "label_column", "ignore_columns", "time_column", "series_id_column", "horizon",
                "window", "season"}
    if tables.is_table_dataset(name):
        return {"test_split", "label_column", "problem", "id_column", "ignore_columns", "keep_columns"}
    if folders.is_folder_dataset(name):
        return {"test_split", "image_size", "color_mode"}
    if uses_idx_mirror(name, source, idx_dir):
        return {"data_source", "idx_dir"}
    return {"data_source", "data_dir", "test_split", "image_size", "color_mode"}


# Settings that say where data live, not how they are read: given to a data set that does not read them, they are
# harmless (a script's shared --data_dir), so only the others are refused when they do not apply.
WHERE_SETTINGS = frozenset({"data_source", "data_dir", "idx_dir"})


def settings_given_in_vain(name: str, given: set[str], *, source: str, idx_dir: str, time_column: str | None,
                           rows_as_sequences: bool) -> list[str]:
    """Of the data settings `given` on the command line, those that would change nothing for `name`: each would
    be silently ignored (--horizon without --time_column trained a plain regression)."""
    applies = settings_that_apply(name, source, idx_dir, time_column, rows_as_sequences)
    if tables.is_table_dataset(name) and rows_as_sequences and time_column:  # classified or forecast: known later
        applies |= settings_that_apply(name, source, idx_dir, time_column, rows_as_sequences, "classification")
    return sorted(given & set(DATA_SETTINGS) - applies - WHERE_SETTINGS)


def load_dataset(name: str, *, data_dir: str, idx_dir: str = idx.DEFAULT_IDX_DIR, source: str = "auto",
                 test_split: float = 0.2, image_size: tuple[int, int] | None = None,
                 color_mode: str = "auto", label_column: str | None = None, problem: str = "auto",
                 cache_dir: str | None = None, id_column: tuple[str, ...] = (), ignore_columns: tuple[str, ...] = (),
                 keep_columns: tuple[str, ...] = (), series_settings: dict | None = None,
                 sequence_settings: dict | None = None, labeled: bool = True, generative: bool = False) -> DataSet:
    """Loads `name`'s train and test splits, in file order (shuffling is the input pipeline's job). `name` is a
    registered name, `tfds:NAME`, a folder, or a CSV file (label_column, problem and the columns named: tables.py;
    with `series_settings`, a time series: series.py; with `sequence_settings`, one series to classify per row:
    sequences.py), folders and tables prepared into `cache_dir` once (`labeled` and `generative`: folders.prepare).
    A set
    without a test split gives the last `test_split` of its train split; image_size and color_mode reshape images
    (sets of varying image sizes need image_size)."""
    if folders.is_folder_dataset(name) or tables.is_table_dataset(name):
        if cache_dir is None:
            raise ValueError("a folder or a table is read through the prepared cache: give cache_dir")
        if folders.is_folder_dataset(name):
            return load_folder(name, test_split=test_split, image_size=image_size, color_mode=color_mode,
                               cache_dir=cache_dir, labeled=labeled, generative=generative)
        if series_settings and sequence_settings is not None and sequences.is_long_classification(
                name, label_column, problem):  # one row per step of series to classify (sequences.py)
            layout = {k: series_settings[k] for k in ("series_id_column", "time_column")}
            return load_sequences(name, long=True, test_split=test_split, label_column=label_column, layout=layout,
                                  ignore_columns=tuple(ignore_columns), **sequence_settings)
        if series_settings:  # a CSV with a time column: a series to forecast (series.py)
            if (sequence_settings or {}).get("test_dataset"):
                raise PipelineError("--test_dataset: a forecast's test period is the end of each series "
                                    "(--test_split): drop it")
            return load_series(name, test_split=test_split, label_column=label_column,
                               ignore_columns=tuple(ignore_columns), **series_settings)
        if sequence_settings is not None:  # a wide file of series, read by a task that reads sequences
            return load_sequences(name, test_split=test_split, label_column=label_column, **sequence_settings)
        naming = tables.Naming(label_column, tuple(id_column), tuple(ignore_columns), tuple(keep_columns))
        return load_table(name, naming=naming, problem=problem, test_split=test_split, cache_dir=cache_dir)
    return load_tfds(name, data_dir=data_dir, idx_dir=idx_dir, source=source, test_split=test_split,
                     image_size=image_size, color_mode=color_mode)


def load_tfds(name: str, *, data_dir: str, idx_dir: str, source: str, test_split: float, image_size,
              color_mode: str) -> DataSet:
    """A registered TFDS set (or the offline IDX mirror of Fashion-MNIST), streamed from TFDS' own files."""
    tfds_name = name.removeprefix(TFDS_PREFIX)
    if not re.fullmatch(r"[a-z0-9_]+(/[a-z0-9_.]+)*(:[0-9.]+)?", tfds_name):
        raise PipelineError(f"--dataset={name}: {tfds_name!r} is not a TFDS data set name (tfds.list_builders() "
                            "names them)")
    import tensorflow_datasets as tfds  # only TFDS sets need it, and it takes half a second to import
    try:  # the builder's info (features, label names) is part of TFDS' code: no download, no cloud lookup
        builder = tfds.builder(tfds_name, data_dir=data_dir, try_gcs=False)
    except (dataset_not_found_error(), ValueError):
        raise PipelineError(f"--dataset={name}: TFDS has no data set named {tfds_name!r} "
                            "(tfds.list_builders() names them)") from None
    kind = _example_kind(name, builder.info.features)
    label_names = tuple(builder.info.features["label"].names)
    if uses_idx_mirror(name, source, idx_dir):
        train, test = (streamed(tf.data.Dataset.from_tensor_slices(idx.load_idx_split(idx_dir, split)))
                       for split in ("train", "test"))
        return DataSet(name, train, test, label_names, source=f"idx:{idx_dir}")
    known = list(builder.info.splits)  # empty until prepared: assume the usual train and test
    cut = round(100 * (1 - test_split))
    splits = ["train", "test"] if not known or "test" in known else [f"train[:{cut}%]", f"train[{cut}%:]"]
    try:
        with few_download_retries():
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
    return DataSet(name, streamed(train), streamed(test), label_names, source=f"tfds:{data_dir}", modality=kind)


def _example_kind(name: str, features) -> str:
    """"image" or "text": what a TFDS set's examples hold beside their class label, or one line saying why not."""
    import tensorflow_datasets as tfds

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


def load_table(path: str, *, naming: tables.Naming, problem: str, test_split: float, cache_dir: str) -> DataSet:
    table, splits = tables.prepare(path, naming=naming, problem=problem, test_split=test_split, cache_dir=cache_dir,
                                   data_hash=data_hash(path))
    return DataSet(path, TableRows(splits["train"]), TableRows(splits["test"]), table.label_names,
                   source=f"csv:{path}", modality="table", problem=table.problem, table=table)


def load_series(path: str, **settings) -> DataSet:
    """A CSV time series (series.py), its windows built on demand from the series in memory."""
    read = prepare_series(path, **settings)
    return DataSet(path, Windows(read, "train"), Windows(read, "test"), (), source=f"csv:{path}",
                   modality="series", problem="forecast", series=read, validation=Windows(read, "validation"))


def load_sequences(path: str, long: bool = False, **settings) -> DataSet:
    """A wide file of series to classify, or a long one (sequences.py), held in memory."""
    read = (sequences.prepare_long if long else sequences.prepare)(path, **settings)
    return DataSet(path, streamed(sequences.examples(*read.train)), streamed(sequences.examples(*read.test)),
                   read.label_names, source=f"csv:{path}", modality="series", sequences=read)


def load_folder(root: str, *, test_split: float, image_size, color_mode: str, cache_dir: str, labeled: bool = True,
                generative: bool = False) -> DataSet:
    folder, splits, _ = folders.prepare(root, test_split=test_split, image_size=image_size, color_mode=color_mode,
                                        cache_dir=cache_dir, labeled=labeled, generative=generative)
    return DataSet(root, splits["train"], splits["test"], folder.classes, source=f"folder:{folder.root}",
                   modality=folder.modality)


def data_hash(name: str) -> str | None:
    """For a folder or a CSV file, a hash of its contents (changed data is another data set); None for a name."""
    if folders.is_folder_dataset(name):
        return folders.content_hash(name)
    if tables.is_table_dataset(name) and os.path.isfile(name):
        return file_sha256(name)
    return None
