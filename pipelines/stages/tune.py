"""Tune stage: a KerasTuner search over the task's space (tuning/), on the train and validation splits only.

Writes the trial table (`trials.csv`), a plot of the objective per trial (`trials.png`) and the best builder
arguments (`best_hparams.json`), which the train stage then uses. The tuner keeps its state in `tuning/`, so the
same command continues an interrupted sweep (finished trials are not redone; a larger --max_trials adds trials);
a sweep made with other settings is refused, and `--fresh` starts over. One trial of every sweep is the task's
default model, trained for the full budget (tuning/oracles.py).

Distributed: KerasTuner's own chief/worker protocol. With KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT set, the `chief` serves the oracle and writes the results once every trial is done; each
worker (any other id) runs trials it is given and writes nothing else (the runner stops it after tune).
"""

import csv
import json
import os
import resource
import sys
import time

import keras
import keras_tuner as kt
import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

from pipelines import artifacts  # noqa: E402
from pipelines.config import describe_changes  # noqa: E402
from pipelines.context import Context  # noqa: E402
from pipelines.errors import PipelineError  # noqa: E402
from pipelines.upstream import keras_tuner as kt_internals  # noqa: E402
from tuning import oracles  # noqa: E402
from tuning.hypermodel import OPTIMIZER_STATE, TaskHyperModel, trial_hparams  # noqa: E402
from tuning.search_spaces import LEARNING_RATE  # noqa: E402

# --tuner → KerasTuner's tuner class (how a trial trains) and our oracle for it (which trials, defaults first).
TUNERS = {name: (tuner, oracles.ORACLES[name]) for name, tuner in (
    ("random", kt.RandomSearch), ("hyperband", kt.Hyperband), ("bayesian", kt.BayesianOptimization))}
TIMINGS = "timings"  # <tuning dir>/timings/<trial id>.json: seconds and which tuner ran it
SWEEP = "sweep.json"  # tuning/sweep.json: the settings the sweep in the folder was made with
TUNER_ID = "KERASTUNER_TUNER_ID"
# Settings a sweep may change and still continue: more trials extend it.
EXTENDS_SWEEP = ("max_trials",)


class OptimizerAtBestEpoch(keras.callbacks.Callback):
    """Saves the optimizer's variables (its step, Adam's moments) whenever the objective improves: the epoch whose
    weights KerasTuner's own SaveBestEpoch keeps, so a promoted trial can continue both."""

    def __init__(self, objective: kt.Objective, path: str):
        super().__init__()
        self.objective, self.path = objective, path
        self.best = float("inf") if objective.direction == "min" else float("-inf")

    def on_epoch_end(self, epoch, logs=None):
        if self.model.optimizer is None:  # a model with optimizers of its own (the GAN's two)
            return
        if self.objective.has_value(logs):
            value = self.objective.get_value(logs)
            if not self.objective.better_than(value, self.best):
                return
            self.best = value
        with artifacts.atomic_path(self.path) as tmp, open(tmp, "wb") as f:
            np.savez(f, *[v.numpy() for v in self.model.optimizer.variables])


