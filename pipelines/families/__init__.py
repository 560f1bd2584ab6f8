"""Problem families: what a kind of problem owns, so that no generic code asks which task it runs.

A family says how its models are compiled, evaluated and summed up in one headline number, what it draws and
writes beside the model, what of it ships and within which limits (its Shipment), how verify's table judges an
export, what tuning optimizes and in which direction, which training log the divergence check reads, and how a
model starts from an earlier one's weights (`initialize`). A task (tasks.py) names its family, and tasks.family_of
is the one rule by which the data may choose another (a table's numeric label is regressed). The runner, the
stages and the health code only ever ask the family what it declared here; its hooks get the run's Workspace,
not the stage's context.

One module per family: classifier.py, regressor.py, generator.py; tables.py is what the two families that learn
from a table share (its encoder's split and the TFLite files' feature vector).
"""

import dataclasses
import os
from typing import Any, Callable, Protocol

import keras
import numpy as np

from pipelines import artifacts
from pipelines.config import RunConfig
from pipelines.data.pipeline import Inputs
from pipelines.data.sources import DataSet
from pipelines.errors import PipelineError
from pipelines.initialization import initialize_by_layer
from pipelines.shipping import Shipment


@dataclasses.dataclass(frozen=True)
class Workspace:
    """What a family's hooks are given: the run's settings, its data and input pipeline, and its folder."""
    config: RunConfig
    data: DataSet
    inputs: Inputs
    folder: str

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def chosen(self, *keys: str) -> dict:
        """What the train stage's choose hook recorded (config.json's `chosen`), the entries `keys` name: what
        evaluate adds to metrics.json."""
        found = artifacts.read_json(self.path(artifacts.CONFIG)).get("chosen") or {}
        return {key: found[key] for key in keys if key in found}


