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
from models.table import LabelScale, MeanOfProbabilities, TableEncoder
from models.trees import TreeEnsemble, tree_arrays, tree_ensemble
from pipelines import evaluation
from pipelines.data.pipeline import split_arrays
from pipelines.metadata import TensorInfo
from pipelines.shipping import Shipment, unchanged
from pipelines.upstream import sklearn as upstream_sklearn

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
                          "or unseen category, entry 1 + i for categories[i]; text → a block of len(words), entry i "
                          "1 when the cell holds words[i] (a word: a run of letters, lower-cased)",
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


def gradient_boosting(train_x: np.ndarray, train_y: np.ndarray, classify: bool, seed: int = 0,
                      balanced: bool = False):
    """scikit-learn's HistGradientBoosting with its defaults (early stopping on its own held-out tenth above 10,000
    rows), fitted on the encoded train features: what a Kaggler fits first; `balanced`: each class weighted by its
    rarity (--class_weight)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    if not classify:
        return HistGradientBoostingRegressor(random_state=seed).fit(train_x, train_y)
    return HistGradientBoostingClassifier(random_state=seed, class_weight="balanced" if balanced else None).fit(
        train_x, train_y)


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
    # A classifier's log loss beside (how sure it is where it is right or wrong), when the run measured it.
    losses = {"network": metrics.get("test_log_loss"), **{n: metrics.get(f"baseline_{n}_log_loss") for n in found}}
    extra = losses["network"] is not None
    rows = [f"| {TABLE_BASELINES.get(name, name)} | {value:.4g} |" + (
        f" {losses[name]:.4g} |" if losses[name] is not None else " |") * extra
        for name, value in {"network": mine, **found}.items()]
    header = f"| model | test {shown} |" + (" test log loss |" if extra else "")
    lines = [f"On the test rows, {words}.", "", header, "|---|---|" + ("---|" if extra else ""), *rows, ""]
    if "table_model" in metrics:
        members = [MEMBERS.get(name, name) for name in metrics.get("members", [metrics["table_model"]])]
        what = (f"the mean of {', '.join(members[:-1])} and {members[-1]}, on the same feature vector"
                if len(members) > 1 else f"{members[0]} alone")
        scored = ", ".join(f"{name} {value:.4g}" for name, value in metrics.get("validation_loss", {}).items())
        lines += [f"What ships (and is scored above as the network) is {what}" + (
            f": validation loss {scored}; a member worse than the constant forecast beyond the noise of those rows "
            "is left out." if scored else "."), ""]
    return lines


CHOICE = ("table_model", "members", "validation_loss", "validation_rows")  # what choose_members records


BASELINE_ROWS = 100_000  # the table baselines and the linear member are fitted on at most this many train rows


def logistic(train_x: np.ndarray, train_y: np.ndarray, balanced: bool = False):
    """A logistic regression (scikit-learn's, L2 with C=1) on the encoded features: the logistic baseline, and the
    linear member of what a table classifier ships; `balanced`: each class weighted by its rarity."""
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(max_iter=2000, class_weight="balanced" if balanced else None).fit(train_x, train_y)


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


def boosted_trees(fitted, classes: int | None, train: np.ndarray) -> TreeEnsemble:
    """scikit-learn's HistGradientBoosting, fitted on the float32 feature vectors `train`, as a TreeEnsemble layer of
    its raw score: a classifier's logits (two classes: one score, the second class's logit, the first's 0; a class it
    never saw: UNSEEN_LOGIT), a regressor's value (`classes` None). Thresholds as `split_thresholds` places them."""
    iterations, baseline = upstream_sklearn.boosted_trees(fitted)
    seen = fitted.classes_.astype(int) if classes else np.zeros(1, int)
    columns = seen[1:] if classes and len(iterations[0]) == 1 else seen
    values = {}  # per feature a split uses: its distinct train values, sorted
    trees = []
    for iteration in iterations:
        for k, nodes in enumerate(iteration):
            if np.any(nodes["is_categorical"]):
                raise ValueError("a categorical split: the trees are fitted on the encoded (numeric) features")
            thresholds = split_thresholds(nodes, train, values)
            trees.append((int(columns[k]), list(zip(nodes["feature_idx"], thresholds, nodes["left"],
                                                    nodes["right"], nodes["is_leaf"], nodes["value"]))))
    bias = np.full(classes or 1, UNSEEN_LOGIT if classes else 0.0, np.float32)
    bias[columns] = baseline
    if classes and len(columns) < len(seen):
        bias[seen[0]] = 0.0  # two classes: the first's logit is 0
    return tree_ensemble(tree_arrays(trees, classes or 1), bias)


# How far above a train value a split that sits on it moves, in the feature vector's units (a numeric column's
# standard deviations): over any rounding of another computation of a feature (a compiled graph's differed from
# eager TensorFlow's by up to 4.8e-7 on the credit card table), under any difference between two rows' values.
SPLIT_MARGIN = 4e-6


