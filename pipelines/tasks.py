"""The task registry: a task name → the record of what that task is (principle 5 and 14 of DESIGN.md).

A task says which data sets it learns, how one TFDS example becomes (model input, label), which builder makes its
model from which hyperparameters, and how that model is compiled. Adding a task is adding one entry to TASKS.
"""

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

from models.dense import build_dense_classifier


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    summary: str
    datasets: tuple[str, ...]
    to_example: Callable[[dict], tuple[tf.Tensor, tf.Tensor]]
    build_model: Callable[..., keras.Model]
    # Keyword arguments of build_model, each also a flag of the same name: one name from flag to builder to tuner.
    hparams: tuple[str, ...]


def image_example(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Raw pixels as float32 [H, W, C]; the model rescales them itself."""
    return tf.cast(features["image"], tf.float32), features["label"]


def compile_classifier(model: keras.Model, learning_rate: float) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


TASKS: dict[str, Task] = {
    "dense": Task(
        name="dense",
        summary="multilayer perceptron on flattened images",
        datasets=("fashion_mnist", "mnist", "cifar10"),
        to_example=image_example,
        build_model=build_dense_classifier,
        hparams=("hidden_units", "dropout"),
    ),
}
