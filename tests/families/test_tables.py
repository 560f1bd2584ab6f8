"""The table baselines' verdict in report.md (families/tables.py): the network beside gradient boosting, the linear
model and the majority class, and which one won, higher or lower being better; and what a table model ships: the
mean of its network and the linear fit, a member no better than the constant forecast left out."""

import types

import keras
import numpy as np
import tensorflow as tf

from models.dense import build_dense_classifier
from models.table import describe_columns
from pipelines.families.tables import (UNSEEN_LOGIT, choose_members, encode_table, gradient_boosting, label_scale,
                                       logistic, logistic_weights, table_parts, table_verdict)


def test_the_verdict_names_the_baseline_that_beats_the_network():
    metrics = {"test_accuracy": 0.80, "baseline_gradient_boosting_accuracy": 0.83, "baseline_logistic_accuracy": 0.78,
               "baseline_majority_accuracy": 0.6}
    lines = table_verdict(metrics, "accuracy", higher_is_better=True)
    assert lines[0] == ("On the test rows, gradient boosting (scikit-learn's HistGradientBoosting, its defaults) "
                        "beats the network: accuracy 0.83 against 0.8.")
    assert "| network | 0.8 |" in lines and "| the majority class | 0.6 |" in lines


def test_a_lower_rmse_wins_and_a_network_that_wins_says_so():
    metrics = {"test_rmse": 10.0, "baseline_gradient_boosting_rmse": 12.0, "baseline_linear_rmse": 11.0}
    assert table_verdict(metrics, "rmse", higher_is_better=False)[0].startswith(
        "On the test rows, the network beats every baseline (RMSE 10; the best of them, linear regression")
    assert table_verdict({"test_rmse": 1.0}, "rmse", higher_is_better=False) == []  # no baselines: no table


def test_gradient_boosting_learns_a_rule_the_linear_model_cannot():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2000, 2)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)  # xor: no line separates it
    model = gradient_boosting(x[:1500], y[:1500], classify=True)
    assert np.mean(model.predict(x[1500:]) == y[1500:]) > 0.95


def _table(rows: int, seed: int):
    """Two numeric columns and a word; the class is which side of a line the numbers fall (a linear rule)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows).astype(np.float32), rng.normal(size=rows).astype(np.float32)
    word = np.array([["red", "blue"][i % 2] for i in range(rows)], object)
    return {"a": a, "b": b, "word": word}, (a + 0.5 * b > 0).astype(np.int64)


def _work(classify: bool):
    x, y = _table(400, 0)
    columns = describe_columns(x)
    target = None if classify else (float(np.mean(y)), float(np.std(y)))
    model = build_dense_classifier((), 2 if classify else 1, hidden_units=(8,), table=columns, target_scale=target)
    labels = y if classify else y.astype(np.float32)

    def split(start, stop):
        pairs = ({k: v[start:stop] for k, v in x.items()}, labels[start:stop])
        return tf.data.Dataset.from_tensor_slices(pairs).batch(64)
    keras.utils.set_random_seed(0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if classify else "mse"
    model.compile(keras.optimizers.Adam(0.03), loss)
    model.fit(split(0, 300), epochs=10, verbose=0)  # a network that learned something
    inputs = types.SimpleNamespace(train=split(0, 300), validation=split(300, 400))
    return model, types.SimpleNamespace(inputs=inputs)


def test_a_logistic_regression_is_one_dense_layer_with_its_probabilities_and_an_unseen_class_improbable():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    for labels, classes in (((x[:, 0] > 0).astype(int), 2), (np.digitize(x[:, 1], [-0.5, 0.5]), 4)):
        fitted = logistic(x, labels)
        kernel, bias = logistic_weights(fitted, classes)
        logits = x @ kernel + bias
        probabilities = np.exp(logits - logits.max(1, keepdims=True))
        probabilities /= probabilities.sum(1, keepdims=True)
        seen = fitted.classes_.astype(int)
        np.testing.assert_allclose(probabilities[:, seen], fitted.predict_proba(x), atol=1e-5)
        assert classes == 2 or (bias[3] == UNSEEN_LOGIT and np.all(kernel[:, 3] == 0))  # class 3 never appears


def test_a_table_classifier_ships_the_mean_of_its_network_and_the_logistic_fit_and_saves_as_one_model(tmp_path):
    model, work = _work(classify=True)
    shipped, chosen = choose_members(model, work, classify=True)
    assert chosen["table_model"] == "mean" and chosen["members"] == ["network", "linear"]
    assert set(chosen["validation_loss"]) == {"network", "linear", "mean", "constant"}
    x, _ = _table(50, 2)
    encoder, body = table_parts(model)
    linear = table_parts(shipped)[1].get_layer("linear")(encode_table(encoder, x))
    expected = (np.asarray(body(encode_table(encoder, x))) + np.asarray(linear)) / 2
    np.testing.assert_allclose(shipped.predict(x, verbose=0), expected, atol=1e-5)
    shipped.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, atol=1e-5)


def test_a_member_no_better_than_the_constant_forecast_is_left_out():
    model, work = _work(classify=True)
    logits = table_parts(model)[1].get_layer("logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * 0, bias * 0 + np.array([30.0, -30.0])])  # a broken network: always class 0, sure
    shipped, chosen = choose_members(model, work, classify=True)
    assert chosen["table_model"] == "linear" and chosen["members"] == ["linear"]
    assert chosen["validation_loss"]["network"] > chosen["validation_loss"]["constant"]


def test_a_table_regressor_ships_the_mean_in_the_labels_units():
    model, work = _work(classify=False)
    shipped, chosen = choose_members(model, work, classify=False)
    assert chosen["table_model"] == "mean"
    x, _ = _table(50, 2)
    mean, std = label_scale(model)
    body = table_parts(shipped)[1]
    standardised = np.asarray(body(encode_table(table_parts(model)[0], x)))
    np.testing.assert_allclose(shipped.predict(x, verbose=0), standardised * std + mean, atol=1e-5)
