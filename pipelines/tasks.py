"""The task registry: a task name → the record of what that task is (principles 5 and 14 of DESIGN.md).

A task says which data it learns, how one example becomes (model input, label), which builder makes its model from
which hyperparameters and which values of them tuning tries, its training defaults, and its problem family
(pipelines/families/: compile, evaluation, what ships, objective). Adding a task is a builder and one entry in
TASKS; the runner, stages and input pipeline do not change. `family_of` is the one rule by which the data may give
a task another family.
"""

import dataclasses
import inspect
import json
import typing
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from models import BuildError, numpy_mlp
from models.conv import build_conv_classifier
from models.dense import build_dense_classifier
from models.gan import build_gan
from models.gan import depth as gan_depth
from models.recurrent import adapt_vocabulary, build_recurrent_classifier
from models import rocket
from models.backbones import build_preset_image_classifier
from models.pretrained import build_preset_text_classifier
from models.transformer import build_transformer_classifier
from models.table import ColumnStats
from pipelines.config import TFLITE_VARIANTS
from pipelines.data.examples import flat_example, image_example, sequence_example
from pipelines.errors import PipelineError
from pipelines.families import Family
from pipelines.families.classifier import CLASSIFIER
from pipelines.families.forecaster import FORECASTER
from pipelines.families.generator import GENERATOR
from pipelines.families.regressor import REGRESSOR
from pipelines.upstream.huggingface_hub import offline_unless_reachable
from tuning import search_spaces
from tuning.search_spaces import Space


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    summary: str
    datasets: tuple[str, ...]                 # the registered data sets it reads (any folder of its modalities too)
    to_example: Callable[[dict], tuple[tf.Tensor, tf.Tensor]]
    build_model: Callable[..., keras.Model]
    # Keyword arguments of build_model, each also a flag of the same name: one name from flag to builder to tuner.
    hparams: tuple[str, ...]
    # hp → how tuning samples each of those arguments (tuning/search_spaces.py); None: nothing to tune by trials.
    search_space: Space | None
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"   # classifiers (classifier.learning_rate); the GAN's rates are constant
    steps_per_execution: int = 1  # per task: what a step costs beside its arithmetic (docs/tasks.md)
    # Trains in a narrow type where the device computes one natively (precision.py): measured faster at the same
    # accuracy.
    mixed_precision: bool = False
    modalities: tuple[str, ...] = ("image",)  # the kinds of example it learns from: image, text, table, series
    # Builder arguments learned from the training split's (input, label) batches and what reading the data found
    # (its DataSet: which of a table's columns are text): a text vocabulary, a table's column encoding; None when
    # there are none.
    adapt: Callable[[tf.data.Dataset, Any], dict[str, Any]] | None = None
    family: Family = CLASSIFIER
    trainers: tuple[str, ...] = ("keras",)   # --trainer values it takes (numpy: its network written in NumPy)
    # TFLite variants a run leaves out unless --tflite_variants asks for them, each with its reason
    # (export's summary gives it): a default never fails its own verify.
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)
    # The model built from a KerasHub preset instead (--init_from=<preset>; None: the task cannot start from
    # one). The preset fixes the architecture, so it takes only those of `hparams` it names as arguments.
    from_preset: Callable[..., keras.Model] | None = None
    # (image size) -> None, or a BuildError for a --image_size its model cannot take (the GAN draws squares that
    # halve down to a few pixels): checked before any image is read, so the size is named, not the pictures.
    image_size_check: Callable[[tuple[int, int]], Any] | None = None
    # (model, inputs) -> what it fitted: the model fitted in closed form instead of by gradient steps (MiniRocket's
    # biases and ridge head); None: trained by its trainer's `fit`.
    solve: Callable[[keras.Model, Any], dict[str, float]] | None = None
    # Sequences to classify: each series z-normalised by itself, or all by the train series' (--series_scaling).
    series_scaling: str = "each"
    # What it reads past a shorter sequence's end (data/sequences.py, PADDINGS): the last step repeated, or the
    # missing values, which its model masks.
    padding: str = "last"

    def check_image_size(self, image_size: tuple[int, int] | None) -> None:
        if image_size is not None and self.image_size_check is not None:
            try:
                self.image_size_check(image_size)
            except BuildError as e:
                raise PipelineError(f"cannot build the {self.name} model from --{e}") from None

    def build(self, input_shape, num_classes: int, **kwargs) -> keras.Model:
        """build_model; arguments it cannot build from (a depth the image is too small for) are one line."""
        try:
            return self.build_model(input_shape, num_classes, **kwargs)
        except BuildError as e:
            raise PipelineError(f"cannot build the {self.name} model from --{e}") from None

    def build_from_preset(self, preset: str, input_shape, num_classes: int, explicit: Sequence[str], modality: str,
                          **hparams) -> keras.Model:
        """from_preset with the hyperparameters it takes (the run's values: config.json says what was used); a flag
        that would change what the preset fixes (given explicitly), data the task's presets cannot read and a task
        that cannot start from a preset are one line each."""
        able = {task.name: preset_modality(task.from_preset) for task in TASKS.values() if task.from_preset}
        if self.from_preset is None:
            raise PipelineError(f"--task={self.name} cannot start from a KerasHub preset: give --init_from an earlier "
                                f"run's model.keras, or use " + " or ".join(
                                    f"--task={name} ({kind})" for name, kind in able.items()))
        if modality != preset_modality(self.from_preset):
            others = [name for name, kind in able.items() if kind == modality]
            raise PipelineError(f"--init_from={preset}: --task={self.name} fine-tunes "
                                f"{preset_modality(self.from_preset)} presets, and the data set holds {modality} "
                                "examples: " + (f"use --task={others[0]}" if others else
                                                "give an earlier run's model.keras"))
        takes = [name for name in inspect.signature(self.from_preset).parameters if name in self.hparams]
        fixed = sorted(name for name in hparams if name not in takes and name in explicit)
        if fixed:
            raise PipelineError(f"--{', --'.join(fixed)}: the preset {preset} fixes the model's architecture; drop "
                                f"{'them' if len(fixed) > 1 else 'it'} (from a preset, --task={self.name} takes "
                                f"--{', --'.join(takes)})")
        given = {name: value for name, value in hparams.items() if name in takes}
        try:
            with offline_unless_reachable(preset):
                return self.from_preset(input_shape, num_classes, preset=preset, **given)
        except BuildError as e:
            raise PipelineError(f"cannot build the {self.name} model from --{e}") from None

    def defaults(self, trainer: str, family: Family | None = None) -> dict[str, Any]:
        """The settings whose default is the task's (config.TASK_DEFAULTS), for the trainer that trains it and the
        family its data make it (whose defaults may leave a TFLite variant out too)."""
        rate = numpy_mlp.LEARNING_RATE if trainer == "numpy" else self.learning_rate
        variants = tuple(v for v in self.default_variants if v not in (family.left_out if family else {}))
        return {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": rate,
                "lr_schedule": self.lr_schedule, "steps_per_execution": self.steps_per_execution,
                "tflite_variants": variants, "series_scaling": self.series_scaling}

    @property
    def rows_as_sequences(self) -> bool:
        """Whether a wide table's rows are series to it (a task that reads series and not tables' columns)."""
        return "series" in self.modalities and "table" not in self.modalities

    @property
    def default_variants(self) -> tuple[str, ...]:
        """The TFLite variants a run exports and verifies unless --tflite_variants says otherwise."""
        return tuple(v for v in TFLITE_VARIANTS if v not in self.left_out)

    def hparam_choices(self, name: str) -> tuple:
        """The values a builder argument takes when its annotation is a Literal (--cell, --augment), else ()."""
        annotation = inspect.signature(self.build_model).parameters[name].annotation
        return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()

    @property
    def default_hparams(self) -> dict[str, Any]:
        """The builder's own defaults: the single place a model hyperparameter's default is written."""
        params = inspect.signature(self.build_model).parameters
        return {name: params[name].default for name in self.hparams}

    def read_hparams_file(self, path: str) -> tuple[dict[str, Any], float | None]:
        """Builder arguments and learning rate from a `best_hparams.json` (the tune stage's, or --hparams_file)."""
        try:
            with open(path) as f:
                saved = json.load(f)
            hparams, rate = dict(saved["hparams"]), saved.get("learning_rate")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PipelineError(f"cannot read hyperparameters from {path} ({type(e).__name__}: {e}): give a "
                                "best_hparams.json written by --stages=tune") from None
        unknown = sorted(set(hparams) - set(self.hparams))
        if unknown:
            raise PipelineError(f"{path} has hyperparameters --task={self.name} does not take: {', '.join(unknown)}"
                                f" (it takes {', '.join(self.hparams)})")
        # JSON has lists where builders take tuples.
        return {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}, rate


