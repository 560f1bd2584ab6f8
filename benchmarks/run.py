"""Ratio benchmarks, each side measured in this one process on this machine (not run by CI; `make bench`).

1. The dense train stage (tf.data pipeline, callbacks: checkpoints, TensorBoard, BackupAndRestore, gradient norm)
   against a plain Keras script: the same 784-128-10 model, NumPy arrays, `model.fit`, no callbacks.
2. `model.fit` on the package's input pipeline against the same model fed a synthetic in-memory batch repeated
   (best of three each, alternating): what the input pipeline costs on top of the math.
3. Your own data: Fashion-MNIST written as a folder of 70,000 PNG files (train/ and test/, a subfolder per class)
   against the IDX route, same model, epochs after the first (best of three each, alternating), and the one-off
   cost of reading and decoding the folder.
Ratios above 1 mean the package is slower. Results go to benchmarks/out/results.json.
"""

import json
import os
import tempfile
import time

import keras
import tensorflow as tf

from models.dense import build_dense_classifier
from pipelines import runner
from pipelines.classifier import compile_classifier
from pipelines.context import Context
from pipelines.data import idx
from pipelines.flags import config_from_args
from pipelines.tasks import TASKS

EPOCHS, BATCH = 3, 32


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_keras_script() -> float:
    """What a newcomer writes: arrays, /255, Sequential, fit."""
    def run():
        train = idx.load_idx_split(idx.DEFAULT_IDX_DIR, "train")
        x, y = train["image"][:54000].astype("float32") / 255.0, train["label"][:54000]
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    return timed(run)


def pipeline_train_stage(output_dir: str) -> float:
    config = config_from_args("--task=dense", f"--epochs={EPOCHS}", f"--batch_size={BATCH}", "--stages=train",
                              f"--output_dir={output_dir}", "--force")
    (record,) = runner.run(config)
    return record.seconds


def fit_seconds(dataset: tf.data.Dataset) -> float:
    keras.utils.set_random_seed(0)
    model = build_dense_classifier((28, 28, 1), 10)
    compile_classifier(model, config_from_args())
    model.fit(dataset.take(10), verbose=0)  # build and trace outside the timing
    return timed(lambda: model.fit(dataset, epochs=EPOCHS, verbose=0))


def input_pipeline_vs_synthetic() -> tuple[float, float]:
    ctx = Context(config_from_args("--task=dense", f"--batch_size={BATCH}"), TASKS["dense"])
    real = ctx.inputs.train
    steps = int(real.cardinality())
    batch = (tf.random.uniform((BATCH, 28, 28, 1), 0, 255), tf.zeros((BATCH,), tf.int64))
    synthetic = tf.data.Dataset.from_tensors(batch).repeat(steps).prefetch(tf.data.AUTOTUNE)
    fit_seconds(real)  # first pass fills the pipeline's cache, as epoch 1 of a run does
    # Alternate the two and keep each one's best of three: the machine's other load moves single timings.
    timings = [(fit_seconds(real), fit_seconds(synthetic)) for _ in range(3)]
    return min(t[0] for t in timings), min(t[1] for t in timings)


def write_png_folder(root: str) -> None:
    from PIL import Image
    for split in ("train", "test"):
        data = idx.load_idx_split(idx.DEFAULT_IDX_DIR, split)
        for i, (image, label) in enumerate(zip(data["image"], data["label"])):
            folder = os.path.join(root, split, f"class_{label}")
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(image[..., 0]).save(os.path.join(folder, f"{i:05d}.png"))


def folder_vs_idx(root: str) -> dict:
    idx_inputs = Context(config_from_args("--task=dense", f"--batch_size={BATCH}"), TASKS["dense"]).inputs
    folder_ctx = Context(config_from_args("--task=dense", f"--batch_size={BATCH}", f"--dataset={root}"),
                         TASKS["dense"])
    read = timed(lambda: folder_ctx.data)
    folder_inputs = folder_ctx.inputs
    fit_seconds(idx_inputs.train), fit_seconds(folder_inputs.train)  # epoch 1 fills each pipeline's cache
    timings = [(fit_seconds(idx_inputs.train), fit_seconds(folder_inputs.train)) for _ in range(3)]
    best_idx, best_folder = min(t[0] for t in timings), min(t[1] for t in timings)
    return {"png_folder_read_and_decode_seconds": read, "fit_on_idx_seconds": best_idx,
            "fit_on_png_folder_seconds": best_folder, "png_folder_speed_relative_to_idx": best_idx / best_folder}


def main() -> None:
    with tempfile.TemporaryDirectory() as output_dir:
        stage = pipeline_train_stage(output_dir)
    plain = plain_keras_script()
    real, synthetic = input_pipeline_vs_synthetic()
    with tempfile.TemporaryDirectory() as root:
        write_png_folder(root)
        folders = folder_vs_idx(root)
    results = {
        "epochs": EPOCHS, "batch_size": BATCH,
        "dense_train_stage_seconds": stage, "plain_keras_script_seconds": plain,
        "train_stage_over_plain_keras": stage / plain,
        "fit_on_pipeline_seconds": real, "fit_on_synthetic_in_memory_seconds": synthetic,
        "pipeline_over_synthetic_input": real / synthetic,
        **folders,
    }
    os.makedirs(os.path.join(os.path.dirname(__file__), "out"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "out", "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
