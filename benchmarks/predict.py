"""dlpipe-predict's throughput against what a Keras user writes for the same job, both in this process: read the
same new examples, call the trained model, write the answers to a CSV.

- A table: 100,000 passenger rows (tests/titanic.py) through the run's SavedModel (the default), against a script
  that parses the CSV with the csv module into column arrays, calls model.predict on model.keras in batches of
  256 and writes label and probability per row.
- Images: 2,000 Fashion-MNIST PNG files in a folder, against a script that opens each with Pillow, stacks a batch
  and calls model.predict.

Each side runs twice, taking turns; the best of each counts. Run by `make bench` or alone:
`python -m benchmarks.predict`."""

import csv
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from benchmarks import config_of as config_from_args
from pipelines import artifacts, prediction, runner
from pipelines.data import idx
from pipelines.families import Asked
from tests import titanic

ROWS, IMAGES, BATCH = 100_000, 2_000, 256


def plain_table(model_path: str, path: str, output: str, names) -> None:
    model = keras.models.load_model(model_path)
    numeric = {t.name for t in model.inputs if t.dtype != "string"}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {name: np.array([float(r[name]) if r[name] else np.nan for r in rows], np.float32) if name in numeric
               else np.array([r[name] for r in rows], object) for name in (t.name for t in model.inputs)}
    logits = model.predict(tf.data.Dataset.from_tensor_slices(columns).batch(BATCH), verbose=0)
    probabilities = tf.nn.softmax(logits).numpy()
    with open(output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["PassengerId", "Survived", "probability"])
        writer.writerows((r["PassengerId"], names[p.argmax()], p.max()) for r, p in zip(rows, probabilities))


def plain_images(model_path: str, paths: list[str], output: str, names) -> None:
    model = keras.models.load_model(model_path)
    with open(output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "probability"])
        for begin in range(0, len(paths), BATCH):
            batch = paths[begin:begin + BATCH]
            pixels = np.stack([np.asarray(Image.open(p))[..., None] for p in batch]).astype(np.float32)
            probabilities = tf.nn.softmax(model.predict(pixels, verbose=0)).numpy()
            writer.writerows((p, names[q.argmax()], q.max()) for p, q in zip(batch, probabilities))


def best_of_two(dlpipe, plain) -> tuple[float, float]:
    times = {"dlpipe": [], "plain": []}
    for _ in range(2):
        for name, job in (("dlpipe", dlpipe), ("plain", plain)):
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return min(times["dlpipe"]), min(times["plain"])


def table(root: str) -> dict:
    train = titanic.write(os.path.join(root, "train.csv"), titanic.passengers(891))
    runner.run(config_from_args(f"--dataset={train}", "--label_column=Survived", f"--output_dir={root}",
                                "--stages=train,export", "--tflite_variants=float32", "--noonnx"))
    folder = os.path.join(root, "dense")
    rows = titanic.passengers(1000, seed=4)
    new = titanic.write(os.path.join(root, "new.csv"), rows * (ROWS // 1000),
                        [c for c in titanic.COLUMNS if c != "Survived"])
    predictor = prediction.open_run(folder)
    dlpipe, plain = best_of_two(
        lambda: prediction.predict_file(predictor, new, os.path.join(root, "a.csv"), Asked("Survived")),
        lambda: plain_table(os.path.join(folder, artifacts.MODEL), new, os.path.join(root, "b.csv"),
                            predictor.label_names))
    return {"rows": ROWS, "dlpipe_rows_per_second": ROWS / dlpipe, "plain_rows_per_second": ROWS / plain,
            "dlpipe_over_plain_throughput": plain / dlpipe}


def images(root: str) -> dict:
    runner.run(config_from_args("--task=dense", "--max_train_examples=5000", "--epochs=2", f"--output_dir={root}",
                                "--stages=train,export", "--tflite_variants=float32", "--noonnx"))
    pixels = idx.load_idx_split(idx.DEFAULT_IDX_DIR, "test")["image"]
    paths = []
    for i in range(IMAGES):
        paths.append(os.path.join(root, "new", f"{i:05d}.png"))
        os.makedirs(os.path.dirname(paths[-1]), exist_ok=True)
        Image.fromarray(pixels[i][..., 0]).save(paths[-1])
    folder = os.path.join(root, "dense")
    predictor = prediction.open_run(folder)
    dlpipe, plain = best_of_two(
        lambda: prediction.predict_file(predictor, os.path.join(root, "new"), os.path.join(root, "a.csv"), Asked()),
        lambda: plain_images(os.path.join(folder, artifacts.MODEL), paths, os.path.join(root, "b.csv"),
                             predictor.label_names))
    return {"images": IMAGES, "dlpipe_images_per_second": IMAGES / dlpipe, "plain_images_per_second": IMAGES / plain,
            "dlpipe_over_plain_throughput": plain / dlpipe}


def run() -> dict:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        return {"table": table(a), "images": images(b)}


def rows(results: dict) -> list[tuple[str, str]]:
    t, i = results["table"], results["images"]
    return [("dlpipe-predict / a plain Keras script, throughput (100,000 CSV rows; 2,000 PNG files)",
             f"**{t['dlpipe_over_plain_throughput']:.2f}** ({t['dlpipe_rows_per_second']:,.0f} / "
             f"{t['plain_rows_per_second']:,.0f} rows/s); **{i['dlpipe_over_plain_throughput']:.2f}** "
             f"({i['dlpipe_images_per_second']:,.0f} / {i['plain_images_per_second']:,.0f} images/s)")]


if __name__ == "__main__":
    import json
    outcome = run()
    print(json.dumps(outcome, indent=2))
    print("\n".join(f"| {a} | {b} |" for a, b in rows(outcome)))
