"""Your data at its real size (`make bench`'s scale section; not run by CI).

1. Peak resident memory of `--task=conv --image_size=96,96 --epochs=1 --stages=train` on folders of 40 and of 400
   six-megapixel JPEG photos (two classes): bounded, not flat (docs/own-data.md has the figures by machine kind, and
   what grows with the photos).
2. The first pass over a folder of 2,000 JPEGs (1600×1200) at 96×96: files/s of the package's preparation (header
   scan, decode, resize, cache write) against one pass of `keras.utils.image_dataset_from_directory` over the same
   folder at the same size (decode and resize).
3. The bounded shuffle: the dense and conv defaults on Fashion-MNIST read from disk (--cache=disk: file order, a
   10,000-example buffer) against held in memory (shuffled whole): test accuracy, and the median epoch.

The photos are made from scikit-learn's two bundled sample photos, enlarged, cropped and noised, so each file is a
distinct photo-like JPEG of about a megabyte.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Runs the console script's entry and writes the process's peak resident memory (KiB) to argv[1] on the way out
# (tests/e2e/test_scale.py measures with it too).
PEAK_RSS = ("import atexit, resource, sys\n"
            "path = sys.argv[1]\n"
            "atexit.register(lambda: open(path, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
            "sys.argv = ['dlpipe'] + sys.argv[2:]\n"
            "from pipelines.__main__ import run\n"
            "run()\n")


def write_photos(root: str, count: int, size: tuple[int, int], seed: int = 0) -> None:
    """`count` JPEGs of `size` (W, H) in two class folders, each a random crop of an enlarged sample photo."""
    from sklearn.datasets import load_sample_images
    sources = [Image.fromarray(image) for image in load_sample_images().images]
    rng = np.random.default_rng(seed)
    for i in range(count):
        label = i % 2
        source = sources[label]
        scale = rng.uniform(1.05, 1.4) * max(size[0] / source.width, size[1] / source.height)
        big = source.resize((int(source.width * scale) + 1, int(source.height * scale) + 1), Image.Resampling.BILINEAR)
        left, top = rng.integers(0, big.width - size[0] + 1), rng.integers(0, big.height - size[1] + 1)
        crop = np.asarray(big.crop((left, top, left + size[0], top + size[1])), np.int16)
        noisy = np.clip(crop + rng.integers(-6, 7, crop.shape), 0, 255).astype(np.uint8)
        folder = os.path.join(root, f"class{label}")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(noisy).save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)


def peak_rss_mb(dataset: str, output_dir: str, *flags: str) -> float:
    with tempfile.NamedTemporaryFile() as rss:
        subprocess.run([sys.executable, "-c", PEAK_RSS, rss.name, f"--dataset={dataset}", "--task=conv",
                        "--image_size=96,96", "--epochs=1", "--stages=train", f"--output_dir={output_dir}", *flags],
                       cwd=ROOT, check=True, capture_output=True)
        return int(open(rss.name).read()) / 1024


def photos_memory() -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for count in (40, 400):
            folder = os.path.join(work, f"photos{count}")
            write_photos(folder, count, (3000, 2000))
            results[f"peak_rss_mb_{count}_photos"] = peak_rss_mb(folder, os.path.join(work, f"runs{count}"))
    results["extra_mb_for_10x_photos"] = results["peak_rss_mb_400_photos"] - results["peak_rss_mb_40_photos"]
    return results


def first_pass_speed(count: int = 2000) -> dict:
    import keras

    from pipelines.data import folders
    with tempfile.TemporaryDirectory() as work:
        folder = os.path.join(work, "photos")
        write_photos(folder, count, (1600, 1200), seed=1)
        start = time.perf_counter()
        folders.prepare(folder, test_split=0.2, image_size=(96, 96), color_mode="auto",
                        cache_dir=os.path.join(work, "cache"))
        ours = count / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in keras.utils.image_dataset_from_directory(folder, image_size=(96, 96), batch_size=64, shuffle=False,
                                                          verbose=False):
            pass
        theirs = count / (time.perf_counter() - start)
    return {"files": count, "prepare_files_per_second": ours, "keras_files_per_second": theirs,
            "prepare_over_keras_speed": ours / theirs}


def bounded_shuffle() -> dict:
    from pipelines import artifacts, runner
    from benchmarks import config_of as config_from_args
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for task in ("dense", "conv"):
            for cache in ("memory", "disk"):
                config = config_from_args(f"--task={task}", f"--cache={cache}", "--stages=train,evaluate",
                                          f"--output_dir={os.path.join(work, cache)}")
                runner.run(config)
                metrics = artifacts.read_json(os.path.join(config.task_dir, artifacts.METRICS))
                history = artifacts.read_json(os.path.join(config.task_dir, artifacts.HISTORY))
                results[f"{task}_{cache}"] = {"test_accuracy": metrics["test_accuracy"],
                                              "median_examples_per_second":
                                                  statistics.median(history["examples_per_second"][1:])}
            results[f"{task}_accuracy_change_points"] = 100 * (results[f"{task}_disk"]["test_accuracy"]
                                                               - results[f"{task}_memory"]["test_accuracy"])
            results[f"{task}_disk_over_memory_speed"] = (results[f"{task}_disk"]["median_examples_per_second"]
                                                         / results[f"{task}_memory"]["median_examples_per_second"])
    return results


def run() -> dict:
    return {"photos": photos_memory(), "first_pass": first_pass_speed(), "shuffle": bounded_shuffle()}


def rows(r: dict) -> list[tuple[str, str]]:
    p, f, s = r["photos"], r["first_pass"], r["shuffle"]
    return [
        ("conv --image_size=96,96 train: peak RSS on 40 / 400 six-megapixel photos",
         f"{p['peak_rss_mb_40_photos']:.0f} / {p['peak_rss_mb_400_photos']:.0f} MB "
         f"(**+{p['extra_mb_for_10x_photos']:.0f} MB** for ten times the photos)"),
        (f"first pass over {f['files']:,} JPEGs (1600×1200) to 96×96: the package's preparation / "
         "image_dataset_from_directory", f"{f['prepare_files_per_second']:.0f} / {f['keras_files_per_second']:.0f} "
         f"files/s = **{f['prepare_over_keras_speed']:.2f}×**"),
        ("Fashion-MNIST read from disk (bounded shuffle) against in memory: test accuracy change; epoch speed",
         "; ".join(f"{t} **{s[f'{t}_accuracy_change_points']:+.2f} points** "
                   f"({s[f'{t}_disk']['test_accuracy']:.4f} / {s[f'{t}_memory']['test_accuracy']:.4f}), "
                   f"{s[f'{t}_disk_over_memory_speed']:.2f}× the speed" for t in ("dense", "conv"))),
    ]
