"""The prepared-example cache: written once, read by range, shuffled by piece, split among workers, rebuilt when
damaged, and never read half-written by a second process."""

import json
import os
import threading
import time

import numpy as np
import pytest

from pipelines.data import cache
from pipelines.errors import PipelineError

SCHEMA = {"image": cache.Feature("uint8", (2, 3, 1)), "label": cache.Feature("int64"),
          "name": cache.Feature("string"), "size": cache.Feature("float32")}


def writer_of(count: int, calls: list):
    def write(start):
        calls.append(1)
        out = start(SCHEMA)
        for i in range(count):
            out.add("train" if i % 4 else "test", {"image": np.full((2, 3, 1), i % 256, np.uint8), "label": i,
                                                   "name": f"n{i}", "size": i / 2})
        return ("train", "test"), {"count": count}
    return write


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(cache, "MAX_SHARD_EXAMPLES", 10)  # many shards of a small split


def labels(ds) -> list[int]:
    return [int(e["label"]) for e in ds.as_numpy_iterator()]


def test_a_cache_is_written_once_and_read_back_as_it_was_written(tmp_path, small_shards):
    calls = []
    splits, info = cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    again, _ = cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    assert calls == [1] and info == {"count": 100}
    train = splits["train"]
    assert train.count == 75 and len(train.shards) == 8 and again["train"].shards == train.shards
    first = next(train.read().as_numpy_iterator())
    assert first["image"].shape == (2, 3, 1) and first["image"].dtype == np.uint8 and first["name"] == b"n1"
    assert first["size"] == pytest.approx(0.5)
    assert labels(splits["test"].read()) == list(range(0, 100, 4))


def test_a_range_reads_exactly_its_examples_across_shards(tmp_path, small_shards):
    train = cache.prepared(str(tmp_path), "k", writer_of(100, []), "test data")[0]["train"]
    everything = labels(train.read())
    assert labels(train.read(7, 23)) == everything[7:23] and labels(train.read(70)) == everything[70:]


def test_a_shuffled_read_covers_the_range_in_another_order_each_pass(tmp_path, small_shards):
    train = cache.prepared(str(tmp_path), "k", writer_of(100, []), "test data")[0]["train"]
    ds = train.read(0, 60, shuffle_seed=3)
    one, two = labels(ds), labels(ds)
    assert sorted(one) == sorted(two) == sorted(labels(train.read(0, 60)))
    assert one != two != labels(train.read(0, 60))


def test_workers_read_disjoint_shares_that_together_are_the_whole_range(tmp_path, small_shards):
    train = cache.prepared(str(tmp_path), "k", writer_of(100, []), "test data")[0]["train"]
    shares = [labels(train.read(0, 70, shuffle_seed=1, worker=(i, 2))) for i in range(2)]
    assert not set(shares[0]) & set(shares[1]) and all(shares)
    assert sorted(shares[0] + shares[1]) == sorted(labels(train.read(0, 70)))


def test_a_split_of_one_shard_is_still_shared_among_workers(tmp_path):
    train = cache.prepared(str(tmp_path), "k", writer_of(100, []), "test data")[0]["train"]
    assert len(train.shards) == 1
    shares = [labels(train.read(worker=(i, 3))) for i in range(3)]
    assert min(map(len, shares)) >= 15 and sorted(sum(shares, [])) == sorted(labels(train.read()))  # 75 in all


def test_a_truncated_shard_is_named_in_one_line_and_the_cache_prepared_again(tmp_path, small_shards, capsys):
    calls = []
    splits, _ = cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    shard = splits["train"].shards[2].path
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)
    splits, _ = cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "damaged" in line]
    assert "train-00002.tfrecord is" in line and "preparing it again" in line and calls == [1, 1]
    assert labels(splits["train"].read()) == [i for i in range(100) if i % 4]


def edit_manifest(folder, change) -> None:
    with open(folder / cache.MANIFEST) as f:
        manifest = json.load(f)
    change(manifest)
    with open(folder / cache.MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1)


@pytest.mark.parametrize("change", [
    lambda m: m["splits"]["train"]["shards"][0].update(count=5),    # would read 5 of its 10 examples
    lambda m: m["splits"]["train"]["shards"][0].update(count=20),   # would fail mid-epoch in TensorFlow
    lambda m: m["schema"]["image"].update(shape=[3, 2, 1]),         # the same bytes, read in another shape
    lambda m: m["schema"]["image"].update(shape=[4, 3, 1]),         # more bytes than each example holds
], ids=["count lowered", "count raised", "shape turned", "shape grown"])
def test_an_edited_manifest_is_a_damaged_cache_prepared_again(tmp_path, small_shards, capsys, change):
    calls = []
    cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    edit_manifest(tmp_path / "k", change)
    splits, _ = cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "damaged" in line]
    assert "manifest.json is not the file written" in line and "preparing it again" in line and calls == [1, 1]
    train = splits["train"]
    assert train.count == 75 and labels(train.read()) == [i for i in range(100) if i % 4]
    assert next(train.read().as_numpy_iterator())["image"].shape == (2, 3, 1)


def test_a_cache_whose_manifest_has_no_hash_beside_it_is_prepared_again(tmp_path, capsys):
    calls = []
    cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    os.remove(tmp_path / "k" / cache.MANIFEST_SHA256)  # as an older dlpipe left it, or a hand that removed it
    splits, _ = cache.prepared(str(tmp_path), "k", writer_of(100, calls), "test data")
    assert "(manifest.sha256 is missing or unreadable): preparing it again" in capsys.readouterr().out
    assert calls == [1, 1] and splits["train"].count == 75


def test_a_failed_preparation_leaves_no_cache(tmp_path):
    def fail(start):
        out = start(SCHEMA)
        out.add("train", {"image": np.zeros((2, 3, 1), np.uint8), "label": 0, "name": "", "size": 0.0})
        raise PipelineError("cannot read image x.png")
    with pytest.raises(PipelineError):
        cache.prepared(str(tmp_path), "k", fail, "test data")
    assert [name for name in os.listdir(tmp_path) if not name.startswith(".")] == []


def test_a_second_process_waits_for_the_first_and_reads_what_it_wrote(tmp_path, small_shards):
    calls, results = [], []
    slow = writer_of(100, calls)

    def slow_write(start):
        time.sleep(0.5)  # the other reader arrives while this one writes
        return slow(start)
    threads = [threading.Thread(target=lambda: results.append(cache.prepared(str(tmp_path), "k", slow_write, "x")))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1] and results[0][0]["train"].shards == results[1][0]["train"].shards
