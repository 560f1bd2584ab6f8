"""A time series of one's own, as a CSV: forecast one column `horizon` steps ahead from `window` steps of history.

    month,passengers                    date,store,units,price
    1949-01,112                         2024-01-01,A,31,2.5
    1949-02,118                         2024-01-01,B,12,3.0

`time_column` orders the rows: ISO dates (1949-01, 2024-01-31, 2024-01-31 13:30) or numbers. `label_column` is
the target; `series_id_column` names several series in one file, which one global model learns; every other
numeric column is a covariate whose past values are inputs too (`ignore_columns` leaves some out). A series must
be regular: one step between its consecutive rows (the most common difference). A gap, a duplicated time, a missing
or non-numeric value is one line naming the first, with the fix: the model is not given invented values.

Splits are by time and never shuffled across: each series' last `test_split` of steps (at least one horizon) is
its test period, the `validation_split` of the steps before it (at least one horizon) its validation period, and
the rest its train period. A window is `window` steps of every column ending at step t; its target is the label's
next `horizon` values, and it belongs to the split its target lies in wholly: a window whose target straddles two
periods is left out. So no split's target is another split's target, and a window reads only its past, which may
lie in an earlier period, never in a later one. Every step is a window's end (stride 1): the test split is a
rolling-origin evaluation over the whole test period.

The season (seasonal naive, MASE) is `season`, or the time column's: monthly 12, quarterly 4, weekly 52, daily 7,
hourly 24, half-hourly 48; plain numbers have none (1).
"""

import dataclasses
import re

import numpy as np
import tensorflow as tf

from pipelines.data import tables
from pipelines.errors import PipelineError

DATE = re.compile(r"^\d{4}-\d{2}(-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?)?$")
SEASONS = {"M": 12, "Q": 4, "W": 52, "D": 7, "h": 24, "30m": 48}  # a step's name → its season