def preset_modality(builder: Callable[..., keras.Model]) -> str:
    """What the presets a builder fine-tunes read: image backbones or text encoders."""
    return "image" if builder is build_preset_image_classifier else "text"


def table_columns(train: tf.data.Dataset, data) -> dict[str, Any]:
    """A table's column encoding, and a numeric label's mean and spread (the model predicts in that scale and
    outputs real values), learned on the training split only (models/table.py), in one streamed pass."""
    if not isinstance(train.element_spec[0], dict):
        return {}
    text = [data.table.inputs[column] for column in data.table.text] if data.table is not None else []
    columns, labels = ColumnStats(text), ColumnStats()
    for x, y in train.as_numpy_iterator():
        columns.add(x)
        labels.add({"label": y.astype(np.float64)} if y.dtype.kind == "f" else {})
    learned = {"table": columns.describe()}
    if labels.numeric:
        (scale,) = labels.describe()
        learned["target_scale"] = (scale["mean"], scale["std"])
    return learned


def text_vocabulary(train: tf.data.Dataset, data) -> dict[str, Any]:
    """Adapted on the training split only, so validation and test words stay unseen."""
    if train.element_spec[0].dtype != tf.string:
        return {}
    return {"vocabulary": adapt_vocabulary(train.map(lambda x, y: x))}


