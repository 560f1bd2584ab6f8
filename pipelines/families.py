"""Problem families: what a kind of problem owns, so that no generic code asks which task it runs.

A family says how its models are compiled, evaluated and summed up in one headline number, what of them ships and
within which limits (its Serving), what tuning optimizes and in which direction, which training log the divergence
check reads, and whether the per-epoch gradient norm applies. A task (tasks.py) names its family; the runner,
stages and health code only ever ask the family.
"""

import dataclasses
from typing import Callable


def _none(ctx) -> list:
    return []


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    compile: Callable          # (model, RunConfig, steps_per_epoch=0) -> None
    evaluate: Callable         # (Context, model) -> metrics dict for metrics.json
    serving: Callable          # (trained model) -> Serving: what export writes and verify measures
    headline: str              # the metrics.json entry the run's summary shows
    objective: str             # what the tune stage optimizes unless --objective says otherwise …
    objective_direction: str   # … and whether it is minimized or maximized
    loss_key: str              # the training log whose divergence stops a run
    gradient_norm: bool        # the model has one compiled loss, whose gradient norm is logged per epoch
    callbacks: Callable = _none         # (Context) -> extra Keras callbacks for the train stage's fit
    tuning_callbacks: Callable = _none  # (Context) -> callbacks every trial needs (one that logs the objective)
