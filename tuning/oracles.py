"""KerasTuner's oracles, each also trying the task's default model once, at the full budget, as a control.

KerasTuner samples every trial at random, even the first, so a sweep can end with a best trial worse than the
model `--task` trains unflagged. Here the space's default point (the builders' defaults, tuning/search_spaces.py)
is one of the trials, trained as long as the sweep trains any: the first trial of random and Bayesian search,
the first of Hyperband's last bracket (every trial of that bracket trains for all `max_epochs`). A sweep's best
is then never below the defaults on the objective. The control is tried once: resuming does not repeat it.
"""

from typing import Any

import keras_tuner as kt


class _DefaultsFirst:
    """Mixin for an oracle: the next random values are the defaults while they are untried and run in full."""

    full_budget = True  # random and Bayesian search train every trial for all its epochs

    def _random_values(self) -> dict[str, Any] | None:
        defaults = self._default_values()
        if self.full_budget and not self._duplicate(defaults):
            return defaults
        return super()._random_values()

    def _default_values(self) -> dict[str, Any]:
        hps = kt.HyperParameters()
        for hp in self.hyperparameters.space:  # as the base class's random sampling walks it, conditions included
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = hp.default
        return hps.values


class RandomSearchOracle(_DefaultsFirst, kt.oracles.RandomSearchOracle):
    pass


class BayesianOptimizationOracle(_DefaultsFirst, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(_DefaultsFirst, kt.oracles.HyperbandOracle):
    def _random_trial(self, trial_id, bracket):
        # Bracket 0 starts every trial at max_epochs; the earlier brackets stop most trials after a few epochs.
        self.full_budget = bracket["bracket_num"] == 0
        return super()._random_trial(trial_id, bracket)
