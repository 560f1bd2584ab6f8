"""Every absl flag and its validators, in one place; `to_config` turns parsed flags into a RunConfig.

Nothing else in the package imports absl.flags: stages and builders receive the RunConfig (principle 2).
Flag names of model hyperparameters are the keyword names of the builders in models/ (Task.hparams).
"""

import os
import sys

from absl import flags

from pipelines.config import RunConfig
from pipelines.data import idx
from pipelines.data.sources import DATASETS, SOURCES
from pipelines.stages import STAGE_ORDER
from pipelines.tasks import TASKS


class _IntListParser(flags.ArgumentParser):
    """Parses "256,128" into (256, 128); every entry must be a positive integer."""
    syntactic_help = "a comma-separated list of positive integers"

    def parse(self, argument):
        if isinstance(argument, (list, tuple)):
            return tuple(argument)
        try:
            values = tuple(int(v) for v in argument.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"{argument!r} is not {self.syntactic_help}") from None
        if not values or min(values) < 1:
            raise ValueError(f"{argument!r} is not {self.syntactic_help}")
        return values

    def flag_type(self):
        return "int list"


def _define_int_list(name: str, default: str, help: str):
    return flags.DEFINE(_IntListParser(), name, default, help, serializer=flags.CsvListSerializer(","))


# Run
TASK = flags.DEFINE_enum("task", "dense", list(TASKS), "What to learn: " + "; ".join(
    f"{t.name} = {t.summary}" for t in TASKS.values()) + ".")
STAGES = flags.DEFINE_list("stages", ",".join(STAGE_ORDER),
                           f"Stages to run, a subset of {','.join(STAGE_ORDER)} in that order. A later stage run "
                           "alone reuses the artifacts an earlier run left in --output_dir.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", "runs", "Artifacts are written to <output_dir>/<task>/.")
SEED = flags.DEFINE_integer("seed", 42, "Seeds weights, shuffling and dropout.", lower_bound=0)

# Data
DATASET = flags.DEFINE_enum("dataset", "fashion_mnist", list(DATASETS),
                            "TFDS data set name; each task accepts some of them.")
DATA_DIR = flags.DEFINE_string("data_dir", os.path.expanduser("~/tensorflow_datasets"), "The TFDS data dir.")
DATA_SOURCE = flags.DEFINE_enum("data_source", "auto", list(SOURCES),
                                "idx: the offline IDX files in --idx_dir (fashion_mnist only); tfds: tfds.load, "
                                "downloading if needed; auto: idx for fashion_mnist when --idx_dir exists, else tfds.")
IDX_DIR = flags.DEFINE_string("idx_dir", idx.DEFAULT_IDX_DIR,
                              "Folder with Fashion-MNIST's four IDX .gz files (Debian: dataset-fashion-mnist).")
VALIDATION_SPLIT = flags.DEFINE_float("validation_split", 0.1, "Fraction of the train split, taken from its end, "
                                      "held out for validation.", lower_bound=0.01, upper_bound=0.5)
MAX_TRAIN_EXAMPLES = flags.DEFINE_integer("max_train_examples", 0, "Use only the first N train examples "
                                          "(validation included); 0 = all. For quick runs.", lower_bound=0)
MAX_TEST_EXAMPLES = flags.DEFINE_integer("max_test_examples", 0, "Use only the first N test examples; 0 = all.",
                                         lower_bound=0)

# Training
EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs.", lower_bound=1, upper_bound=10_000)
BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Examples per batch.", lower_bound=1, upper_bound=65_536)
LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate.", lower_bound=1e-7,
                                   upper_bound=10.0)

# Model hyperparameters: names are the builders' keyword arguments.
HIDDEN_UNITS = _define_int_list("hidden_units", "128", "dense: units of each hidden layer, e.g. 256,128.")
DROPOUT = flags.DEFINE_float("dropout", 0.0, "dense: dropout rate after each hidden layer.", lower_bound=0.0,
                             upper_bound=0.9)


@flags.validator("stages", message=f"--stages must be names from {','.join(STAGE_ORDER)}, each once, in that order")
def _stages_in_order(stages):
    return bool(stages) and all(s in STAGE_ORDER for s in stages) and list(stages) == sorted(
        set(stages), key=STAGE_ORDER.index)


@flags.multi_flags_validator(["task", "dataset"], message="this --dataset does not fit this --task; " + "; ".join(
    f"{t.name} takes {','.join(t.datasets)}" for t in TASKS.values()))
def _dataset_fits_task(values):
    return values["dataset"] in TASKS[values["task"]].datasets


@flags.multi_flags_validator(["dataset", "data_source"],
                             message="--data_source=idx reads Fashion-MNIST only: use --dataset=fashion_mnist")
def _idx_is_fashion_mnist(values):
    return values["data_source"] != "idx" or values["dataset"] == "fashion_mnist"


def parse(argv: list[str]) -> list[str]:
    """absl's flags_parser, printing a bad flag as one line instead of absl's two-line FATAL message."""
    # --helpshort lists the key flags of the program named argv[0] (the console script, or __main__):
    # make this module's flags those.
    for flag in flags.FLAGS.get_flags_for_module(__name__):
        flags.FLAGS.register_key_flag_for_module(argv[0], flag)
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e} (see --helpshort)", file=sys.stderr)
        sys.exit(2)


def to_config(flag_values: flags.FlagValues = flags.FLAGS) -> RunConfig:
    task = TASKS[flag_values.task]
    return RunConfig(
        task=task.name, dataset=flag_values.dataset, data_dir=flag_values.data_dir, idx_dir=flag_values.idx_dir,
        data_source=flag_values.data_source, output_dir=flag_values.output_dir, stages=tuple(flag_values.stages),
        epochs=flag_values.epochs, batch_size=flag_values.batch_size, learning_rate=flag_values.learning_rate,
        seed=flag_values.seed, validation_split=flag_values.validation_split,
        max_train_examples=flag_values.max_train_examples, max_test_examples=flag_values.max_test_examples,
        hparams={name: flag_values[name].value for name in task.hparams})
