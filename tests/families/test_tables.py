"""The table baselines' verdict in report.md (families/tables.py): the network beside gradient boosting, the linear
model and the majority class, and which one won, higher or lower being better; and what a table model ships: the
mean of its network, the linear fit and (a classifier) the gradient-boosted trees as tensor operations, a member no
better than the constant forecast left out."""

import types

import keras
import numpy as np
import tensorflow as tf

from models.dense import build_dense_classifier
from models.table import describe_columns
from models.trees import tree_arrays, tree_ensemble
from pipelines.families import tables
from pipelines.families.tables import (UNSEEN_LOGIT, boosted_trees, choose_members, encode_table, gradient_boosting,
                                       label_scale, logistic, logistic_weights, table_parts, table_verdict,
                                       worse_than_constant)


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
    return model, types.SimpleNamespace(inputs=inputs, config=types.SimpleNamespace(class_weight="none"))


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


def _softmax(logits):
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def test_a_table_classifier_ships_the_mean_of_its_network_the_logistic_fit_and_the_trees_as_one_model(tmp_path):
    model, work = _work(classify=True)
    shipped, chosen = choose_members(model, work, classify=True)
    assert chosen["table_model"] == "mean" and chosen["members"] == ["network", "linear", "trees"]
    assert set(chosen["validation_loss"]) == {"network", "linear", "trees", "mean", "constant"}
    x, _ = _table(50, 2)
    encoder, body = table_parts(model)
    encoded = encode_table(encoder, x)
    members = [np.asarray(body(encoded))] + [np.asarray(table_parts(shipped)[1].get_layer(name)(encoded))
                                             for name in ("linear", "trees")]
    expected = np.mean([_softmax(z) for z in members], axis=0)  # the mean of the three's probabilities
    np.testing.assert_allclose(_softmax(shipped.predict(x, verbose=0)), expected, atol=1e-5)
    shipped.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_softmax(again.predict(x, verbose=0)), expected, atol=1e-5)


def test_a_classifier_of_more_classes_than_trees_are_shipped_for_ships_the_network_and_the_linear_model(monkeypatch):
    monkeypatch.setattr(tables, "MAX_TREE_CLASSES", 1)
    model, work = _work(classify=True)
    shipped, chosen = choose_members(model, work, classify=True)
    assert chosen["members"] == ["network", "linear"] and "trees" not in chosen["validation_loss"]
    assert not any(layer.name == "trees" for layer in table_parts(shipped)[1].layers)


def test_a_member_no_better_than_the_constant_forecast_is_left_out():
    model, work = _work(classify=True)
    logits = table_parts(model)[1].get_layer("logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * 0, bias * 0 + np.array([30.0, -30.0])])  # a broken network: always class 0, sure
    shipped, chosen = choose_members(model, work, classify=True)
    assert chosen["table_model"] == "mean" and chosen["members"] == ["linear", "trees"]
    assert chosen["validation_loss"]["network"] > chosen["validation_loss"]["constant"]
    x, _ = _table(50, 2)
    encoded = encode_table(table_parts(model)[0], x)
    body = table_parts(shipped)[1]
    expected = np.mean([_softmax(np.asarray(body.get_layer(name)(encoded))) for name in ("linear", "trees")], 0)
    np.testing.assert_allclose(_softmax(shipped.predict(x, verbose=0)), expected, atol=1e-5)  # no network in it


def test_the_report_puts_a_classifiers_log_loss_beside_the_baselines():
    metrics = {"test_accuracy": 0.9, "baseline_gradient_boosting_accuracy": 0.88, "baseline_logistic_accuracy": 0.8,
               "test_log_loss": 0.25, "baseline_gradient_boosting_log_loss": 0.3, "baseline_logistic_log_loss": 0.4}
    lines = table_verdict(metrics, "accuracy", higher_is_better=True)
    assert "| model | test accuracy | test log loss |" in lines and "| network | 0.9 | 0.25 |" in lines
    assert "| logistic regression | 0.8 | 0.4 |" in lines
    metrics["baseline_majority_accuracy"] = 0.6  # a baseline without a log loss: its cell is empty
    assert "| the majority class | 0.6 | |" in table_verdict(metrics, "accuracy", higher_is_better=True)


def test_a_member_is_left_out_when_worse_than_the_constant_beyond_the_noise_of_the_validation_rows():
    rng = np.random.default_rng(0)
    unlucky = rng.normal(0.05, 0.8, 32)  # a little worse on 32 rows, within their noise: kept
    broken = rng.normal(0.5, 0.8, 400)   # worse on 400 rows, far beyond it: left out
    better = rng.normal(-0.3, 0.8, 32)
    for excess, expected in ((unlucky, False), (broken, True), (better, False)):
        assert worse_than_constant(excess.sum(), (excess ** 2).sum(), len(excess)) == expected
    assert not worse_than_constant(0.0, 0.0, 10)  # the constant itself


def _boosted(x, y, classify):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    return (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(random_state=0).fit(x, y)


def test_gradient_boosted_trees_as_tensor_operations_score_as_scikit_learn_does(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    x[:, 4] = rng.integers(0, 2, 600)  # a one-hot entry: splits at 0.5
    new = rng.normal(size=(300, 5)).astype(np.float32)
    new[:, 4] = rng.integers(0, 2, 300)
    new[:20, 0] = x[:20, 0]  # values the trees were fitted on, where a float32 threshold could flip a split
    xor = (x[:, 0] > 0) ^ (x[:, 1] > 0)
    cases = {"two classes": (xor.astype(int), 2), "four classes, one unseen": (xor + 2 * (x[:, 2] > 0.5), 5),
             "a regressor": (np.sin(3 * x[:, 0]) + x[:, 4] * x[:, 1], None)}
    for what, (y, classes) in cases.items():
        fitted = _boosted(x, y, classes is not None)
        layer = boosted_trees(fitted, classes, x)
        scores = np.asarray(layer(new))
        if classes is None:
            np.testing.assert_allclose(scores[:, 0], fitted.predict(new), atol=1e-4, err_msg=what)
            continue
        seen = fitted.classes_.astype(int)
        np.testing.assert_allclose(_softmax(scores)[:, seen], fitted.predict_proba(new), atol=1e-5, err_msg=what)
        assert np.all(scores.argmax(1) == fitted.predict(new)), what
        unseen = [c for c in range(classes) if c not in seen]
        assert np.all(_softmax(scores)[:, unseen] < 1e-9), what
    inputs = keras.Input((5,))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "trees.keras")  # its arrays are weights: saved and loaded with the model
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "trees.keras").predict(new, verbose=0),
                               model.predict(new, verbose=0))


