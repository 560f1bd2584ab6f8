from pipelines.stages import tune


def test_trial_hyperparameters_are_written_without_float_noise():
    hparams = {"dropout": 0.1 * 3, "learning_rate": 0.000303114159, "hidden_units": (64,), "augment": True}
    assert tune.tidy_floats(hparams) == {"dropout": 0.3, "learning_rate": 0.000303114159, "hidden_units": (64,),
                                         "augment": True}
