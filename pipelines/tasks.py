"""The task registry: a task name → the record of what that task is (principles 5 and 14 of DESIGN.md).

A task says which data it learns, how one example becomes (model input, label), which builder makes its model from
which hyperparameters and which values of them tuning tries, its training defaults, and its problem family
(families.py: compile, evaluation, serving, objective). Adding a task is a builder and one entry in TASKS; the
runner, stages and input pipeline do not change.
"""

import dataclasses
import inspect
import json
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from models import BuildError
from models.conv import build_conv_classifier
from models.dense import build_dense_classifier
from models.gan import build_gan
from models.recurrent import adapt_vocabulary, build_recurrent_classifier
from models.pretrained import build_preset_text_classifier
from models.transformer import build_transformer_classifier
from models.table import ColumnStats
from pipelines import artifacts
from pipelines.classifier import CLASSIFIER
from pipelines.errors import PipelineError
from pipelines.families import Family
from pipelines.gan import GENERATOR
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
    search_space: Space  # hp → how tuning samples each of those arguments (tuning/search_spaces.py)
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"   # classifiers (classifier.learning_rate); the GAN's rates are constant
    steps_per_execution: int = 1  # measured per task (benchmarks/): what a step costs beside its arithmetic
    # Trains in a narrow type where the device computes one natively (precision.py): measured faster at the same
    # accuracy.
    mixed_precision: bool = False
    modalities: tuple[str, ...] = ("image",)  # the kinds of example it learns from: image, text
    # Builder arguments learned from the training split's (input, label) batches (a text vocabulary, a table's
    # column encoding); None when there are none.
    adapt: Callable[[tf.data.Dataset], dict[str, Any]] | None = None
    family: Family = CLASSIFIER
    # TFLite variants a run leaves out unless --tflite_variants asks for them, each with the measured reason
    # (export's summary gives it): a default never fails its own verify.
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)
    # The model built from a KerasHub preset instead (--init_from=<preset>; None: the task cannot start from
    # one). The preset fixes the architecture, so it takes only those of `hparams` it names as arguments.
    from_preset: Callable[..., keras.Model] | None = None

    def build(self, input_shape, num_classes: int, **kwargs) -> keras.Model:
        """build_model; arguments it cannot build from (a depth the image is too small for) are one line."""
        try:
            return self.build_model(input_shape, num_classes, **kwargs)
        except BuildError as e:
            raise PipelineError(f"cannot build the {self.name} model from --{e}") from None

    def build_from_preset(self, preset: str, num_classes: int, explicit: Sequence[str], **hparams) -> keras.Model:
        """from_preset with the hyperparameters it takes; a flag that would change what the preset fixes (given
        explicitly) and a task that cannot start from a preset are one line each."""
        if self.from_preset is None:
            able = [task.name for task in TASKS.values() if task.from_preset]
            raise PipelineError(f"--task={self.name} cannot start from a KerasHub preset: give --init_from an earlier "
                                f"run's model.keras, or use --task={' or --task='.join(able)}")
        takes = [name for name in inspect.signature(self.from_preset).parameters if name in self.hparams]
        fixed = sorted(name for name in hparams if name not in takes and name in explicit)
        if fixed:
            raise PipelineError(f"--{', --'.join(fixed)}: the preset {preset} fixes the model's architecture; drop "
                                f"{'them' if len(fixed) > 1 else 'it'} (from a preset, --task={self.name} takes "
                                f"--{', --'.join(takes)})")
        try:
            return self.from_preset(num_classes, preset=preset,
                                    **{name: value for name, value in hparams.items() if name in takes})
        except BuildError as e:
            raise PipelineError(f"cannot build the {self.name} model from --{e}") from None

    @property
    def default_variants(self) -> tuple[str, ...]:
        """The TFLite variants a run exports and verifies unless --tflite_variants says otherwise."""
        return tuple(v for v in artifacts.TFLITE_VARIANTS if v not in self.left_out)

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


