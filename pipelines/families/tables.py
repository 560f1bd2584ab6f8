"""What the classifier and the regressor share when they learn from a table: the model's split into its column
encoder and the body that runs on the feature vector, that vector built from raw columns, and the table's
Shipment (the SavedModel takes the columns by name; the TFLite files take the vector, built by an app from
features.json, since TFLite has no string lookups to run the encoder)."""

import json

import keras
import numpy as np
import tensorflow as tf

from models.dense import TABLE_BODY
from models.table import TableEncoder
from pipelines.metadata import TensorInfo
from pipelines.shipping import Shipment, unchanged

FEATURES_FILE = "features.json"  # a table model's feature vector: what the TFLite files take, and how to build it
DESCRIPTION = "how a row becomes the TFLite files' feature vector"


def encode_table(encoder: TableEncoder, columns: dict) -> np.ndarray:
    """A batch of raw columns (NumPy; strings as object arrays, which Keras cannot convert) → feature vectors."""
    return np.asarray(encoder({name: tf.constant(values) for name, values in columns.items()}), np.float32)


def is_table_model(model: keras.Model) -> bool:
    return any(isinstance(layer, TableEncoder) for layer in model.layers)


def table_parts(model: keras.Model) -> tuple[TableEncoder, keras.Model]:
    """A table model's column encoder and the body that runs on its feature vector."""
    return next(layer for layer in model.layers if isinstance(layer, TableEncoder)), model.get_layer(TABLE_BODY)


def table_shipment(model: keras.Model, *, served: keras.Model, tflite_model: keras.Model, quantizable: keras.Model,
                   limits: dict, classes: bool, outputs: dict[str, TensorInfo], to_tflite_outputs=unchanged,
                   from_tflite_outputs=unchanged, output: dict | None = None) -> Shipment:
    encoder, body = table_parts(model)

    def to_features(batch):
        return {"features": encode_table(encoder, batch)}
    description = {"tflite_input": "features", "vector_size": int(body.inputs[0].shape[-1]),
                   "how": "in column order: numeric → (value - mean) / std, a missing value → mean (0 after "
                          "scaling); categorical → a one-hot block of 1 + len(categories), entry 0 for a missing "
                          "or unseen category, entry 1 + i for categories[i]",
                   "columns": encoder.columns, **({"output": output} if output else {})}
    features = TensorInfo(f"the encoded feature vector ({description['vector_size']} values): {FEATURES_FILE} beside "
                          "this file says how to build it from a row's columns")
    return Shipment(model=served, quantizable=quantizable, reference=model, to_tflite_outputs=to_tflite_outputs,
                    tflite_model=tflite_model, to_tflite_inputs=to_features, to_quantizable_inputs=to_features,
                    side_files={FEATURES_FILE: json.dumps(description, indent=2)}, limits=limits, classes=classes,
                    from_tflite_outputs=from_tflite_outputs, tensors={"features": features, **outputs})


# The models a table user compares with first, by how metrics.json names them (baseline_<name>_<metric>).
TABLE_BASELINES = {"gradient_boosting": "gradient boosting (scikit-learn's HistGradientBoosting, its defaults)",
                   "logistic": "logistic regression", "linear": "linear regression (least squares)",
                   "majority": "the majority class"}


def gradient_boosting(train_x: np.ndarray, train_y: np.ndarray, classify: bool, seed: int = 0):
    """scikit-learn's HistGradientBoosting with its defaults (early stopping on its own held-out tenth above 10,000
    rows), fitted on the encoded train features: what a Kaggler fits first."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    model = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    return model(random_state=seed).fit(train_x, train_y)


def table_verdict(metrics: dict, measure: str, higher_is_better: bool) -> list[str]:
    """report.md's table of the network beside the table baselines on `measure` (accuracy, RMSE), and which won."""
    found = {name: metrics[f"baseline_{name}_{measure}"] for name in TABLE_BASELINES
             if f"baseline_{name}_{measure}" in metrics}
    if not found or f"test_{measure}" not in metrics:
        return []
    mine, shown = metrics[f"test_{measure}"], {"rmse": "RMSE"}.get(measure, measure)
    best = max(found, key=found.get) if higher_is_better else min(found, key=found.get)
    wins = mine >= found[best] if higher_is_better else mine <= found[best]
    words = (f"the network beats every baseline ({shown} {mine:.4g}; the best of them, {TABLE_BASELINES[best]}: "
             f"{found[best]:.4g})" if wins else
             f"{TABLE_BASELINES[best]} beats the network: {shown} {found[best]:.4g} against {mine:.4g}")
    rows = [f"| network | {mine:.4g} |"] + [f"| {TABLE_BASELINES[name]} | {value:.4g} |"
                                            for name, value in found.items()]
    return [f"On the test rows, {words}.", "", f"| model | test {shown} |", "|---|---|", *rows, ""]