def _pipeline_tuner(tuner_class):
    """The tuner class, driven by the oracle it is given, recording each trial's wall time, tuner id and the
    process's peak memory, reporting a failed trial in one line (its traceback stays in its trial.json), and
    saving the optimizer's state at each Hyperband trial's best epoch, which the hypermodel's fit continues when
    the trial is promoted (tuning/hypermodel.py)."""

    class PipelineTuner(tuner_class):
        def __init__(self, oracle: kt.Oracle, **kwargs):
            kt_internals.init_with_oracle(self, oracle, **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            if isinstance(self, kt.Hyperband):  # the only tuner that promotes a trial into a later one
                path = os.path.join(self.get_trial_dir(trial.trial_id), OPTIMIZER_STATE)
                kwargs["callbacks"] = [*kwargs.get("callbacks", []), OptimizerAtBestEpoch(self.oracle.objective, path)]
            return super().run_trial(trial, *args, **kwargs)

        def on_trial_begin(self, trial):
            self._trial_started = time.perf_counter()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            seconds = time.perf_counter() - self._trial_started
            if trial.status in (kt_internals.trial_status().FAILED, kt_internals.trial_status().INVALID):
                print(f"trial {trial.trial_id} failed with {_last_line(trial.message)}; its traceback is in "
                      f"{self.get_trial_dir(trial.trial_id)}/trial.json", flush=True)
            # The oracle records the trial first: a sweep killed after its timing file exists never repeats it.
            super().on_trial_end(trial)
            folder = os.path.join(self.project_dir, TIMINGS)
            os.makedirs(folder, exist_ok=True)
            artifacts.write_json(os.path.join(folder, f"{trial.trial_id}.json"), {
                "seconds": seconds, "tuner_id": self.tuner_id,
                # The process's peak resident memory so far: flat across trials when sessions are cleared.
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})

    return PipelineTuner


class ObjectiveLogged(keras.callbacks.Callback):
    """Stops the sweep after the first epoch if `--objective` is not among the metrics fit logs: every trial would
    fail on it, and KerasTuner would print a traceback for each."""

    def __init__(self, objective: str, suggestion: str):
        super().__init__()
        self.objective, self.suggestion = objective, suggestion

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.objective not in logs:
            raise kt.errors.FatalError(f"--objective={self.objective} is not a metric the trials log: use one of "
                                       f"{', '.join(sorted(logs))} (default {self.suggestion})")


def _last_line(message: str | None) -> str:
    """A failed trial's message is its traceback; the last line names the error."""
    return message.strip().splitlines()[-1] if message else "no message"


def is_worker() -> bool:
    return os.environ.get(TUNER_ID, "chief") != "chief"


def objective(name: str, family) -> kt.Objective:
    """The family's own objective in its own direction; any other metric in the direction KerasTuner infers for it
    (val_mae: min, val_auc: max). A name it cannot place is refused rather than guessed."""
    direction = family.objective_direction if name == family.objective else kt_internals.metric_direction(name)
    if direction is None:
        raise PipelineError(f"--objective={name}: KerasTuner cannot tell whether to minimize or maximize it; use a "
                            f"Keras metric the trials log, such as {family.objective} or val_loss")
    return kt.Objective(name, direction)


def objective_name(ctx: Context) -> str:
    """--objective, else the family's own (a table's regressor: val_loss)."""
    return ctx.config.objective or ctx.family.objective


def claim_sweep(ctx: Context) -> None:
    """tuning/ holds one sweep, of the settings in its sweep.json: the same command continues it, --fresh starts
    over, other settings are refused (starting over would discard finished trials the user may want)."""
    folder, settings = ctx.path(artifacts.TUNING), {
        k: v for k, v in ctx.stage_settings.items() if k not in EXTENDS_SWEEP}
    if ctx.config.fresh:
        artifacts.remove(folder)
    elif os.path.exists(folder):
        try:
            before = artifacts.read_json(os.path.join(folder, SWEEP))
            change = describe_changes(before, settings) if isinstance(before, dict) else "unreadable settings"
        except (OSError, ValueError):
            before, change = None, f"no readable {SWEEP}"
        if json.dumps(before, sort_keys=True, default=list) != json.dumps(settings, sort_keys=True, default=list):
            raise PipelineError(f"the sweep in {folder} was made with other settings ({change}): add --fresh to "
                                "start it over, or give another --output_dir")
    os.makedirs(folder, exist_ok=True)
    artifacts.write_json(os.path.join(folder, SWEEP), settings)


def make_tuner(ctx: Context, hypermodel: TaskHyperModel) -> kt.Tuner:
    c = ctx.config
    fixed = kt.HyperParameters()
    for name, value in hypermodel.fixed.items():
        if isinstance(value, (bool, int, float, str)):
            fixed.Fixed(name, value)  # recorded in every trial (a tuple is left out of the space: search_spaces)
    kt_internals.quiet_failures()  # PipelineTuner says one line per failed trial
    tuner_class, oracle_class = TUNERS[c.tuner]
    search = dict(objective=objective(objective_name(ctx), ctx.family), seed=c.seed, hyperparameters=fixed,
                  tune_new_entries=True)
    if c.tuner == "hyperband":
        # Hyperband sizes its own brackets from max_epochs; max_trials bounds nothing there.
        oracle = oracle_class(max_epochs=c.tuning_epochs, factor=3, hyperband_iterations=1, **search)
    else:
        oracle = oracle_class(max_trials=c.max_trials, **search)
    tuner = _pipeline_tuner(tuner_class)(oracle=oracle, hypermodel=hypermodel,
                                         executions_per_trial=c.executions_per_trial,
                                         directory=ctx.path(artifacts.TUNING), project_name=c.tuner)
    hypermodel.trial_dir = tuner.get_trial_dir  # where a promoted trial's optimizer state is
    return tuner


def trial_rows(tuner: kt.Tuner, task) -> list[dict]:
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=lambda item: int(item[0])):
        timing_path = os.path.join(tuner.project_dir, TIMINGS, f"{trial_id}.json")
        timing = artifacts.read_json(timing_path) if os.path.exists(timing_path) else {}
        values = trial.hyperparameters.values
        epochs = values.get("tuner/epochs", tuner.hypermodel.config.tuning_epochs) - values.get(
            "tuner/initial_epoch", 0)
        hparams = {**trial_hparams(task, trial.hyperparameters, tuner.hypermodel.fixed), **tuner.hypermodel.fixed}
        hparams[LEARNING_RATE] = tuner.hypermodel.learning_rate(trial.hyperparameters)
        rows.append({"trial_id": trial_id, "status": trial.status, "objective": trial.score, "epochs": epochs,
                     "seconds": round(timing["seconds"], 1) if timing else None, "tuner_id": timing.get("tuner_id"),
                     "peak_rss_mb": round(timing["peak_rss_mb"]) if timing else None,
                     "hparams": json.dumps(tidy_floats(hparams), default=list, sort_keys=True)})
    return rows