def image_example(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Raw pixels as float32 [H, W, C]; the model rescales them itself."""
    return tf.cast(features["image"], tf.float32), features["label"]


def flat_example(features: dict):
    """An image's pixels, or a table row's raw columns (the model encodes them itself)."""
    if "table" in features:
        return features["table"], features["label"]
    return image_example(features)


def table_columns(train: tf.data.Dataset) -> dict[str, Any]:
    """A table's column encoding, and a numeric label's mean and spread (the model predicts in that scale and
    outputs real values), learned on the training split only (models/table.py), in one streamed pass."""
    if not isinstance(train.element_spec[0], dict):
        return {}
    columns, labels = ColumnStats(), ColumnStats()
    for x, y in train.as_numpy_iterator():
        columns.add(x)
        labels.add({"label": y.astype(np.float64)} if y.dtype.kind == "f" else {})
    learned = {"table": columns.describe()}
    if labels.numeric:
        (scale,) = labels.describe()
        learned["target_scale"] = (scale["mean"], scale["std"])
    return learned


def sequence_example(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Text stays a string (the model vectorizes it); an image stays an image (the model reads its rows)."""
    if "text" in features:
        return features["text"], features["label"]
    return image_example(features)


def text_vocabulary(train: tf.data.Dataset) -> dict[str, Any]:
    """Adapted on the training split only, so validation and test words stay unseen."""
    if train.element_spec[0].dtype != tf.string:
        return {}
    return {"vocabulary": adapt_vocabulary(train.map(lambda x, y: x))}


IMAGE_DATASETS = ("fashion_mnist", "mnist", "cifar10")
TASKS: dict[str, Task] = {t.name: t for t in (
    Task(name="dense", summary="multilayer perceptron on flattened images or a table's columns",
         datasets=IMAGE_DATASETS, to_example=flat_example, build_model=build_dense_classifier,
         hparams=("hidden_units", "dropout"), search_space=search_spaces.dense,
         # Measured (README): 0.893 test in 18 s against 0.888 in 45 s for 10 epochs of batch 32 at 1e-3.
         epochs=20, batch_size=128, learning_rate=3e-3, steps_per_execution=32,
         modalities=("image", "table"), adapt=table_columns),
    Task(name="conv", summary="convolutional network on images", datasets=IMAGE_DATASETS,
         to_example=image_example, build_model=build_conv_classifier,
         hparams=("conv_filters", "dense_units", "dropout", "augment"), search_space=search_spaces.conv,
         # The measured Pareto front's pick (README): 0.9225 test in 52 s against 0.926 in 295 s before.
         epochs=5, batch_size=128, learning_rate=3e-3, lr_schedule="one_cycle", steps_per_execution=8,
         mixed_precision=True),
    Task(name="recurrent", summary="RNN over image rows or text", datasets=IMAGE_DATASETS + ("imdb_reviews",),
         to_example=sequence_example, build_model=build_recurrent_classifier,
         hparams=("cell", "rnn_units", "rnn_layers", "bidirectional", "dropout", "sequence_length"),
         search_space=search_spaces.recurrent, epochs=10,
         # 8 steps per execution: an epoch 1.15× faster (1.79 s against 2.06 s on 10,800 images); the GAN's
         # 80 ms steps measured the same either way, so it keeps one. Batch 128 one-cycle at 3e-3: 0.8995 test
         # and epochs 1.24× faster, against 0.8880–0.8890 (three seeds) for batch 64 cosine at 1e-3 (README).
         batch_size=128, learning_rate=3e-3, lr_schedule="one_cycle", steps_per_execution=8,
         adapt=text_vocabulary,
         # Measured (README, Mobile export); 16×8 (int16 activations) and ai-edge-quantizer's recipes did worse.
         left_out={"int8": "an unrolled RNN's int8 file is 1.7× its float32 one (each of the 28 steps requantizes "
                           "its biases) and agrees with Keras on 98.9% of test images (GRU; LSTM 95.6%; limit 99%)"},
         modalities=("image", "text")),
    Task(name="transformer", summary="transformer encoder: a small ViT over image patches, or over text tokens",
         datasets=IMAGE_DATASETS + ("imdb_reviews",), to_example=sequence_example,
         build_model=build_transformer_classifier,
         hparams=("patch_size", "encoder_layers", "attention_heads", "model_width", "dropout", "sequence_length"),
         # Measured (README): 0.8813 test after 20 epochs (426 s), 0.8682 after 10, 0.8754 with 4-pixel patches.
         search_space=search_spaces.transformer, epochs=20, batch_size=128, learning_rate=1e-3,
         lr_schedule="one_cycle", steps_per_execution=8, adapt=text_vocabulary, modalities=("image", "text"),
         left_out={"int8": "the full-integer transformer agrees with Keras on 99.1% of test images at the defaults "
                           "(98.5% after 10 epochs), too thin a margin over the 99% limit; its dynamic-range file "
                           "(int8 weights) holds at 99.8%"},
         from_preset=build_preset_text_classifier),
    Task(name="gan", summary="DCGAN that learns to generate the images", datasets=IMAGE_DATASETS,
         to_example=image_example, build_model=build_gan,
         hparams=("noise_dim", "generator_widths", "discriminator_widths", "conditional"),
         search_space=search_spaces.gan, epochs=10, batch_size=64, learning_rate=2e-4, family=GENERATOR),
)}
