"""A CSV table of one's own: one example a row, a label column to classify or regress, the other columns as features.

Read in two streaming passes, so a table larger than memory trains: the first checks the header and every cell and
keeps each row's label (what the split needs); the second writes every labelled row's parsed cells into the
prepared-example cache (cache.py), in the train or the test split. Later epochs, runs and stages read the cache.

Cells are parsed here and only here (`number`): a number is a float32 a model can hold, so a value beyond float32's
range or an infinity is refused naming its column, row and value. A column is numeric when every filled cell is a
number, else categorical (strings); a mostly numeric column with a stray word is refused, naming the row, rather
than silently turned into categories. Missing cells (empty, NA, NaN, null) stay missing here: the model replaces a
number by the train mean and a category by its out-of-vocabulary entry (models/table.py). Rows without a label are
dropped and counted. A row with more or fewer cells than the header, a column without a name and two columns of
one name are refused: each means the file is not read as it was meant.

Columns a model must not learn from are left out of the features, each with its reason (the report lists every
column and how it was used): the id columns (`--id_column`: kept aside and carried through to predictions), the
ignored ones, a column empty or of one value in every row, and a column of (nearly) one distinct value per row:
whole numbers each different and close together (a row number, an ID), or words mostly different (tickets, codes:
one-hot they let a model memorize rows and say nothing of a new row). Words mostly different whose cells share
words (names with their titles, descriptions) are text: the model learns from its frequent words
(models/table.py), never from the whole cell. The distinct values and the words are counted on a column's first
DISTINCT_SAMPLE cells, so the check's memory is bounded. `--keep_columns` keeps a column the rules would leave out,
as categories.

The problem: classification when the label holds words, or at most MAX_INTEGER_CLASSES distinct integers;
regression otherwise; `problem` overrides. The test split is `test_split` of the rows (of each class, for
classification), chosen by a seeded permutation: the same on every run.
"""

import array
import csv
import dataclasses
import hashlib
import math
import re

import numpy as np

from models.table import WORD_MAX_SHARE, WORD_MIN_SHARE, WordCounts
from pipelines.data import cache
from pipelines.errors import PipelineError

MISSING = frozenset({"", "na", "nan", "null", "none"})
MAX_INTEGER_CLASSES = 20
MAX_CLASSES = 10_000  # more distinct label values than this are not classes: the label is regressed or refused
PROBLEMS = ("auto", "classification", "regression")
FLOAT32_MAX = float(np.finfo(np.float32).max)
READER_VERSION = 4  # bump when the rules above change: it is part of every prepared table's cache key
DISTINCT_SAMPLE = 2000     # a column's distinct values are counted on this many of its first filled cells
MIN_DISTINCT_ROWS = 20     # … and only judged once it has this many filled cells
TEXT_DISTINCT_SHARE = 0.5  # words: at least this share of the sampled cells different is text, an ID or codes
ID_SPAN = 1.5              # whole numbers: all different and spanning at most this many times the rows is an ID
ID_REASON = "an ID (a different whole number in every row)"


@dataclasses.dataclass(frozen=True)
class Table:
    """What reading the table found, for the report and the model's input names."""
    problem: str                              # "classification" or "regression"
    label_column: str
    label_names: tuple[str, ...]              # the classes, sorted; () for regression
    numeric: tuple[str, ...]                  # the numeric feature columns, in file order
    categorical: tuple[str, ...]
    text: tuple[str, ...]                     # the text columns: their frequent words are features
    dropped_rows: int                         # rows without a label
    missing: dict[str, int]                   # column → missing cells
    inputs: dict[str, str]                    # column → its input name in the model and the serving signature
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)  # column → why it is not a feature
    ids: tuple[str, ...] = ()                 # the id columns (given or found), carried through to predictions
    categories: dict[str, str] = dataclasses.field(default_factory=dict)  # string column → distinct values

    def usage(self) -> list[dict[str, str]]:
        """The label, each feature with its kind, then each column left out with why."""
        rows = [{"column": self.label_column, "use": f"label ({self.problem})"}]
        for column in self.inputs:
            kind = "numeric" if column in self.numeric else "text: its frequent words" if column in self.text else \
                f"category with {self.categories.get(column, '?')} values"
            rows.append({"column": column, "use": kind})
        rows += [{"column": column, "use": f"left out: {why}"} for column, why in self.left_out.items()]
        return rows


