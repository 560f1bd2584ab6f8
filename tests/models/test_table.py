"""The table encoder's statistics, learned in one streamed pass: on columns of known distributions they are the
distributions' own, whatever the batches."""

import numpy as np

from models.table import ColumnStats


def test_streamed_statistics_equal_one_pass_and_the_known_distribution():
    rng = np.random.default_rng(0)
    values = rng.normal(5.0, 2.0, 100_000).astype(np.float32)
    values[rng.random(len(values)) < 0.1] = np.nan  # missing cells are not counted
    kinds = rng.choice(np.array(["a", "b", "c"], object), len(values), p=[0.6, 0.3, 0.1])
    streamed = ColumnStats()
    for start in range(0, len(values), 777):  # batches of an odd size, the last one short
        streamed.add({"x": values[start:start + 777], "kind": kinds[start:start + 777]})
    (x, kind) = streamed.describe()
    filled = values[~np.isnan(values)].astype(np.float64)
    assert x["kind"] == "numeric" and abs(x["mean"] - filled.mean()) < 1e-9 and abs(x["std"] - filled.std()) < 1e-9
    assert abs(x["mean"] - 5.0) < 0.03 and abs(x["std"] - 2.0) < 0.03
    assert kind == {"input": "kind", "kind": "categorical", "categories": ["a", "b", "c"]}
    assert abs(streamed.counts["kind"]["a"] / len(kinds) - 0.6) < 0.01
