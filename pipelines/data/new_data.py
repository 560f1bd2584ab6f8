"""New data for a trained model, read as its training data was: a table's rows (tables.new_rows), images (a file,
a folder searched recursively, or a glob) opened by images.py at the model's size and colour, or texts (.txt
files, or a CSV column). Each source yields batches of (keys, inputs, truth): what names each example in the
predictions file (a table's id columns, a file's path), the model's inputs in the pipeline's form (what a task's
to_example gives), and the true labels when the data hold them (a table's label column, class subfolders named
as the model's classes), else None.

Memory is bounded by the batch: rows are streamed, files listed by path and decoded a batch at a time on every
core. A file that cannot be read is named in `failures` and left out; the others are still predicted.
"""

import concurrent.futures
import csv
import dataclasses
import glob
import hashlib
import os
from typing import Iterator

import numpy as np

from pipelines.data import folders, images, sequences, series, tables
from pipelines.errors import PipelineError

NewBatch = tuple[dict[str, list], dict[str, np.ndarray], list | None]


@dataclasses.dataclass(frozen=True)
class Reads:
    """What the trained model reads: the kind of example and its input's name, an image's (H, W, C), a table's
    columns, and its class names (to find class subfolders)."""
    modality: str                          # "image", "text" or "table"
    input_name: str
    image_shape: tuple[int, int, int] | None = None
    table: tables.NewColumns | None = None
    label_names: tuple[str, ...] = ()
    series: dict | None = None             # a forecaster's: its time, series id and numeric columns, its window;
    #                                        a sequence classifier's: its label column and steps


def _files(path: str, suffixes: tuple[str, ...]) -> list[str]:
    """The files `path` names with these suffixes: itself, every one under a folder (recursively), or a glob's."""
    if os.path.isdir(path):
        found, dirs_note = list(_walked(path)), f"{path} (searched recursively)"
    elif any(ch in path for ch in "*?["):
        found, dirs_note = glob.glob(path, recursive=True), f"the pattern {path}"
    elif os.path.exists(path):
        found, dirs_note = [path], path
    else:
        raise PipelineError(f"{path} does not exist: give a file, a folder or a glob pattern of new examples")
    chosen = sorted(p for p in found if p.lower().endswith(suffixes) and not os.path.isdir(p))
    if not chosen:
        raise PipelineError(f"{dirs_note} holds no {' or '.join(suffixes)} files: give the model's kind of example")
    return chosen


def _walked(root: str) -> Iterator[str]:
    """Every file under `root` but hidden ones, linked folders followed, each folder entered once: a link to a folder
    already searched (a loop back up, a second link to the same place) adds nothing."""
    entered = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        try:
            facts = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (facts.st_dev, facts.st_ino) in entered:
            dirs[:] = []
            continue
        entered.add((facts.st_dev, facts.st_ino))
        dirs.sort()
        yield from (os.path.join(folder, name) for name in sorted(names) if not name.startswith("."))


def _truth(paths: list[str], root: str, names: tuple[str, ...]) -> list | None:
    """Each file's class, when every file sits in a subfolder of `root` named for one of the model's classes."""
    if not os.path.isdir(root) or not names:
        return None
    classes = [os.path.relpath(p, root).split(os.sep)[0] for p in paths]
    nested = all(os.sep in os.path.relpath(p, root) for p in paths)
    return classes if nested and all(c in names for c in classes) else None


class ImageFiles:
    """Images, decoded a batch at a time at the model's size and colour (images.pixels: EXIF turned, aspect kept,
    padded with black, as at training)."""

    def __init__(self, path: str, reads: Reads):
        self.paths = _files(path, images.SUFFIXES)
        self.truth = _truth(self.paths, path, reads.label_names)
        self.reads, self.failures = reads, []
        self.keys = ("path",)

    @property
    def count(self) -> int:
        return len(self.paths)

    def batches(self, size: int) -> Iterator[NewBatch]:
        height, width, channels = self.reads.image_shape

        def decode(path):
            try:
                return images.pixels(path, (height, width), channels == 1)
            except images.ImageError as e:
                return str(e)
        with concurrent.futures.ThreadPoolExecutor(folders.threads()) as pool:
            for begin in range(0, len(self.paths), size):
                paths = self.paths[begin:begin + size]
                decoded = list(pool.map(decode, paths))
                good = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
                self.failures += [d for d in decoded if isinstance(d, str)]
                if not good:
                    continue
                pixels = np.stack([decoded[i] for i in good]).astype(np.float32)
                truth = [self.truth[begin + i] for i in good] if self.truth else None
                yield {"path": [paths[i] for i in good]}, {self.reads.input_name: pixels}, truth


