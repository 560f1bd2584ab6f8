"""docs/shipping.md's client snippets (docs/clients/), run as a user runs them on a short run's exports: MediaPipe Tasks
in its own venv (`make mediapipe`), the LiteRT interpreter and ONNX Runtime, on grayscale Fashion-MNIST test
images saved as PNG files. Each must name the classes the file itself gives (run here directly), with the label
names packed in the file, and the float files the classes Keras gives (int8's agreement is verify's business)."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import onnxruntime
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from pipelines.data import idx
from pipelines import runner
from tests.conftest import REAL_IDX_DIR, config_from_flags

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "docs" / "clients"
IMAGES = 200
VARIANTS = ("float32", "dynamic_range", "int8")


def tflite_name(variant: str) -> str:
    return "model.tflite" if variant == "float32" else f"model_{variant}.tflite"


@pytest.fixture(scope="module", params=["dense", "conv"])
def exported(request, tmp_path_factory):
    """A short run's exports, PNG files of the first test images, and what the Keras model calls each."""
    task = request.param
    output_dir = tmp_path_factory.mktemp(task)
    model_flags = ["--conv_filters=16,32", "--epochs=1"] if task == "conv" else ["--epochs=2"]
    runner.run(config_from_flags(f"--task={task}", "--max_train_examples=3000", "--max_test_examples=1000",
                                 f"--idx_dir={REAL_IDX_DIR}", f"--output_dir={output_dir}", *model_flags,
                                 "--tflite_variants=" + ",".join(VARIANTS)))
    task_dir = output_dir / task
    test = idx.load_idx_split(REAL_IDX_DIR, "test")
    images, labels = test["image"][:IMAGES], test["label"][:IMAGES]
    paths = []
    for i, image in enumerate(images):
        paths.append(str(output_dir / f"{i:03d}.png"))
        Image.fromarray(image[..., 0]).save(paths[-1])  # grayscale files, as the data set's own
    names = (task_dir / "labels.txt").read_text().splitlines()
    logits = keras.models.load_model(task_dir / "model.keras").predict(images.astype(np.float32), verbose=0)
    files = {"onnx": [names[int(np.argmax(p))] for p in onnxruntime.InferenceSession(str(task_dir / "model.onnx"))
                      .run(["probabilities"], {"image": np.repeat(images, 3, axis=-1)})[0]]}
    for variant in VARIANTS:  # what each file answers, fed the same RGB frames directly
        signature = Interpreter(model_path=str(task_dir / tflite_name(variant))).get_signature_runner()
        rgb = np.repeat(images, 3, axis=-1)
        files[variant] = [names[int(np.argmax(signature(image=rgb[i:i + 1])["probabilities"]))]
                          for i in range(IMAGES)]
    return task_dir, paths, files, [names[i] for i in np.argmax(logits, -1)], [names[i] for i in labels]


def classify(python: str, client: str, model: Path, paths: list[str]) -> list[str]:
    result = subprocess.run([python, str(CLIENTS / client), str(model), *paths], capture_output=True, text=True,
                            env={**os.environ, "GLOG_minloglevel": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in rows] == paths and all(0 <= float(row[2]) <= 1 for row in rows)  # probabilities
    return [row[1] for row in rows]


def accuracy(names: list[str], truth: list[str]) -> float:
    return float(np.mean([a == b for a, b in zip(names, truth)]))


def check(names: list[str], variant: str, exported) -> None:
    _, paths, files, keras_names, truth = exported
    assert names == files[variant]  # the file's own answers, under the names packed in it
    if variant != "int8":
        assert accuracy(names, keras_names) >= 0.97
        assert abs(accuracy(names, truth) - accuracy(keras_names, truth)) <= 0.02


@pytest.mark.parametrize("variant", VARIANTS)
def test_mediapipe_image_classifier_names_the_classes_the_model_does(exported, mediapipe_python, variant):
    task_dir, paths = exported[:2]
    check(classify(mediapipe_python, "mediapipe_classify.py", task_dir / tflite_name(variant), paths), variant,
          exported)


@pytest.mark.parametrize("variant", VARIANTS)
def test_litert_snippet_names_the_classes_the_model_does(exported, variant):
    task_dir, paths = exported[:2]
    check(classify(sys.executable, "litert_classify.py", task_dir / tflite_name(variant), paths), variant, exported)


def test_the_shipping_doc_shows_each_client_snippet_as_it_is_tested():
    readme = (ROOT / "docs" / "shipping.md").read_text()
    for client in CLIENTS.glob("*.py"):
        body = client.read_text().split('"""', 2)[2].strip()  # the code after the docstring
        assert body in readme, f"docs/shipping.md does not show {client.name} as tested"


@pytest.mark.parametrize("exported", ["dense"], indirect=True)  # a TensorFlow import a run: one model is enough
def test_saved_model_snippet_names_the_classes_keras_does(exported):
    task_dir, paths, _, keras_names, _ = exported
    names = classify(sys.executable, "saved_model_classify.py", task_dir / "saved_model", paths)
    assert names == keras_names  # the SavedModel is the Keras model, in the model's own channels


def test_onnxruntime_snippet_names_the_classes_the_model_does(exported):
    task_dir, paths = exported[:2]
    check(classify(sys.executable, "onnxruntime_classify.py", task_dir / "model.onnx", paths), "onnx", exported)