@dataclasses.dataclass(frozen=True)
class Picture:
    file: str   # an artifact name in the task folder (evaluate draws it)
    title: str  # what report.md calls it


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of verify's table: its title, the export row's entry it shows, and how."""
    title: str
    key: str
    form: str


@dataclasses.dataclass(frozen=True)
class Asked:
    """What a predictions file shows (dlpipe-predict's flags): the answer column's header (a table's label column,
    else "label"), how many of the likeliest classes, whether every class's probability, and a forecast's
    interval."""
    header: str = "label"
    top_k: int = 1
    probabilities: bool = False
    # A forecast's interval: the half-widths [examples, steps ahead] around each forecast of a batch, from the batch's
    # inputs (Predictor.interval); for_batch fills `halfwidths` with them.
    interval: Callable[[dict], np.ndarray] | None = None
    halfwidths: np.ndarray | None = None

    def for_batch(self, inputs: dict) -> "Asked":
        """What to show for one batch of inputs: with an interval, its half-widths for them."""
        return self if self.interval is None else dataclasses.replace(self, halfwidths=self.interval(inputs))


class Scorer(Protocol):
    """Predictions scored against the true labels of new data, batch by batch (constant memory)."""

    def add(self, outputs: np.ndarray, truth: list) -> None: ...

    def result(self) -> dict: ...   # for the JSON beside the predictions

    def line(self) -> str: ...      # the same in one line


# The hooks a family gives, each a documented signature (a family passes plain functions of that shape).


class Compile(Protocol):
    def __call__(self, model: keras.Model, config: RunConfig, steps_per_epoch: int = 0) -> None:
        """Compiles `model` with the family's loss, metrics and optimizer (its schedule over `steps_per_epoch`)."""


class Evaluate(Protocol):
    def __call__(self, model: keras.Model, work: Workspace) -> dict:
        """The test split's measures for metrics.json (the headline among them); draws the family's pictures."""


class Ship(Protocol):
    def __call__(self, model: keras.Model, work: Workspace | None = None) -> Shipment:
        """What export writes from the trained model and verify measures, within which limits (shipping.py); with
        the run's Workspace, what its other artifacts add (a forecaster's interval bounds, from metrics.json), else
        the model's own (dlpipe-predict reads a run's files without its data)."""


class Report(Protocol):
    def __call__(self, metrics: dict) -> list[str]:
        """report.md lines of the family's own (a forecaster's baselines table, a text model's quoted errors)."""


class Callbacks(Protocol):
    def __call__(self, work: Workspace) -> list:
        """Keras callbacks the family adds (to training's fit, or to every tuning trial)."""


class FitOptions(Protocol):
    def __call__(self, work: Workspace) -> dict:
        """Keyword arguments the family adds to Keras' fit, in training and in every tuning trial (a classifier's
        class weights)."""


class Initialize(Protocol):
    def __call__(self, model: keras.Model, path: str) -> str:
        """Loads what `path` (--init_from) holds into `model`; says what was loaded, for the log."""


class Answer(Protocol):
    def __call__(self, outputs: np.ndarray, label_names: tuple[str, ...], asked: Asked) -> dict[str, list]:
        """A predictions file's columns by name, from outputs in the terms an app reads (Shipment's
        to_tflite_outputs: a classifier's probabilities, a regressor's value in the label's units)."""


class MakeScorer(Protocol):
    def __call__(self, label_names: tuple[str, ...]) -> Scorer:
        """A Scorer of predictions against new data's true labels."""


class NeedsLabels(Protocol):
    def __call__(self, config: RunConfig) -> bool:
        """Whether the family's models learn from class labels (a folder without class subfolders serves a family
        that needs none: a generator, unless conditional)."""


class Choose(Protocol):
    def __call__(self, trained: keras.Model, work: Workspace) -> tuple[keras.Model, dict]:
        """What the run saves and ships, from the trained model (a forecaster: the mean of its candidates; a table
        model: the mean of its network and the linear model), and what was chosen and why (config.json's
        `chosen`)."""


def _none(*args) -> list:
    return []


def _no_options(work: Workspace) -> dict:
    if work.config.class_weight != "none":
        raise PipelineError(f"--class_weight={work.config.class_weight} weighs the classes of a classifier, and "
                            "this run's model is not one: leave the flag out")
    return {}


def _trained(trained: keras.Model, work: Workspace) -> tuple[keras.Model, dict]:
    return trained, {}


def _labels(config: RunConfig) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Family:
    """A kind of problem: its hooks (each a Protocol above) and what it declares."""
    name: str
    compile: Compile
    evaluate: Evaluate
    ship: Ship
    headline: str              # the metrics.json entry the run's summary shows
    objective: str             # what the tune stage optimizes unless --objective says otherwise …
    objective_direction: str   # … and whether it is minimized or maximized
    loss_key: str              # the training log whose divergence stops a run
    gradient_norm: bool        # the model has one compiled loss, whose gradient norm is logged per epoch
    export_columns: tuple[Column, ...]  # how verify's table judges each export
    pictures: tuple[Picture, ...] = ()  # what evaluate draws
    side_files: dict[str, str] = dataclasses.field(default_factory=dict)  # written beside the model: what each holds
    report: Report = _none
    callbacks: Callbacks = _none         # for the train stage's fit
    tuning_callbacks: Callbacks = _none  # what every trial needs (one that logs the objective)
    fit_options: FitOptions = _no_options  # more of fit's arguments, in training and tuning
    initialize: Initialize = initialize_by_layer
    choose: Choose = _trained
    answer: Answer | None = None         # None: the family answers no inputs (a generator draws samples instead)
    scorer: MakeScorer | None = None     # None: predictions are not scored
    # metrics.json → the run's prediction intervals (`multiples` by level, `halfwidths(batch, level)`), or None;
    # None: the family has none (a forecaster's are forecaster.Intervals).
    intervals: Callable[[dict], Any] | None = None
    # TFLite variants its defaults leave out (beside a task's own), each with why.
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)
    needs_labels: NeedsLabels = _labels
    generative: bool = False  # its models learn to draw their training images (folders.prepare's `generative`)
    # Unless --epochs is given, a small data set trains for at least this many optimizer steps: a task's epochs
    # are set for data sets of thousands of batches (docs/own-data.md, Small data).
    min_train_steps: int = 100
    # … reached by more passes over the train split an epoch instead of more epochs: for a family whose epoch
    # costs more than its steps (a generator draws a grid and backs up two nets after each).
    repeat_small_data: bool = False
