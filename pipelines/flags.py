"""Every absl flag and its validators, in one place; `to_config` hands the parsed values to pipelines/command.py,
which turns them into the RunConfig.

Nothing else in the package imports absl.flags: stages and builders receive the RunConfig (principle 2). A flag is
named after the RunConfig field it sets, and its default is that field's (`D`, config.DEFAULTS); a field whose
default is the task's (config.TASK_DEFAULTS) has None here, and its help lists each task's. Flag names of model
hyperparameters are the keyword names of the builders in models/ (Task.hparams), and their defaults the builders'.
"""

import importlib.util
import math
import os

from absl import flags

from pipelines import command, console, distribution, precision, tracking
from pipelines.config import TFLITE_VARIANTS as VARIANTS
from pipelines import config as run_config
from pipelines.config import RunConfig, show
from pipelines.data import folders, pipeline, sequences, sources, tables
from pipelines.data.sources import DATASETS, SOURCES
from pipelines.families.classifier import CLASS_WEIGHTS
from pipelines.families.forecaster import FORECASTERS
from pipelines.families.generator import DIFF_AUGMENT_BELOW, MIN_TRAIN_STEPS
from pipelines.stages import STAGE_ORDER
from models import ARGUMENTS, MAX_WIDTH, pretrained
from pipelines.tasks import FAMILIES, TASKS
from tuning.oracles import ORACLES


D = run_config.DEFAULTS


def _each_task(name: str) -> str:
    """A task-default flag's help: each task's value (Task.defaults, the one source)."""
    return ", ".join(f"{t.name} {show(t.defaults('keras')[name])}" for t in TASKS.values())


class _IntListParser(flags.ArgumentParser):
    """Parses "256,128" into (256, 128); every entry must be an integer from 1 to MAX_WIDTH."""
    syntactic_help = f"a comma-separated list of integers from 1 to {MAX_WIDTH}"

    def parse(self, argument):
        try:
            if isinstance(argument, (list, tuple)):
                values = tuple(int(v) for v in argument if not isinstance(v, bool) and int(v) == v)
                values = values if len(values) == len(argument) else ()
            else:
                values = tuple(int(v) for v in argument.split(",") if v.strip())
        except (TypeError, ValueError):
            raise ValueError(f"{argument!r} is not {self.syntactic_help}") from None
        if not values or min(values) < 1 or max(values) > MAX_WIDTH:
            raise ValueError(f"{argument!r} is not {self.syntactic_help}")
        return values

    def flag_type(self):
        return "int list"


def _define_int_list(name: str, default: str, help: str):
    return flags.DEFINE(_IntListParser(), name, default, help, serializer=flags.CsvListSerializer(","))


# Run
TASK = flags.DEFINE_enum("task", D["task"], list(TASKS), "What to learn: " + "; ".join(
    f"{t.name} = {t.summary}" for t in TASKS.values()) + ".")
STAGES = flags.DEFINE_list(
    "stages", ",".join(D["stages"]), f"Stages to run, a subset of {','.join(STAGE_ORDER)} in that order. A later "
    "stage run alone reuses the artifacts an earlier run left in --output_dir.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", D["output_dir"], "Artifacts are written to <output_dir>/<task>/.")
SEED = flags.DEFINE_integer("seed", D["seed"], "Seeds weights, shuffling and dropout.", lower_bound=0)
FORCE = flags.DEFINE_bool("force", D["force"], "Re-run every stage, even those whose outputs are up to date; "
                          "training starts over instead of resuming.")

# Data
DATASET = flags.DEFINE_string(
    "dataset", D["dataset"], f"A registered data set ({', '.join(DATASETS)}; each task accepts some of them), "
    "tfds:NAME for any TFDS set of images or texts with a class label, hf:<folder or name> for a Hugging Face "
    "Datasets set (save_to_disk's folder, or a Hub name in the local cache), a folder of your own (one subfolder per "
    "class of images or .txt files, optionally under train/ and test/), or a table with --label_column: .csv, .tsv, "
    ".parquet, .feather or .arrow (read a batch of rows at a time).")
TEST_SPLIT = flags.DEFINE_float(
    "test_split", D["test_split"], "A folder without train/ and test/ (or a tfds: set without a test split): the "
    "share held out for testing.", lower_bound=0.05, upper_bound=0.5)
