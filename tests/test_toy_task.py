"""Adding a task is a builder and one registry entry: a task defined in this file alone runs through every stage."""

import dataclasses
import json

import keras
import keras_tuner as kt
from absl import flags
from keras import layers

from pipelines import runner
from pipelines.flags import define_builder_flag
from pipelines.data.examples import image_example
from pipelines.tasks import TASKS, Task
from tests.conftest import config_from_flags


def build_toy_classifier(input_shape, num_classes: int, *, width: int = 8) -> keras.Model:
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Flatten(name="flatten")(layers.Rescaling(1 / 255, name="rescale")(inputs))
    x = layers.Dense(width, activation="relu", name="hidden")(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="toy_classifier")


def toy_space(hp: kt.HyperParameters) -> dict:
    return {"width": lambda: hp.Choice("width", [4, 8, 16], default=8)}


TOY = Task(name="toy", summary="a one-layer classifier", datasets=("fashion_mnist",), to_example=image_example,
           build_model=build_toy_classifier, hparams=("width",), search_space=toy_space, epochs=1, batch_size=32)


def test_a_task_defined_here_runs_through_every_stage(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, "toy", TOY)
    flagged = config_from_flags("--max_train_examples=600", "--max_test_examples=200", "--tuner=random",
                                "--max_trials=2", "--tuning_epochs=1", "--epochs=1", f"--output_dir={tmp_path}",
                                "--stages=tune,train,evaluate,export,verify", "--tflite_variants=float32,float16")
    config = dataclasses.replace(flagged, task="toy", hparams=TOY.default_hparams, fixed_hparams={})
    records = runner.run(config)
    assert [r.stage for r in records] == ["tune", "train", "evaluate", "export", "verify"]
    task_dir = tmp_path / "toy"
    best = json.loads((task_dir / "best_hparams.json").read_text())
    model = keras.models.load_model(task_dir / "model.keras", compile=False)
    assert model.get_layer("hidden").units == best["hparams"]["width"]
    assert json.loads((task_dir / "metrics.json").read_text())["test_accuracy"] > 0.1
    assert json.loads((task_dir / "export_report.json").read_text())["passed"]
    assert records[2].result.startswith("test_accuracy=")  # the family's headline, not a name the runner knows


def test_a_builder_argument_without_a_hand_written_flag_gets_one_typed_by_its_default():
    fresh = flags.FlagValues()
    for name, default in (("width", 8), ("rate", 0.5), ("residual", True), ("widths", (8, 4)), ("norm", "layer")):
        define_builder_flag(name, default, flag_values=fresh)
    fresh(["toy", "--width=3", "--rate=0.25", "--noresidual", "--widths=16,2", "--norm=batch"])
    assert (fresh.width, fresh.rate, fresh.residual, fresh.widths, fresh.norm) == (3, 0.25, False, (16, 2), "batch")
