"""Hugging Face Datasets in (pipelines/data/hugging_face.py): data sets written with `save_to_disk` by the real
`datasets` library, an image set, a text set and a table, each trained with its own splits and its ClassLabel's
names; a Hub name missing from the local cache is one line within seconds."""

import json
import time

import numpy as np
import pytest

from pipelines import runner
from pipelines.data import sources
from pipelines.errors import PipelineError
from tests.conftest import assert_one_line_error, cli_in_process, config_from_flags
from tests.pictures import SHAPES, picture

datasets = pytest.importorskip("datasets")


def image_set(folder, count: int = 90, seed: int = 0):
    rng = np.random.default_rng(seed)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(SHAPES))})
    rows = {"image": [picture(rng, 32, SHAPES[i % 3], tinted=True) for i in range(count)],
            "label": [i % 3 for i in range(count)]}
    split = datasets.Dataset.from_dict(rows, features=features).train_test_split(test_size=30, seed=0)
    split.save_to_disk(str(folder))
    return str(folder)


def test_an_image_set_trains_with_its_own_splits_and_class_names_and_verifies(tmp_path):
    path = image_set(tmp_path / "shapes")
    runner.run(config_from_flags("--task=conv", f"--dataset=hf:{path}", "--conv_filters=8,16", "--epochs=2",
                                 "--stages=train,evaluate,export,verify", "--tflite_variants=float32", "--noonnx",
                                 f"--output_dir={tmp_path / 'runs'}"))
    metrics = json.loads((tmp_path / "runs" / "conv" / "metrics.json").read_text())
    assert metrics["labels"] == sorted(SHAPES) and metrics["num_test_examples"] == 30  # its test split
    assert (tmp_path / "runs" / "conv" / "labels.txt").read_text().split() == sorted(SHAPES)
    assert json.loads((tmp_path / "runs" / "conv" / "export_report.json").read_text())["passed"]
    assert sources.data_hash(f"hf:{path}") != sources.data_hash(f"hf:{image_set(tmp_path / 'other', seed=1)}")


def test_a_text_set_and_a_table_find_their_family_from_their_features(tmp_path):
    words = {"good": ["fine", "great", "superb"], "bad": ["dull", "awful", "poor"]}
    rng = np.random.default_rng(0)
    texts = [(f"a {rng.choice(words[k])} film, {rng.choice(words[k])} acting", i % 2)
             for i, k in enumerate(["bad", "good"] * 100)]
    text = datasets.Dataset.from_dict({"text": [t for t, _ in texts], "label": [y for _, y in texts]},
                                      features=datasets.Features({"text": datasets.Value("string"),
                                                                  "label": datasets.ClassLabel(names=["bad", "good"])}))
    text.save_to_disk(str(tmp_path / "reviews"))
    runner.run(config_from_flags("--task=recurrent", f"--dataset=hf:{tmp_path / 'reviews'}", "--rnn_units=8",
                                 "--sequence_length=8", "--epochs=2", "--stages=train,evaluate",
                                 f"--output_dir={tmp_path / 'text'}"))
    assert json.loads((tmp_path / "text" / "recurrent" / "metrics.json").read_text())["labels"] == ["bad", "good"]
    x = rng.normal(size=(200, 3))
    table = datasets.Dataset.from_dict(
        {"a": x[:, 0], "b": x[:, 1], "kind": ["red" if v > 0 else "blue" for v in x[:, 2]],
         "label": [int(v > 0) for v in x[:, 0] + x[:, 1]]},
        features=datasets.Features({"a": datasets.Value("float64"), "b": datasets.Value("float64"),
                                    "kind": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["low", "high"])}))
    table.save_to_disk(str(tmp_path / "points"))
    runner.run(config_from_flags(f"--dataset=hf:{tmp_path / 'points'}", "--stages=train,evaluate",
                                 f"--output_dir={tmp_path / 'table'}"))
    metrics = json.loads((tmp_path / "table" / "dense" / "metrics.json").read_text())
    assert metrics["labels"] == ["high", "low"] and metrics["test_accuracy"] > 0.8  # a table, its names as classes


def test_a_hub_name_missing_from_the_cache_is_one_line_within_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    start = time.perf_counter()
    assert_one_line_error(cli_in_process("--dataset=hf:someone/not_cached_anywhere", "--label_column=label",
                                         f"--output_dir={tmp_path}"),
                          "is neither a folder save_to_disk wrote nor a data set in the local Hugging Face cache")
    assert time.perf_counter() - start < 60
    with pytest.raises(PipelineError, match="--label_column=nope: the data set has no such column"):
        runner.run(config_from_flags(f"--dataset=hf:{image_set(tmp_path / 'shapes')}", "--label_column=nope",
                                     f"--output_dir={tmp_path}"))