IMAGE_SIZE = _define_int_list(
    "image_size", D["image_size"], "Images of several sizes (a folder, a tfds: set): H,W to resize them to (aspect "
    "kept, padded with black). Default: the images' own size when they share one.")
LABEL_COLUMN = flags.DEFINE_string("label_column", D["label_column"], "A CSV data set: the column to predict.")
PROBLEM = flags.DEFINE_enum(
    "problem", D["problem"], list(tables.PROBLEMS), "A CSV data set: classification or regression of "
    f"--label_column; auto: classification for words or at most {tables.MAX_INTEGER_CLASSES} distinct integers, "
    "else regression.")
ID_COLUMN = flags.DEFINE_list(
    "id_column", list(D["id_column"]), "A CSV data set: the column(s) that name a row (PassengerId): never a "
    "feature, carried through to predictions. A column of a different whole number in every row is found alone.")
IGNORE_COLUMNS = flags.DEFINE_list("ignore_columns", list(D["ignore_columns"]), "A CSV data set: columns that are "
                                   "not features.")
KEEP_COLUMNS = flags.DEFINE_list(
    "keep_columns", list(D["keep_columns"]), "A CSV data set: columns kept as features (as categories) although they "
    "look like an ID or codes (nearly one distinct value per row, no shared word), which are otherwise left out with a "
    "note.")
TIME_COLUMN = flags.DEFINE_string(
    "time_column", D["time_column"], "A CSV time series: the column that orders its rows (ISO dates or numbers); "
    "--label_column is then forecast --horizon steps ahead from --window steps of every numeric column.")
SERIES_ID_COLUMN = flags.DEFINE_string("series_id_column", D["series_id_column"], "A CSV of several time series: "
                                       "the column naming each; one model learns them all.")
HORIZON = flags.DEFINE_integer("horizon", D["horizon"], "A time series: how many steps ahead to forecast.",
                               lower_bound=1, upper_bound=10_000)
WINDOW = flags.DEFINE_integer("window", D["window"], "A time series: the steps of history each forecast reads. "
                              "Default: data/series.py's, from the season and --horizon.", lower_bound=1,
                              upper_bound=100_000)
SEASON = flags.DEFINE_integer("season", D["season"], "A time series: the steps of one season (seasonal naive, "
                              "MASE). Default: from the time column's step (monthly 12, daily 7, hourly 24, "
                              "half-hourly 48; plain numbers 1).", lower_bound=1, upper_bound=100_000)
TEST_DATASET = flags.DEFINE_string(
    "test_dataset", D["test_dataset"], "A CSV or TSV of sequences to classify (one series per row, or one step per "
    "row with --series_id_column and --time_column): the test file of the same layout, as a benchmark splits it. "
    "Default: --test_split of the series.")
FORECASTER = flags.DEFINE_enum(
    "forecaster", D["forecaster"], list(FORECASTERS), "A time series: what ships. mean: the mean of the network, the "
    "linear autoregression and AutoARIMA refit on every row (those validation keeps); arima: that AutoARIMA alone, "
    "for one series without covariates (validation may still leave it out), else the mean (docs/time-series.md).")
SERIES_SCALING = flags.DEFINE_enum(
    "series_scaling", D["series_scaling"], list(sequences.SCALINGS), "Sequences to classify: scale each series by "
    "its own mean and standard deviation (each: z-normalised, as the UCR archive's are), or every series by the "
    "train series' (train: a series' level and spread may tell its class; the rocket's, for one channel: the raw "
    f"series in 8-bit steps of the train range, as its int8 file reads it). Default: {_each_task('series_scaling')}.")
COLOR_MODE = flags.DEFINE_enum(
    "color_mode", D["color_mode"], list(folders.COLOR_MODES), "Images: grayscale or rgb; auto: a folder's grayscale "
    "when every image is, a tfds: set's own.")
DATA_DIR = flags.DEFINE_string("data_dir", D["data_dir"], "The TFDS data dir.")
DATA_SOURCE = flags.DEFINE_enum(
    "data_source", D["data_source"], list(SOURCES), "idx: the offline IDX files in --idx_dir (fashion_mnist only); "
    "tfds: tfds.load, downloading if needed; auto: idx for fashion_mnist when --idx_dir exists, else tfds.")