@dataclasses.dataclass(frozen=True)
class Series:
    """What reading the file found, and what the baselines, the report and dlpipe-predict need of it."""
    label_column: str
    columns: tuple[str, ...]            # the model's input columns per step: the label first, then covariates
    ids: tuple[str, ...]                # each series' id ("" for a file of one series)
    values: tuple[np.ndarray, ...]      # each series' [steps, columns] float32, in time order
    times: tuple[np.ndarray, ...]       # each series' times (datetime64 or float64)
    step: str                           # "12 months", "1 day", "1" …
    season: int
    window: int
    horizon: int
    periods: tuple[tuple[int, int], ...]  # each series' (validation start, test start) steps
    ends: dict[str, np.ndarray]         # split → [windows, 2]: (series index, the window's last step)

    def scale(self) -> dict:
        """Each column's mean and standard deviation over the train periods: the model's input scaling."""
        train = np.concatenate([v[:start] for v, (start, _) in zip(self.values, self.periods)])
        std = train.std(axis=0)
        return {"mean": train.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def is_series(time_column: str | None) -> bool:
    return bool(time_column)


def parse_times(path: str, column: str, texts: list[str], rows: list[int]):
    """The time column as datetime64 (ISO dates) or float64 (numbers), or one line naming the first bad value."""
    if all(DATE.match(t) for t in texts):
        unit = "M" if all(len(t) == 7 for t in texts) else "D" if all(len(t) == 10 for t in texts) else "s"
        return np.array([t.replace(" ", "T") for t in texts], f"datetime64[{unit}]")
    numbers = []
    for text, row in zip(texts, rows):
        try:
            value = tables.number(text) if text.lower() not in tables.MISSING else None
        except tables.CellError:  # an infinity or beyond float32: no time either
            value = None
        if value is None:
            raise PipelineError(f"{path}, column {column!r}, data row {row}: {text!r} is not a time: give ISO dates "
                                "(1949-01, 2024-01-31, 2024-01-31 13:30) or numbers")
        numbers.append(value)
    return np.array(numbers, np.float64)


def _step(times: np.ndarray) -> tuple[object, str, int]:
    """The series' step (the most common difference), its name and its season."""
    differences, counts = np.unique(np.diff(times), return_counts=True)
    step = differences[np.argmax(counts)]
    if times.dtype.kind != "M":
        return step, f"{float(step):g}", 1
    if np.datetime_data(times.dtype)[0] == "M":
        months = int(step / np.timedelta64(1, "M"))
        return step, f"{months} month{'s' * (months > 1)}", {1: SEASONS["M"], 3: SEASONS["Q"]}.get(months, 1)
    seconds = int(step / np.timedelta64(1, "s"))
    name = {7 * 86400: "W", 86400: "D", 3600: "h", 1800: "30m"}.get(seconds)
    days, minutes = seconds // 86400, seconds // 60
    shown = f"{days} day{'s' * (days > 1)}" if seconds % 86400 == 0 else f"{minutes} minute{'s' * (minutes > 1)}"
    return step, shown, SEASONS.get(name, 1)


def _read(path: str, time_column: str, label_column: str | None, series_id_column: str | None, ignored, numeric):
    """The file's rows and the numeric columns (label first; `numeric` when a trained model names them)."""
    lines = tables.read_rows(path)
    header = next(lines, None) or []
    rows = list(enumerate(lines, 1))
    for name, flag in ((time_column, "--time_column"), (label_column, "--label_column"),
                       (series_id_column, "--series_id_column")):
        if name is not None and name not in header:
            raise PipelineError(f"{flag}={name}: {path} has no such column: its columns are {', '.join(header)}")
    if label_column is None:
        raise PipelineError(f"--label_column is required: the column of {path} to forecast (its columns are "
                            f"{', '.join(header)})")
    if not rows:
        raise PipelineError(f"{path} has no data rows: give one row per time step")
    for row, cells in rows:
        if len(cells) != len(header):
            raise PipelineError(f"{path}, data row {row}: {len(cells)} cells, and the header names {len(header)} "
                                "columns: make every row as long as the header")
    if numeric is None:
        numeric = [label_column] + [c for c in header if c not in (time_column, label_column, series_id_column)
                                    and c not in ignored]
    missing = [c for c in numeric if c not in header]
    if missing:
        raise PipelineError(f"{path} has no column {missing[0]!r}, which the model reads: its columns are "
                            f"{', '.join(header)}")
    return header, rows, numeric


def column_values(path: str, column: str, cells: list[str], rows: list[int], label: bool) -> np.ndarray:
    """A column of a series file as float32, or one line naming its first cell that is missing or not a number
    a model can take (a word, an infinity, a value beyond float32)."""
    values = []
    for text, row in zip(cells, rows):
        try:
            value = None if text.lower() in tables.MISSING else tables.number(text)
            what = "is missing" if text.lower() in tables.MISSING else f"{text!r} is not a number"
        except tables.CellError as e:
            value, what = None, str(e)
        if value is None:
            fix = ("fill it (a series must be regular)" if label else
                   f"fill it, or leave the column out with --ignore_columns={column}")
            raise PipelineError(f"{path}, column {column!r}, data row {row}: {what}: {fix}")
        values.append(value)
    return np.array(values, np.float32)


def _one_series(path, name, times, values, rows, time_column):
    order = np.argsort(times, kind="stable")
    times, values, rows = times[order], values[order], [rows[i] for i in order]
    where = f" of series {name!r}" if name else ""
    repeated = np.flatnonzero(np.diff(times) == np.zeros((), np.diff(times).dtype))
    if len(repeated):
        raise PipelineError(f"{path}, data rows {rows[repeated[0]]} and {rows[repeated[0] + 1]}{where}: the time "
                            f"{times[repeated[0]]} twice in column {time_column!r}: one row per step"
                            + (" (several series in one file need --series_id_column)" if not name else ""))
    if len(times) < 3:
        raise PipelineError(f"{path}{where} has {len(times)} rows: a series needs many steps to forecast")
    step, step_name, season = _step(times)
    gaps = np.flatnonzero(np.diff(times) != step)
    if len(gaps):
        raise PipelineError(f"{path}{where}: after {times[gaps[0]]} (data row {rows[gaps[0]]}) the next step is "
                            f"{times[gaps[0] + 1]}, and the series steps by {step_name}: add the missing rows (a "
                            "series must be regular) or give each stretch its own --series_id_column value")
    if np.all(values[:, 0] == values[0, 0]):
        raise PipelineError(f"{path}{where}: the label is {values[0, 0]:g} at every step: there is nothing to forecast")
    return times, values, step_name, season


def _periods(steps: int, window: int, horizon: int, test_split: float, validation_split: float, where: str):
    """(validation start, test start): the test period its share (at least a horizon), validation before it."""
    test = max(horizon, round(steps * test_split))
    validation = max(horizon, round((steps - test) * validation_split))
    if steps - test - validation < window + horizon:
        raise PipelineError(f"{where} has {steps} steps: with --window={window} and --horizon={horizon}, its train "
                            f"period ({steps - test - validation} steps after a test period of {test} and a "
                            f"validation period of {validation}) holds no window: it needs at least "
                            f"{window + horizon + test + validation} steps, or a shorter --window or --horizon")
    return steps - test - validation, steps - test


def _window_ends(values, periods, window: int, horizon: int) -> dict[str, np.ndarray]:
    """Each split's windows as (series, last step): a window belongs to the period its whole target lies in."""
    ends = {"train": [], "validation": [], "test": []}
    for i, (series, (validation, test)) in enumerate(zip(values, periods)):
        t = np.arange(window - 1, len(series) - horizon)   # the window [t-window+1, t], its target [t+1, t+horizon]
        first, last = t + 1, t + horizon
        for split, inside in (("train", last < validation), ("validation", (first >= validation) & (last < test)),
                              ("test", first >= test)):
            ends[split] += [(i, step) for step in t[inside]]
    return {split: np.array(pairs, np.int64).reshape(-1, 2) for split, pairs in ends.items()}


def default_window(season: int, horizon: int) -> int:
    """Two seasons of history, or twice the horizon, and at least 12 steps (docs/tasks.md, Time series)."""
    return max(2 * season, 2 * horizon, 12)


def read_series(path: str, *, time_column: str, label_column: str | None, series_id_column: str | None,
                ignored=(), numeric=None) -> tuple[list[tuple], list[str]]:
    """Each series of the file, checked and in time order, as (name, times, values [steps, columns], step name,
    season); and the numeric columns, the label first."""
    header, rows, numeric = _read(path, time_column, label_column, series_id_column, ignored, numeric)
    numbers = [r for r, _ in rows]
    columns = {c: [cells[header.index(c)] for _, cells in rows] for c in header}
    times = parse_times(path, time_column, columns[time_column], numbers)
    values = np.stack([column_values(path, c, columns[c], numbers, c == label_column) for c in numeric], -1)
    ids = columns[series_id_column] if series_id_column else [""] * len(rows)
    found = []
    for name in dict.fromkeys(ids):
        mine = [i for i, v in enumerate(ids) if v == name]
        found.append((name, *_one_series(path, name, times[mine], values[mine], [numbers[i] for i in mine],
                                         time_column)))
    steps = {step for _, _, _, step, _ in found}
    if len(steps) > 1:
        raise PipelineError(f"{path}: the series step by {' and '.join(sorted(steps))}: give series of one step")
    return found, numeric


def prepare(path: str, *, time_column: str, label_column: str | None, series_id_column: str | None,
            ignore_columns=(), window: int | None, horizon: int, season: int | None, test_split: float,
            validation_split: float) -> Series:
    """The series of the file at `path`, checked, with their periods and every split's windows."""
    read, numeric = read_series(path, time_column=time_column, label_column=label_column,
                                series_id_column=series_id_column, ignored=ignore_columns)
    season = season or read[0][4]
    window = window or default_window(season, horizon)
    periods = tuple(_periods(len(v), window, horizon, test_split, validation_split,
                             path + (f", series {name!r}" if name else "")) for name, _, v, _, _ in read)
    values = tuple(v for _, _, v, _, _ in read)
    return Series(label_column, tuple(numeric), tuple(r[0] for r in read), values, tuple(r[1] for r in read),
                  read[0][3], season, window, horizon, periods, _window_ends(values, periods, window, horizon))


@dataclasses.dataclass(frozen=True)
class Windows:
    """One split's windows, built on demand from the series (Examples): {"window": [window, columns] float32,
    "label": [horizon] float32} in time order per series."""
    series: Series
    split: str

    @property
    def count(self) -> int:
        return len(self.series.ends[self.split])

    def read(self, start: int = 0, stop: int | None = None, shuffle_seed: int | None = None,
             worker: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
        s = self.series
        offsets = np.cumsum([0] + [len(v) for v in s.values])
        flat = tf.constant(np.concatenate(s.values))
        ends = s.ends[self.split][start:stop]
        positions = offsets[ends[:, 0]] + ends[:, 1]
        window, horizon, columns = s.window, s.horizon, len(s.columns)

        def example(end):
            return {"window": tf.reshape(flat[end - window + 1:end + 1], (window, columns)),
                    "label": tf.reshape(flat[end + 1:end + 1 + horizon, 0], (horizon,))}
        ds = tf.data.Dataset.from_tensor_slices(positions).map(example)
        return ds.shard(worker[1], worker[0]) if worker[1] > 1 else ds
