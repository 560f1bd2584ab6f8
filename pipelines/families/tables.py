"""What the classifier and the regressor share when they learn from a table: the model's split into its column
encoder and the body that runs on the feature vector, that vector built from raw columns, and the table's
Shipment (the SavedModel takes the columns by name; the TFLite files take the vector, built by an app from
features.json, since TFLite has no string lookups to run the encoder)."""

import json

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from models.dense import TABLE_BODY
from models.table import LabelScale, TableEncoder
from pipelines.data.pipeline import split_arrays
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
    lines = [f"On the test rows, {words}.", "", f"| model | test {shown} |", "|---|---|", *rows, ""]
    if "table_model" in metrics:
        what = {"mean": "the mean of the trained network and a linear model (the logistic or least-squares "
                        "baseline's fit) on the same feature vector",
                "network": "the trained network alone", "linear": "the linear model alone"}[metrics["table_model"]]
        scored = ", ".join(f"{name} {value:.4g}" for name, value in metrics.get("validation_loss", {}).items())
        lines += [f"What ships (and is scored above as the network) is {what}" + (
            f": validation loss {scored}; a member no better than the constant forecast is left out." if scored
            else "."), ""]
    return lines


CHOICE = ("table_model", "members", "validation_loss", "validation_rows")  # what choose_members records


BASELINE_ROWS = 100_000  # the table baselines and the linear member are fitted on at most this many train rows


def logistic(train_x: np.ndarray, train_y: np.ndarray):
    """A logistic regression (scikit-learn's, L2 with C=1) on the encoded features: the logistic baseline, and the
    linear member of what a table classifier ships."""
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(max_iter=2000).fit(train_x, train_y)


