import numpy as np
import pytest
import tensorflow as tf

from pipelines.data.pipeline import make_input_pipeline
from pipelines.data.examples import image_example
from tests.conftest import make_image_dataset


def build(seed=0, **kwargs):
    options = dict(batch_size=8, seed=seed, validation_split=0.1)
    options.update(kwargs)
    return make_input_pipeline(make_image_dataset(num_train=100, num_test=40), image_example, **options)


def labels_of(ds: tf.data.Dataset) -> list[int]:
    return [int(y) for _, y in ds.unbatch().as_numpy_iterator()]


def test_batches_have_the_task_shape_and_dtypes():
    inputs = build()
    x, y = next(iter(inputs.train))
    assert x.shape == (8, 28, 28, 1) and x.dtype == tf.float32
    assert y.shape == (8,) and y.dtype == tf.int64
    assert inputs.train.element_spec[0].shape.as_list() == [None, 28, 28, 1]


def test_validation_is_the_last_tenth_of_train_and_test_is_untouched():
    inputs = build()
    assert (inputs.num_train, inputs.num_validation, inputs.num_test) == (90, 10, 40)
    # Example i has label i % 10 and pixels 20 × label: the validation examples are train's 90..99.
    assert labels_of(inputs.validation) == [i % 10 for i in range(90, 100)]
    assert sorted(labels_of(inputs.train)) == sorted(i % 10 for i in range(90))
    assert labels_of(inputs.test) == [i % 10 for i in range(40)]


def test_shuffle_is_seeded_and_differs_per_seed():
    first, again, other = labels_of(build(seed=1).train), labels_of(build(seed=1).train), labels_of(build(2).train)
    assert first == again
    assert first != other
    assert first != sorted(first)


def test_max_examples_take_the_first_examples_before_the_validation_carve():
    inputs = build(max_train_examples=50, max_test_examples=16)
    assert (inputs.num_train, inputs.num_validation, inputs.num_test) == (45, 5, 16)
    assert labels_of(inputs.validation) == [i % 10 for i in range(45, 50)]
    assert len(labels_of(inputs.test)) == 16


def test_pixels_reach_the_model_unscaled():
    x, y = next(iter(build().test))
    np.testing.assert_array_equal(x.numpy()[:, 0, 0, 0], y.numpy() * 20.0)


@pytest.mark.parametrize("split", [0.2, 0.5])
def test_validation_split_sets_the_carve(split):
    inputs = build(validation_split=split)
    assert inputs.num_validation == round(100 * split)


def test_the_probe_batch_is_the_first_train_examples_in_file_order_without_the_shuffled_pipeline():
    inputs = build()
    x, y = inputs.first_train_batch(12)
    assert x.shape == (12, 28, 28, 1) and [int(v) for v in y] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert [int(v) for v in inputs.first_train_batch(12)[1]] == [int(v) for v in y]  # fixed, not reshuffled


def test_each_pass_reshuffles_train_while_validation_and_test_repeat_their_batches():
    inputs = build()
    assert labels_of(inputs.train) != labels_of(inputs.train)
    for split in (inputs.validation, inputs.test):
        first, again = list(split.as_numpy_iterator()), list(split.as_numpy_iterator())
        assert len(first) == len(again) and all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))


def test_splits_run_without_the_autotuning_thread():
    inputs = build()
    assert all(split.options().autotune.enabled is False for split in (inputs.train, inputs.validation, inputs.test))


def cached_folder_dataset(tmp_path, count: int = 200):
    """A data set prepared on disk, in many small shards: numbered images, image i labelled i."""
    from pipelines.data import cache, sources
    from pipelines.data.cache import Feature

    def write(start):
        out = start({"image": Feature("uint8", (4, 4, 1)), "label": Feature("int64")})
        for i in range(count):
            image = np.full((4, 4, 1), i % 256, np.uint8)
            out.add("train" if i < count - 20 else "test", {"image": image, "label": i})
        return ("train", "test"), {}
    original = cache.MAX_SHARD_EXAMPLES
    cache.MAX_SHARD_EXAMPLES = 10
    try:
        splits, _ = cache.prepared(str(tmp_path), "numbered", write, "numbered images")
    finally:
        cache.MAX_SHARD_EXAMPLES = original
    return sources.DataSet("numbered", splits["train"], splits["test"], tuple(map(str, range(count))), "cache")


def test_a_split_over_the_memory_budget_is_read_from_disk_with_a_bounded_shuffle(tmp_path):
    data = cached_folder_dataset(tmp_path)
    roomy = make_input_pipeline(data, image_example, batch_size=8, seed=0, validation_split=0.1)
    tight = make_input_pipeline(data, image_example, batch_size=8, seed=0, validation_split=0.1,
                                memory_budget=64 * 16 * 4, shuffle_buffer=32)
    assert roomy.in_memory == {"train": True, "validation": True, "test": True} and roomy.shuffle_buffer == 162
    assert tight.in_memory["train"] is False and tight.shuffle_buffer == 32
    for inputs in (roomy, tight):  # every train example once a pass, in a new order each pass
        one, two = labels_of(inputs.train), labels_of(inputs.train)
        assert sorted(one) == sorted(two) == list(range(162)) and one != two
        assert labels_of(inputs.validation) == list(range(162, 180))
    assert make_input_pipeline(data, image_example, batch_size=8, seed=0, validation_split=0.1,
                               cache="disk").in_memory == {"train": False, "validation": False, "test": False}


def test_workers_read_disjoint_shards_that_together_are_every_train_example_once(tmp_path):
    data = cached_folder_dataset(tmp_path)
    shares = [labels_of(make_input_pipeline(data, image_example, batch_size=8, seed=0, validation_split=0.1,
                                            worker=(i, 2)).train) for i in range(2)]
    assert not set(shares[0]) & set(shares[1]) and sorted(shares[0] + shares[1]) == list(range(162))
    # whole shards each (of ten examples), as FILE auto-sharding gives them
    assert {n // 10 for n in shares[0]}.isdisjoint({n // 10 for n in shares[1]})
