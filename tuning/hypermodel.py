"""The HyperModel every task tunes through: its search space → the task's own builder and compile."""

import dataclasses
from typing import Any, Sequence

import keras
import keras_tuner as kt

from tuning.search_spaces import LEARNING_RATE, SEARCH_SPACES, learning_rate


class TaskHyperModel(kt.HyperModel):
    """Builds `task`'s model for one trial: searched arguments from the task's space, `fixed` ones as given."""

    def __init__(self, task, config, input_shape: Sequence[int], num_classes: int, fixed: dict[str, Any],
                 learned: dict[str, Any] | None = None, steps_per_epoch: int = 0):
        super().__init__(name=task.name)
        self.task, self.config = task, config
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.fixed, self.learned = dict(fixed), dict(learned or {})
        self.steps_per_epoch = steps_per_epoch

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        # Without this, every trial's graph stays in memory and a long sweep grows without bound (keras-tuner#395).
        keras.backend.clear_session()
        fixed_builder_args = {k: v for k, v in self.fixed.items() if k != LEARNING_RATE}
        hparams = {**self.config.hparams, **trial_hparams(self.task.name, hp), **fixed_builder_args}
        model = self.task.build_model(self.input_shape, self.num_classes, **hparams, **self.learned)
        rate = self.fixed.get(LEARNING_RATE, learning_rate(hp))
        # A trial's schedule spans the tuning epochs, as the final training's spans --epochs.
        trial_config = dataclasses.replace(self.config, learning_rate=rate, epochs=self.config.tuning_epochs)
        self.task.compile(model, trial_config, steps_per_epoch=self.steps_per_epoch)
        return model


def trial_hparams(task_name: str, hp: kt.HyperParameters) -> dict[str, Any]:
    """The builder arguments a trial's `hp` values stand for."""
    return SEARCH_SPACES[task_name](hp)
