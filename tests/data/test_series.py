"""A CSV time series: its periods, its windows (which never see a later split), the season, and bad series."""

import numpy as np
import pytest

from pipelines.data import series
from pipelines.errors import PipelineError
from tests import series as made


def prepare(path, **settings):
    settings = {"time_column": "month", "label_column": "passengers", "series_id_column": None, "window": 24,
                "horizon": 12, "season": None, "test_split": 0.2, "validation_split": 0.1, **settings}
    return series.prepare(str(path), **settings)


def test_splits_are_periods_in_time_and_no_window_reads_or_targets_a_later_split(tmp_path):
    """Each step's value is its own index: any value a train or validation window holds (as input or target) that
    belongs to a later period would show as a number at or past that period's start."""
    path = made.write(tmp_path / "t.csv", ["month", "passengers"], zip(made.months(240), range(240)))
    s = prepare(path, horizon=6)
    validation_start, test_start = s.periods[0]
    assert (validation_start, test_start) == (240 - 48 - 19, 240 - 48)  # test 20% (48), validation 10% of the rest
    seen = {}
    for split in ("train", "validation", "test"):
        examples = list(series.Windows(s, split).read().as_numpy_iterator())
        assert len(examples) == s.ends[split].shape[0] > 0
        seen[split] = examples
        for e in examples:  # a window is its last 24 steps and its target the next 6
            end = int(e["window"][-1, 0])
            assert e["window"][:, 0].tolist() == list(range(end - 23, end + 1))
            assert e["label"].tolist() == list(range(end + 1, end + 7))
    assert max(max(e["window"].max(), e["label"].max()) for e in seen["train"]) < validation_start
    assert max(max(e["window"].max(), e["label"].max()) for e in seen["validation"]) < test_start
    assert min(e["label"].min() for e in seen["test"]) >= test_start  # a test target is never another's
    assert min(e["label"].min() for e in seen["validation"]) >= validation_start
    assert len(seen["test"]) == 48 - 6 + 1  # a window ends at every step: rolling origin over the test period


def test_the_season_comes_from_the_step_and_the_window_from_the_season(tmp_path):
    monthly = prepare(made.monthly_csv(tmp_path / "m.csv", made.seasonal()), window=None)
    assert (monthly.step, monthly.season, monthly.window) == ("1 month", 12, 24)
    daily = prepare(made.stores_csv(tmp_path / "d.csv"), time_column="date", label_column="units",
                    series_id_column="store", window=None, horizon=7)
    assert (daily.step, daily.season, daily.window, daily.ids) == ("1 day", 7, 14, ("store0", "store1", "store2"))
    assert daily.columns == ("units", "price") and daily.values[0].shape == (200, 2)
    numbered = made.write(tmp_path / "n.csv", ["t", "y"], ((i * 0.5, np.sin(i)) for i in range(100)))
    assert prepare(numbered, time_column="t", label_column="y", horizon=2, window=None).season == 1


def test_rows_out_of_order_are_sorted_by_time(tmp_path):
    rows = list(zip(made.months(100), range(100)))
    path = made.write(tmp_path / "t.csv", ["month", "passengers"], rows[50:] + rows[:50])
    assert prepare(path, window=12, horizon=3).values[0][:, 0].tolist() == list(range(100))


@pytest.mark.parametrize("rows,settings,message", [
    (lambda: zip(made.months(100), range(100)), dict(time_column="date"),
     "--time_column=date: .* has no such column: its columns are month, passengers"),
    (lambda: [("soon", 1)] + list(zip(made.months(99), range(99))), {},
     r"column 'month', data row 1: 'soon' is not a time"),
    (lambda: [(m, i) for i, m in enumerate(made.months(100)) if i != 40], {},
     r"after 1952-04 \(data row 40\) the next step is 1952-06, and the series steps by 1 month: add the missing rows"),
    (lambda: [(m, i) for i, m in enumerate(made.months(100))] + [("1950-03", 5)], {},
     r"the time 1950-03 twice in column 'month': one row per step \(several series in one file need "
     r"--series_id_column\)"),
    (lambda: zip(made.months(100), [7] * 100), {}, "the label is 7 at every step: there is nothing to forecast"),
    (lambda: [(m, "" if i == 9 else i) for i, m in enumerate(made.months(100))], {},
     "column 'passengers', data row 10: is missing: fill it"),
    (lambda: [(m, "inf" if i == 9 else i) for i, m in enumerate(made.months(100))], {},
     "column 'passengers', data row 10: 'inf' is not a finite number: fill it"),
    (lambda: [("1e400", 1)] + [(i, i) for i in range(2, 100)], {},
     r"column 'month', data row 1: '1e400' is not a time"),
    (lambda: zip(made.months(50), range(50)), dict(window=24, horizon=12),
     "has 50 steps: with --window=24 and --horizon=12, its train period .* holds no window: it needs at least 60"),
])
def test_bad_series_are_one_line_naming_the_first_problem(tmp_path, rows, settings, message):
    path = made.write(tmp_path / "t.csv", ["month", "passengers"], rows())
    with pytest.raises(PipelineError, match=message):
        prepare(path, **settings)


def test_a_covariate_of_words_is_named_with_the_fix(tmp_path):
    path = made.write(tmp_path / "t.csv", ["month", "passengers", "weather"],
                      ((m, i, "sunny") for i, m in enumerate(made.months(100))))
    with pytest.raises(PipelineError, match="column 'weather', data row 1: 'sunny' is not a number: fill it, or leave "
                                            "the column out with --ignore_columns=weather"):
        prepare(path)
    assert prepare(path, ignore_columns=("weather",)).columns == ("passengers",)