def rocket_fit(model: keras.Model, inputs) -> dict[str, float]:
    """MiniRocket's closed-form fit (models/rocket.py) on every labelled series but the test split's: the train
    split and the validation split carved from it (its ridge penalty is chosen by leave-one-out instead)."""
    return rocket.fit(model, inputs.labelled().as_numpy_iterator())


IMAGE_DATASETS = ("fashion_mnist", "mnist", "cifar10")
# Every task's defaults were chosen by measurement: docs/tasks.md has the figures and what they were chosen over.
TASKS: dict[str, Task] = {t.name: t for t in (
    Task(name="dense", summary="multilayer perceptron on flattened images, a table's columns or a flattened window",
         datasets=IMAGE_DATASETS, to_example=flat_example, build_model=build_dense_classifier,
         hparams=("hidden_units", "dropout"), search_space=search_spaces.dense,
         epochs=20, batch_size=128, learning_rate=3e-3, steps_per_execution=32,
         modalities=("image", "table", "series"), adapt=table_columns, trainers=("keras", "numpy")),
    Task(name="conv", summary="convolutional network on images, causal 1-D on a series", datasets=IMAGE_DATASETS,
         to_example=image_example, build_model=build_conv_classifier,
         hparams=("conv_filters", "dense_units", "dropout", "augment"), search_space=search_spaces.conv,
         epochs=5, batch_size=128, learning_rate=3e-3, lr_schedule="one_cycle", steps_per_execution=8,
         mixed_precision=True, modalities=("image", "series"), from_preset=build_preset_image_classifier),
    Task(name="recurrent", summary="RNN over image rows, text or a series' steps",
         datasets=IMAGE_DATASETS + ("imdb_reviews",), to_example=sequence_example,
         build_model=build_recurrent_classifier,
         hparams=("cell", "rnn_units", "rnn_layers", "bidirectional", "dropout", "sequence_length"),
         search_space=search_spaces.recurrent, epochs=10, batch_size=128, learning_rate=3e-3,
         lr_schedule="one_cycle", steps_per_execution=8, adapt=text_vocabulary,
         modalities=("image", "text", "series"),
         left_out={"int16x8": "the unrolled GRU's int16x8 file is broken (a forecaster's test RMSE 3.2× the float "
                              "model's on AirPassengers); its dynamic-range file ships (docs/shipping.md)"}),
    Task(name="transformer", summary="transformer encoder over image patches, text tokens or a series' steps",
         datasets=IMAGE_DATASETS + ("imdb_reviews",), to_example=sequence_example,
         build_model=build_transformer_classifier,
         hparams=("patch_size", "encoder_layers", "attention_heads", "model_width", "dropout", "sequence_length"),
         search_space=search_spaces.transformer, epochs=20, batch_size=128, learning_rate=1e-3,
         lr_schedule="one_cycle", steps_per_execution=8, adapt=text_vocabulary,
         modalities=("image", "text", "series"),
         left_out={"int16x8": "TFLite has no 16×8 kernel for one of its ops (NEG)"},
         from_preset=build_preset_text_classifier),
    Task(name="rocket", summary="MiniRocket: fixed dilated kernels over a sequence, a ridge classifier on their "
         "features", datasets=(), to_example=sequence_example, build_model=rocket.build_rocket_classifier,
         hparams=("num_features",), search_space=None, epochs=1, batch_size=64, modalities=("series",),
         solve=rocket_fit, series_scaling="train", padding="missing",
         left_out={"int16x8": "TFLite has no 16×8 kernel for --series_scaling=each's SQRT"}),
    Task(name="gan", summary="GAN that learns to draw the images (upsampling generator, two-scale discriminator, "
         "R1, weights' average)", datasets=IMAGE_DATASETS, to_example=image_example, build_model=build_gan,
         hparams=("noise_dim", "generator_widths", "discriminator_widths", "r1", "conditional"),
         search_space=search_spaces.gan, epochs=10, batch_size=32, learning_rate=2e-4, lr_schedule="constant",
         family=GENERATOR, image_size_check=gan_depth),
)}

FAMILIES: dict[str, Family] = {f.name: f for f in (CLASSIFIER, REGRESSOR, FORECASTER, GENERATOR)}


def pictures(task_name: str) -> tuple[str, ...]:
    """What evaluate may have drawn in a task folder: the pictures of every family registered here and of the task's
    own (one registered elsewhere, a test's, too), so that a run removes those its family does not draw."""
    families = [*FAMILIES.values(), TASKS[task_name].family]
    return tuple(sorted({picture.file for family in families for picture in family.pictures}))


def family_of(task: Task, problem: str) -> Family:
    """The task's family, unless the data choose another: a table's numeric label is regressed, a time series
    forecast."""
    return {"regression": REGRESSOR, "forecast": FORECASTER}.get(problem, task.family)