IDX_DIR = flags.DEFINE_string("idx_dir", D["idx_dir"], "Folder with Fashion-MNIST's four IDX .gz files (Debian: "
                              "dataset-fashion-mnist).")
VALIDATION_SPLIT = flags.DEFINE_float(
    "validation_split", D["validation_split"], "Fraction of the train split, taken from its end, held out for "
    "validation.", lower_bound=0.01, upper_bound=0.5)
MAX_TRAIN_EXAMPLES = flags.DEFINE_integer(
    "max_train_examples", D["max_train_examples"], "Use only the first N train examples (validation included); "
    "0 = all. For quick runs.", lower_bound=0)
MAX_TEST_EXAMPLES = flags.DEFINE_integer("max_test_examples", D["max_test_examples"], "Use only the first N test "
                                         "examples; 0 = all.", lower_bound=0)
CACHE = flags.DEFINE_enum(
    "cache", D["cache"], list(pipeline.CACHES), "Which splits are held in memory after their first pass: auto, "
    "those that fit --memory_budget_mb; memory, all; disk, none (each epoch reads the prepared cache or the data "
    "set's own files again, shuffled by shard and a bounded buffer).")
MEMORY_BUDGET_MB = flags.DEFINE_integer(
    "memory_budget_mb", D["memory_budget_mb"], "--cache=auto: the memory splits may be held in, in MB; 0 = an "
    "eighth of this machine's memory.", lower_bound=0)
SHUFFLE_BUFFER = flags.DEFINE_integer(
    "shuffle_buffer", D["shuffle_buffer"], "Examples a train split read from disk is shuffled within (a split in "
    f"memory is shuffled whole); 0 = {pipeline.SHUFFLE_BUFFER:,}.", lower_bound=0, upper_bound=100_000_000)
CACHE_DIR = flags.DEFINE_string(
    "cache_dir", D["cache_dir"], "Where a folder's images or a CSV's rows are prepared once (decoded, parsed) for "
    "every later epoch, run and task; empty: <output_dir>/cache.")


# Training. The TASK_DEFAULTS among them default to the task's own.
EPOCHS = flags.DEFINE_integer("epochs", D["epochs"], f"Training epochs; default: {_each_task('epochs')}.",
                              lower_bound=1, upper_bound=10_000)
PASSES_PER_EPOCH = flags.DEFINE_integer(
    "passes_per_epoch", D["passes_per_epoch"], "Passes over the train split an epoch makes; 0: one, except for a "
    f"gan on a small data set: enough that the task's epochs make {MIN_TRAIN_STEPS:,} steps (--epochs counts those "
    "epochs).",
    lower_bound=0, upper_bound=10_000)
BATCH_SIZE = flags.DEFINE_integer("batch_size", D["batch_size"], "Examples per batch; default: "
                                  f"{_each_task('batch_size')}.", lower_bound=1, upper_bound=65_536)
LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", D["learning_rate"], "Adam's learning rate (gan: the generator's); default: "
    f"{_each_task('learning_rate')}.", lower_bound=1e-7, upper_bound=1e6)
LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", D["lr_schedule"], ["cosine", "one_cycle", "constant"], "Classifiers: cosine decays "
    "--learning_rate to zero over the training steps; one_cycle first warms up to it from zero over the first "
    f"fifth; constant keeps it. Default: {_each_task('lr_schedule')}.")
LABEL_SMOOTHING = flags.DEFINE_float(
    "label_smoothing", D["label_smoothing"], "Classifiers: weight moved from the true class's target to all classes "
    "alike (bounds the logits, which float16 and int8 exports need). 0 turns it off. (The GAN's "
    "discriminator is held back by --r1 instead.)", lower_bound=0.0, upper_bound=0.5)
CLASS_WEIGHT = flags.DEFINE_enum(
    "class_weight", D["class_weight"], list(CLASS_WEIGHTS), "Classifiers: balanced weighs each train example by "
    "n / (classes × its class's count), so a rare class weighs as much as a common one in the loss (Keras' "
    "class_weight; a table's linear model and trees are fitted balanced too). More of a rare class is found, "
    "at some accuracy: metrics.json's test_balanced_accuracy and per_class recall show it. none: every example "
    "alike.")
STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution", D["steps_per_execution"], "Training steps TensorFlow runs per call from Python (fewer "
    "per-step costs; callbacks and the divergence check see every Nth step); default: "
    f"{_each_task('steps_per_execution')}.", lower_bound=1, upper_bound=10_000)
