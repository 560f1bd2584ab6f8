"""The regressor family: a table's numeric label predicted by mean squared error.

Evaluation reports test MAE, RMSE and R², and beside them the same numbers for a linear regression fitted in closed
form (least squares) on the same train split and the same encoded features: what the network adds over the
first lesson's model. Exports are judged on their values: float files by their largest difference relative to
the outputs' scale, quantized ones by their mean difference against the Keras model's own test RMSE.
"""

import functools

import keras
import numpy as np
from keras import layers

from pipelines import artifacts, evaluation
from pipelines.config import RunConfig
from pipelines.families import Asked, Column, Family, Picture, Workspace
from pipelines.data.pipeline import split_arrays
from pipelines.families.tables import (BASELINE_ROWS, DESCRIPTION, FEATURES_FILE, CHOICE, choose_members, encode_table,
                                       gradient_boosting, label_scale, least_squares, table_parts, table_shipment,
                                       table_verdict, with_intercept)
from pipelines.metadata import TensorInfo
from pipelines.schedules import learning_rate
from pipelines.shipping import Shipment

OUTPUT = "value"

# Every export is judged against the Keras model's own test RMSE, a measure in the label's units that holds for any
# level and scale (a difference relative to the largest output failed a quarterly series of small values by
# rounding). Float exports: the largest difference at most a hundredth of it; narrower ones: the mean difference at
# most a tenth (noise a user cannot see in the predictions).
REGRESSOR_LIMITS = {
    "savedmodel": ("max_diff_over_rmse", 0.01),
    "float": ("max_diff_over_rmse", 0.01),  # the float files (exporters.py: Target.limit)
    "float16": ("mean_diff_over_rmse", 0.1),
    "dynamic_range": ("mean_diff_over_rmse", 0.1),
    "int8": ("mean_diff_over_rmse", 0.1),
    "int16x8": ("mean_diff_over_rmse", 0.1),
}


def compile_regressor(model: keras.Model, config: RunConfig, steps_per_epoch: int = 0) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch),
                                                  global_clipnorm=config.clip_norm),
                  loss=keras.losses.MeanSquaredError(),
                  metrics=[keras.metrics.MeanAbsoluteError(name="mae"),
                           keras.metrics.RootMeanSquaredError(name="rmse")],
                  steps_per_execution=config.steps_per_execution)


def scores(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    error = predicted.reshape(-1) - actual.reshape(-1)
    spread = float(np.sum((actual - actual.mean()) ** 2))
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2))),
            "r2": 1.0 - float(np.sum(error ** 2)) / spread if spread else 0.0}


def linear_baseline(encode, train, test) -> dict[str, float]:
    """Ordinary least squares with an intercept on the encoded train features (tables.least_squares, streamed),
    scored on the test split, streamed."""
    weights = least_squares(encode, train)
    predicted, actual = zip(*((with_intercept(encode(x)) @ weights, y) for x, y in test.as_numpy_iterator()))
    return scores(np.concatenate(predicted), np.concatenate(actual).astype(np.float64))


def boosting_baseline(encoder, train, test) -> dict[str, float]:
    """Gradient boosting (tables.gradient_boosting) on the encoded features of at most BASELINE_ROWS train rows."""
    train_x, train_y = split_arrays(train, limit=BASELINE_ROWS)
    model = gradient_boosting(encode_table(encoder, train_x), train_y.astype(np.float64), classify=False)
    predicted, actual = zip(*((model.predict(encode_table(encoder, x)), y) for x, y in test.as_numpy_iterator()))
    return scores(np.concatenate(predicted), np.concatenate(actual).astype(np.float64))


def report_baselines(metrics: dict) -> list[str]:
    return table_verdict(metrics, "rmse", higher_is_better=False)


