"""The one input pipeline every task uses: train / validation / test `tf.data.Dataset`s of (input, label) batches.

Validation is carved deterministically from the end of the training split; the test split is only read by the
stages that report on it (evaluate, verify). Tasks say how one example is shaped (`to_example`), nothing else.
"""

import dataclasses
import math
from typing import Callable

import tensorflow as tf

from pipelines.data.sources import DataSet
from pipelines.errors import PipelineError

AUTOTUNE = tf.data.AUTOTUNE
# No autotuning thread: it costs a dense epoch about 9% on two cores (482 against 532 ms, the median of 60 epochs;
# benchmarks/run.py). What it would tune is fixed well enough without it: AUTOTUNE then means a map as parallel as
# the cores (used once, while the cache fills) and a prefetch buffer that grows when the consumer waits.
OPTIONS = tf.data.Options()
OPTIONS.autotune.enabled = False


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Batched, prefetched splits and their sizes in examples."""
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    num_train: int
    num_validation: int
    num_test: int
    batch_size: int
    examples: tf.data.Dataset  # the train split's examples in file order, unbatched, unshuffled

    def first_train_batch(self, count: int):
        """The first `count` training examples as one (inputs, labels) batch: a fixed probe, read without filling
        the shuffle buffer (unbatching the shuffled split would fill it with the whole split first)."""
        return next(iter(self.examples.take(count).batch(count)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's model input shape, as the task shaped it (no batch dimension); () for a table's columns,
        which the model takes by name."""
        spec = self.train.element_spec[0]
        return () if isinstance(spec, dict) else tuple(spec.shape[1:])

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.num_train / self.batch_size)

    @property
    def validation_steps(self) -> int:
        return math.ceil(self.num_validation / self.batch_size)


def split_arrays(ds: tf.data.Dataset):
    """A batched split as one (inputs, labels) pair of NumPy arrays (inputs: a dict for a table's columns)."""
    return next(ds.unbatch().batch(1 << 30).as_numpy_iterator())


def _count(ds: tf.data.Dataset) -> int:
    n = int(ds.cardinality())
    return n if n >= 0 else int(ds.reduce(0, lambda count, _: count + 1))


def make_input_pipeline(data: DataSet, to_example: Callable, *, batch_size: int, seed: int,
                        validation_split: float, max_train_examples: int = 0,
                        max_test_examples: int = 0) -> Inputs:
    """Builds map(AUTOTUNE) → cache → shuffle(seed) → batch → prefetch for the train split, and map → batch →
    cache → prefetch for validation and test.

    `max_*_examples` (0 = all) take the first examples of a split, before the validation carve, for quick runs.
    """
    total = _count(data.train)
    n = min(total, max_train_examples) if max_train_examples else total
    num_validation = max(1, round(n * validation_split))
    num_train = n - num_validation
    if num_train < 1:
        raise PipelineError(f"{n} train examples (--max_train_examples={max_train_examples}) leave none to train on "
                            f"after the validation split: give at least 2, or 0 for all {total}")
    num_test = _count(data.test)
    if max_test_examples:
        num_test = min(num_test, max_test_examples)

    def examples(ds: tf.data.Dataset, count: int) -> tf.data.Dataset:
        # take() before cache(): caching first would fill the cache with the whole split.
        return ds.take(count).map(to_example, num_parallel_calls=AUTOTUNE)

    def prepare(ds: tf.data.Dataset, count: int, shuffle: bool) -> tf.data.Dataset:
        if shuffle:  # examples cached, shuffled into new batches each pass
            ds = examples(ds, count).cache().shuffle(count, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        else:  # the same batches each pass: cached as batches, no per-example work after the first
            ds = examples(ds, count).batch(batch_size).cache()
        return ds.prefetch(AUTOTUNE).with_options(OPTIONS)

    return Inputs(
        train=prepare(data.train, num_train, shuffle=True),
        validation=prepare(data.train.skip(num_train), num_validation, shuffle=False),
        test=prepare(data.test, num_test, shuffle=False),
        num_train=num_train, num_validation=num_validation, num_test=num_test, batch_size=batch_size,
        examples=examples(data.train, num_train))