PRECISION = flags.DEFINE_enum(
    "precision", D["precision"], list(precision.CHOICES), "Training compute: float32, bfloat16 or float16 (Keras' "
    "mixed policies: variables and the saved model stay float32; float16 with loss scaling). auto: for the tasks "
    "that gain from a narrow type (" + ", ".join(t.name for t in TASKS.values() if t.mixed_precision) + "), what "
    "the device computes natively: bfloat16 on a GPU of compute capability 8.0 or more and on a CPU with AVX-512 "
    "BF16 or AMX, float16 on a GPU of 7.x; float32 otherwise.")
CLIP_NORM = flags.DEFINE_float("clip_norm", D["clip_norm"], "Clip the global gradient norm to this value (a fix for "
                               "exploding gradients); default: no clipping.", lower_bound=1e-6)
DETERMINISTIC = flags.DEFINE_bool("deterministic", D["deterministic"], "Turn on TensorFlow op determinism: with the "
                                  "same --seed, two runs give identical numbers (some ops get slower).")
INIT_FROM = flags.DEFINE_string(
    "init_from", D["init_from"], "Start training from a saved model's weights: an earlier run's model.keras (or a "
    ".weights.h5 file). Layers whose names and shapes match are loaded; the rest, such as the head of a model for "
    "other classes, start fresh (fine-tuning on another data set). Or a KerasHub preset: a name such as "
    "bert_tiny_en_uncased or mobilenet_v3_small_100_imagenet (downloaded on first use), a kaggle:// or hf:// "
    "handle, or a folder save_to_preset wrote; for text (--task=transformer) its encoder, weights and tokenizer, "
    "for images (--task=conv) its backbone, weights and image preprocessing replace the task's own model, with a "
    "fresh head, the backbone frozen for the first half of the epochs and its top quarter learning after. Or a "
    "keras.applications no_top weights file (mobilenet_v3_small…h5, efficientnetb0_notop.h5, …), used as a "
    "preset.")
TRAINER = flags.DEFINE_enum(
    "trainer", D["trainer"], ["keras", "numpy"], "Who trains the model: keras (its `fit`), or numpy: the dense "
    "task's network written in NumPy alone (models/numpy_mlp.py: forward and backward passes by hand, SGD with "
    f"momentum, default --learning_rate {TASKS['dense'].defaults('numpy')['learning_rate']:g}), then handed to Keras "
    "for evaluate, export "
    "and verify.")
DISTRIBUTE = flags.DEFINE_enum(
    "distribute", D["distribute"], list(distribution.MODES), "Where training runs: none (this process), mirrored "
    "(this machine's GPUs, or its CPU as --cpu_replicas devices), multi_worker (the machines TF_CONFIG names: run "
    "the same command on each; worker 0 or the chief writes the artifacts). --batch_size is the global batch "
    "either way.")
CPU_REPLICAS = flags.DEFINE_integer(
    "cpu_replicas", D["cpu_replicas"], "--distribute=mirrored on a machine without GPUs: split the CPU into this "
    "many logical devices (to try a multi-device setup; not faster).", lower_bound=1, upper_bound=64)
CLUSTER_TIMEOUT = flags.DEFINE_float(
    "cluster_timeout", D["cluster_timeout"], "--distribute=multi_worker: seconds to wait for every worker of "
    "TF_CONFIG to join before failing, naming the missing ones.", lower_bound=1.0, upper_bound=86_400.0)
DISCRIMINATOR_LEARNING_RATE = flags.DEFINE_float(
    "discriminator_learning_rate", D["discriminator_learning_rate"], "gan: the discriminator's learning rate; "
    "default: --learning_rate.", lower_bound=1e-7, upper_bound=10.0)
DIFF_AUGMENT = flags.DEFINE_enum(
    "diff_augment", D["diff_augment"], ["auto", "on", "off"], "gan: DiffAugment (colour, translation, cutout of "
    f"real and generated images before the discriminator); auto: on below {DIFF_AUGMENT_BELOW:,} train images.")


