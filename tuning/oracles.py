"""KerasTuner's oracles, each also trying the task's default model once, at the full budget, as a control.

KerasTuner samples every trial at random, even the first, so a sweep can end with a best trial worse than the
model `--task` trains unflagged. Here the space's default point (the builders' defaults, tuning/search_spaces.py)
is one of the trials, trained as long as the sweep trains any: the first full-budget trial (random and Bayesian
search train every trial fully; Hyperband's trials that start at its max_epochs are its last bracket's). A
sweep's best is then never below the defaults on the objective. The control is tried once: resuming does not
repeat it. Built on the oracles' public hook, `populate_space`.
"""

from typing import Any

import keras_tuner as kt

from pipelines.upstream.keras_tuner import trial_status

TUNER_KEYS = "tuner/"  # Hyperband's own entries among a trial's values: its epochs, bracket and round


class _DefaultsFirst:
    """Mixin for an oracle: its first full-budget trial takes the space's defaults, once."""

    def populate_space(self, trial_id):
        proposal = super().populate_space(trial_id)
        values = proposal.get("values")
        if proposal.get("status") != trial_status().RUNNING or not values:
            return proposal
        if self._starts_full(values) and not self._defaults_tried():
            self.defaults_tried = True
            tuner = {k: v for k, v in values.items() if k.startswith(TUNER_KEYS)}
            return {**proposal, "values": {**self.default_values(), **tuner}}
        return proposal

    def get_state(self):  # the oracle's saved state (oracle.json) records that the control ran
        return {**super().get_state(), "defaults_tried": self._defaults_tried()}

    def set_state(self, state):
        super().set_state(state)
        self.defaults_tried = state.get("defaults_tried", False)

    def _starts_full(self, values: dict[str, Any]) -> bool:
        """A new trial trained for the sweep's whole budget (Hyperband: round 0 of a bracket that starts at
        max_epochs; not a promoted trial continuing an earlier one)."""
        return "tuner/epochs" not in values or (values.get("tuner/round") == 0
                                                and values["tuner/epochs"] == getattr(self, "max_epochs", None))

    def default_values(self) -> dict[str, Any]:
        """Every active hyperparameter at its default, the space walked as the oracles' random sampling walks it
        (conditions included)."""
        hps = kt.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = hp.default
        return hps.values

    def _defaults_tried(self) -> bool:
        if getattr(self, "defaults_tried", False):
            return True
        defaults = self.default_values()
        return any({k: v for k, v in trial.hyperparameters.values.items() if not k.startswith(TUNER_KEYS)}
                   == defaults and self._starts_full(trial.hyperparameters.values) for trial in self.trials.values())


class RandomSearchOracle(_DefaultsFirst, kt.oracles.RandomSearchOracle):
    pass


class BayesianOptimizationOracle(_DefaultsFirst, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(_DefaultsFirst, kt.oracles.HyperbandOracle):
    pass


# --tuner's values: each search's oracle (pipelines/stages/tune.py pairs it with KerasTuner's tuner class).
ORACLES = {"random": RandomSearchOracle, "hyperband": HyperbandOracle, "bayesian": BayesianOptimizationOracle}
