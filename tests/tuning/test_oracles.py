import keras_tuner as kt
import pytest

from tuning import oracles
from tuning import search_spaces
from tuning.search_spaces import sample


def _oracle(oracle_class, tmp_path, **options):
    oracle = oracle_class(objective=kt.Objective("val_accuracy", "max"), seed=1, **options)
    oracle._set_project_dir(str(tmp_path), "sweep")
    hp = kt.HyperParameters()
    sample(search_spaces.conv, hp)  # registers the space, as the tuner's first build does
    oracle.update_space(hp)
    return oracle


def _run(oracle, scores):
    """Runs the oracle's trials with made-up scores (the first trial scores scores[0], ...) until it stops."""
    trials = []
    while len(trials) < len(scores):
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        oracle.update_trial(trial.trial_id, {"val_accuracy": scores[len(trials)]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        trials.append(trial)
    return trials


def _searched(values):
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


DEFAULTS = {"conv_blocks": 3, "conv_base_filters": 24, "dense_units": 128, "dropout": 0.1, "augment": "none"}


@pytest.mark.parametrize("oracle_class", [oracles.RandomSearchOracle, oracles.BayesianOptimizationOracle])
def test_the_first_trial_is_the_default_model_and_only_the_first(oracle_class, tmp_path):
    trials = _run(_oracle(oracle_class, tmp_path, max_trials=4), scores=[0.5, 0.6, 0.7, 0.8])
    assert len(trials) == 4
    assert _searched(trials[0].hyperparameters.values) == DEFAULTS
    assert all(_searched(t.hyperparameters.values) != DEFAULTS for t in trials[1:])


def test_a_resumed_search_does_not_repeat_the_default_trial(tmp_path):
    first = _oracle(oracles.RandomSearchOracle, tmp_path, max_trials=4)
    _run(first, scores=[0.5])
    resumed = _oracle(oracles.RandomSearchOracle, tmp_path, max_trials=4)
    resumed.set_state(first.get_state())
    (trial,) = _run(resumed, scores=[0.6])
    assert _searched(trial.hyperparameters.values) != DEFAULTS


def test_hyperband_trains_the_default_model_once_for_all_its_epochs(tmp_path):
    oracle = _oracle(oracles.HyperbandOracle, tmp_path, max_epochs=9, factor=3)
    # Scores rise with the trial number: the default model ranks last wherever it runs.
    trials = _run(oracle, scores=[i / 100 for i in range(100)])
    assert oracle.create_trial("tuner0").status == "STOPPED"
    defaults = [t for t in trials if _searched(t.hyperparameters.values) == DEFAULTS]
    assert len(defaults) == 1
    values = defaults[0].hyperparameters.values
    assert (values["tuner/bracket"], values["tuner/epochs"], values["tuner/initial_epoch"]) == (0, 9, 0)
    assert len({t.hyperparameters.values["tuner/bracket"] for t in trials}) == 3  # the other brackets ran too
