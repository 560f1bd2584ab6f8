"""The stages, in the only order they run, each with the artifacts it reads and writes and the settings it ignores.

A stage's fingerprint (runner.py) is every RunConfig field except config.NOT_IDENTITY and the stage's own
`ignores`: a field added to RunConfig counts for every stage until a stage says it does not depend on it.
"""

import dataclasses
from typing import Callable

from pipelines import artifacts as a
from pipelines import exporters
from pipelines.config import RunConfig
from pipelines.data import new_data
from pipelines.stages import evaluate, export, predict, report, train, tune, verify
from pipelines.tasks import pictures


def _none(config) -> tuple[str, ...]:
    return ()


def _never(config) -> bool:
    return False


def _export_files(config) -> tuple[str, ...]:
    return tuple(target.file for target in exporters.asked(config))


def _sweep_result(config) -> tuple[str, ...]:
    """train reads the sweep's best_hparams.json when tune runs before it (--hparams_file is read into the config)."""
    return (a.BEST_HPARAMS,) if "tune" in config.stages else ()


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    run: Callable  # (Context) -> str: a one-line key result for the summary
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # RunConfig fields its outputs do not depend on (every other field is in its fingerprint).
    ignores: tuple[str, ...] = ()
    # Inputs and outputs that depend on the config (the TFLite variants), beside the fixed ones.
    inputs_for: Callable = _none
    outputs_for: Callable = _none
    inputs_optional: bool = False  # it reads those it finds (the report), instead of needing each one
    # What it reads from outside the run folder, by name → content hash, for its fingerprint (predict's new data).
    reads_outside: Callable[[RunConfig], dict] = lambda config: {}
    # A flag that makes it start over although up to date (--fresh: a new sweep), beside --force.
    starts_over: Callable[[RunConfig], bool] = _never

    def all_inputs(self, config) -> tuple[str, ...]:
        return self.inputs + self.inputs_for(config)

    def all_outputs(self, config) -> tuple[str, ...]:
        return self.outputs + self.outputs_for(config)


TUNING = ("tuner", "max_trials", "tuning_epochs", "executions_per_trial", "objective", "fixed_hparams")
EXPORT = exporters.SETTINGS
PREDICT = ("predict_input",)
NEW_DATA = "<predict input>"  # the key of --predict_input's contents among the predict stage's inputs


def _new_data(config) -> dict:
    return {NEW_DATA: new_data.content_hash(config.predict_input)} if config.predict_input else {}


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("tune", tune.run, inputs=(), outputs=(a.TRIALS_CSV, a.TRIALS_PNG, a.BEST_HPARAMS, a.TUNING),
          ignores=("epochs", "max_test_examples") + EXPORT + PREDICT, starts_over=lambda config: config.fresh),
    # The sweep's settings reach train through best_hparams.json, whose content is in train's fingerprint.
    Stage("train", train.run, inputs=(), inputs_for=_sweep_result,
          outputs=(a.MODEL, a.HISTORY, a.CONFIG, a.CHECKPOINTS, a.LOGS),
          ignores=TUNING + EXPORT + PREDICT + ("max_test_examples",)),
    Stage("evaluate", evaluate.run, inputs=(a.MODEL, a.CONFIG), outputs=(a.METRICS, a.CURVES_PNG),
          outputs_for=lambda config: pictures(config.task),
          ignores=TUNING + EXPORT + PREDICT),
    Stage("export", export.run, inputs=(a.MODEL, a.CONFIG), outputs=(a.SAVED_MODEL, a.LABELS),
          outputs_for=_export_files, ignores=TUNING + PREDICT + ("max_test_examples",)),
    Stage("verify", verify.run, inputs=(a.MODEL, a.CONFIG, a.SAVED_MODEL), inputs_for=_export_files,
          outputs=(a.VERIFY, a.VERIFY_MD), ignores=TUNING + PREDICT + ("representative_examples",)),
    # It describes what the stages above left (any may be missing), settings included (config.json): no flag of
    # its own decides it.
    Stage("report", report.run, inputs=(a.CONFIG, a.METRICS, a.HISTORY, a.VERIFY, a.TRIALS_CSV), outputs=(a.REPORT,),
          ignores=tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("task", "dataset")),
          inputs_optional=True),
    # New examples labelled by the SavedModel: its content and theirs decide the predictions, not a setting.
    Stage("predict", predict.run, inputs=(a.MODEL, a.CONFIG, a.SAVED_MODEL),
          outputs=(a.PREDICTIONS, a.PREDICTION_SCORES), reads_outside=_new_data,
          ignores=tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("task", "predict_input"))),
)}
STAGE_ORDER = tuple(STAGES)
# Which stage makes each fixed output; every export target's file is export's (producer).
PRODUCERS = {artifact: stage.name for stage in STAGES.values() for artifact in stage.outputs}


def producer(artifact: str) -> str:
    """The stage that makes `artifact`."""
    return "export" if exporters.by_file(artifact) else PRODUCERS[artifact]
