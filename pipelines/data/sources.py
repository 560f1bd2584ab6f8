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
from typing import Callable, Protocol

import tensorflow as tf

from pipelines.artifacts import file_sha256
from pipelines.config import DEFAULTS
from pipelines.data import folders, hugging_face, idx, sequences, tables
from pipelines.data.sequences import Sequences
from pipelines.data.series import Series, Windows, prepare as prepare_series
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
                          "text_columns": list(self.table.text),
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


@dataclasses.dataclass(frozen=True)
class Request:
    """A data set as a run asks for it: its name, every data setting (DATA_SETTINGS, by the flag's name and with its
    RunConfig default), and what the run needs of it: whether a task that reads sequences reads a table's rows as
    series, whether the family needs class labels, whether it draws the images (a generator: folders.prepare)."""
    name: str
    data_dir: str = DEFAULTS["data_dir"]
    idx_dir: str = DEFAULTS["idx_dir"]
    data_source: str = DEFAULTS["data_source"]
    test_split: float = DEFAULTS["test_split"]
    image_size: tuple[int, int] | None = DEFAULTS["image_size"]
    color_mode: str = DEFAULTS["color_mode"]
    label_column: str | None = DEFAULTS["label_column"]
    problem: str = DEFAULTS["problem"]
    id_column: tuple[str, ...] = DEFAULTS["id_column"]
    ignore_columns: tuple[str, ...] = DEFAULTS["ignore_columns"]
    keep_columns: tuple[str, ...] = DEFAULTS["keep_columns"]
    time_column: str | None = DEFAULTS["time_column"]
    series_id_column: str | None = DEFAULTS["series_id_column"]
    horizon: int = DEFAULTS["horizon"]
    window: int | None = DEFAULTS["window"]
    season: int | None = DEFAULTS["season"]
    validation_split: float = DEFAULTS["validation_split"]
    test_dataset: str | None = DEFAULTS["test_dataset"]
    series_scaling: str = "each"  # a run's is its task's (Task.series_scaling)
    cache_dir: str | None = None  # where folders and tables are prepared (RunConfig.data_cache_dir)
    rows_as_sequences: bool = False
    padding: str = "last"  # what a task reads past a shorter sequence's end (Task.padding, sequences.PADDINGS)
    labeled: bool = True
    generative: bool = False

    @property
    def table(self) -> bool:
        return tables.is_table_dataset(self.name)

    @property
    def prepared(self) -> str:
        """Where a folder or a table is prepared once."""
        if self.cache_dir is None:
            raise ValueError("a folder or a table is read through the prepared cache: give cache_dir")
        return self.cache_dir


@dataclasses.dataclass(frozen=True)
class Reader:
    """One input format: what it recognises, how it loads (streamed into the cache where it prepares one), the data
    settings it reads (the report lists these; any other given on the command line is refused), and what its
    content is, as one hash (None: a registered name, whose content TFDS fixes). The first reader in READERS that
    recognises a request reads it: adding a format (Parquet, a Hugging Face data set) is one record there."""
    name: str
    recognises: Callable[[Request], bool]
    load: Callable[[Request], DataSet]
    settings: frozenset[str]
    fingerprint: Callable[[str], str | None] = lambda name: None


def _long_sequences(r: Request) -> DataSet:
    """One row per step of series to classify (sequences.py)."""
    return load_sequences(r.name, long=True, test_split=r.test_split, label_column=r.label_column,
                          layout={"series_id_column": r.series_id_column, "time_column": r.time_column},
                          ignore_columns=r.ignore_columns, test_dataset=r.test_dataset, scaling=r.series_scaling,
                          padding=r.padding)


def _series(r: Request) -> DataSet:
    """A CSV with a time column: a series to forecast (series.py)."""
    if r.test_dataset:
        raise PipelineError("--test_dataset: a forecast's test period is the end of each series (--test_split): "
                            "drop it")
    return load_series(r.name, test_split=r.test_split, label_column=r.label_column, ignore_columns=r.ignore_columns,
                       time_column=r.time_column, series_id_column=r.series_id_column, window=r.window,
                       horizon=r.horizon, season=r.season, validation_split=r.validation_split)


def _table_file_hash(name: str) -> str | None:
    return file_sha256(name) if os.path.isfile(name) else None


def _folder(r: Request) -> DataSet:
    return load_folder(r.name, test_split=r.test_split, image_size=r.image_size, color_mode=r.color_mode,
                       cache_dir=r.prepared, labeled=r.labeled, generative=r.generative)


def _table(r: Request) -> DataSet:
    naming = tables.Naming(r.label_column, r.id_column, r.ignore_columns, r.keep_columns)
    return load_table(r.name, naming=naming, problem=r.problem, test_split=r.test_split, cache_dir=r.prepared)


def _hugging_face(r: Request) -> DataSet:
    """A Hugging Face data set (hugging_face.py), written once into the cache as a folder or a table and read as
    one: its own splits kept."""
    path, kind, label = hugging_face.prepare(r.name, r.label_column, r.prepared)
    if kind == "table":
        return _table(dataclasses.replace(r, name=path, label_column=label))
    return dataclasses.replace(_folder(dataclasses.replace(r, name=path)), name=r.name)


