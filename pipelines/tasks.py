"""The task registry: a task name → the record of what that task is (principles 5 and 14 of DESIGN.md).

A task says which data sets it learns, how one TFDS example becomes (model input, label), which builder makes its
model from which hyperparameters, its training defaults, and what of the trained model ships to TFLite.
Adding a task is adding one entry to TASKS; the runner, stages and input pipeline do not change.
"""

import dataclasses
import inspect
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from models.conv import build_conv_classifier
from models.dense import build_dense_classifier
from models.recurrent import TOKEN_CLASSIFIER, adapt_vocabulary, build_recurrent_classifier

VOCABULARY_FILE = "vocab.txt"


@dataclasses.dataclass(frozen=True)
class MobileModel:
    """What export converts to TFLite, how an input batch of the pipeline becomes its input, files to ship beside."""
    model: keras.Model
    to_inputs: Callable[[np.ndarray], np.ndarray]
    side_files: dict[str, str]


def whole_model(model: keras.Model) -> MobileModel:
    return MobileModel(model, lambda x: x, {})


def text_from_token_ids(model: keras.Model) -> MobileModel:
    """A text model ships from token ids: TFLite has no string ops for TextVectorization.

    The app tokenizes with `vocab.txt` (line i is token id i; 0 is padding, 1 out-of-vocabulary), lowercasing and
    stripping punctuation as TextVectorization does, and pads or cuts to the model's sequence length.
    """
    if "vectorize" not in {layer.name for layer in model.layers}:
        return whole_model(model)
    vectorize = model.get_layer("vectorize")
    vocabulary = "\n".join(str(token) for token in vectorize.get_vocabulary()) + "\n"
    return MobileModel(model.get_layer(TOKEN_CLASSIFIER), lambda x: vectorize(x).numpy(),
                       {VOCABULARY_FILE: vocabulary})


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    summary: str
    datasets: tuple[str, ...]
    to_example: Callable[[dict], tuple[tf.Tensor, tf.Tensor]]
    build_model: Callable[..., keras.Model]
    # Keyword arguments of build_model, each also a flag of the same name: one name from flag to builder to tuner.
    hparams: tuple[str, ...]
    epochs: int
    batch_size: int
    # Builder arguments learned from the training inputs (a text vocabulary); None when there are none.
    adapt: Callable[[tf.data.Dataset], dict[str, Any]] | None = None
    to_mobile: Callable[[keras.Model], MobileModel] = whole_model

    @property
    def default_hparams(self) -> dict[str, Any]:
        """The builder's own defaults: the single place a model hyperparameter's default is written."""
        params = inspect.signature(self.build_model).parameters
        return {name: params[name].default for name in self.hparams}


def image_example(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Raw pixels as float32 [H, W, C]; the model rescales them itself."""
    return tf.cast(features["image"], tf.float32), features["label"]


def sequence_example(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Text stays a string (the model vectorizes it); an image becomes H steps of its W × C pixel rows."""
    if "text" in features:
        return features["text"], features["label"]
    height, width, channels = features["image"].shape
    rows = tf.reshape(features["image"], (height, width * channels))
    return tf.cast(rows, tf.float32), features["label"]


def text_vocabulary(train_inputs: tf.data.Dataset) -> dict[str, Any]:
    """Adapted on the training split only, so validation and test words stay unseen."""
    if train_inputs.element_spec.dtype != tf.string:
        return {}
    return {"vocabulary": adapt_vocabulary(train_inputs)}


def compile_classifier(model: keras.Model, learning_rate: float) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


IMAGE_DATASETS = ("fashion_mnist", "mnist", "cifar10")
TASKS: dict[str, Task] = {t.name: t for t in (
    Task(name="dense", summary="multilayer perceptron on flattened images", datasets=IMAGE_DATASETS,
         to_example=image_example, build_model=build_dense_classifier, hparams=("hidden_units", "dropout"),
         epochs=10, batch_size=32),
    Task(name="conv", summary="convolutional network on images", datasets=IMAGE_DATASETS,
         to_example=image_example, build_model=build_conv_classifier,
         hparams=("conv_filters", "dense_units", "dropout", "augment"), epochs=12, batch_size=64),
    Task(name="recurrent", summary="RNN over image rows or text", datasets=IMAGE_DATASETS + ("imdb_reviews",),
         to_example=sequence_example, build_model=build_recurrent_classifier,
         hparams=("cell", "rnn_units", "rnn_layers", "bidirectional", "dropout", "sequence_length"), epochs=10, batch_size=64,
         adapt=text_vocabulary, to_mobile=text_from_token_ids),
)}