# The names a table model's own operations take beside its inputs (models/dense.py's encoder, body and label scale;
# the outputs the families' served models name): a column named so gets an input name of its own, or Keras refuses
# the model at export ("the name 'value' is used 2 times"). tests/data/test_tables.py builds both families' models
# from such columns.
RESERVED = frozenset({"table_encoder", "table_body", "label_scale", "value", "logits", "probabilities"})


def input_names(columns) -> dict[str, str]:
    """Each column's input name: letters, digits and _ (a serving signature's keys), unique, in column order, none
    of the RESERVED names."""
    names, taken = {}, set(RESERVED)
    for column in columns:
        name = re.sub(r"[^0-9A-Za-z_]+", "_", column).strip("_") or "column"
        name = f"c_{name}" if name[0].isdigit() else name
        base, i = name, 1
        while name in taken:
            i, name = i + 1, f"{base}_{i}"
        taken.add(name)
        names[column] = name
    return names


# Columnar files read as tables, series and sequences are: Parquet (what Hugging Face and most downloads store
# tables in), Feather and Arrow IPC files.
ARROW_FILES = (".parquet", ".feather", ".arrow")


def is_table_dataset(dataset: str) -> bool:
    """A .csv file (comma-separated), a .tsv one (tab-separated, as the UCR archive's), or a columnar file."""
    return dataset.lower().endswith((".csv", ".tsv", *ARROW_FILES))


class CellError(ValueError):
    """A cell that looks like a number and is not one a model can take."""


def number(text: str) -> float | None:
    """A cell as a number a float32 holds; None for a word; CellError for an infinity or a value out of range."""
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise CellError(f"{text!r} is not a finite number")
    if abs(value) > FLOAT32_MAX:
        raise CellError(f"{text!r} is beyond float32's range (±{FLOAT32_MAX:.3g}): rescale the column")
    return value


def is_number(text: str) -> bool:
    """Whether a cell is written as a number, one a model can take or not (an infinity, a value beyond float32)."""
    try:
        return number(text) is not None
    except CellError:
        return True


def class_order(values: dict[str, float | None]) -> tuple[str, ...]:
    """Class names in order: by value when every one is a number (1, 2, 10; None: a word), else as text."""
    key = (lambda v: (values[v], v)) if all(v is not None for v in values.values()) else str
    return tuple(sorted(values, key=key))


def read_rows(path: str):
    """Each non-blank row's cells, stripped, the header first; an unreadable file is one line."""
    if path.lower().endswith(ARROW_FILES):
        yield from _columnar_rows(path)
        return
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f, delimiter="\t" if path.lower().endswith(".tsv") else ","):
                if row:
                    yield [cell.strip() for cell in row]
    except UnicodeDecodeError as e:
        raise PipelineError(f"cannot read {path} (not UTF-8 at byte {e.start}): save it as UTF-8") from None
    except (OSError, csv.Error) as e:
        raise PipelineError(f"cannot read {path} ({e}): give a comma-separated file with a header row") from None


COLUMNAR_BATCH = 65_536  # rows of a columnar file held at a time


