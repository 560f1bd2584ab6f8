"""A time series of one's own, as a CSV: forecast one column `horizon` steps ahead from `window` steps of history.

    month,passengers                    date,store,units,price
    1949-01,112                         2024-01-01,A,31,2.5
    1949-02,118                         2024-01-01,B,12,3.0

`time_column` orders the rows: ISO dates (1949-01, 2024-01-31, 2024-01-31 13:30, 2024-01-31T13:30:00+02:00: an
offset is read as the same instant in UTC) or numbers (a step of 0.1 is regular). Dates all on the first, or all on
the last, day of their months are months. `label_column` is
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
trading days 5 (weekdays only, weekends skipped, a holiday a missing weekday), hourly 24, half-hourly 48; plain
numbers have none (1).
"""

import dataclasses
import re

import numpy as np
import tensorflow as tf

from pipelines.data import tables
from pipelines.errors import PipelineError

# ISO 8601: a month, a day, or a time to the minute or (fractional) second, with an optional UTC offset.
DATE = re.compile(r"^\d{4}-\d{2}(-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$")
OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
# Numbers as times: two steps are the same when they differ by less than this share of the step (0.1 + 0.2 is not
# 0.3 in binary, and a regular step of 0.1 must not read as a gap).
STEP_TOLERANCE = 1e-6
SEASONS = {"M": 12, "Q": 4, "W": 52, "D": 7, "B": 5, "h": 24, "30m": 48}  # a step's name → its season (B: trading)
# Daily rows on weekdays only, the weekends skipped, are a market's trading days: regular in trading days, where a
# holiday is a missing weekday (up to this many in a row), and a week is 5 steps.
TRADING_DAY = "1 trading day"
MAX_HOLIDAYS_IN_A_ROW = 3


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


def _utc(text: str) -> str:
    """An ISO time with a UTC offset as the same instant in UTC, without the offset (NumPy's datetime64 reads none);
    a time without one as it is."""
    found = OFFSET.search(text) if len(text) > 10 else None
    if not found:
        return text.replace(" ", "T")
    offset = found.group(1)
    local = np.datetime64(text[:found.start()].replace(" ", "T"), "ns")
    if offset == "Z":
        return str(local)
    sign = 1 if offset[0] == "+" else -1
    hours, minutes = int(offset[1:3]), int(offset[-2:])
    return str(local - sign * (np.timedelta64(hours, "h") + np.timedelta64(minutes, "m")))


def _dates(path: str, column: str, texts: list[str], rows: list[int]) -> np.ndarray:
    """ISO dates of one form (all months, all days, or all times), or one line naming the first of another."""
    form = "month" if len(texts[0]) == 7 else "day" if len(texts[0]) == 10 else "time"
    for text, row in zip(texts, rows):
        mine = "month" if len(text) == 7 else "day" if len(text) == 10 else "time"
        if not DATE.match(text) or mine != form:
            raise PipelineError(f"{path}, column {column!r}, data row {row}: {text!r} is not an ISO {form} as the "
                                f"first row's {texts[0]!r} is: write every time in one form")
    unit = {"month": "M", "day": "D", "time": "ns" if any("." in t for t in texts) else "s"}[form]
    try:
        times = np.array([_utc(t) for t in texts], f"datetime64[{unit}]")
    except ValueError as e:  # a well-formed but impossible date: month 13, 31 February
        bad = next((t, r) for t, r in zip(texts, rows) if not _valid(t, unit))
        raise PipelineError(f"{path}, column {column!r}, data row {bad[1]}: {bad[0]!r} is not a date ({e})") from None
    return _as_months(times) if form == "day" else times


def _as_months(days: np.ndarray) -> np.ndarray:
    """Days that all fall on the first, or all on the last, day of their month are months (1949-01-01 or
    1949-01-31 for January 1949, as spreadsheets and pandas write a monthly or quarterly series); others days."""
    months = days.astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    last = (months + 1).astype("datetime64[D]") - 1
    return months if len(days) > 1 and (np.all(days == first) or np.all(days == last)) else days


def _valid(text: str, unit: str) -> bool:
    try:
        np.datetime64(_utc(text), unit)
        return True
    except ValueError:
        return False