def tidy_floats(hparams: dict) -> dict:
    """Floats to 10 significant digits: hp.Float(step=0.1) yields 0.30000000000000004, which means 0.3."""
    return {k: float(f"{v:.10g}") if isinstance(v, float) else v for k, v in hparams.items()}


def write_trials(rows: list[dict], csv_path: str, png_path: str, objective: str) -> None:
    with artifacts.atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    scored = [r for r in rows if r["objective"] is not None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(range(len(scored)), [r["objective"] for r in scored], "o-")
    ax.set_xticks(range(len(scored)), [r["trial_id"] for r in scored], rotation=90, fontsize=7)
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title("objective per trial")
    fig.tight_layout()
    with artifacts.atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


TENSORBOARD = "tensorboard"  # tuning/tensorboard/: the sweep in TensorBoard (`tensorboard --logdir` it)


def run(ctx: Context) -> str:
    if ctx.task.search_space is None:
        raise PipelineError(f"--task={ctx.task.name} has nothing to tune by trials (it is fitted in closed form and "
                            "chooses its own regularization): drop tune from --stages")
    if not is_worker():  # the chief owns the folder; a worker joins the chief's sweep
        claim_sweep(ctx)  # before loading any data: a refused sweep costs nothing
    config, task, inputs = ctx.config, ctx.task, ctx.inputs
    hypermodel = TaskHyperModel(task, config, inputs.input_shape, ctx.data.num_classes, family=ctx.family,
                                fixed=config.fixed_hparams,
                                learned=ctx.learned_args, steps_per_epoch=inputs.steps_per_epoch)
    tuner = make_tuner(ctx, hypermodel)
    callbacks = [*ctx.family.tuning_callbacks(ctx.workspace),
                 ObjectiveLogged(objective_name(ctx), ctx.family.objective),
                 keras.callbacks.TerminateOnNaN(),
                 # KerasTuner gives each trial its own copy in <dir>/<trial id> and logs the trial's
                 # hyperparameters and objective to TensorBoard's HParams dashboard beside its curves.
                 keras.callbacks.TensorBoard(os.path.join(ctx.path(artifacts.TUNING), TENSORBOARD))]
    try:
        tuner.search(inputs.train, validation_data=inputs.validation, epochs=config.tuning_epochs,
                     callbacks=callbacks, shuffle=False, verbose=2 if not sys.stdout.isatty() else 1,
                     **ctx.family.fit_options(ctx.workspace))
    except kt.errors.FatalError as e:
        raise PipelineError(str(e)) from None
    except RuntimeError as e:  # KerasTuner gives up after 3 failed trials in a row; its message has a traceback
        failed = [t.message for t in tuner.oracle.trials.values() if t.message]
        raise PipelineError(f"tuning stopped: {str(e).splitlines()[0]} The last failed with "
                            f"{_last_line(failed[-1] if failed else None)}; the trials' tracebacks are in "
                            f"{tuner.project_dir}") from None
    if is_worker():
        return f"worker {os.environ[TUNER_ID]} done"
    rows = trial_rows(tuner, task)
    if not rows:
        raise PipelineError("the sweep ran no trial: raise --max_trials or start over with --fresh")
    write_trials(rows, ctx.path(artifacts.TRIALS_CSV), ctx.path(artifacts.TRIALS_PNG), objective_name(ctx))
    scored = [t for t in tuner.oracle.get_best_trials(len(rows))
              if t.status == kt_internals.trial_status().COMPLETED and t.score is not None]
    if not scored:
        raise PipelineError(f"no trial of the sweep completed (see {ctx.path(artifacts.TRIALS_CSV)}), so there is no "
                            "best model: fix what the failed trials report, then run with --fresh")
    best = scored[0]
    best_row = next(r for r in rows if r["trial_id"] == best.trial_id)
    hparams = json.loads(best_row["hparams"])
    best_hparams = {"hparams": {k: v for k, v in hparams.items() if k != LEARNING_RATE},
                    "learning_rate": hparams[LEARNING_RATE], "objective": objective_name(ctx), "score": best.score,
                    "trial_id": best.trial_id, "tuner": config.tuner}
    artifacts.write_json(ctx.path(artifacts.BEST_HPARAMS), best_hparams)
    return f"{len(rows)} trials, best {objective_name(ctx)}={best.score:.4f}"
