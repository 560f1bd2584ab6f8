"""RunConfig: every setting of one run, built once from the flags; the only thing stages receive.

It is the one source of every default: each flag's default is its field's here (flags.py reads them), except the
settings whose default is the task's own (TASK_DEFAULTS: Task.defaults in tasks.py), which `resolve` fills in.
"""

import dataclasses
import json
import os
from typing import Any, Mapping

DEFAULT_STAGES = ("train", "evaluate", "export", "verify", "report")
# In the order they are exported and reported.
TFLITE_VARIANTS = ("float32", "dynamic_range", "float16", "int8", "int16x8")
# Settings whose default is the task's (None here until `resolve`); a flag given on the command line wins.
TASK_DEFAULTS = ("epochs", "batch_size", "learning_rate", "lr_schedule", "steps_per_execution", "tflite_variants",
                 "series_scaling")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    # Run
    task: str = "dense"
    stages: tuple[str, ...] = DEFAULT_STAGES
    output_dir: str = "runs"
    seed: int = 42
    force: bool = False                        # re-run stages even when their outputs are up to date
    # Data: a registered name, tfds:NAME, a folder or a CSV file, and where it is read from.
    dataset: str = "fashion_mnist"
    data_source: str = "auto"                  # auto, idx (the offline mirror) or tfds
    data_dir: str = os.path.expanduser("~/tensorflow_datasets")
    idx_dir: str = "/usr/share/datasets/fashion-mnist"
    validation_split: float = 0.1
    max_train_examples: int = 0                # 0: all
    max_test_examples: int = 0
    # A folder or a set without a test split: the test share; images: their size and colour.
    test_split: float = 0.2
    image_size: tuple[int, int] | None = None
    color_mode: str = "auto"
    # A CSV data set: the column to predict, whether to classify or regress it (auto: from its values), the id
    # columns (carried to predictions, never features), columns to ignore, and columns kept as features although
    # they look like an ID or codes (data/tables.py).
    label_column: str | None = None
    problem: str = "auto"
    id_column: tuple[str, ...] = ()
    ignore_columns: tuple[str, ...] = ()
    keep_columns: tuple[str, ...] = ()
    # A CSV time series (data/series.py): the column that orders its rows, the one naming each series of a file of
    # several, the steps forecast ahead, the steps of history a window holds (None: data/series.py's default from
    # the season and horizon) and the season (None: from the time column's step).
    time_column: str | None = None
    series_id_column: str | None = None
    horizon: int = 1
    window: int | None = None
    season: int | None = None
    # What a forecaster ships (families/forecaster.py, FORECASTERS): mean, the mean of the candidates validation
    # keeps; arima, AutoARIMA refit on every row alone where it is a candidate that validation keeps (one series
    # without covariates), else the mean.
    forecaster: str = "mean"
    # Sequences to classify (data/sequences.py): the official test file of the train file's layout (None: the
    # test_split of its series), and how the model scales a series: each by its own mean and standard deviation, or
    # all by the train series' (the task's default, Task.series_scaling, as measured in docs/time-series.md).
    test_dataset: str | None = None
    series_scaling: str | None = None
    # Input: which splits are held in memory (auto: those that fit memory_budget_mb, 0 = an eighth of the machine's
    # memory), the shuffle buffer of a split read from disk (0: data/pipeline.py's SHUFFLE_BUFFER), and where
    # folders and tables are prepared once (empty: <output_dir>/cache).
    cache: str = "auto"
    memory_budget_mb: int = 0
    shuffle_buffer: int = 0
    cache_dir: str = ""
    # Training (the TASK_DEFAULTS among them are resolved to the task's).
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    discriminator_learning_rate: float | None = None  # gan only; None: learning_rate
    diff_augment: str = "auto"                 # gan only: on, off, or auto (on for small data sets)
    passes_per_epoch: int = 0                  # passes over the train split an epoch; 0: the family's rule
    lr_schedule: str | None = None             # cosine, one_cycle or constant (schedules.py)
    label_smoothing: float = 0.1               # classifiers: of the cross-entropy targets
    class_weight: str = "none"                 # classifiers: balanced weighs a class's examples by its rarity
    clip_norm: float | None = None             # clip the global gradient norm to this; None: no clipping
    steps_per_execution: int | None = None     # train steps per call into TensorFlow
    precision: str = "auto"                    # float32, bfloat16 or float16 once chosen (precision.py)
    precision_reason: str = ""                 # … and why: the device's native types, or the flag
    deterministic: bool = False                # TensorFlow op determinism: identical runs give identical numbers
    trainer: str = "keras"                     # keras (`fit`), or numpy (the dense task's network in NumPy alone)
    # Training starts from this saved model's weights (--init_from); what counts is its content, not its path.
    init_from: str | None = None
    init_from_sha256: str | None = None
    # Where training runs (pipelines/distribution.py): none, mirrored (this machine's devices; cpu_replicas
    # logical CPUs where it has no GPU), or multi_worker (the processes TF_CONFIG names, waiting up to
    # cluster_timeout seconds for them). --batch_size stays the global batch.
    distribute: str = "none"
    cpu_replicas: int = 1
    cluster_timeout: float = 300.0
    # The task's builder arguments (Task.hparams), by name; those given on the command line stay fixed in a sweep.
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fixed_hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hparams_file: str | None = None
    # Tuning
    tuner: str = "hyperband"
    max_trials: int = 10
    tuning_epochs: int = 4
    executions_per_trial: int = 1
    objective: str | None = None               # None: the problem family's own (pipelines/families/)
    fresh: bool = False
    # Export
    tflite_variants: tuple[str, ...] | None = None
    onnx: bool = True                          # also model.onnx, verified in onnxruntime
    sagemaker: bool = False                    # also model.tar.gz, SageMaker's layout (pipelines/sagemaker.py)
    representative_examples: int = 200
    # Tracking (pipelines/tracking.py): mlflow or wandb, the MLflow server or store (None: MLflow's default), and
    # the MLflow experiment or W&B project the run goes into.
    track: str | None = None
    tracking_uri: str | None = None
    tracking_project: str = "dlpipe"
    # Predict: the new data the predict stage labels (dlpipe-predict's --input), into <task dir>/predictions.csv.
    predict_input: str | None = None
    # The flags given on the command line, by name: a later stage refuses one that contradicts the trained model.
    explicit: tuple[str, ...] = ()

    @property
    def task_dir(self) -> str:
        """Where every artifact of this run lives: <output_dir>/<task>/."""
        return os.path.join(self.output_dir, self.task)

    @property
    def data_cache_dir(self) -> str:
        """Where folders and tables are prepared: --cache_dir, or <output_dir>/cache, shared by the tasks."""
        return self.cache_dir or os.path.join(self.output_dir, "cache")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=list)