def test_a_split_at_a_value_many_train_rows_share_moves_so_a_rounding_of_any_train_value_keeps_its_leaf():
    rng = np.random.default_rng(4)
    spending = np.where(rng.random(800) < 0.6, 0.0, rng.lognormal(3, 1.5, 800))  # most rows spend nothing
    x = np.stack([(spending - spending.mean()) / spending.std(), rng.normal(size=800)], 1).astype(np.float32)
    y = (spending > 30).astype(int) ^ (rng.random(800) < 0.1)
    fitted = _boosted(x, y, True)
    layer = boosted_trees(fitted, 2, x)
    at_a_value = [n for trees in tables.upstream_sklearn.boosted_trees(fitted)[0] for n in trees[0]
                  if not n["is_leaf"] and np.float32(n["num_threshold"]) in set(x[:, n["feature_idx"]])]
    assert at_a_value  # scikit-learn's own thresholds sit on train values (the zeros' quantile)
    scores = np.asarray(layer(x))
    np.testing.assert_allclose(_softmax(scores)[:, 1], fitted.predict_proba(x)[:, 1], atol=1e-5)
    for direction in (np.inf, -np.inf):  # every feature one float away: the arithmetic of another computation
        np.testing.assert_allclose(np.asarray(layer(np.nextafter(x, np.float32(direction)))), scores, atol=1e-6)


def test_a_tree_with_one_leaf_and_padded_trees_add_their_values():
    # tree 0: the root splits on feature 1 at 0.0; left a leaf of 1, right splits on feature 0 at 2.0 (leaves 10, 100)
    # tree 1: a single leaf of 0.5, in output 1
    split = [(1, 0.0, 1, 2, False, 0.0), (0, 0.0, 0, 0, True, 1.0), (0, 2.0, 3, 4, False, 0.0),
             (0, 0.0, 0, 0, True, 10.0), (0, 0.0, 0, 0, True, 100.0)]
    arrays = tree_arrays([(0, split), (1, [(0, 0.0, 0, 0, True, 0.5)])], outputs=2)
    layer = tree_ensemble(arrays, np.array([0.0, 0.25]))
    x = np.array([[5.0, -1.0], [1.0, 1.0], [3.0, 1.0], [2.0, 0.0]], np.float32)
    np.testing.assert_array_equal(np.asarray(layer(x)), [[1, 0.75], [10, 0.75], [100, 0.75], [1, 0.75]])


def test_a_table_regressor_ships_the_mean_in_the_labels_units():
    model, work = _work(classify=False)
    shipped, chosen = choose_members(model, work, classify=False)
    assert chosen["table_model"] == "mean"
    x, _ = _table(50, 2)
    mean, std = label_scale(model)
    body = table_parts(shipped)[1]
    standardised = np.asarray(body(encode_table(table_parts(model)[0], x)))
    np.testing.assert_allclose(shipped.predict(x, verbose=0), standardised * std + mean, atol=1e-5)