def split_thresholds(nodes: np.ndarray, train: np.ndarray, values: dict[int, np.ndarray]) -> np.ndarray:
    """A tree's thresholds in float32: each rounded down from scikit-learn's float64 one, so a float32 feature goes
    the way it goes in scikit-learn's comparison; and one that sits on a train value (scikit-learn's threshold is a
    quantile of the train values, often one of them: a heavy-tailed column's 0 that many rows share) moved up by
    SPLIT_MARGIN, or half the way to the next train value if that is nearer. Every train row goes the way it goes in
    scikit-learn, and one whose feature is computed a rounding away (an app's arithmetic, a compiled graph's) keeps
    its leaf. `values` caches each feature's distinct train values."""
    thresholds = nodes["num_threshold"].astype(np.float32)
    above = thresholds.astype(np.float64) > nodes["num_threshold"]
    thresholds[above] = np.nextafter(thresholds[above], np.float32(-np.inf))
    for n in np.flatnonzero(~nodes["is_leaf"].astype(bool)):
        feature = int(nodes["feature_idx"][n])
        if feature not in values:
            values[feature] = np.unique(train[:, feature].astype(np.float32))
        distinct = values[feature]
        at = np.searchsorted(distinct, thresholds[n])
        if at < len(distinct) and distinct[at] == thresholds[n]:
            gap = distinct[at + 1] - distinct[at] if at + 1 < len(distinct) else np.float32(np.inf)
            moved = distinct[at] + min(gap / np.float32(2), np.float32(SPLIT_MARGIN))
            if distinct[at] < moved < distinct[at] + gap:  # not two neighbouring floats
                thresholds[n] = moved
    return thresholds


def member_bodies(body: keras.Model, members: dict[str, keras.layers.Layer], classify: bool,
                  chosen: list[str] | None = None) -> dict[str, keras.Model]:
    """The bodies a table model may ship, each from the feature vector: the trained network, each of `members`
    (layers on the feature vector: the linear model, the trees), and the mean of the `chosen` ones (all by default):
    of their probabilities for a classifier (the body's logits are the mean's log), of the standardised value for a
    regressor. One graph holds every member of the mean."""
    outputs = {"network": body.output, **{name: layer(body.input) for name, layer in members.items()}}
    chosen = chosen or list(outputs)
    average = MeanOfProbabilities if classify else layers.Average
    mean = average(name="mean_of_members", dtype="float32")([outputs[name] for name in chosen])
    bodies = {name: body if name == "network" else keras.Model(body.input, value, name=TABLE_BODY)
              for name, value in outputs.items()}
    return {**bodies, "mean": keras.Model(body.input, mean, name=TABLE_BODY)}


def with_body(model: keras.Model, body: keras.Model) -> keras.Model:
    """The table model with another body on its encoder's feature vector (the label scaling kept)."""
    encoder, trained = table_parts(model)
    if body is trained:
        return model
    outputs = body(encoder(model.input))
    scale = label_scaling(model)
    return keras.Model(model.input, scale(outputs) if scale else outputs, name=model.name)


MEMBERS = {"network": "the trained network", "linear": "a linear model (the logistic or least-squares baseline's fit)",
           "trees": "gradient-boosted trees (the gradient boosting baseline's fit, as tensor operations)"}


# A classifier ships trees for at most this many classes: each class adds 100 trees (scikit-learn's defaults), about
# 370 KB of float32 arrays; beyond it the mean is of the network and the linear model.
MAX_TREE_CLASSES = 20


def choose_members(model: keras.Model, work, classify: bool) -> tuple[keras.Model, dict]:
    """What a table model ships: the mean of the trained network and the table baselines' own fits on the same
    encoded train rows (at most BASELINE_ROWS of them), written as layers beside it: a linear model (the logistic
    baseline; least squares on the standardised label), and for a classifier of at most MAX_TREE_CLASSES classes
    gradient-boosted trees (the gradient boosting baseline, as models/trees.py's tensor operations). A classifier's
    mean is of probabilities, a regressor's of values. Each member is scored on the validation rows, streamed (log
    loss; squared error of the standardised label); one worse there than the constant forecast (the train rows'
    class frequencies; their mean) beyond the noise of those rows is left out: a guard against a broken member, not
    a choice between good ones, which a small table's few validation rows cannot make. docs/own-data.md, Tables,
    has the ablation on the benchmark panel: the mean of the three won for a classifier over each member alone and
    over the mean without the trees; a regressor's trees lost (1.20x the better baseline alone, and the mean with
    them 1.00x against 0.95x without). Any other model ships as trained."""
    if not is_table_model(model):
        return model, {}
    _, body = table_parts(model)
    members, constant, weights = fitted_members(model, work, classify)
    bodies = member_bodies(body, members, classify)
    names = list(bodies)[:-1]  # the members, without their mean
    loss, worse, rows = validation_scores(model, bodies, constant, weights, work.inputs.validation, classify)
    if not rows:
        return with_body(model, bodies["mean"]), {"table_model": "mean", "members": names}
    chosen = [name for name in names if not worse_than_constant(*worse[name], rows)] or ["network"]
    if len(chosen) == 1:
        shipped, body = chosen[0], bodies[chosen[0]]
    else:
        shipped = "mean"
        body = bodies["mean"] if chosen == names else member_bodies(body, members, classify, chosen)["mean"]
    what = f"the mean of {', '.join(chosen)}" if shipped == "mean" else f"the {shipped} model alone"
    print(f"  ships {what} (validation loss on {rows} rows: " + ", ".join(
        f"{name} {value:.4g}" for name, value in loss.items()) + ")", flush=True)
    return with_body(model, body), {"table_model": shipped, "members": chosen, "validation_loss": loss,
                                    "validation_rows": rows}