# Tuning (the tune stage). Model flags given explicitly stay fixed while the rest of the space is searched.
TUNER = flags.DEFINE_enum("tuner", D["tuner"], list(ORACLES), "KerasTuner search algorithm.")
MAX_TRIALS = flags.DEFINE_integer("max_trials", D["max_trials"], "random and bayesian: trials to run.",
                                  lower_bound=1, upper_bound=10_000)
TUNING_EPOCHS = flags.DEFINE_integer("tuning_epochs", D["tuning_epochs"], "Epochs per trial (hyperband: its "
                                     "max_epochs).", lower_bound=1, upper_bound=1000)
EXECUTIONS_PER_TRIAL = flags.DEFINE_integer("executions_per_trial", D["executions_per_trial"], "Models trained per "
                                            "trial, averaged.", lower_bound=1, upper_bound=100)
OBJECTIVE = flags.DEFINE_string(
    "objective", D["objective"], "Metric the tuner optimizes, in the direction KerasTuner infers from its name "
    "(val_loss, val_mae: min; val_accuracy, val_auc: max). Default: " + ", ".join(
        f"{t.name} {t.family.objective} ({t.family.objective_direction})" for t in TASKS.values()) + ".")
FRESH = flags.DEFINE_bool("fresh", D["fresh"], "Start the sweep over instead of continuing the one in <task "
                          "dir>/tuning (a sweep made with other settings is refused without it).")
HPARAMS_FILE = flags.DEFINE_string("hparams_file", D["hparams_file"], "Train with the builder arguments and "
                                   "learning rate of a best_hparams.json written by an earlier --stages=tune.")


# Export.
TFLITE_VARIANTS = flags.DEFINE_list(
    "tflite_variants", D["tflite_variants"], "TFLite files to export and verify: float32 (model.tflite), "
    "dynamic_range, float16, int8, int16x8 (model_<variant>.tflite). Default: every variant but those the task and "
    "the family its data make leave out: " + "; ".join(
        f"{name} leaves out {','.join(left_out)}" for name, left_out in
        [*((t.name, t.left_out) for t in TASKS.values()), *((f.name, f.left_out) for f in FAMILIES.values())]
        if left_out) + " (one 8-bit file each: forecasters int16x8, the others int8).")
ONNX = flags.DEFINE_bool("onnx", D["onnx"], "Also export model.onnx (the float model with model.tflite's inputs and "
                         "outputs, for ONNX Runtime on iOS, web and desktop) and verify it in onnxruntime.")
SAGEMAKER = flags.DEFINE_bool("sagemaker", D["sagemaker"], "Also pack the SavedModel as model.tar.gz in the layout "
                              "SageMaker's TensorFlow Serving container loads (1/saved_model.pb; docs/deploy.md), "
                              "and verify it unpacked.")
REPRESENTATIVE_EXAMPLES = flags.DEFINE_integer(
    "representative_examples", D["representative_examples"], "int8: train examples that calibrate the quantization "
    "ranges.", lower_bound=1, upper_bound=10_000)

# Tracking.
TRACK = flags.DEFINE_enum(
    "track", D["track"], list(tracking.TRACKERS), "Also track the run in MLflow or Weights & Biases "
    "(pip install 'dlpipe[tracking]'): the settings, each epoch's curves, the test metrics, report.md and the exported "
    "files, the SavedModel as a model, a sweep's trials as child runs. A tracker that fails warns once; the run goes "
    "on.")
TRACKING_URI = flags.DEFINE_string(
    "tracking_uri", D["tracking_uri"], "--track=mlflow: the tracking server (http://host:port) or store (a folder, "
    "sqlite:///file.db). Default: MLflow's own (MLFLOW_TRACKING_URI, else ./mlflow.db).")
TRACKING_PROJECT = flags.DEFINE_string(
    "tracking_project", D["tracking_project"], "The MLflow experiment or W&B project the run goes into.")


@flags.validator("track")
def _tracker_installed(name):
    if name and importlib.util.find_spec(tracking.TRACKERS[name].package) is None:
        raise flags.ValidationError(f"--track={name} needs the {tracking.TRACKERS[name].package} package: pip install "
                                    "'dlpipe[tracking]'")
    return True


@flags.multi_flags_validator(["track", "tracking_uri"], message="--tracking_uri is where MLflow tracks: give "
                             "--track=mlflow with it, or drop it")
def _uri_is_mlflows(values):
    return values["tracking_uri"] is None or values["track"] == "mlflow"


