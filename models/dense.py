"""Dense (multilayer perceptron) classifier: the seed network 784 → 128 ReLU → 10 logits, and its variants."""

from typing import Sequence

import keras
from keras import layers


def build_dense_classifier(input_shape: Sequence[int], num_classes: int, *, hidden_units: Sequence[int] = (128,),
                           dropout: float = 0.0) -> keras.Model:
    """Raw pixels (0..255) → rescale → flatten → hidden ReLU layers → logits.

    Rescaling lives in the model so an exported file takes pixels as a camera gives them.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="dense_classifier")
