"""A table's raw columns → one float vector, inside the model, so a SavedModel takes the columns by name as a
serving client sends them.

`columns` (learned from the train split by `describe_columns`) is the single description of that encoding, and what
ships beside the TFLite file as features.json: an app builds the same vector from it. In column order, a numeric
column is one entry, (value − mean) / std with a missing value (NaN) replaced by the train mean; a categorical
column is a one-hot block of 1 + its categories, entry 0 for a missing or unseen category; a text column (names,
descriptions: a different value in most rows, pipelines/data/tables.py) is a multi-hot block of its frequent words,
entry i 1 when the cell holds words[i]. A word is a run of letters, lower-cased (`cell_words`): a passenger's
"Braund, Mr. Owen Harris" holds "braund", "mr", "owen" and "harris", and "mr", in many rows, is a feature.
"""

import re

from typing import Any, Sequence

import keras
import numpy as np
from keras import layers, ops


MAX_CATEGORIES = 1000  # a categorical column's most frequent train values get their own entries; the rest are unseen
# A text column's words: those in at least WORD_MIN_SHARE of the rows (and WORD_MIN_ROWS of them) and at most
# WORD_MAX_SHARE (a word in every row says nothing), the MAX_WORDS most frequent. Measured on Kaggle's Titanic
# (benchmarks/tables.py, six splits; AVX2 kind): its Name column's words (the titles Mr, Mrs, Miss, Master among
# them) took the defaults' mean accuracy from 0.819 to 0.838.
WORD_MIN_SHARE, WORD_MIN_ROWS, WORD_MAX_SHARE, MAX_WORDS = 0.01, 5, 0.99, 100
# A text column's words are counted in memory bounded by this: past it, the words seen once so far are forgotten
# (a frequent word is seen again and again; a name's own words are not).
MAX_COUNTED_WORDS = 50_000
WORD = re.compile(r"[^\W\d_]+")  # letters; RE2's \pL in the model (TableEncoder)


def cell_words(text: str) -> set[str]:
    """The words of one cell: its runs of letters, lower-cased."""
    return set(WORD.findall(text.lower()))


class WordCounts:
    """In how many rows each word occurs, counted in bounded memory (MAX_COUNTED_WORDS)."""

    def __init__(self):
        self.rows, self.counts = 0, {}

    def add(self, text: str) -> None:
        self.rows += 1
        for word in cell_words(text):
            self.counts[word] = self.counts.get(word, 0) + 1
        if len(self.counts) > MAX_COUNTED_WORDS:
            self.counts = {word: n for word, n in self.counts.items() if n > 1}

    def frequent(self) -> list[str]:
        """The words a model learns from (WORD_MIN_SHARE …), most frequent first."""
        low, high = max(WORD_MIN_ROWS, WORD_MIN_SHARE * self.rows), WORD_MAX_SHARE * self.rows
        kept = [word for word, n in self.counts.items() if low <= n <= high]
        return sorted(kept, key=lambda w: (-self.counts[w], w))[:MAX_WORDS]


class ColumnStats:
    """A table's column encoding learned from batches of the train split, streamed: each numeric column's mean and
    standard deviation (merged batch by batch, Chan et al.'s update, in float64), each categorical column's values
    by frequency, each text column's words (`text`: their input names). A table of any size is described in one pass
    with memory for its categories and its frequent words only."""

    def __init__(self, text: Sequence[str] = ()):
        self.numeric: dict[str, list[float]] = {}   # name → [count, mean, M2]
        self.counts: dict[str, dict[str, int]] = {}
        self.words: dict[str, WordCounts] = {name: WordCounts() for name in text}
        self.order: list[str] = []

    def add(self, columns: dict[str, np.ndarray]) -> None:
        for name, values in columns.items():
            if name not in self.order:
                self.order.append(name)
            if values.dtype.kind == "f":
                filled = values[~np.isnan(values)].astype(np.float64)
                count, mean, m2 = self.numeric.setdefault(name, [0, 0.0, 0.0])
                if len(filled):
                    n, batch_mean = len(filled), float(filled.mean())
                    batch_m2 = float(((filled - batch_mean) ** 2).sum())
                    delta, total = batch_mean - mean, count + n
                    self.numeric[name] = [total, mean + delta * n / total,
                                          m2 + batch_m2 + delta * delta * count * n / total]
            elif name in self.words:
                for value in values:
                    self.words[name].add(value.decode() if isinstance(value, bytes) else str(value))
            else:
                counts = self.counts.setdefault(name, {})
                for value in values:
                    text = value.decode() if isinstance(value, bytes) else str(value)
                    if text:
                        counts[text] = counts.get(text, 0) + 1

    def describe(self) -> list[dict[str, Any]]:
        columns = []
        for name in self.order:
            entry = {"input": name}
            if name in self.numeric:
                count, mean, m2 = self.numeric[name]
                std = (m2 / count) ** 0.5 if count else 1.0
                entry.update(kind="numeric", mean=mean, std=std if std > 0 else 1.0)
            elif name in self.words:
                entry.update(kind="text", words=sorted(self.words[name].frequent()) or ["(none)"])
            else:
                counts = self.counts.get(name, {})
                top = sorted(counts, key=lambda v: (-counts[v], v))[:MAX_CATEGORIES]
                entry.update(kind="categorical", categories=sorted(top) or ["(none)"])
            columns.append(entry)
        return columns