@flags.multi_flags_validator(["track", "tracking_project"], message="--tracking_project names where --track tracks: "
                             "give --track=mlflow or --track=wandb with it, or drop it")
def _project_needs_a_tracker(values):
    return values["tracking_project"] == D["tracking_project"] or values["track"] is not None


# Predict.
PREDICT_INPUT = flags.DEFINE_string(
    "predict_input", D["predict_input"], "--stages=...,predict: the new examples the SavedModel labels into "
    "<task dir>/predictions.csv (a CSV, an image or text file, a folder or a glob; dlpipe-predict does the same "
    "on its own, with more choices).")


@flags.multi_flags_validator(["stages", "predict_input"], message="--stages=...,predict labels new examples: give "
                             "them with --predict_input (a CSV, an image or text file, a folder or a glob)")
def _predict_has_input(values):
    return "predict" not in values["stages"] or bool(values["predict_input"])


@flags.validator("tflite_variants", message=f"--tflite_variants must be names from {','.join(VARIANTS)}")
def _known_variants(variants):
    return variants is None or (bool(variants) and set(variants) <= set(VARIANTS))


# Model hyperparameters. Each name is a keyword argument of the task's builder in models/, and each default is
# the builder's own (shown in the help); a flag left unset means "the builder's default".
def _hparam_help(name: str, help: str) -> str:
    defaults = [f"{t.name} {show(t.default_hparams[name])}" for t in TASKS.values() if name in t.hparams]
    return f"{help} Default: {', '.join(defaults)}."


def define_builder_flag(name: str, default, flag_values: flags.FlagValues = flags.FLAGS, help: str = "Builder "
                        "argument.", bounds: dict | None = None, choices: tuple = ()):
    """The flag of a builder argument, typed by the builder's default (a bool, an int, a float, a list of ints, a
    string, or one of `choices`: the values of its Literal annotation), unset unless given: "the builder's
    default"."""
    bounds, help = dict(bounds or {}), _hparam_help(name, help)
    if choices:
        return flags.DEFINE_enum(name, None, list(choices), help, flag_values=flag_values)
    if isinstance(default, bool):
        return flags.DEFINE_bool(name, None, help, flag_values=flag_values)
    if isinstance(default, int):
        return flags.DEFINE_integer(name, None, help, flag_values=flag_values, **bounds)
    if isinstance(default, float):
        return flags.DEFINE_float(name, None, help, flag_values=flag_values, **bounds)
    if isinstance(default, (tuple, list)):
        return flags.DEFINE(_IntListParser(), name, None, help, flag_values=flag_values,
                            serializer=flags.CsvListSerializer(","))
    return flags.DEFINE_string(name, None, help, flag_values=flag_values)


HPARAM_FLAGS = {}
for _task in TASKS.values():
    for _name, _default in _task.default_hparams.items():
        if _name not in HPARAM_FLAGS:
            _help, _bounds = ARGUMENTS.get(_name, ("Builder argument.", {}))
            HPARAM_FLAGS[_name] = define_builder_flag(_name, _default, help=_help, bounds=_bounds,
                                                      choices=_task.hparam_choices(_name))


def _finite(value) -> bool:
    return value is None or math.isfinite(value)


# Bounds do not catch NaN (every comparison with it is false): every float flag must be a number.
for _holder in [h for h in globals().values() if isinstance(h, flags.FlagHolder)] + list(HPARAM_FLAGS.values()):
    if isinstance(flags.FLAGS[_holder.name].parser, flags.FloatParser):
        flags.register_validator(_holder.name, _finite, message=f"--{_holder.name} must be a finite number")


@flags.validator("stages", message=f"--stages must be names from {','.join(STAGE_ORDER)}, each once, in that order")
def _stages_in_order(stages):
    return bool(stages) and all(s in STAGE_ORDER for s in stages) and list(stages) == sorted(
        set(stages), key=STAGE_ORDER.index)


@flags.validator("dataset", message=f"--dataset must be one of {', '.join(DATASETS)}, tfds:NAME, hf:<folder or name>, "
                 "a folder or a .csv, .tsv, .parquet, .feather or .arrow file that exists")
def _known_dataset(dataset):
    return sources.known(dataset)


@flags.multi_flags_validator(["task", "dataset"], message="this --dataset does not fit this --task; " + "; ".join(
    f"{t.name} takes {','.join(t.datasets) or 'files of ' + ' or '.join(t.modalities) + ' only'}"
    for t in TASKS.values()))
