"""The GAN on photos, judged outside the package (`python -m benchmarks.gan [--defaults_only] [FOLDER...]`; part of
`make bench`).

The pictures are crops of real photographs that ship inside wheels this project installs, pictures nobody here
drew: scikit-learn's two (a pagoda over a lake, an orange dahlia) and matplotlib's portrait of Grace Hopper, each
folder 800 square crops of random size (96 to 256 pixels) and place, brought to 64×64. dlpipe runs on a folder
with its defaults (`dlpipe --task=gan --dataset=pictures/ --image_size=64,64`) and again trained longer
(`--epochs=15`); `dlpipe-predict --num_samples` then draws from the shipped TFLite generator.

The judge is this file's own, not the package's: every picture area-averaged to 16×16 pixels (layout and colour,
what a person sees first), k-nearest-neighbour precision and recall (Kynkäänniemi et al. 2019, k = 3) of the
samples against the folder's pictures, and diversity (the samples' mean pairwise distance over the pictures'). New
crops of the same photographs, which the run never saw, are the ceiling. Results go to benchmarks/out/gan.json and
gan.md.
"""

import glob
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from benchmarks import config_of
from pipelines import artifacts, prediction, runner

OUT = os.path.join(os.path.dirname(__file__), "out")
SIDE, CROPS, JUDGED, NEIGHBOURS, JUDGE_SIDE = 64, 800, 224, 3, 16


def photos() -> dict[str, list[str]]:
    """Folder name → the photographs its crops are cut from."""
    import matplotlib
    import sklearn
    images = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    sample_data = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data")
    return {"pagoda_and_dahlia": [os.path.join(images, "china.jpg"), os.path.join(images, "flower.jpg")],
            "grace_hopper": [os.path.join(sample_data, "grace_hopper.jpg")]}


def crops(paths: list[str], count: int, seed: int) -> np.ndarray:
    """`count` square crops of random size and place, taken in turn from each photograph, at SIDE pixels."""
    rng, images, out = np.random.default_rng(seed), [Image.open(p).convert("RGB") for p in paths], []
    for i in range(count):
        image = images[i % len(images)]
        width, height = image.size
        side = int(rng.integers(96, min(256, width, height) + 1))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        out.append(np.asarray(image.crop((left, top, left + side, top + side)).resize((SIDE, SIDE), Image.LANCZOS)))
    return np.stack(out)


def small(pixels: np.ndarray) -> np.ndarray:
    """Pictures 0..255 → area-averaged to JUDGE_SIDE a side, 0..1, flattened."""
    return np.stack([np.asarray(Image.fromarray(p.astype(np.uint8)).resize((JUDGE_SIDE, JUDGE_SIDE), Image.BOX),
                                np.float64).reshape(-1) / 255.0 for p in pixels])


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip((a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None], 0, None))


def judge(real: np.ndarray, samples: np.ndarray, k: int = NEIGHBOURS) -> dict[str, float]:
    """Precision (the share of samples inside some picture's k-NN ball), recall (of pictures inside some sample's)
    and diversity (the samples' mean pairwise distance over the pictures'), at JUDGE_SIDE pixels."""
    r, s = small(real), small(samples)

    def radii(x):
        return np.sort(_distances(x, x), axis=1)[:, k]  # column 0 is the point itself

    def spread(x):
        return _distances(x, x).sum() / (len(x) * (len(x) - 1))
    across = _distances(s, r)
    return {"precision": float(np.mean((across <= radii(r)[None]).any(1))),
            "recall": float(np.mean((across.T <= radii(s)[None]).any(1))),
            "diversity": float(spread(s) / spread(r))}


def run(name: str, pictures: np.ndarray, work: str, *flags: str) -> dict:
    folder = os.path.join(work, name)
    if not os.path.isdir(folder):
        os.makedirs(folder)
        for i, picture in enumerate(pictures):
            Image.fromarray(picture).save(os.path.join(folder, f"{i:04d}.png"))
    output = os.path.join(work, "runs", name + "".join(f.replace("--", "_").replace("=", "") for f in flags))
    start = time.perf_counter()
    runner.run(config_of("--task=gan", f"--dataset={folder}", f"--image_size={SIDE},{SIDE}", f"--output_dir={output}",
                         *flags))
    minutes = (time.perf_counter() - start) / 60
    drawn = os.path.join(output, "drawn")
    predictor = prediction.open_run(os.path.join(output, "gan"), "model.tflite")
    prediction.write_samples(predictor, drawn, JUDGED, seed=11, class_name=None)
    samples = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(glob.glob(f"{drawn}/sample_*.png"))])
    metrics = artifacts.read_json(os.path.join(output, "gan", artifacts.METRICS))
    return {"folder": name, "flags": " ".join(flags) or "(defaults)", "minutes": round(minutes, 1),
            **judge(pictures, samples), "package_coverage": metrics.get("coverage", {}),
            "grid": os.path.join(drawn, "grid.png")}


def main(args: list[str]) -> list[dict]:
    """args: folder names (default: all), and `--defaults_only` to skip the longer run."""
    chosen = [a for a in args if not a.startswith("--")] or list(photos())
    runs = [[]] if "--defaults_only" in args else [[], ["--epochs=15"]]
    rows, work = [], os.environ.get("GAN_BENCH_DIR") or tempfile.mkdtemp(prefix="gan_bench_")
    for name in chosen:
        paths = photos()[name]
        pictures, unseen = crops(paths, CROPS, seed=0), crops(paths, JUDGED, seed=1)
        rows.append({"folder": name, "flags": "new crops of the same photos (the ceiling)", "minutes": 0.0,
                     **judge(pictures, unseen)})
        for flags in runs:
            rows.append(run(name, pictures, work, *flags))
            print(json.dumps(rows[-1]), flush=True)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "gan.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table = ["| pictures | run | precision | recall | diversity | minutes |", "|---|---|---|---|---|---|"]
    table += [f"| {r['folder']} | {r['flags']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['diversity']:.3f} | "
              f"{r['minutes']:.1f} |" for r in rows]
    with open(os.path.join(OUT, "gan.md"), "w") as f:
        f.write("\n".join(table) + "\n")
    print("\n".join(table))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