def describe_columns(train: dict[str, np.ndarray], text: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The encoding of each column (keyed by its input name), learned on the train split only."""
    stats = ColumnStats(text)
    stats.add(train)
    return stats.describe()


def vector_size(columns: Sequence[dict]) -> int:
    return sum(block_size(c) for c in columns)


def block_size(column: dict) -> int:
    """The entries one column takes in the vector."""
    if column["kind"] == "numeric":
        return 1
    return len(column["words"]) if column["kind"] == "text" else 1 + len(column["categories"])


@keras.saving.register_keras_serializable(package="dlpipe")
class TableEncoder(layers.Layer):
    """The raw columns (a dict by input name) → the float vector `columns` describes."""

    def __init__(self, columns: Sequence[dict], **kwargs):
        super().__init__(**kwargs)
        self.columns = [dict(c) for c in columns]
        self.lookups = {c["input"]: layers.StringLookup(vocabulary=c["categories"], num_oov_indices=1,
                                                        output_mode="one_hot", name=f"lookup_{c['input']}")
                        for c in self.columns if c["kind"] == "categorical"}
        self.lookups.update({c["input"]: layers.StringLookup(vocabulary=c["words"], num_oov_indices=1,
                                                             output_mode="multi_hot", name=f"words_{c['input']}")
                             for c in self.columns if c["kind"] == "text"})

    def build(self, input_shape):
        for c in self.columns:
            if c["kind"] != "numeric":
                self.lookups[c["input"]].build((None,) if c["kind"] == "categorical" else (None, None))
        super().build(input_shape)

    @staticmethod
    def words(x):
        """A batch of cells → their words [batch, most words in a cell], "" after a cell's last (cell_words)."""
        import tensorflow as tf  # string operations: the encoder runs where its lookups do (TensorFlow)
        x = tf.strings.regex_replace(tf.strings.lower(x, encoding="utf-8"), r"[^\pL]+", " ")
        return tf.strings.split(tf.strings.strip(x)).to_tensor(default_value="")

    def call(self, inputs):
        parts = []
        for c in self.columns:
            x = inputs[c["input"]]
            if c["kind"] == "numeric":
                x = ops.cast(x, "float32")
                x = ops.where(ops.isnan(x), c["mean"], x)
                parts.append(ops.expand_dims((x - c["mean"]) / c["std"], -1))
            elif c["kind"] == "text":  # entry 0 (any other word, and the padding) is left out
                parts.append(ops.cast(self.lookups[c["input"]](self.words(x)), "float32")[:, 1:])
            else:
                parts.append(ops.cast(self.lookups[c["input"]](x), "float32"))
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (None, vector_size(self.columns))

    def get_config(self):
        return {**super().get_config(), "columns": self.columns}


def table_inputs(columns: Sequence[dict]) -> dict[str, keras.KerasTensor]:
    return {c["input"]: keras.Input(shape=(), dtype="float32" if c["kind"] == "numeric" else "string",
                                    name=c["input"]) for c in columns}


@keras.saving.register_keras_serializable(package="dlpipe")
class LabelScale(layers.Layer):
    """A standardised prediction → the label's own units: x · std + mean (mean and std of the train labels).

    Kept out of the part that ships to TFLite: folded into the last layer's bias, a mean like a house price
    (4e5) overflows float16 (65,504); the app applies it from features.json.
    """

    def __init__(self, mean: float, std: float, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = float(mean), float(std)

    def call(self, x):
        return x * self.std + self.mean

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="dlpipe")
class MeanOfProbabilities(layers.Layer):
    """Several classifiers' logits → the logits of the mean of their probabilities: log(mean(softmax(z_i)))."""

    def call(self, inputs):
        return ops.log(ops.mean(ops.stack([ops.softmax(z) for z in inputs]), axis=0))

    def compute_output_shape(self, input_shape):
        return input_shape[0]
