"""The command line's values → the RunConfig: every field that is a flag of its name from it, the task's defaults
where a flag was left unset (config.resolve), and the fields computed from the rest (config.DERIVED): the model's
hyperparameters (flags, or a --hparams_file), the precision the device computes natively, --init_from's content.

flags.py defines the flags and hands their values here; nothing here reads absl, so the rule by which a default is
chosen reads in one place: a flag given wins; else --hparams_file's value; else the task's (Task.defaults, its
family's too) for config.TASK_DEFAULTS and the builder's signature for a model flag; else RunConfig's own.
"""

import dataclasses
import os
from typing import Any, Callable

from pipelines import artifacts, precision
from pipelines import config as run_config
from pipelines.config import RunConfig
from pipelines.data import idx, sequences
from pipelines.errors import PipelineError
from pipelines.tasks import TASKS, family_of
from models import pretrained

Parse = Callable[[str, Any], Any]  # (flag name, value) → the value as that flag would take it, or ValueError


# Without --task: the task a sequences file gets (the UCR/UEA archive's layout, or a long file of series to
# classify), chosen by its accuracy against aeon's MiniRocket (docs/time-series.md); anything else gets --task's
# default.
SEQUENCES_TASK = "rocket"


def _long_classification(values: dict[str, Any]) -> bool:
    """Whether the data are a long file of recordings, each with a class (sequences.is_long_classification)."""
    dataset = values["dataset"] or ""
    return bool(values["time_column"] and values["series_id_column"] and os.path.isfile(dataset) and (
        sequences.is_long_classification(dataset, values["label_column"], values["problem"])))


TASK_CHOOSING = ("task", "dataset", "time_column", "series_id_column", "label_column", "problem")  # chosen_task reads


def chosen_task(values: dict[str, Any], explicit: set[str], long_classification: bool | None = None) -> str:
    """--task if given; else the sequence classifier for a file of sequences; else --task's default.
    `long_classification`: _long_classification(values), when the caller has it already (it reads the file)."""
    if "task" in explicit:
        return values["task"]
    if long_classification is None:
        long_classification = _long_classification(values)
    archive = not values["time_column"] and values["dataset"] and sequences.is_archive_file(values["dataset"])
    return SEQUENCES_TASK if long_classification or archive else values["task"]


def to_config(values: dict[str, Any], explicit: set[str], parse: Parse) -> RunConfig:
    """The RunConfig of the flags' `values`, those `explicit` given on the command line."""
    long_classification = _long_classification(values)
    values = {**values, "task": chosen_task(values, explicit, long_classification)}
    task = TASKS[values["task"]]
    fields = {field.name: _typed(values[field.name]) for field in dataclasses.fields(RunConfig)
              if field.name not in run_config.DERIVED}
    hparams = {name: _or(values[name], default) for name, default in task.default_hparams.items()}
    # A time column makes the data a series to forecast unless its series are classified (--problem, or a long file
    # whose label is a word): the one family known before the data are read, whose defaults leave out its variants.
    forecast = values["time_column"] and values["problem"] != "classification" and not long_classification
    defaults = task.defaults(values["trainer"], family_of(task, "forecast" if forecast else ""))
    if "forecaster" in explicit and not forecast:
        raise PipelineError(f"--forecaster={values['forecaster']} says what a forecaster ships, and --dataset="
                            f"{values['dataset']} is no series to forecast here: give --time_column too, or leave "
                            "the flag out")
    if values["hparams_file"]:
        hparams, fields["learning_rate"] = _with_hparams_file(
            values, explicit, parse, task, hparams, _or(values["learning_rate"], defaults["learning_rate"]))
    if "idx_dir" in explicit and not os.path.isdir(values["idx_dir"]):
        raise PipelineError(f"--idx_dir={values['idx_dir']} is not a folder: give the folder holding "
                            f"Fashion-MNIST's four IDX .gz files ({idx.DEFAULT_IDX_DIR} with Debian's "
                            "dataset-fashion-mnist)")
    if values["trainer"] == "numpy":
        fields["precision"], reason = "float32", "--trainer=numpy computes in float32"
    else:
        fields["precision"], reason = precision.choose(values["precision"], task.mixed_precision,
                                                       precision.this_device())
    init_from = values["init_from"]
    return run_config.resolve({
        **fields, "hparams": hparams, "fixed_hparams": _given_hparams(values, task),
        "explicit": tuple(sorted(explicit)), "precision_reason": reason,
        "init_from_sha256": init_from and (artifacts.content_hash(init_from) or pretrained.preset_hash(init_from))},
        defaults)


def _typed(value):
    """A flag's value as RunConfig holds it: lists as tuples."""
    return tuple(value) if isinstance(value, list) else value


def _with_hparams_file(values: dict, explicit: set[str], parse: Parse, task, hparams: dict, learning_rate: float):
    """The builder arguments and learning rate of --hparams_file, each checked as its flag would be; a flag given
    on the command line wins over the file."""
    path = values["hparams_file"]
    saved, saved_rate = task.read_hparams_file(path)
    if saved_rate is not None:
        saved["learning_rate"] = saved_rate
    for name, value in saved.items():
        if name in explicit:
            continue
        try:
            checked = parse(name, value)
        except (ValueError, TypeError) as e:
            raise PipelineError(f"{path}: {name}={value!r} is not a valid --{name} ({e})") from None
        if name == "learning_rate":
            learning_rate = checked
        else:
            hparams[name] = checked
    return hparams, learning_rate


def _given_hparams(values: dict, task) -> dict:
    given = {name: values[name] for name in task.hparams if values[name] is not None}
    if values["learning_rate"] is not None:
        given["learning_rate"] = values["learning_rate"]
    return given


def _or(value, default):
    return default if value is None else value