def _dataset_fits_task(values):
    return values["dataset"] not in DATASETS or values["dataset"] in TASKS[values["task"]].datasets


@flags.validator("image_size", message="--image_size is two numbers, H,W")
def _height_and_width(size):
    return size is None or len(size) == 2


@flags.multi_flags_validator(["task", *HPARAM_FLAGS], message="a model flag given does not apply to this --task; "
                             + "; ".join(f"{t.name} takes --{', --'.join(t.hparams)}" for t in TASKS.values()))
def _hparams_fit_task(values):
    # The task the run will have: without --task, the data may choose it (a file of sequences: the rocket).
    chosen = command.chosen_task({name: flags.FLAGS[name].value for name in command.TASK_CHOOSING},
                                 {"task"} if flags.FLAGS["task"].present else set())
    return all(value is None or name in TASKS[chosen].hparams for name, value in values.items() if name != "task")


@flags.validator("init_from")
def _init_from_exists(value):
    if value is None:
        return True
    problem = (pretrained.preset_problem(value) if pretrained.is_preset(value)
               else None if os.path.isfile(value) else f"{value} does not exist")
    if problem:
        raise flags.ValidationError(f"{problem}: --init_from takes an earlier run's model.keras (or .weights.h5), "
                                    "a KerasHub preset (a name, a kaggle:// or hf:// handle, or a folder that "
                                    "save_to_preset wrote) or a keras.applications .h5 weights file")
    return True


@flags.validator("hparams_file", message="--hparams_file does not exist: give the path of a best_hparams.json")
def _hparams_file_exists(path):
    return path is None or os.path.isfile(path)


@flags.multi_flags_validator(["trainer", "task", "distribute", "precision", "init_from"])
def _numpy_trainer_can_train(values):
    if values["trainer"] == "keras":
        return True
    able = ", ".join(t.name for t in TASKS.values() if values["trainer"] in t.trainers)
    if values["trainer"] not in TASKS[values["task"]].trainers:
        raise flags.ValidationError(f"--trainer={values['trainer']} trains the tasks that have a NumPy network "
                                    f"({able}), not --task={values['task']}: use --trainer=keras")
    if values["distribute"] != "none" or values["precision"] not in ("auto", "float32") or values["init_from"]:
        raise flags.ValidationError(f"--trainer={values['trainer']} trains from scratch, in one process, in "
                                    "float32: drop --distribute, --precision and --init_from, or use --trainer=keras")
    return True


@flags.multi_flags_validator(["distribute", "stages"], message="--distribute trains a model; a sweep spreads its "
                             "trials with KerasTuner's own workers instead (README, Tuning): run --stages=tune without "
                             "--distribute, then train with --hparams_file")
def _no_distributed_sweep(values):
    return values["distribute"] == "none" or "tune" not in values["stages"]


@flags.multi_flags_validator(["init_from", "stages"], message="a KerasHub preset fixes the architecture the tune "
                             "stage searches: drop tune from --stages and set --learning_rate, --dropout and "
                             "--batch_size by hand")
def _no_sweep_of_a_preset(values):
    return not (values["init_from"] and pretrained.is_preset(values["init_from"]) and "tune" in values["stages"])


@flags.multi_flags_validator(["dataset", "data_source"],
                             message="--data_source=idx reads Fashion-MNIST only: use --dataset=fashion_mnist")
def _idx_is_fashion_mnist(values):
    return values["data_source"] != "idx" or values["dataset"] == "fashion_mnist"


def parse(argv: list[str]) -> list[str]:
    """absl's flags_parser, printing a bad flag as one line (console.parse_flags)."""
    return console.parse_flags(argv, __name__)


def to_config(flag_values: flags.FlagValues = flags.FLAGS) -> RunConfig:
    """The RunConfig of the parsed flags (pipelines/command.py): each flag's value, which were given on the command
    line, and each flag's parser (for the values a --hparams_file brings)."""
    mine = [flag.name for flag in flag_values.get_flags_for_module(__name__)]
    return command.to_config({name: flag_values[name].value for name in mine},
                             explicit={name for name in mine if flag_values[name].present},
                             parse=lambda name, value: flag_values[name].parser.parse(value))