class TextFiles:
    """Texts: each .txt file whole (UTF-8), or each row's cell of a CSV's text column (`text_column`)."""

    def __init__(self, path: str, reads: Reads, text_column: str = "text", label_column: str = "label"):
        self.reads, self.failures = reads, []
        self.csv = path.lower().endswith(".csv") and os.path.isfile(path)
        self.path, self.text_column, self.label_column = path, text_column, label_column
        if self.csv:
            with open(path, newline="", encoding="utf-8-sig") as f:
                header = next(csv.reader(f), [])
            if text_column not in header:
                raise PipelineError(f"{path} has no column {text_column!r} of texts (its columns: "
                                    f"{', '.join(header) or 'none'}): name it with --text_column")
            self.keys, self.paths = ("row",), None
        else:
            self.paths = _files(path, folders.TEXT_SUFFIXES)
            self.truth = _truth(self.paths, path, reads.label_names)
            self.keys = ("path",)

    @property
    def count(self) -> int | None:
        return None if self.csv else len(self.paths)

    def batches(self, size: int) -> Iterator[NewBatch]:
        return self._rows(size) if self.csv else self._files(size)

    def _files(self, size: int) -> Iterator[NewBatch]:
        for begin in range(0, len(self.paths), size):
            paths, texts, truth = [], [], []
            for i, path in enumerate(self.paths[begin:begin + size]):
                try:
                    with open(path, encoding="utf-8") as f:
                        texts.append(f.read())
                except (OSError, UnicodeDecodeError) as e:
                    self.failures.append(f"cannot read text file {path} ({getattr(e, 'strerror', None) or e})")
                    continue
                paths.append(path)
                truth.append(self.truth[begin + i] if self.truth else None)
            if paths:
                yield {"path": paths}, {self.reads.input_name: np.array(texts, object)}, truth if self.truth else None

    def _rows(self, size: int) -> Iterator[NewBatch]:
        with open(self.path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            labelled = self.label_column in (reader.fieldnames or [])
            batch = []
            for number, row in enumerate(reader, 1):
                batch.append((number, row))
                if len(batch) == size:
                    yield self._text_batch(batch, labelled)
                    batch = []
            if batch:
                yield self._text_batch(batch, labelled)

    def _text_batch(self, batch, labelled: bool) -> NewBatch:
        texts = np.array([row[self.text_column] or "" for _, row in batch], object)
        truth = [row[self.label_column] or None for _, row in batch] if labelled else None
        return {"row": [n for n, _ in batch]}, {self.reads.input_name: texts}, truth


class TableFile:
    """A table's rows (CSV, TSV, Parquet, Feather or Arrow), matched to the model's columns by name
    (tables.new_rows)."""

    def __init__(self, path: str, reads: Reads):
        if not os.path.isfile(path):
            raise PipelineError(f"{path} is not a file: give the CSV or Parquet file of new rows")
        self.path, self.reads, self.failures = path, reads, []
        self.keys = tuple(reads.table.ids)
        self.count = None

    def batches(self, size: int) -> Iterator[NewBatch]:
        return tables.new_rows(self.path, self.reads.table, size)


class SeriesFile:
    """A CSV of series as the model was trained on (the same columns; data/series.py's checks): one example per
    series, its last `window` steps, to forecast what comes after its end."""

    def __init__(self, path: str, reads: Reads):
        self.path, self.reads, self.failures, self.count = path, reads, [], None
        self.keys = (reads.series["series_id_column"] or "series", "after")

    def batches(self, size: int) -> Iterator[NewBatch]:
        s = self.reads.series
        found, _ = series.read_series(self.path, time_column=s["time_column"], label_column=s["columns"][0],
                                      series_id_column=s["series_id_column"], numeric=s["columns"], training=False)
        steps = sorted({step for *_, step, _ in found} - {s.get("step", found[0][3])})
        if steps:
            raise PipelineError(f"{self.path} steps by {steps[0]}, and the model in its folder was trained on steps "
                                f"of {s['step']}: give the series at the step it learned (a forecast is so many "
                                "steps of that size ahead)")
        for begin in range(0, len(found), size):
            chunk = found[begin:begin + size]
            short = [(name, len(values)) for name, _, values, _, _ in chunk if len(values) < s["window"]]
            if short:
                raise PipelineError(f"{self.path}: series {short[0][0]!r} has {short[0][1]} steps, and the model "
                                    f"reads a window of {s['window']}: give it at least that many")
            keys = {self.keys[0]: [name for name, *_ in chunk], "after": [str(times[-1]) for _, times, *_ in chunk]}
            windows = np.stack([values[-s["window"]:] for _, _, values, _, _ in chunk]).astype(np.float32)
            yield keys, {self.reads.input_name: windows}, None


class WideFile:
    """A wide file of series to classify, one per row as at training (data/sequences.py), with its label column
    (then scored) or without; each row is named by its number."""

    def __init__(self, path: str, reads: Reads):
        if not os.path.isfile(path):
            raise PipelineError(f"{path} is not a file: give the CSV or TSV of new series, one per row")
        self.path, self.reads, self.failures, self.count = path, reads, [], None
        self.keys = ("row",)

    def batches(self, size: int) -> Iterator[NewBatch]:
        s = self.reads.series
        values, labels, _ = sequences.read_wide(self.path, s["label_column"], s["steps"])
        values = sequences.padded(values[..., None], s.get("padding", "last"))
        for begin in range(0, len(values), size):
            rows = list(range(begin + 1, min(begin + size, len(values)) + 1))
            yield ({"row": rows}, {self.reads.input_name: values[begin:begin + size]},
                   labels[begin:begin + size] if labels else None)


class LongFile:
    """A long file of series to classify, one row per step as at training (data/sequences.py): the trained
    columns, each series padded to the model's steps; named by its id, scored when the label column is there."""

    def __init__(self, path: str, reads: Reads):
        if not os.path.isfile(path):
            raise PipelineError(f"{path} is not a file: give the CSV of new series, one row per step")
        self.path, self.reads, self.failures, self.count = path, reads, [], None
        self.keys = (reads.series["series_id_column"],)

    def batches(self, size: int) -> Iterator[NewBatch]:
        s = self.reads.series
        layout = {k: s[k] for k in ("series_id_column", "time_column")}
        values, labels, ids, _ = sequences.read_long(self.path, layout=layout, label_column=s["label_column"],
                                                     numeric=s["columns"], steps=s["steps"])
        values = sequences.padded(values, s.get("padding", "last"))
        for begin in range(0, len(values), size):
            yield ({self.keys[0]: ids[begin:begin + size]}, {self.reads.input_name: values[begin:begin + size]},
                   labels[begin:begin + size] if labels else None)


def open_new_data(path: str, reads: Reads, text_column: str = "text"):
    """The new examples at `path`, read for a model that reads `reads`."""
    if reads.modality == "series":
        if "horizon" in reads.series:
            return SeriesFile(path, reads)
        return LongFile(path, reads) if reads.series.get("series_id_column") else WideFile(path, reads)
    if reads.modality == "table":
        return TableFile(path, reads)
    if reads.modality == "text":
        return TextFiles(path, reads, text_column)
    return ImageFiles(path, reads)


def content_hash(path: str) -> str | None:
    """What new data at `path` hold, as one hash: a file's bytes, a folder's files (folders.content_hash), a glob's
    matched files by path and identity (folders.file_identity); None when nothing is there."""
    from pipelines import artifacts
    if os.path.isdir(path):
        return folders.content_hash(path)
    if os.path.exists(path):
        return artifacts.content_hash(path)
    matched = sorted(glob.glob(path, recursive=True))
    if not matched:
        return None
    digest = hashlib.sha256()
    for name in matched:
        digest.update(f"{name}\0{folders.identity_of(name)}\n".encode())
    return digest.hexdigest()