def evaluate_regressor(model: keras.Model, work: Workspace) -> dict:
    test = work.inputs.test
    test_y = np.concatenate([y for _, y in test.map(lambda x, y: (0, y)).as_numpy_iterator()])
    predicted = model.predict(test, verbose=0)  # the split in order, as tf.data feeds strings
    metrics = {f"test_{name}": value for name, value in scores(predicted, test_y.astype(np.float64)).items()}
    encoder, _ = table_parts(model)
    baseline = linear_baseline(lambda x: encode_table(encoder, x), work.inputs.train, test)
    metrics.update({f"baseline_linear_{name}": value for name, value in baseline.items()})
    metrics.update({f"baseline_gradient_boosting_{name}": value
                    for name, value in boosting_baseline(encoder, work.inputs.train, test).items()})
    metrics.update(work.chosen(*CHOICE))
    evaluation.plot_predictions(np.asarray(predicted), test_y, work.path(artifacts.PREDICTIONS_PNG))
    return metrics


def ship_regressor(model: keras.Model, work: Workspace | None = None) -> Shipment:
    """A table regressor: the SavedModel takes the raw columns and outputs `value` in the label's units; the TFLite
    files take the feature vector and output it standardised (`value` · std + mean, both in features.json)."""
    def named(m: keras.Model) -> keras.Model:
        return keras.Model(m.inputs, layers.Identity(name=OUTPUT)(m.outputs[0]), name=f"{m.name}_{OUTPUT}")
    _, body = table_parts(model)
    mean, std = label_scale(model)
    return table_shipment(model, served=named(model), tflite_model=named(body), quantizable=named(body),
                          limits=REGRESSOR_LIMITS, classes=False, from_tflite_outputs=lambda v: v * std + mean,
                          outputs={OUTPUT: TensorInfo(f"the predicted value, standardised: value · {std:.6g} + "
                                                      f"{mean:.6g} is in the label's units")},
                          output={"name": OUTPUT, "in_label_units": "value * std + mean", "mean": mean, "std": std})


def answer_values(values: np.ndarray, names, asked: Asked) -> dict[str, list]:
    """The predicted value, in the label's units."""
    return {asked.header: values.reshape(len(values), -1)[:, 0].tolist()}


class ErrorScorer:
    """RMSE, MAE and R² against true values, from running sums (any number of rows in constant memory)."""

    def __init__(self, names=()):
        self.count, self.absolute, self.squared, self.total, self.total_squared = 0, 0.0, 0.0, 0.0, 0.0

    def add(self, values: np.ndarray, truth: list) -> None:
        for value, true in zip(values.reshape(len(values), -1)[:, 0], truth):
            if true is None:
                continue
            error = float(value) - float(true)
            self.count += 1
            self.absolute, self.squared = self.absolute + abs(error), self.squared + error * error
            self.total, self.total_squared = self.total + float(true), self.total_squared + float(true) ** 2

    def result(self) -> dict:
        if not self.count:
            return {"examples": 0}
        spread = self.total_squared - self.total ** 2 / self.count
        return {"examples": self.count, "rmse": (self.squared / self.count) ** 0.5, "mae": self.absolute / self.count,
                "r2": 1.0 - self.squared / spread if spread > 0 else 0.0}

    def line(self) -> str:
        r = self.result()
        return f"RMSE {r['rmse']:.4g}, MAE {r['mae']:.4g}, R² {r['r2']:.3f} on {r['examples']:,} labelled examples"


# How verify's table shows an export of a model whose outputs are values (a regressor's, a forecaster's).
ERROR_COLUMNS = (Column("test RMSE", "test_rmse", "{:.4g}"),
                 Column("mean diff / RMSE", "mean_diff_over_rmse", "{:.4f}"),
                 Column("max diff / RMSE", "max_diff_over_rmse", "{:.2e}"))

REGRESSOR = Family(
    name="regressor", compile=compile_regressor, evaluate=evaluate_regressor, ship=ship_regressor,
    headline="test_rmse", objective="val_loss", objective_direction="min", loss_key="loss", gradient_norm=True,
    export_columns=ERROR_COLUMNS,
    pictures=(Picture(artifacts.PREDICTIONS_PNG, "predicted against true values, and residuals"),),
    side_files={FEATURES_FILE: DESCRIPTION}, answer=answer_values, scorer=ErrorScorer, report=report_baselines,
    choose=functools.partial(choose_members, classify=False),
    left_out={"int16x8": "a table's int8 file holds (diabetes: a mean difference of 0.011 of the test RMSE)"})