def test_iso_times_with_an_offset_are_the_same_instants_in_utc(tmp_path):
    """2024-01-01T00:00:00+02:00 is 2023-12-31T22:00 UTC: a series written in local time with its offset is
    regular in UTC, even across a change of offset (summer time)."""
    base = np.datetime64("2024-03-30T00:00")
    rows = []
    for i in range(100):
        utc = base + np.timedelta64(i, "h")
        offset = 1 if i < 50 else 2  # summer time from the 50th hour: local clocks jump, UTC does not
        local = str(utc + np.timedelta64(offset, "h"))[:16]
        rows.append((f"{local}:00+0{offset}:00", np.sin(i / 3)))
    path = made.write(tmp_path / "t.csv", ["time", "load"], rows)
    s = prepare(path, time_column="time", label_column="load", window=24, horizon=6)
    assert (s.step, s.season, len(s.values[0])) == ("60 minutes", 24, 100)
    assert s.times[0][0] == base and s.times[0][-1] == base + np.timedelta64(99, "h")


def test_a_regular_decimal_step_is_regular(tmp_path):
    path = made.write(tmp_path / "t.csv", ["t", "y"], ((round(i * 0.1, 1), np.sin(i / 4)) for i in range(120)))
    s = prepare(path, time_column="t", label_column="y", window=12, horizon=3)
    assert s.step == "0.1" and len(s.values[0]) == 120
    gap = made.write(tmp_path / "g.csv", ["t", "y"], ((round(i * 0.1, 1), i) for i in range(120) if i != 60))
    with pytest.raises(PipelineError, match=r"after 5.9 \(data row 60\) the next step is 6.1, and the series steps "
                                            "by 0.1: add the missing rows"):
        prepare(gap, time_column="t", label_column="y", window=12, horizon=3)


@pytest.mark.parametrize("bad,message", [
    ("1952-05-01", r"data row 41: '1952-05-01' is not an ISO month as the first row's '1949-01' is"),
    ("May 1952", r"data row 41: 'May 1952' is not an ISO month as the first row's '1949-01' is"),
    ("1952-13", r"data row 41: '1952-13' is not a date"),
])
def test_a_time_of_another_form_is_named_by_its_own_row(tmp_path, bad, message):
    rows = [(bad if i == 40 else m, i) for i, m in enumerate(made.months(100))]
    with pytest.raises(PipelineError, match=message):
        prepare(made.write(tmp_path / "t.csv", ["month", "passengers"], rows))


def test_the_label_named_as_the_time_column_is_one_line(tmp_path):
    path = made.write(tmp_path / "t.csv", ["month", "passengers"], zip(made.months(100), range(100)))
    with pytest.raises(PipelineError, match="--label_column and --time_column both name 'month'"):
        prepare(path, label_column="month")


def test_a_flat_history_is_read_for_forecasting_though_never_learned_from(tmp_path):
    path = made.write(tmp_path / "t.csv", ["month", "passengers"], zip(made.months(30), [7] * 30))
    (found,), _ = series.read_series(str(path), time_column="month", label_column="passengers",
                                     series_id_column=None, training=False)
    assert found[2][:, 0].tolist() == [7] * 30
    with pytest.raises(PipelineError, match="the label is 7 at every step"):
        series.read_series(str(path), time_column="month", label_column="passengers", series_id_column=None)


@pytest.mark.parametrize("day", ["first", "last"])
def test_dates_on_the_first_or_last_day_of_each_month_are_a_monthly_series(tmp_path, day):
    months = np.arange(np.datetime64("1949-01"), np.datetime64("1949-01") + 100)
    dates = months.astype("datetime64[D]") if day == "first" else (months + 1).astype("datetime64[D]") - 1
    path = made.write(tmp_path / "t.csv", ["month", "passengers"], zip(map(str, dates), range(100)))
    s = prepare(path, window=24, horizon=12)
    assert (s.step, s.season, s.times[0][0]) == ("1 month", 12, np.datetime64("1949-01"))


def test_a_markets_trading_days_are_regular_and_a_missing_week_is_a_gap(tmp_path):
    """A stock's closes: weekdays only, weekends skipped, a holiday a missing weekday (Good Friday, Christmas)."""
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-12-31"))
    trading = [d for d in days[np.is_busday(days)] if str(d) not in ("2024-03-29", "2024-12-25", "2024-12-26")]
    path = made.write(tmp_path / "t.csv", ["date", "close"], ((str(d), 100 + np.sin(i)) for i, d in enumerate(trading)))
    s = prepare(path, time_column="date", label_column="close", window=20, horizon=5)
    assert (s.step, s.season, len(s.values[0])) == ("1 trading day", 5, len(trading))
    gap = [d for d in trading if not np.datetime64("2024-06-03") <= d < np.datetime64("2024-06-17")]
    gapped = made.write(tmp_path / "g.csv", ["date", "close"], ((str(d), i) for i, d in enumerate(gap)))
    with pytest.raises(PipelineError, match="after 2024-05-31 .* the next step is 2024-06-17, and the series steps "
                                            "by 1 trading day: add the missing rows"):
        prepare(gapped, time_column="date", label_column="close", window=20, horizon=5)