# Fields that say where to write, which stages to run, or how a value was given, not what an artifact holds: no
# artifact's identity depends on them. Every other field is part of every stage's fingerprint unless the stage
# says it ignores it (stages/__init__.py). --hparams_file is read into `hparams` and `learning_rate` when the
# config is built, so its contents count, not its path; so does --init_from's file, by its hash.
# Where training runs is not what it makes either: the global batch, and so every step, is the same on one process
# or many (up to float rounding), so a multi-worker run's state may even be resumed by a single process. Nor is
# where a run is tracked: the same command tracked elsewhere reuses its stages.
NOT_IDENTITY = frozenset({"output_dir", "stages", "force", "fresh", "explicit", "hparams_file", "init_from",
                          "distribute", "cpu_replicas", "cluster_timeout", "precision_reason", "cache_dir",
                          "track", "tracking_uri", "tracking_project"})


# Fields computed while the config is built, not flags of their own.
DERIVED = frozenset({"hparams", "fixed_hparams", "explicit", "init_from_sha256", "precision_reason"})
DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING}


def resolve(values: Mapping[str, Any], task_defaults: Mapping[str, Any]) -> RunConfig:
    """The RunConfig of `values` (a field left None takes its default), each TASK_DEFAULTS field left unset taking
    the task's; the TFLite variants in their export order."""
    values = {name: value for name, value in values.items() if value is not None}
    for name in TASK_DEFAULTS:
        values.setdefault(name, task_defaults[name])
    values["tflite_variants"] = tuple(v for v in TFLITE_VARIANTS if v in values["tflite_variants"])
    return RunConfig(**values)


def from_record(record: Mapping[str, Any], fields) -> dict[str, Any]:
    """`fields` of a config written as JSON (config.json), with the types RunConfig holds: lists back to tuples."""
    def typed(value):
        if isinstance(value, list):
            return tuple(value)
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        return value
    return {name: typed(record[name]) for name in fields if name in record}


def show(value) -> str:
    """A setting as it is written on the command line: 256,128 for a tuple; (default) for one left unset."""
    if value is None:
        return "(default)"
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def describe_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """'--epochs 2 → 3, --dataset fashion_mnist → mnist': the settings that differ between two runs."""
    def same(a, b):
        return json.dumps(a, default=list, sort_keys=True) == json.dumps(b, default=list, sort_keys=True)

    def flat(settings):  # the model's hyperparameters are flags of their own
        return {**{k: v for k, v in settings.items() if k != "hparams"}, **settings.get("hparams", {})}
    before, after = flat(before), flat(after)
    changed = [f"--{k} {show(before.get(k))} → {show(after.get(k))}" for k in sorted(set(before) | set(after))
               if not same(before.get(k), after.get(k))]
    return ", ".join(changed) or "another package version"
