"""The HyperModel every task tunes through: its search space → the task's own builder and compile."""

import dataclasses
import os
from typing import Any, Callable, Sequence

import keras
import keras_tuner as kt
import numpy as np

from pipelines import precision
from pipelines.upstream import tensorflow as tf_internals
from tuning.search_spaces import LEARNING_RATE, learning_rate, sample

OPTIMIZER_STATE = "optimizer_state.npz"  # <trial dir>/: the optimizer's variables at the trial's best epoch


class TaskHyperModel(kt.HyperModel):
    """Builds `task`'s model for one trial: searched arguments from the task's space, `fixed` ones as given."""

    def __init__(self, task, config, input_shape: Sequence[int], num_classes: int, fixed: dict[str, Any],
                 learned: dict[str, Any] | None = None, steps_per_epoch: int = 0, family=None):
        super().__init__(name=task.name)
        self.task, self.config = task, config
        self.family = family or task.family  # the data may make it another (a regressor on a table)
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.fixed, self.learned = dict(fixed), dict(learned or {})
        self.steps_per_epoch = steps_per_epoch
        self._gradients_before_sweep = tf_internals.custom_gradients()
        self.trial_dir: Callable[[str], str] | None = None  # the tuner's, once it is made (stages/tune.py)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        # Free the trials before this one: without both steps a sweep grows by every trial's graphs.
        self._forget_trial_gradients()
        keras.backend.clear_session()  # keras-tuner#395
        fixed_builder_args = {k: v for k, v in self.fixed.items() if k != LEARNING_RATE}
        hparams = {**self.config.hparams, **trial_hparams(self.task, hp, self.fixed), **fixed_builder_args}
        with precision.policy(self.config.precision):
            model = self.task.build(self.input_shape, self.num_classes, **hparams, **self.learned)
        # A trial's schedule spans the tuning epochs, as the final training's spans --epochs.
        trial_config = dataclasses.replace(self.config, learning_rate=self.learning_rate(hp),
                                           epochs=self.config.tuning_epochs)
        self.family.compile(model, trial_config, steps_per_epoch=self.steps_per_epoch)
        return model

    def learning_rate(self, hp: kt.HyperParameters) -> float:
        """The trial's learning rate: --learning_rate when given (fixed), else searched around the task's own."""
        return self.fixed.get(LEARNING_RATE, learning_rate(hp, self.task.learning_rate))

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, **kwargs):
        """A Hyperband trial promoted from an earlier one continues its optimizer as well (Adam's moments, the
        schedule's step), from the epoch whose weights KerasTuner reloaded: KerasTuner reloads only the weights."""
        earlier = hp.values.get("tuner/trial_id")
        path = os.path.join(self.trial_dir(earlier), OPTIMIZER_STATE) if earlier and self.trial_dir else None
        if path and os.path.exists(path) and model.optimizer is not None:
            model.optimizer.build(model.trainable_variables)
            with np.load(path) as state:
                values = [state[f"arr_{i}"] for i in range(len(state.files))]
            for variable, value in zip(model.optimizer.variables, values, strict=True):
                variable.assign(value)
            print(f"continuing trial {earlier}'s model and optimizer from step "
                  f"{int(model.optimizer.iterations.numpy())}", flush=True)
        return model.fit(*args, **kwargs)

    def _forget_trial_gradients(self) -> None:
        """Unregisters the custom gradients earlier trials' train functions left in TensorFlow's global registry.

        Keras' optimizer sums gradients across replicas with `ReplicaContext.all_reduce`, a `tf.custom_gradient`;
        in a traced function each call registers a `CustomGradient-N` entry that is never removed and whose
        closure holds the function's whole graph (tensorflow#97697, fixed upstream after TF 2.21): a sweep grew by
        every trial's graphs (docs/tuning.md has the figures). Only entries made since the sweep began are dropped,
        and only between trials, when no earlier trial's graph can be differentiated again.
        """
        tf_internals.forget_gradients(tf_internals.custom_gradients() - self._gradients_before_sweep)


def trial_hparams(task, hp: kt.HyperParameters, fixed=()) -> dict[str, Any]:
    """The builder arguments a trial's `hp` values stand for in the task's space; `fixed` ones are not sampled."""
    return sample(task.search_space, hp, fixed)
