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
    with pytest.raises(PipelineError, match="--dataset=x.parquet: no reader recognises it"):
        sources.reader_of(sources.Request("x.parquet"))
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