def _columnar_rows(path: str):
    """A Parquet, Feather or Arrow file's rows as a CSV's cells, the header first, read a batch of rows at a time
    (a Parquet row group is cut in COLUMNAR_BATCH rows): memory holds a batch, not the file. Every value is written
    so that it reads back as itself: a float in its shortest exact form, a time in ISO 8601, a missing value empty;
    a table, a series and a sequence file are then read by the same code whatever their format."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        if path.lower().endswith(".parquet"):
            source = pq.ParquetFile(path)
            names, batches = source.schema_arrow.names, source.iter_batches(batch_size=COLUMNAR_BATCH)
        else:
            try:
                reader = pa.ipc.open_file(path)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:  # an Arrow stream rather than a file
                reader = pa.ipc.open_stream(path)
                batches = iter(reader)
            names = reader.schema.names
        yield list(names)
        for batch in batches:
            columns = [[_as_text(v) for v in column.to_pylist()] for column in batch.columns]
            yield from (list(row) for row in zip(*columns))
    except (OSError, pa.ArrowException) as e:
        raise PipelineError(f"cannot read {path} ({str(e).splitlines()[0]}): give a Parquet, Feather or Arrow "
                            "file of columns") from None


def _as_text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value).strip()


@dataclasses.dataclass(frozen=True)
class Naming:
    """The columns the user named: the label, the id columns, those to ignore, and those to keep as features
    whatever the rules say."""
    label: str | None
    ids: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    def check(self, path: str, header: list[str]) -> None:
        given = {"--id_column": self.ids, "--ignore_columns": self.ignored, "--keep_columns": self.kept}
        for flag, names in given.items():
            unknown = [name for name in names if name not in header]
            if unknown:
                raise PipelineError(f"{flag}: {path} has no column {unknown[0]!r}: its columns are "
                                    f"{', '.join(header)}")
            if self.label in names:
                raise PipelineError(f"{flag} names the label column {self.label!r}: the label is never a feature")
        for first, second in (("--id_column", "--keep_columns"), ("--ignore_columns", "--keep_columns"),
                              ("--id_column", "--ignore_columns")):
            both = sorted(set(given[first]) & set(given[second]))
            if both:
                raise PipelineError(f"{both[0]!r} is named by both {first} and {second}: name it once")


def _header(path: str, header: list[str], naming: Naming) -> list[str]:
    """The candidate feature columns: every column but the label, the id columns and the ignored ones."""
    label_column = naming.label
    unnamed = [i + 1 for i, name in enumerate(header) if not name]
    if unnamed:
        raise PipelineError(f"{path}: column {unnamed[0]} of the header has no name: name every column")
    seen = set()
    for name in header:
        if name in seen:
            raise PipelineError(f"{path}: two columns are named {name!r}: give each column its own name")
        seen.add(name)
    if label_column is None or label_column not in header:
        given = "--label_column is required for a CSV data set" if label_column is None else \
            f"{path} has no column {label_column!r}"
        raise PipelineError(f"{given}: its columns are {', '.join(header)}")
    naming.check(path, header)
    features = [c for c in header if c != label_column and c not in naming.ids and c not in naming.ignored]
    if not features:
        named = " and the columns --id_column and --ignore_columns name" if naming.ids or naming.ignored else ""
        raise PipelineError(f"{path} has only the label column {label_column!r}{named}: it needs feature columns too")
    return features


def _checked(path: str, row: int, cells: list[str], header: list[str]) -> list[str]:
    if len(cells) != len(header):
        raise PipelineError(f"{path}, data row {row}: {len(cells)} cells, and the header names {len(header)} columns "
                            "(a stray comma or quote, or another delimiter): make every row as long as the header")
    return cells


@dataclasses.dataclass
class _Column:
    """What the first pass learns of one feature column."""
    filled: int = 0
    missing: int = 0
    named: int = 0             # cells that are not numbers
    first_word: tuple[int, str] | None = None
    bad: tuple[int, str] | None = None  # the first cell `number` refused
    sample: set = dataclasses.field(default_factory=set)  # hashes of the first DISTINCT_SAMPLE filled cells …
    words: WordCounts = dataclasses.field(default_factory=WordCounts)  # … and in how many of them each word is
    first: str | None = None   # the first filled cell, and whether any other differs from it
    varies: bool = False
    whole: bool = True         # every number is a whole number …
    low: float = math.inf      # … between these
    high: float = -math.inf

    def see(self, row: int, text: str) -> None:
        if text.lower() in MISSING:
            self.missing += 1
            return
        self.filled += 1
        if self.filled <= DISTINCT_SAMPLE:
            self.sample.add(hash(text))  # bounded: a hash, however long the text
            self.words.add(text)
        if self.first is None:
            self.first = text
        elif not self.varies and text != self.first:
            self.varies = True
        try:
            value = number(text)
        except CellError as e:
            self.bad = self.bad or (row, str(e))
            return
        if value is None:
            self.named += 1
            self.first_word = self.first_word or (row, text)
        else:
            self.whole = self.whole and value == int(value)
            self.low, self.high = min(self.low, value), max(self.high, value)

    def distinct(self) -> str:
        """How many different values the column holds, as far as it was counted."""
        counted = len(self.sample)
        return f"{counted:,}" + ("" if self.filled <= DISTINCT_SAMPLE else f" in its first {DISTINCT_SAMPLE:,} rows")

    def mostly_different(self) -> bool:
        """Whether the sampled cells are mostly each different (once enough are filled to tell)."""
        sampled = min(self.filled, DISTINCT_SAMPLE)
        return sampled >= MIN_DISTINCT_ROWS and len(self.sample) >= TEXT_DISTINCT_SHARE * sampled

    def why_not_a_feature(self, kind: str) -> str | None:
        """Why a model should not learn from this column (an ID, codes, nothing to learn), or None."""
        if kind == "text":
            return None
        if not self.filled:
            return "empty in every row"
        if not self.varies:
            return f"the same value ({self.first[:40]!r}) in every filled row"
        sampled = min(self.filled, DISTINCT_SAMPLE)
        if sampled < MIN_DISTINCT_ROWS:
            return None
        distinct = len(self.sample)
        if kind == "numeric":
            if self.whole and not self.missing and distinct == sampled and \
                    self.high - self.low + 1 <= ID_SPAN * self.filled:
                return ID_REASON
            return None
        if self.mostly_different():
            return (f"an ID or codes ({distinct:,} different values in {sampled:,} rows, and no word in "
                    f"{WORD_MIN_SHARE:.0%}–{WORD_MAX_SHARE:.0%} of them): one-hot, it would let the model memorize "
                    "rows")
        return None

    def kind(self, path: str, name: str) -> str:
        """numeric, categorical or text (cells mostly different that share frequent words)."""
        if self.filled and not self.named:
            if self.bad:
                raise PipelineError(f"{path}, column {name!r}, data row {self.bad[0]}: {self.bad[1]}")
            return "numeric"
        if self.filled and self.named <= 0.05 * self.filled:  # a number column with a stray word: a typo
            row, word = self.first_word
            raise PipelineError(f"{path}, column {name!r}, data row {row}: {word!r} is not a number, and the "
                                "column's other cells are: fix it, or empty it for a missing value")
        return "text" if self.mostly_different() and self.words.frequent() else "categorical"


@dataclasses.dataclass
class _Scan:
    header: list[str]
    features: list[str]
    columns: dict[str, _Column]
    names: list[str]           # the label's distinct texts …
    codes: np.ndarray          # … and each labelled row's, as an index into them
    dropped: int


def _scan(path: str, naming: Naming) -> _Scan:
    label_column = naming.label
    rows = read_rows(path)
    header = next(rows, None)
    if not header:
        raise PipelineError(f"{path} has no header row or no data rows: give a CSV with one example a row")
    features = _header(path, header, naming)
    at = header.index(label_column)
    where = [(name, header.index(name)) for name in features]
    columns = {name: _Column() for name in features}
    codes: dict[str, int] = {}
    labels, dropped, seen = array.array("q"), 0, 0
    for row, cells in enumerate(rows, 1):
        seen += 1
        cells = _checked(path, row, cells, header)
        if cells[at].lower() in MISSING:
            dropped += 1
            continue
        labels.append(codes.setdefault(cells[at], len(codes)))
        for name, i in where:
            columns[name].see(row, cells[i])
    if not seen:
        raise PipelineError(f"{path} has no header row or no data rows: give a CSV with one example a row")
    if not labels:
        raise PipelineError(f"{path}: the label column {label_column!r} is empty in every row: give each row a label")
    return _Scan(header, features, columns, sorted(codes, key=codes.get), np.frombuffer(labels, np.int64), dropped)


def _problem(path: str, label_column: str, scan: _Scan, problem: str):
    """The problem, the class names (classification) and each row's label as a class index or a value."""
    def first_row(text):
        return int(np.argmax(scan.codes == scan.names.index(text))) + 1
    numbers = {}
    for text in scan.names:
        try:
            numbers[text] = number(text)
        except CellError as e:
            raise PipelineError(f"{path}, label column {label_column!r}, labelled row {first_row(text)}: {e}") from None
    if problem == "auto":
        words = any(v is None for v in numbers.values())
        whole = not words and all(v == int(v) for v in numbers.values())
        problem = "classification" if words or (whole and len(numbers) <= MAX_INTEGER_CLASSES) else "regression"
    if problem == "regression":
        word = next((text for text in scan.names if numbers[text] is None), None)
        if word is not None:
            raise PipelineError(f"{path}: the label {word!r} (labelled row {first_row(word)}) is not a number, so "
                                f"{label_column!r} cannot be regressed: use --problem=classification")
        return problem, (), np.array([numbers[t] for t in scan.names], np.float32)[scan.codes]
    if len(numbers) > MAX_CLASSES:
        raise PipelineError(f"{path}: the label column {label_column!r} has {len(numbers):,} distinct values, more "
                            f"than {MAX_CLASSES:,} classes: regress it (--problem=regression) or choose another label")
    label_names = class_order(numbers)
    if len(label_names) < 2:
        raise PipelineError(f"{path}: the label column {label_column!r} has one value ({label_names[0]!r}): a "
                            "classifier needs at least two")
    index = {name: i for i, name in enumerate(label_names)}
    return problem, label_names, np.array([index[t] for t in scan.names], np.int64)[scan.codes]


