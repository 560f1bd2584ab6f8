"""A table's raw columns → one float vector, inside the model, so a SavedModel takes the columns by name as a
serving client sends them.

`columns` (learned from the train split by `describe_columns`) is the single description of that encoding, and what
ships beside the TFLite file as features.json: an app builds the same vector from it. In column order, a numeric
column is one entry, (value − mean) / std with a missing value (NaN) replaced by the train mean; a categorical
column is a one-hot block of 1 + its categories, entry 0 for a missing or unseen category.
"""

from typing import Any, Sequence

import keras
import numpy as np
from keras import layers, ops


MAX_CATEGORIES = 1000  # a categorical column's most frequent train values get their own entries; the rest are unseen


class ColumnStats:
    """A table's column encoding learned from batches of the train split, streamed: each numeric column's mean and
    standard deviation (merged batch by batch, Chan et al.'s update, in float64), each categorical column's values
    by frequency. A table of any size is described in one pass with memory for its categories only."""

    def __init__(self):
        self.numeric: dict[str, list[float]] = {}   # name → [count, mean, M2]
        self.counts: dict[str, dict[str, int]] = {}
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
            else:
                counts = self.counts.get(name, {})
                top = sorted(counts, key=lambda v: (-counts[v], v))[:MAX_CATEGORIES]
                entry.update(kind="categorical", categories=sorted(top) or ["(none)"])
            columns.append(entry)
        return columns


def describe_columns(train: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The encoding of each column (keyed by its input name), learned on the train split only."""
    stats = ColumnStats()
    stats.add(train)
    return stats.describe()


def vector_size(columns: Sequence[dict]) -> int:
    return sum(1 if c["kind"] == "numeric" else 1 + len(c["categories"]) for c in columns)


@keras.saving.register_keras_serializable(package="dlpipe")
class TableEncoder(layers.Layer):
    """The raw columns (a dict by input name) → the float vector `columns` describes."""

    def __init__(self, columns: Sequence[dict], **kwargs):
        super().__init__(**kwargs)
        self.columns = [dict(c) for c in columns]
        self.lookups = {c["input"]: layers.StringLookup(vocabulary=c["categories"], num_oov_indices=1,
                                                        output_mode="one_hot", name=f"lookup_{c['input']}")
                        for c in self.columns if c["kind"] == "categorical"}

    def build(self, input_shape):
        for c in self.columns:
            if c["kind"] == "categorical":
                self.lookups[c["input"]].build((None,))
        super().build(input_shape)

    def call(self, inputs):
        parts = []
        for c in self.columns:
            x = inputs[c["input"]]
            if c["kind"] == "numeric":
                x = ops.cast(x, "float32")
                x = ops.where(ops.isnan(x), c["mean"], x)
                parts.append(ops.expand_dims((x - c["mean"]) / c["std"], -1))
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
