"""Run in aeon's venv (`make aeon`) by benchmarks/sequences.py, never imported by dlpipe: writes each UCR/UEA set
that ships in aeon's wheel as the files a user gives dlpipe (a wide header-less TSV, label first; a long CSV for a
multivariate set or one of series of different lengths), and scores aeon's MiniRocket and 1-NN (Euclidean) on its
official split, with the seconds MiniRocket takes to fit and predict (after a first fit that compiles numba's code).
aeon's MiniRocket takes series of one length: those of a variable-length set are padded to the longest of both
files with their last step, as dlpipe's networks read them (dlpipe's rocket computes on each one-channel series'
own steps instead). Prints one JSON object."""

import json
import sys
import time

import numpy as np
from aeon.classification.convolution_based import MiniRocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_classification

SETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "OSULeaf", "ACSF1", "BasicMotions", "JapaneseVowels",
        "PickupGestureWiimoteZ")


def write(folder: str, name: str, split: str, x, y: np.ndarray) -> str:
    """A univariate set of one length as the archive's wide TSV, any other as a long CSV (x: [n, channels, steps], or
    a list of [channels, steps] series of different lengths)."""
    if not isinstance(x, list) and x.shape[1] == 1:
        path = f"{folder}/{name}_{split}.tsv"
        with open(path, "w") as f:
            for label, series in zip(y, x[:, 0]):
                f.write(f"{label}\t" + "\t".join(f"{v:.7g}" for v in series) + "\n")
        return path
    path = f"{folder}/{name}_{split}.csv"
    with open(path, "w") as f:
        f.write("id,t,label," + ",".join(f"c{c}" for c in range(x[0].shape[0])) + "\n")
        for i, (label, series) in enumerate(zip(y, x)):
            for t in range(series.shape[-1]):
                f.write(f"{i},{t},{label}," + ",".join(f"{v:.7g}" for v in series[:, t]) + "\n")
    return path


def one_length(x_train, x_test):
    """Series of different lengths (lists) padded at their end with their last step to the longest of both."""
    if not isinstance(x_train, list):
        return x_train, x_test
    steps = max(x.shape[-1] for x in x_train + x_test)

    def padded(series):
        return np.stack([np.concatenate([x, np.repeat(x[:, -1:], steps - x.shape[-1], axis=1)], axis=1)
                         for x in series])
    return padded(x_train), padded(x_test)


def main(folder: str) -> None:
    found = {}
    for name in SETS:
        x_train, y_train = load_classification(name, split="train")
        x_test, y_test = load_classification(name, split="test")
        files = {split: write(folder, name, split, x, y)
                 for split, x, y in (("TRAIN", x_train, y_train), ("TEST", x_test, y_test))}
        x_train, x_test = one_length(x_train, x_test)
        MiniRocketClassifier(random_state=0, n_jobs=1).fit(x_train, y_train)  # numba compiles once
        start = time.perf_counter()
        accuracy = float(np.mean(MiniRocketClassifier(random_state=0, n_jobs=1).fit(x_train, y_train)
                                 .predict(x_test) == y_test))
        seconds = time.perf_counter() - start
        neighbour = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="euclidean").fit(x_train, y_train)
        found[name] = {"files": files, "channels": int(x_train.shape[1]), "steps": int(x_train.shape[2]),
                       "train": len(y_train), "test": len(y_test), "minirocket": accuracy,
                       "minirocket_seconds": seconds,
                       "one_nn": float(np.mean(neighbour.predict(x_test) == y_test))}
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1])