def _test_rows(groups: np.ndarray, test_split: float, seed: int) -> np.ndarray:
    """A mask of test rows: `test_split` of each group, chosen by a seeded permutation."""
    rng, test = np.random.default_rng(seed), np.zeros(len(groups), bool)
    for group in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == group))
        test[rows[:round(len(rows) * test_split)]] = True
    return test


def _cell(kind: str, text: str):
    if text.lower() in MISSING:
        return np.nan if kind == "numeric" else ""
    return number(text) if kind == "numeric" else text


def _left_out(scan: _Scan, kinds: dict[str, str], naming: Naming) -> dict[str, str]:
    """Each column that is not a feature, with why, in file order."""
    why = {}
    for column in scan.header:
        if column in naming.ids:
            why[column] = "the id column (--id_column): carried through to predictions"
        elif column in naming.ignored:
            why[column] = "--ignore_columns"
        elif column in scan.columns and column not in naming.kept:
            reason = scan.columns[column].why_not_a_feature(kinds[column])
            if reason:
                why[column] = f"{reason}; --keep_columns={column} keeps it"
    return why


def prepare(path: str, *, naming: Naming, problem: str, test_split: float, cache_dir: str,
            data_hash: str, seed: int = 0) -> tuple[Table, dict[str, cache.Split]]:
    """The table's train and test splits in the prepared cache (written there first if they are not), and what
    reading it found."""
    label_column = naming.label
    key = hashlib.sha256(repr((data_hash, naming, problem, test_split, seed, READER_VERSION)).encode())

    def write(start):
        scan = _scan(path, naming)
        kinds = {name: column.kind(path, name) for name, column in scan.columns.items()}
        chosen, label_names, labels = _problem(path, label_column, scan, problem)
        left_out = _left_out(scan, kinds, naming)
        scan.features = [c for c in scan.features if c not in left_out]
        if not scan.features:
            reasons = "; ".join(f"{column}: {why}" for column, why in left_out.items())
            raise PipelineError(f"{path}: every feature column is left out ({reasons})")
        test = _test_rows(labels if chosen == "classification" else np.zeros(len(labels), np.int64), test_split, seed)
        if not test.any() or (~test).sum() < 2:
            raise PipelineError(f"{path} has {len(labels)} labelled rows: too few to hold out a test split and train")
        inputs = input_names(scan.features)
        writer = start({**{inputs[c]: cache.Feature("float32" if kinds[c] == "numeric" else "string")
                           for c in scan.features},
                        "label": cache.Feature("int64" if chosen == "classification" else "float32")})
        at = scan.header.index(label_column)
        where = [(inputs[c], scan.header.index(c), kinds[c]) for c in scan.features]
        labelled = 0
        for cells in _data_rows(path):
            if cells[at].lower() in MISSING:
                continue
            example = {name: _cell(kind, cells[i]) for name, i, kind in where}
            example["label"] = labels[labelled]
            writer.add("test" if test[labelled] else "train", example)
            labelled += 1
        info = {"problem": chosen, "label_column": label_column, "label_names": list(label_names),
                "numeric": [c for c in scan.features if kinds[c] == "numeric"],
                "categorical": [c for c in scan.features if kinds[c] == "categorical"],
                "text": [c for c in scan.features if kinds[c] == "text"],
                "dropped_rows": scan.dropped, "missing": {c: scan.columns[c].missing for c in scan.features},
                "inputs": inputs, "left_out": left_out,
                "ids": [c for c in scan.header
                        if c in naming.ids or left_out.get(c, "").startswith(ID_REASON)],
                "categories": {c: scan.columns[c].distinct() for c in scan.features if kinds[c] != "numeric"}}
        return ("train", "test"), info
    splits, info = cache.prepared(cache_dir, f"table-{key.hexdigest()[:24]}", write, f"the table {path}")
    table = Table(info["problem"], info["label_column"], tuple(info["label_names"]), tuple(info["numeric"]),
                  tuple(info["categorical"]), tuple(info["text"]), info["dropped_rows"], info["missing"],
                  info["inputs"], info["left_out"], tuple(info["ids"]), info["categories"])
    _say_columns(path, table, naming)
    return table, splits


