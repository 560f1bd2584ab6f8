"""A CSV table of one's own: one example a row, a label column to classify or regress, the other columns as features.

Columns: numeric when every filled cell is a number, else categorical (strings). A mostly numeric column with a
stray word is refused, naming the row, rather than silently turned into categories. Missing cells (empty, NA, NaN,
null) stay missing here: the model replaces a number by the train mean and a category by its out-of-vocabulary
entry (models/table.py). Rows without a label are dropped and counted.

The problem: classification when the label holds words, or at most MAX_INTEGER_CLASSES distinct integers;
regression otherwise; `problem` overrides. The test split is `test_split` of the rows (of each class, for
classification), chosen by a seeded permutation: the same on every run.
"""

import csv
import dataclasses
import math
import re

import numpy as np

from pipelines.errors import PipelineError

MISSING = frozenset({"", "na", "nan", "null", "none"})
MAX_INTEGER_CLASSES = 20
PROBLEMS = ("auto", "classification", "regression")


@dataclasses.dataclass(frozen=True)
class Table:
    problem: str                              # "classification" or "regression"
    label_names: tuple[str, ...]              # the classes, sorted; () for regression
    splits: dict[str, dict]                   # split → {"table": {column: values}, "label": values}
    numeric: tuple[str, ...]                  # the numeric feature columns, in file order
    categorical: tuple[str, ...]
    dropped_rows: int                         # rows without a label
    missing: dict[str, int]                   # column → missing cells
    inputs: dict[str, str]                    # column → its input name in the model and the serving signature


def input_names(columns) -> dict[str, str]:
    """Each column's input name: letters, digits and _ (a serving signature's keys), unique, in column order."""
    names, taken = {}, set()
    for column in columns:
        name = re.sub(r"[^0-9A-Za-z_]+", "_", column).strip("_") or "column"
        name = f"c_{name}" if name[0].isdigit() else name
        base, i = name, 1
        while name in taken:
            i, name = i + 1, f"{base}_{i}"
        taken.add(name)
        names[column] = name
    return names


def is_table_dataset(dataset: str) -> bool:
    return dataset.lower().endswith(".csv")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_rows(path: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
            columns = list(reader.fieldnames or [])
    except UnicodeDecodeError as e:
        raise PipelineError(f"cannot read {path} (not UTF-8 at byte {e.start}): save it as UTF-8") from None
    except (OSError, csv.Error) as e:
        raise PipelineError(f"cannot read {path} ({e}): give a comma-separated file with a header row") from None
    if not columns or not rows:
        raise PipelineError(f"{path} has no header row or no data rows: give a CSV with one example a row")
    return columns, rows


def read_table(path: str, label_column: str | None, problem: str, test_split: float, seed: int = 0) -> Table:
    columns, rows = _read_rows(path)
    if label_column is None or label_column not in columns:
        given = "--label_column is required for a CSV data set" if label_column is None else \
            f"{path} has no column {label_column!r}"
        raise PipelineError(f"{given}: its columns are {', '.join(columns)}")
    features = [c for c in columns if c != label_column]
    if not features:
        raise PipelineError(f"{path} has only the label column {label_column!r}: it needs feature columns too")
    labelled = [r for r in rows if r[label_column].lower() not in MISSING]
    dropped = len(rows) - len(labelled)

    numeric, categorical, missing, values = [], [], {}, {}
    for column in features:
        cells = [r[column] for r in labelled]
        filled = [(i, c) for i, c in enumerate(cells) if c.lower() not in MISSING]
        missing[column] = len(cells) - len(filled)
        numbers = [_number(c) for _, c in filled]
        words = [(i, c) for (i, c), n in zip(filled, numbers) if n is None]
        if filled and not words:
            numeric.append(column)
            values[column] = np.array([np.nan if c.lower() in MISSING else float(c) for c in cells], np.float32)
        elif filled and len(words) <= 0.05 * len(filled):  # a number column with a stray word: a typo, not a category
            row, word = words[0]
            raise PipelineError(f"{path}, column {column!r}, data row {row + 1}: {word!r} is not a number, and the "
                                "column's other cells are: fix it, or empty it for a missing value")
        else:
            categorical.append(column)
            values[column] = np.array(["" if c.lower() in MISSING else c for c in cells], dtype=object)

    labels = [r[label_column] for r in labelled]
    numbers = [_number(v) for v in labels]
    if problem == "auto":
        whole = all(n is not None and n == int(n) for n in numbers)
        problem = "classification" if (None in numbers or (whole and len(set(numbers)) <= MAX_INTEGER_CLASSES)) \
            else "regression"
    if problem == "regression":
        if None in numbers:
            row = numbers.index(None)
            raise PipelineError(f"{path}: the label {labels[row]!r} (data row {row + 1}) is not a number, so "
                                f"{label_column!r} cannot be regressed: use --problem=classification")
        label_names, y = (), np.array(numbers, np.float32)
    else:
        key = (lambda v: (float(v), v)) if None not in numbers else str
        label_names = tuple(sorted(set(labels), key=key))
        y = np.array([label_names.index(v) for v in labels], np.int64)
    if problem == "classification" and len(label_names) < 2:
        raise PipelineError(f"{path}: the label column {label_column!r} has one value ({label_names[0]!r}): a "
                            "classifier needs at least two")

    test = _test_rows(y if problem == "classification" else np.zeros(len(y), np.int64), test_split, seed)
    order = {"train": np.random.default_rng(seed).permutation(np.flatnonzero(~test)), "test": np.flatnonzero(test)}
    inputs = input_names(features)
    splits = {split: {"table": {inputs[c]: values[c][idx] for c in features}, "label": y[idx]}
              for split, idx in order.items()}
    if not len(order["test"]) or len(order["train"]) < 2:
        raise PipelineError(f"{path} has {len(y)} labelled rows: too few to hold out a test split and train")
    return Table(problem, label_names, splits, tuple(numeric), tuple(categorical), dropped, missing, inputs)


def _test_rows(groups: np.ndarray, test_split: float, seed: int) -> np.ndarray:
    """A mask of test rows: `test_split` of each group, chosen by a seeded permutation."""
    rng, test = np.random.default_rng(seed), np.zeros(len(groups), bool)
    for group in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == group))
        test[rows[:round(len(rows) * test_split)]] = True
    return test
