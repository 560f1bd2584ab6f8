"""The table baselines' verdict in report.md (families/tables.py): the network beside gradient boosting, the linear
model and the majority class, and which one won, higher or lower being better."""

import numpy as np

from pipelines.families.tables import gradient_boosting, table_verdict


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
