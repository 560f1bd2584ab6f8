"""The one input pipeline every task uses: train / validation / test `tf.data.Dataset`s of (input, label) batches.

Validation is carved deterministically from the end of the training split (unless the data set has its own: a
time series' windows are split by time); the test split is only read by the
stages that report on it (evaluate, verify). Tasks say how one example is shaped (`to_example`), nothing else.

Memory is bounded by a budget, not by the data set: a split is held in memory after its first pass only when it
fits (`cache`: auto, the default, decides by `memory_budget`; memory or disk force either), and is otherwise read
again each epoch from where it lives (the prepared cache's shards, TFDS' files). A train split in memory is
reshuffled whole each epoch; one read from disk is shuffled by its shards' order and a bounded buffer
(`shuffle_buffer` examples). Under multi-worker training each worker reads its own share of the train split's
shards (`worker`), as tf.data's FILE auto-sharding would.
"""

import dataclasses
import math
import os
from typing import Callable

import numpy as np
import tensorflow as tf

from pipelines.data.sources import DataSet
from pipelines.errors import PipelineError

AUTOTUNE = tf.data.AUTOTUNE
# No autotuning thread: it costs a dense epoch about 9% on two cores (benchmarks/run.py). What it would tune is fixed
# well enough without it: AUTOTUNE then means a map as parallel as the cores and a prefetch buffer that grows when
# the consumer waits.
OPTIONS = tf.data.Options()
OPTIONS.autotune.enabled = False
CACHES = ("auto", "memory", "disk")
# A split read from disk is shuffled within this many examples (and by its shards' order): enough that the dense
# and conv defaults keep their accuracy against a whole-split shuffle (benchmarks/scale.py; docs/own-data.md).
SHUFFLE_BUFFER = 10_000


OFF, DATA = tf.data.experimental.AutoShardPolicy.OFF, tf.data.experimental.AutoShardPolicy.DATA


def _sharded_by(policy) -> tf.data.Options:
    """OPTIONS, and how a multi-worker strategy divides the dataset among workers (no effect without one)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = policy
    return options


def default_memory_budget() -> int:
    """An eighth of the machine's memory, in bytes: what caching splits may use by default."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8
    except (ValueError, OSError, AttributeError):  # not POSIX: 1 GiB
        return 1 << 30


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
    in_memory: dict[str, bool] = dataclasses.field(default_factory=dict)  # split → held in memory after a pass
    shuffle_buffer: int = 0
    passes: int = 1  # passes over the train split an epoch makes (`train` repeated that often)

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
        return math.ceil(self.num_train / self.batch_size) * self.passes

    def labelled(self) -> tf.data.Dataset:
        """Every labelled example but the test split's, as (inputs, labels) batches: the train split in file order,
        then the validation split carved from it (what a model fitted in closed form fits on)."""
        return self.examples.batch(self.batch_size).concatenate(self.validation)

    def repeated(self, passes: int) -> "Inputs":
        """These inputs with `passes` passes over the train split an epoch (each pass shuffled anew)."""
        return dataclasses.replace(self, train=self.train.repeat(passes), passes=passes)

    @property
    def validation_steps(self) -> int:
        return math.ceil(self.num_validation / self.batch_size)


def example_bytes(element_spec) -> int:
    """Bytes one example takes in memory, from its spec (a string counts as 256: a guess of a short text)."""
    def size(spec):
        if spec.dtype == tf.string:
            return 256 * max(1, spec.shape.num_elements() or 1)
        return spec.dtype.size * max(1, spec.shape.num_elements() or 1)
    return sum(size(s) for s in tf.nest.flatten(element_spec))


def _in_memory(cache: str, budget: int, per_example: int, counts: dict[str, int]) -> dict[str, bool]:
    """Which splits are kept in memory: all (memory), none (disk), or (auto) the smaller ones first while the
    budget lasts, validation and test before train."""
    if cache != "auto":
        return {split: cache == "memory" for split in counts}
    left, kept = budget, {}
    for split in ("validation", "test", "train"):
        need = counts[split] * per_example
        kept[split] = need <= left
        left -= need if kept[split] else 0
    return kept


