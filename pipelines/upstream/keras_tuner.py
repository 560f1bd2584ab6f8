"""KerasTuner internals: the metric-direction guess for --objective, its debug switch (which prints every failed
trial's traceback), a tuner made with an oracle of ours (KerasTuner's tuner classes make their own), and the
trial statuses (which its public API does not export)."""

import keras_tuner as kt

from pipelines.upstream import require

TESTED = "1.4.8"


def _check() -> None:
    require("KerasTuner", kt.__version__, TESTED, "keras-tuner")


def metric_direction(name: str) -> str | None:
    """"min" or "max" for a Keras metric's name (val_loss, val_auc …), as KerasTuner infers it; None if it cannot."""
    _check()
    from keras_tuner.engine.metrics_tracking import infer_metric_direction
    return infer_metric_direction(name)


def quiet_failures() -> None:
    """KerasTuner prints a failed trial's traceback unless its DEBUG is off (the stage says one line instead)."""
    _check()
    from keras_tuner.src import config
    config.DEBUG = False


def init_with_oracle(tuner: kt.Tuner, oracle: kt.Oracle, **kwargs) -> None:
    """A tuner of one of KerasTuner's classes (RandomSearch, Hyperband …: their trial loops) driven by `oracle`:
    their own __init__ builds an oracle of its own, so the base class's is called instead."""
    _check()
    kt.Tuner.__init__(tuner, oracle=oracle, **kwargs)


def trial_status():
    """KerasTuner's TrialStatus (RUNNING, COMPLETED, FAILED, INVALID …), from its engine module."""
    _check()
    from keras_tuner.engine.trial import TrialStatus
    return TrialStatus