def fitted_members(model: keras.Model, work,
                   classify: bool) -> tuple[dict[str, layers.Layer], np.ndarray, np.ndarray | None]:
    """The members fitted beside a table model's network, as layers on its feature vector (the linear model; a
    classifier's trees), the constant forecast's output (the train rows' add-one class frequencies as logits; the
    standardised train mean, 0), and each class's weight in the losses that judge them, by class index
    (--class_weight=balanced: the balanced weights, and the constant forecast is then every class alike; else
    None)."""
    encoder, body = table_parts(model)
    mean, std = label_scale(model)
    classes = int(body.outputs[0].shape[-1])
    if classify:
        train_x, train_y = split_arrays(work.inputs.train, limit=BASELINE_ROWS)
        encoded = encode_table(encoder, train_x)
        balanced = work.config.class_weight == "balanced"  # the members weigh classes as the network did
        kernel, bias = logistic_weights(logistic(encoded, train_y, balanced), classes)
        frequencies = np.bincount(train_y.astype(int), minlength=classes) + 1.0  # add-one: no class has 0
        constant = np.full(classes, -np.log(classes)) if balanced else np.log(frequencies / frequencies.sum())
        weights = (np.array(list(evaluation.balanced_weights(train_y.astype(int), classes).values())) if balanced
                   else None)
        trees = ({"trees": boosted_trees(gradient_boosting(encoded, train_y, True, balanced=balanced), classes,
                                         encoded)} if classes <= MAX_TREE_CLASSES else {})
    else:
        solution = least_squares(lambda x: encode_table(encoder, x), work.inputs.train)  # in the label's units
        kernel = (solution[:-1, None] / std).astype(np.float32)
        bias = np.array([(solution[-1] - mean) / std], np.float32)
        constant, trees, weights = np.zeros(1), {}, None
    linear = layers.Dense(kernel.shape[1], name="linear", dtype="float32")
    linear.build((None, kernel.shape[0]))
    linear.set_weights([kernel, bias])
    return {"linear": linear, **trees}, constant, weights


def validation_scores(model: keras.Model, bodies: dict[str, keras.Model], constant: np.ndarray,
                      weights: np.ndarray | None, validation,
                      classify: bool) -> tuple[dict[str, float], dict[str, np.ndarray], int]:
    """Each body's and the constant forecast's loss on the validation rows, streamed (log loss, each row weighted
    by its class's weight when there are `weights`; squared error of the standardised label); per member, the sum
    and the sum of squares of its rows' loss minus the constant's (for worse_than_constant); and the rows."""
    encoder, _ = table_parts(model)
    mean, std = label_scale(model)
    names = [name for name in bodies if name != "mean"]
    totals, rows = dict.fromkeys([*bodies, "constant"], 0.0), 0
    worse = {name: np.zeros(2) for name in names}
    for x, y in validation.as_numpy_iterator():
        encoded = encode_table(encoder, x)
        outputs = {name: np.asarray(b.predict_on_batch(encoded), np.float64) for name, b in bodies.items()}
        outputs["constant"] = np.broadcast_to(constant, (len(y), len(constant)))
        target = y.astype(int) if classify else (y.astype(np.float64).reshape(-1, 1) - mean) / std
        weight = weights[y.astype(int)] if weights is not None else 1.0
        losses = {name: weight * (cross_entropy(value, target) if classify else (value - target) ** 2).reshape(-1)
                  for name, value in outputs.items()}
        for name, value in losses.items():
            totals[name] += float(np.sum(value))
        for name in names:
            excess = losses[name] - losses["constant"]
            worse[name] += [np.sum(excess), np.sum(excess ** 2)]
        rows += len(y)
    return {name: total / max(rows, 1) for name, total in totals.items()}, worse, rows


def worse_than_constant(excess: float, squares: float, rows: int) -> bool:
    """Whether a member's validation loss is above the constant forecast's by more than two standard errors of the
    mean of its rows' excess (`excess` and `squares`: their sum and sum of squares): broken, not merely unlucky on a
    few rows. Gradient-boosted trees sure of themselves on 32 validation rows can lose to the constant there and
    still be the best member on the test rows (the Pima table, docs/own-data.md)."""
    average = excess / rows
    spread = max(squares / rows - average ** 2, 0.0) ** 0.5
    return average > 2 * spread / rows ** 0.5


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy of softmax(logits) against its integer label."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]
