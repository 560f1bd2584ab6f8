"""What every task's model shares when it reads a window of a time series: the window taken raw and standardised
inside the model (so the SavedModel and the TFLite files take the values as they are recorded), and a forecast
head that outputs the next `horizon` values in the label's own units.

    window [steps, columns] (raw; the label first, then covariates) → (x − mean) / std per column
        → the label's column made relative to its last value (the level) → the task's body
        → Dense(horizon) + the level → · std + mean of the label → forecast [horizon]

The means and standard deviations are learned on the train periods only (data/series.py) and kept in the model.
The body sees the label relative to where the window ends and predicts the change from there, so a trend that
carries the series beyond the range of its train period is no different to it: with the body's output at zero
the model is the naive forecast, which it learns to improve on (the idea of RevIN, Kim et al. 2022, reduced to
the level).
"""

from typing import Sequence

import keras
from keras import layers

WINDOW = "window"      # the input's name, in the SavedModel's signature and the TFLite files
FORECAST = "forecast"  # the output's


@keras.saving.register_keras_serializable(package="dlpipe")
class Standardize(layers.Layer):
    """(x − mean) / std per column of the last axis, with constants learned on the train periods.

    Computed as x · a · a − mean / std with a = 1 / √std, so that every constant the float16 TFLite file stores is
    within float16's range and precision for values up to about 10⁹ (a std of 10⁵ would make 1 / std a float16
    subnormal; its square root is not)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    def call(self, x):
        root = keras.ops.convert_to_tensor([s ** -0.5 for s in self.std])
        shift = keras.ops.convert_to_tensor([m / s for m, s in zip(self.mean, self.std)])
        return x * root * root - shift

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="dlpipe")
class Unstandardize(layers.Layer):
    """z · std + mean, as (z + mean / std) · √std · √std: float16-safe constants for a level like 4·10⁵ (whose
    own float16 form is infinite)."""

    def __init__(self, mean: float, std: float, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = float(mean), float(std)

    def call(self, z):
        return (z + self.mean / self.std) * self.std ** 0.5 * self.std ** 0.5

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="dlpipe")
class FromLevel(layers.Layer):
    """The window with its label column (the first) less the label's last value; and that value, [batch, 1]."""

    def call(self, x):
        level = x[:, -1:, 0]
        label = x[..., :1] - level[:, None, :]
        return keras.ops.concatenate([label, x[..., 1:]], axis=-1), level


@keras.saving.register_keras_serializable(package="dlpipe")
class NormalizeEach(layers.Layer):
    """Each series z-normalised by its own mean and standard deviation over its steps (per column)."""

    def call(self, x):
        mean = keras.ops.mean(x, axis=1, keepdims=True)
        std = keras.ops.sqrt(keras.ops.mean(keras.ops.square(x - mean), axis=1, keepdims=True))
        return (x - mean) / keras.ops.maximum(std, 1e-6)


class Window:
    """A window input as the body reads it (`relative`: standardised; a forecaster's relative to its level), and
    the head that makes the model: a forecast with the level added back, or a sequence classifier's logits."""

    def __init__(self, input_shape: Sequence[int], scale: dict):
        self.inputs = keras.Input(shape=tuple(input_shape), name=WINDOW)
        self.scale = scale
        self.classify = bool(scale.get("classify"))
        # The raw values, their scaling and the level stay in float32 whatever the body computes in (a bfloat16
        # level of 290 is off by up to 1).
        if scale.get("each"):
            standardized = NormalizeEach(name="normalize_each", dtype="float32")(self.inputs)
        else:
            standardized = Standardize(scale["mean"], scale["std"], name="standardize", dtype="float32")(self.inputs)
        if self.classify:  # a class is a shape: the body sees the series as it is, scaled
            self.relative, self.level = standardized, None
        else:
            self.relative, self.level = FromLevel(name="from_level", dtype="float32")(standardized)

    def output(self, features, outputs: int, name: str) -> keras.Model:
        """The model: the body's `features` → a classifier's logits, or the label's next `outputs` values."""
        if self.classify:
            logits = layers.Dense(outputs, name="logits", dtype="float32")(features)
            return keras.Model(self.inputs, logits, name=name.replace("forecaster", "sequence_classifier"))
        return self.forecast(features, outputs, name)

    def forecast(self, features, horizon: int, name: str) -> keras.Model:
        """The model: the body's `features` → the next `horizon` values of the label, in its units."""
        steps = layers.Dense(horizon, name="steps")(features)
        steps = layers.Add(name="to_level", dtype="float32")([steps, self.level])
        outputs = Unstandardize(self.scale["mean"][0], self.scale["std"][0], name=FORECAST, dtype="float32")(steps)
        return keras.Model(self.inputs, outputs, name=name)