def _tfds(r: Request) -> DataSet:
    return load_tfds(r.name, data_dir=r.data_dir, idx_dir=r.idx_dir, source=r.data_source, test_split=r.test_split,
                     image_size=r.image_size, color_mode=r.color_mode)


READERS: tuple[Reader, ...] = (
    Reader("hugging face", lambda r: hugging_face.is_hugging_face(r.name), _hugging_face,
           frozenset({"test_split", "image_size", "color_mode", "label_column", "problem", "id_column",
                      "ignore_columns", "keep_columns"}), hugging_face.fingerprint),
    Reader("folder", lambda r: folders.is_folder_dataset(r.name), _folder,
           frozenset({"test_split", "image_size", "color_mode"}), folders.content_hash),
    Reader("long sequences", lambda r: r.table and r.rows_as_sequences and bool(r.time_column) and (
        r.problem == "classification" or sequences.is_long_classification(r.name, r.label_column, r.problem)),
        _long_sequences, frozenset({"test_split", "label_column", "problem", "ignore_columns", "time_column",
                                    "series_id_column", "test_dataset", "series_scaling"}), _table_file_hash),
    Reader("series", lambda r: r.table and bool(r.time_column), _series,
           frozenset({"test_split", "label_column", "ignore_columns", "time_column", "series_id_column", "horizon",
                      "window", "season"}), _table_file_hash),
    # A header-less file of numbers (the UCR/UEA archive's layout) is sequences to any task, dense too: read as a
    # table, its first row would be taken for column names.
    Reader("wide sequences", lambda r: r.table and (r.rows_as_sequences or sequences.is_archive_file(r.name)),
           lambda r: load_sequences(r.name, test_split=r.test_split, label_column=r.label_column,
                                    test_dataset=r.test_dataset, scaling=r.series_scaling, padding=r.padding),
           frozenset({"test_split", "label_column", "test_dataset", "series_scaling"}), _table_file_hash),
    Reader("table", lambda r: r.table, _table,
           frozenset({"test_split", "label_column", "problem", "id_column", "ignore_columns", "keep_columns"}),
           _table_file_hash),
    Reader("offline Fashion-MNIST", lambda r: uses_idx_mirror(r.name, r.data_source, r.idx_dir), _tfds,
           frozenset({"data_source", "idx_dir"})),
    Reader("tfds", lambda r: r.name in DATASETS or r.name.startswith(TFDS_PREFIX), _tfds,
           frozenset({"data_source", "data_dir", "test_split", "image_size", "color_mode"})),
)


def reader_of(request: Request) -> Reader:
    """The first reader that recognises the request, or one line naming what a data set may be."""
    found = next((reader for reader in READERS if reader.recognises(request)), None)
    if found is None:
        raise PipelineError(f"--dataset={request.name}: no reader recognises it: give {', '.join(DATASETS)}, "
                            "tfds:NAME, hf:<a save_to_disk folder or a cached Hub name>, a folder or a .csv, .tsv, "
                            ".parquet, .feather or .arrow file")
    return found


def known(name: str) -> bool:
    """Whether a reader reads `name`, and the file or folder it names exists (a registered name need not)."""
    recognised = any(reader.recognises(Request(name)) for reader in READERS)
    return recognised and (name in DATASETS or name.startswith(TFDS_PREFIX) or hugging_face.is_hugging_face(name)
                           or os.path.exists(name))


def settings_that_apply(request: Request) -> frozenset[str]:
    """Of DATA_SETTINGS, those that change how the request's data set is read (a report lists these, not the
    others)."""
    return reader_of(request).settings


# Settings that say where data live, not how they are read: given to a data set that does not read them, they are
# harmless (a script's shared --data_dir), so only the others are refused when they do not apply.
WHERE_SETTINGS = frozenset({"data_source", "data_dir", "idx_dir"})


def settings_given_in_vain(request: Request, given: set[str]) -> list[str]:
    """Of the data settings `given` on the command line, those that would change nothing for the request: each
    would be silently ignored (--horizon without --time_column trained a plain regression). A file whose series
    are classified or forecast is known once it is read: the settings of either apply."""
    applies = set(settings_that_apply(request))
    if request.table and request.rows_as_sequences and request.time_column:
        applies |= settings_that_apply(dataclasses.replace(request, problem="classification"))
        applies |= settings_that_apply(dataclasses.replace(request, rows_as_sequences=False))
    return sorted(given & set(DATA_SETTINGS) - applies - WHERE_SETTINGS)


def load_dataset(name: str, **settings) -> DataSet:
    """`name`'s train and test splits, in file order (shuffling is the input pipeline's job), by the first reader
    that recognises it (READERS): a registered name, `tfds:NAME`, a folder, or a CSV file (a table, a time series,
    or series to classify, one per row or one row per step), folders and tables prepared into `cache_dir` once.
    `settings`: Request's fields."""
    return load(Request(name, **settings))


def load(request: Request) -> DataSet:
    """The requested data set, read by the first reader that recognises it."""
    return reader_of(request).load(request)


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
    """A folder's or a file's content as one hash (changed data is another data set); None for a registered name."""
    return reader_of(Request(name)).fingerprint(name)
