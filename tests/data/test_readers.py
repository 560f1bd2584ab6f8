"""Input formats are records (pipelines/data/sources.py READERS): the reader that recognises a data set reads it and
says which settings apply; a format defined in this file alone (NumPy's .npz) is accepted by the flags, read,
fingerprinted, trained on, exported and reported."""

import json

import numpy as np
import pytest

from pipelines import runner
from pipelines.data import sources
from pipelines.errors import PipelineError
from tests.conftest import config_from_flags


def test_each_kind_of_data_set_has_its_reader_and_its_settings(tmp_path, fake_idx_dir):
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")

    def reader(name, **settings):
        return sources.reader_of(sources.Request(name, **settings)).name
    assert reader(str(tmp_path)) == "folder" and reader(str(table)) == "table"
    assert reader(str(table), time_column="a") == "series"
    assert reader(str(table), rows_as_sequences=True) == "wide sequences"
    assert reader(str(table), rows_as_sequences=True, time_column="a", problem="classification") == "long sequences"
    assert reader("fashion_mnist", idx_dir=fake_idx_dir) == "offline Fashion-MNIST"
    assert reader("tfds:tf_flowers") == reader("mnist") == "tfds"
    assert "horizon" in sources.settings_that_apply(sources.Request(str(table), time_column="a"))
    assert sources.settings_given_in_vain(sources.Request(str(table)), {"horizon", "label_column", "data_dir"}) == [
        "horizon"]
    assert reader("x.parquet") == reader("x.feather") == reader("x.arrow") == "table"
    with pytest.raises(PipelineError, match="--dataset=x.xlsx: no reader recognises it"):
        sources.reader_of(sources.Request("x.xlsx"))
    assert not sources.known(str(tmp_path / "missing.csv")) and sources.known(str(table))


def load_npz(request: sources.Request) -> sources.DataSet:
    import tensorflow as tf
    with np.load(request.name) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    cut = round(len(images) * (1 - request.test_split))

    def split(a, b):
        return sources.streamed(tf.data.Dataset.from_tensor_slices({"image": images[a:b], "label": labels[a:b]}))
    return sources.DataSet(request.name, split(0, cut), split(cut, None), ("dark", "bright"), source="npz")


NPZ = sources.Reader("npz", lambda r: r.name.endswith(".npz"), load_npz, frozenset({"test_split"}),
                     fingerprint=sources.file_sha256)


def test_a_format_defined_here_is_read_fingerprinted_trained_on_and_reported(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    images = (labels[:, None, None, None] * 150 + rng.integers(0, 100, (400, 12, 12, 1))).astype(np.uint8)
    path = tmp_path / "pictures.npz"
    np.savez(path, images=images, labels=labels)
    monkeypatch.setattr(sources, "READERS", (NPZ, *sources.READERS))
    config = config_from_flags("--task=dense", f"--dataset={path}", "--epochs=5", "--batch_size=16", "--noonnx",
                               "--tflite_variants=float32", f"--output_dir={tmp_path}", "--test_split=0.25",
                               "--stages=train,evaluate,export,verify,report")
    runner.run(config)
    task_dir = tmp_path / "dense"
    assert json.loads((task_dir / "metrics.json").read_text())["test_accuracy"] > 0.8  # chance: 0.5
    fingerprints = json.loads((task_dir / "fingerprints.json").read_text())
    assert fingerprints["train"]["inputs"]["<dataset folder>"] == sources.file_sha256(str(path))
    assert "| test_split | 0.25 |" in (task_dir / "report.md").read_text()
    with pytest.raises(PipelineError, match="--horizon does not apply to --dataset="):
        runner.run(config_from_flags("--task=dense", f"--dataset={path}", "--horizon=3", f"--output_dir={tmp_path}",
                                     "--stages=train"))


def typed_table():
    import datetime

    import pyarrow as pa
    rng = np.random.default_rng(0)
    n = 300
    return pa.table({
        "age": pa.array([int(v) if i % 37 else None for i, v in enumerate(rng.integers(1, 80, n))], pa.int64()),
        "fare": pa.array([float(v) for v in rng.lognormal(3, 1, n)], pa.float64()),
        "sex": pa.array([["male", "female"][int(v)] for v in rng.integers(0, 2, n)]),
        "member": pa.array([bool(v) for v in rng.integers(0, 2, n)]),
        "joined": pa.array([datetime.date(2020, 1, 1) + datetime.timedelta(days=i) for i in range(n)]),
        "survived": pa.array([int(v) for v in rng.integers(0, 2, n)], pa.int64())})


def test_parquet_feather_and_arrow_files_read_as_the_same_rows_a_batch_at_a_time(tmp_path, monkeypatch):
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    from pipelines.data import tables
    table = typed_table()
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=64)
    feather.write_feather(table, tmp_path / "t.feather", chunksize=50)
    with ipc.new_stream(tmp_path / "t.arrow", table.schema) as stream:
        stream.write_table(table, max_chunksize=70)
    monkeypatch.setattr(tables, "COLUMNAR_BATCH", 40)  # a Parquet row group is read in pieces too
    rows = [list(tables.read_rows(str(tmp_path / f"t.{kind}"))) for kind in ("parquet", "feather", "arrow")]
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 301
    assert rows[0][0] == ["age", "fare", "sex", "member", "joined", "survived"]
    assert rows[0][1][4] == "2020-01-01" and rows[0][1][3] in ("true", "false") and rows[0][38][0] == ""
    fares = table.column("fare").to_pylist()
    assert [float(r[1]) for r in rows[0][1:]] == fares  # every float reads back as itself


def test_a_parquet_table_trains_and_reports_like_its_csv(tmp_path):
    import pyarrow.parquet as pq
    pq.write_table(typed_table(), tmp_path / "people.parquet", row_group_size=100)
    runner.run(config_from_flags(f"--dataset={tmp_path / 'people.parquet'}", "--label_column=survived",
                                 "--epochs=2", "--stages=train,evaluate", f"--output_dir={tmp_path}"))
    metrics = json.loads((tmp_path / "dense" / "metrics.json").read_text())
    assert metrics["num_test_examples"] == 60 and "baseline_gradient_boosting_accuracy" in metrics
    with pytest.raises(PipelineError, match="cannot read .*broken.parquet"):
        (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
        runner.run(config_from_flags(f"--dataset={tmp_path / 'broken.parquet'}", "--label_column=survived",
                                     f"--output_dir={tmp_path / 'b'}"))


def test_a_parquet_series_with_typed_times_reads_as_its_csv(tmp_path):
    """A series as Parquet (a real date type, float values): the same steps, season and windows as its CSV."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.data import series
    from tests import series as made
    values = np.round(made.seasonal(60), 3)
    made.monthly_csv(tmp_path / "s.csv", values)
    months = [datetime.date(1949 + i // 12, 1 + i % 12, 1) for i in range(60)]
    pq.write_table(pa.table({"month": pa.array(months), "passengers": pa.array(values.tolist(), pa.float64())}),
                   tmp_path / "s.parquet", row_group_size=16)
    read = [series.prepare(str(tmp_path / f"s.{kind}"), time_column="month", label_column="passengers",
                           series_id_column=None, window=None, horizon=3, season=None, test_split=0.2,
                           validation_split=0.1) for kind in ("csv", "parquet")]
    assert read[1].season == read[0].season == 12 and read[1].step == read[0].step
    np.testing.assert_array_equal(read[1].values[0], read[0].values[0])
    assert all(np.array_equal(read[1].ends[split], read[0].ends[split]) for split in ("train", "validation", "test"))
