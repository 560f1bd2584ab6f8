"""Adding a problem family is a Family record and its hooks: a family defined in this file alone (it predicts an
image's brightness) runs through every stage, and the report, verify and evaluate show only what it declared."""

import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from PIL import Image

from pipelines import runner
from pipelines.families import Column, Family, Picture, Workspace
from pipelines.metadata import TensorInfo
from pipelines.shipping import Shipment
from pipelines.tasks import TASKS, Task
from tests.conftest import config_from_flags


def brightness_example(features):
    image = tf.cast(features["image"], tf.float32)
    return image, tf.reshape(tf.reduce_mean(image) / 255.0, [1])  # the model's (batch, 1) shape


def build_brightness(input_shape, num_classes: int, *, width: int = 8) -> keras.Model:
    image = keras.Input(shape=tuple(input_shape), name="image")
    pooled = layers.GlobalAveragePooling2D()(layers.Rescaling(1 / 255)(image))
    x = layers.Dense(width, activation="relu", name="hidden")(pooled)
    return keras.Model(image, layers.Dense(1, name="brightness")(x), name="brightness_model")


def compile_brightness(model, config, steps_per_epoch: int = 0) -> None:
    model.compile(keras.optimizers.Adam(config.learning_rate), "mse", steps_per_execution=config.steps_per_execution)


def evaluate_brightness(model: keras.Model, work: Workspace) -> dict:
    predicted = model.predict(work.inputs.test, verbose=0).reshape(-1)
    actual = np.concatenate([y for _, y in work.inputs.test.as_numpy_iterator()]).reshape(-1)
    errors = np.abs(predicted - actual)
    Image.fromarray((255 * np.clip(errors[None], 0, 1)).astype(np.uint8)).save(work.path("errors.png"))
    return {"test_mae": float(errors.mean())}


def ship_brightness(model: keras.Model, work=None) -> Shipment:
    limits = {"savedmodel": ("max_abs_diff", 1e-4), "float": ("max_abs_diff", 1e-4),
              "float16": ("max_abs_diff", 1e-2)}
    return Shipment(model=model, quantizable=model, reference=model, limits=limits, classes=False,
                    tensors={"image": TensorInfo("pixels, 0–255"), "brightness": TensorInfo("mean brightness, 0–1")})


BRIGHTNESS = Family(
    name="brightness", compile=compile_brightness, evaluate=evaluate_brightness, ship=ship_brightness,
    headline="test_mae", objective="val_loss", objective_direction="min", loss_key="loss", gradient_norm=True,
    export_columns=(Column("test RMSE", "test_rmse", "{:.4g}"), Column("max abs diff", "max_abs_diff", "{:.2e}")),
    pictures=(Picture("errors.png", "each test image's error"),))
TOY = Task(name="brightness", summary="how bright an image is", datasets=("fashion_mnist",),
           to_example=brightness_example, build_model=build_brightness, hparams=("width",),
           search_space=lambda hp: {"width": lambda: hp.Choice("width", [4, 8], default=8)}, epochs=1,
           learning_rate=1e-2, batch_size=32, family=BRIGHTNESS)


def test_a_family_defined_here_runs_through_every_stage(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, "brightness", TOY)
    flagged = config_from_flags("--max_train_examples=600", "--max_test_examples=200", "--tuner=random",
                                "--max_trials=2", "--tuning_epochs=1", f"--output_dir={tmp_path}",
                                "--stages=tune,train,evaluate,export,verify,report",
                                "--tflite_variants=float32,float16")
    config = dataclasses.replace(flagged, task="brightness", hparams=TOY.default_hparams, fixed_hparams={})
    records = runner.run(config)
    assert [r.stage for r in records] == ["tune", "train", "evaluate", "export", "verify", "report"]
    task_dir = tmp_path / "brightness"
    metrics = json.loads((task_dir / "metrics.json").read_text())
    assert metrics["family"] == "brightness" and metrics["headline"] == "test_mae" and metrics["test_mae"] < 0.05
    assert records[2].result.startswith("test_mae=")
    exports = json.loads((task_dir / "export_report.json").read_text())
    assert exports["passed"] and set(exports["exports"]) == {"keras", "savedmodel", "float32", "float16", "onnx"}
    report = (task_dir / "report.md").read_text()
    assert "![each test image's error](errors.png)" in report and "| export | size KiB | latency ms | test RMSE |" \
        in report
    assert "confusion" not in report  # nothing of another family's
    # Its picture is an output of evaluate like any registered family's: recorded, so a changed file is made again.
    assert "errors.png" in json.loads((task_dir / "fingerprints.json").read_text())["evaluate"]["outputs"]