def logistic_weights(fitted, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted logistic regression as a Dense layer's kernel [features, classes] and bias: its decision per class
    (two classes: one decision, the second class's logit, the first's 0); a class it never saw gets a logit of
    UNSEEN_LOGIT."""
    coef, intercept = np.atleast_2d(fitted.coef_), np.atleast_1d(fitted.intercept_)
    seen = fitted.classes_.astype(int)
    known = seen[1:] if len(coef) == 1 else seen  # two classes: the one decision is the second's logit
    unseen = [c for c in range(classes) if c not in seen]
    kernel = np.zeros((coef.shape[1], classes), np.float32)
    bias = np.zeros(classes, np.float32)
    kernel[:, known], bias[known] = coef.T, intercept
    bias[unseen] = UNSEEN_LOGIT
    return kernel, bias


UNSEEN_LOGIT = -30.0  # a class absent from the train rows: the linear member gives it a probability of e^-30


def with_intercept(features) -> np.ndarray:
    """[rows, features] → [rows, features + 1] in float64, the last column 1."""
    features = np.asarray(features, np.float64)
    return np.hstack([features, np.ones((len(features), 1))])


def least_squares(encode, train) -> np.ndarray:
    """Ordinary least squares with an intercept on the encoded features of a batched split, streamed: the normal
    equations (XᵀX and Xᵀy summed batch by batch in float64). Weights [features + 1], the intercept last: the linear
    baseline, and the linear member of what a table regressor ships."""
    gram = moment = None
    for x, y in train.as_numpy_iterator():
        rows = with_intercept(encode(x))
        gram = rows.T @ rows + (0 if gram is None else gram)
        moment = rows.T @ y.astype(np.float64).reshape(-1) + (0 if moment is None else moment)
    return np.linalg.lstsq(gram, moment, rcond=None)[0]


def label_scaling(model: keras.Model) -> LabelScale | None:
    """A table regressor's LabelScale layer (None for a model without one)."""
    return next((layer for layer in model.layers if isinstance(layer, LabelScale)), None)


def label_scale(model: keras.Model) -> tuple[float, float]:
    """A table regressor's label mean and std (its LabelScale layer); (0, 1) for a model without one."""
    scale = label_scaling(model)
    return (scale.mean, scale.std) if scale else (0.0, 1.0)


def member_bodies(body: keras.Model, kernel: np.ndarray, bias: np.ndarray) -> dict[str, keras.Model]:
    """The bodies a table model may ship, each from the feature vector: the trained network, the linear model
    (`kernel`, `bias`), and the mean of the two's outputs (logits for a classifier, whose mean is the normalised
    geometric mean of the two probabilities; the standardised value for a regressor): one graph holding both."""
    linear = layers.Dense(kernel.shape[1], name="linear", dtype="float32")
    decision = linear(body.input)
    linear.set_weights([kernel, bias])
    mean = layers.Average(name="mean_of_members", dtype="float32")([body.output, decision])
    return {"network": body, "linear": keras.Model(body.input, decision, name=TABLE_BODY),
            "mean": keras.Model(body.input, mean, name=TABLE_BODY)}


def with_body(model: keras.Model, body: keras.Model) -> keras.Model:
    """The table model with another body on its encoder's feature vector (the label scaling kept)."""
    encoder, trained = table_parts(model)
    if body is trained:
        return model
    outputs = body(encoder(model.input))
    scale = label_scaling(model)
    return keras.Model(model.input, scale(outputs) if scale else outputs, name=model.name)


def choose_members(model: keras.Model, work, classify: bool) -> tuple[keras.Model, dict]:
    """What a table model ships: the mean of the trained network and a linear model fitted on the same encoded train
    rows (the logistic baseline, on at most BASELINE_ROWS; least squares on the standardised label, the linear
    baseline's fit), each scored on the validation rows, streamed (log loss; squared error of the standardised
    label). A member that does no better there than the constant forecast (the train rows' class frequencies; their
    mean) is left out: a guard against a broken member, not a choice between good ones, which a small table's few
    validation rows cannot make (docs/own-data.md, Tables: the mean won on the benchmark panel over both members and
    over choosing by validation). Any other model ships as trained."""
    if not is_table_model(model):
        return model, {}
    encoder, body = table_parts(model)
    mean, std = label_scale(model)
    classes = int(body.outputs[0].shape[-1])
    if classify:
        train_x, train_y = split_arrays(work.inputs.train, limit=BASELINE_ROWS)
        kernel, bias = logistic_weights(logistic(encode_table(encoder, train_x), train_y), classes)
        frequencies = np.bincount(train_y.astype(int), minlength=classes) + 1.0  # add-one: no class has 0
        constant = np.log(frequencies / frequencies.sum())
    else:
        weights = least_squares(lambda x: encode_table(encoder, x), work.inputs.train)  # in the label's units
        kernel = (weights[:-1, None] / std).astype(np.float32)
        bias = np.array([(weights[-1] - mean) / std], np.float32)
        constant = np.zeros(1)  # the train mean, standardised
    bodies = member_bodies(body, kernel, bias)
    totals, rows = dict.fromkeys([*bodies, "constant"], 0.0), 0
    for x, y in work.inputs.validation.as_numpy_iterator():
        encoded = encode_table(encoder, x)
        outputs = {name: np.asarray(b.predict_on_batch(encoded), np.float64) for name, b in bodies.items()}
        outputs["constant"] = np.broadcast_to(constant, (len(y), len(constant)))
        target = y.astype(int) if classify else (y.astype(np.float64).reshape(-1, 1) - mean) / std
        for name, value in outputs.items():
            totals[name] += float(np.sum(cross_entropy(value, target) if classify else (value - target) ** 2))
        rows += len(y)
    if not rows:
        return with_body(model, bodies["mean"]), {"table_model": "mean", "members": ["network", "linear"]}
    loss = {name: total / rows for name, total in totals.items()}
    members = [name for name in ("network", "linear") if loss[name] < loss["constant"]] or ["network"]
    shipped = "mean" if len(members) == 2 else members[0]
    what = "the mean of the network and the linear model" if shipped == "mean" else f"the {shipped} model alone"
    print(f"  ships {what} (validation loss on {rows} rows: " + ", ".join(
        f"{name} {value:.4g}" for name, value in loss.items()) + ")", flush=True)
    return with_body(model, bodies[shipped]), {"table_model": shipped, "members": members, "validation_loss": loss,
                                               "validation_rows": rows}


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy of softmax(logits) against its integer label."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]