def make_input_pipeline(data: DataSet, to_example: Callable, *, batch_size: int, seed: int,
                        validation_split: float, max_train_examples: int = 0, max_test_examples: int = 0,
                        cache: str = "auto", memory_budget: int | None = None, shuffle_buffer: int = 0,
                        worker: tuple[int, int] = (0, 1)) -> Inputs:
    """Builds map(AUTOTUNE) → [cache] → shuffle(seed) → batch → prefetch for the train split, and map → batch →
    [cache] → prefetch for validation and test.

    `max_*_examples` (0 = all) take the first examples of a split, before the validation carve, for quick runs.
    `shuffle_buffer` (0: SHUFFLE_BUFFER) bounds the shuffle of a train split read from disk.
    """
    total = data.train.count
    n = min(total, max_train_examples) if max_train_examples else total
    if data.validation is None:  # carved from the train split's end
        num_validation = max(1, round(n * validation_split))
        num_train = n - num_validation
    else:
        num_validation, num_train = data.validation.count, n
    if num_train < 1:
        raise PipelineError(f"{n} train examples (--max_train_examples={max_train_examples}) leave none to train on "
                            f"after the validation split: give at least 2, or 0 for all {total}")
    num_test = min(data.test.count, max_test_examples) if max_test_examples else data.test.count
    per_example = example_bytes(data.train.read(0, 1).map(to_example).element_spec)
    budget = default_memory_budget() if memory_budget is None else memory_budget
    keep = _in_memory(cache, budget, per_example,
                      {"train": num_train, "validation": num_validation, "test": num_test})
    bounded = min(shuffle_buffer or SHUFFLE_BUFFER, max(batch_size, budget // max(1, per_example)))
    buffer = num_train if keep["train"] else min(num_train, bounded)

    def examples(ds: tf.data.Dataset) -> tf.data.Dataset:
        return ds.map(to_example, num_parallel_calls=AUTOTUNE)

    train = examples(data.train.read(0, num_train, shuffle_seed=None if keep["train"] else seed, worker=worker))
    if keep["train"]:
        train = train.cache()
    train = train.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).batch(batch_size)

    def in_order(ds: tf.data.Dataset, split: str) -> tf.data.Dataset:
        # The same batches each pass: kept as batches, no per-example work after the first.
        ds = examples(ds).batch(batch_size)
        # Under a multi-worker strategy, validation and test are divided by example (their few shards could leave
        # a worker with none, and the workers' collectives out of step); the train split is divided by shard above.
        return (ds.cache() if keep[split] else ds).prefetch(AUTOTUNE).with_options(_sharded_by(DATA))

    validation = data.train.read(num_train, n) if data.validation is None else data.validation.read()
    return Inputs(
        train=train.prefetch(AUTOTUNE).with_options(_sharded_by(OFF if worker[1] > 1 else DATA)),
        validation=in_order(validation, "validation"),
        test=in_order(data.test.read(0, num_test), "test"),
        num_train=num_train, num_validation=num_validation, num_test=num_test, batch_size=batch_size,
        examples=examples(data.train.read(0, num_train)), in_memory=keep, shuffle_buffer=buffer)


def split_arrays(ds: tf.data.Dataset, limit: int | None = None):
    """A batched split's first `limit` examples (all: None) as one (inputs, labels) pair of NumPy arrays (inputs: a
    dict for a table's columns)."""
    batches = []
    seen = 0
    for x, y in ds.as_numpy_iterator():
        batches.append((x, y))
        seen += len(y)
        if limit is not None and seen >= limit:
            break

    def joined(parts):
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts])[:limit] for k in parts[0]}
        return np.concatenate(parts)[:limit]
    return joined([x for x, _ in batches]), joined([y for _, y in batches])