def parse_times(path: str, column: str, texts: list[str], rows: list[int]):
    """The time column as datetime64 (ISO dates; times with an offset in UTC) or float64 (numbers), or one line
    naming the first bad value."""
    if texts and DATE.match(texts[0]):
        return _dates(path, column, texts, rows)
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
    differences = np.diff(times)
    if times.dtype.kind != "M":  # numbers: differences equal up to rounding are one step
        typical = float(np.median(differences))
        rounded = np.round(differences / typical, 6) * typical if typical > 0 else differences
        values, counts = np.unique(rounded, return_counts=True)
        step = float(values[np.argmax(counts)])
        return step, f"{step:.6g}", 1
    if _trading_days(times):
        return np.timedelta64(1, "D"), TRADING_DAY, SEASONS["B"]
    differences, counts = np.unique(differences, return_counts=True)
    step = differences[np.argmax(counts)]
    if np.datetime_data(times.dtype)[0] == "M":
        months = int(step / np.timedelta64(1, "M"))
        return step, f"{months} month{'s' * (months > 1)}", {1: SEASONS["M"], 3: SEASONS["Q"]}.get(months, 1)
    seconds = step / np.timedelta64(1, "s")
    if seconds != int(seconds):
        return step, f"{seconds:g} seconds", 1
    seconds = int(seconds)
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
    if label_column in (time_column, series_id_column):
        flag = "--time_column" if label_column == time_column else "--series_id_column"
        raise PipelineError(f"--label_column and {flag} both name {label_column!r}: the label is the value "
                            f"forecast, {flag} {'orders the rows' if flag == '--time_column' else 'names a series'}: "
                            "name another column for one of them")
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


def _trading_days(times: np.ndarray) -> bool:
    """Whether daily rows are a market's trading days: every one a weekday, and the weekends skipped."""
    if np.datetime_data(times.dtype)[0] != "D" or len(times) < 2 or not np.all(np.is_busday(times)):
        return False
    differences = np.diff(times).astype(int)
    return bool(np.any(differences == 3)) and int(np.median(differences)) == 1


def _gaps(times: np.ndarray, step, step_name: str) -> np.ndarray:
    """Where a step other than `step` follows (numbers: beyond rounding; trading days: more weekdays missing in a
    row than holidays take)."""
    if times.dtype.kind != "M":
        return np.flatnonzero(np.abs(np.diff(times) - step) > STEP_TOLERANCE * abs(step))
    if step_name == TRADING_DAY:
        return np.flatnonzero(np.busday_count(times[:-1], times[1:]) > 1 + MAX_HOLIDAYS_IN_A_ROW)
    return np.flatnonzero(np.diff(times) != step)


def _one_series(path, name, times, values, rows, time_column, training: bool = True):
    """One series in time order, checked: one row per step, a regular step; for training, enough steps and a
    label that changes (a trained model forecasts any history, a flat one too)."""
    order = np.argsort(times, kind="stable")
    times, values, rows = times[order], values[order], [rows[i] for i in order]
    where = f" of series {name!r}" if name else ""
    repeated = np.flatnonzero(np.diff(times) == np.zeros((), np.diff(times).dtype))
    if len(repeated):
        raise PipelineError(f"{path}, data rows {rows[repeated[0]]} and {rows[repeated[0] + 1]}{where}: the time "
                            f"{times[repeated[0]]} twice in column {time_column!r}: one row per step"
                            + (" (several series in one file need --series_id_column)" if not name else ""))
    if len(times) < (3 if training else 2):
        raise PipelineError(f"{path}{where} has {len(times)} rows: a series needs many steps to forecast")
    step, step_name, season = _step(times)
    gaps = _gaps(times, step, step_name)
    if len(gaps):
        raise PipelineError(f"{path}{where}: after {times[gaps[0]]} (data row {rows[gaps[0]]}) the next step is "
                            f"{times[gaps[0] + 1]}, and the series steps by {step_name}: add the missing rows (a "
                            "series must be regular) or give each stretch its own --series_id_column value")
    if training and np.all(values[:, 0] == values[0, 0]):
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
                ignored=(), numeric=None, training: bool = True) -> tuple[list[tuple], list[str]]:
    """Each series of the file, checked and in time order, as (name, times, values [steps, columns], step name,
    season); and the numeric columns, the label first. `training`: the checks of a series to learn from, beside
    those of any history (_one_series)."""
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
                                         time_column, training)))
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
