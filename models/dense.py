"""Dense (multilayer perceptron) network: the seed network 784 → 128 ReLU → 10 logits, its variants, and the same
network on a table's columns."""

from typing import Sequence

import keras
from keras import layers

from models.sequence import Window
from models.table import LabelScale, TableEncoder, table_inputs, vector_size

TABLE_BODY = "table_body"  # a table model's part from the feature vector, which is what ships to TFLite


def _hidden(x, hidden_units: Sequence[int], dropout: float):
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def build_dense_classifier(input_shape: Sequence[int], num_classes: int, *, hidden_units: Sequence[int] = (128,),
                           dropout: float = 0.0, table: Sequence[dict] | None = None,
                           target_scale: tuple[float, float] | None = None,
                           series_scale: dict | None = None) -> keras.Model:
    """Raw pixels (0..255) → rescale → flatten → hidden ReLU layers → `num_classes` outputs (logits; a regressor
    has one output).

    Rescaling lives in the model so an exported file takes pixels as a camera gives them. With `table` (a CSV's
    columns, models/table.py), the model takes the raw columns by name instead, encodes them into one vector, and
    runs the same hidden layers on it in a `table_body` model. `target_scale` (mean, std of a regressor's train
    labels): the body predicts the standardised label and the model outputs it in the label's own units.
    With `series_scale` (a time series, models/sequence.py): the window [steps, columns], flattened, forecasts the
    next `num_classes` values.
    """
    if series_scale is not None:
        window = Window(input_shape, series_scale)
        x = _hidden(layers.Flatten(name="flatten")(window.relative), hidden_units, dropout)
        return window.output(x, num_classes, "dense_forecaster")
    if table is not None:
        inputs = table_inputs(table)
        features = keras.Input(shape=(vector_size(table),), name="features")
        outputs = layers.Dense(num_classes, name="logits")(_hidden(features, hidden_units, dropout))
        body = keras.Model(features, outputs, name=TABLE_BODY)
        outputs = body(TableEncoder(table, name="table_encoder")(inputs))
        if target_scale is not None:
            outputs = LabelScale(*target_scale, name="label_scale")(outputs)
        return keras.Model(inputs, outputs, name="dense_table_model")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = _hidden(layers.Flatten(name="flatten")(x), hidden_units, dropout)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="dense_classifier")