def _say_columns(path: str, table: Table, naming: Naming) -> None:
    """A note for each column the rules left out, with why, and for each text column."""
    for column, why in table.left_out.items():
        if column not in naming.ids and column not in naming.ignored:
            print(f"note: {path}: column {column!r} is left out of the features: {why}", flush=True)
    for column in table.text:
        print(f"note: {path}: column {column!r} is text ({table.categories[column]} different values): the model "
              "learns from its frequent words", flush=True)


def _data_rows(path: str):
    rows = read_rows(path)
    next(rows, None)
    yield from rows


@dataclasses.dataclass(frozen=True)
class NewColumns:
    """What a trained model reads of a table, to read new rows for it: each feature's CSV column with its input
    name and kind, the id columns to carry through, and the label column (scored when the new rows have it)."""
    features: dict[str, tuple[str, str]]  # CSV column → (input name, "numeric", or a string column's kind)
    ids: tuple[str, ...]
    label_column: str | None


def new_rows(path: str, wanted: NewColumns, batch_size: int):
    """New rows, streamed in batches of (id cells by column, features by input name parsed as at training, true
    labels or None). Columns are matched by name in any order; a missing feature column, a row of the wrong
    length and a cell of the wrong type are one line naming the column and the row; other columns are named once
    in a note and ignored."""
    rows = read_rows(path)
    header = next(rows, None)
    if not header:
        raise PipelineError(f"{path} is empty: give a CSV with a header row and one row per example")
    missing = [column for column in wanted.features if column not in header]
    if missing:
        named = f"column {missing[0]!r}" if len(missing) == 1 else f"columns {', '.join(map(repr, missing))}"
        raise PipelineError(f"{path} has no {named}, which the model reads: its columns are {', '.join(header)}")
    ids = [column for column in wanted.ids if column in header]
    label = wanted.label_column if wanted.label_column in header else None
    extra = [c for c in header if c not in wanted.features and c not in ids and c != label]
    if extra:
        print(f"note: {path}: not read by the model: {', '.join(extra)}", flush=True)
    where = [(column, header.index(column), *wanted.features[column]) for column in wanted.features]
    batch, seen = [], 0
    for row, cells in enumerate(rows, 1):
        batch.append((row, _checked(path, row, cells, header)))
        seen += 1
        if len(batch) == batch_size:
            yield _new_batch(path, batch, header, where, ids, label)
            batch = []
    if batch:
        yield _new_batch(path, batch, header, where, ids, label)
    if not seen:
        raise PipelineError(f"{path} has a header and no data rows: give one row per example")


def _new_cell(path: str, row: int, column: str, kind: str, text: str):
    if text.lower() in MISSING:
        return np.nan if kind == "numeric" else ""
    if kind != "numeric":
        return text
    try:
        value = number(text)
    except CellError as e:
        raise PipelineError(f"{path}, column {column!r}, data row {row}: {e}") from None
    if value is None:
        raise PipelineError(f"{path}, column {column!r}, data row {row}: {text!r} is not a number, and the model "
                            "learned the column as numbers: fix the cell, or empty it for a missing value")
    return value


def _new_batch(path: str, batch: list, header: list[str], where: list, ids: list[str], label: str | None):
    keys = {column: [cells[header.index(column)] for _, cells in batch] for column in ids}
    inputs = {}
    for column, at, name, kind in where:
        values = [_new_cell(path, row, column, kind, cells[at]) for row, cells in batch]
        inputs[name] = np.array(values, np.float32) if kind == "numeric" else np.array(values, object)
    truth = None
    if label is not None:
        at = header.index(label)
        truth = [None if cells[at].lower() in MISSING else cells[at] for _, cells in batch]
    return keys, inputs, truth
