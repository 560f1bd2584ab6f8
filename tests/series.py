"""Time series the tests make: a monthly seasonal series with a trend and noise, a random walk, several series
in one file, sequences whose class is their shape, and 1-NN's accuracy on sequences."""

import csv

import numpy as np


def seasonal(steps: int = 240, season: int = 12, seed: int = 0) -> np.ndarray:
    t = np.arange(steps)
    noise = np.random.default_rng(seed).normal(0, 3, steps)
    return 100 + 0.8 * t + 20 * np.sin(2 * np.pi * t / season) + noise


def random_walk(steps: int = 500, seed: int = 1) -> np.ndarray:
    return 100 + np.cumsum(np.random.default_rng(seed).normal(0, 1, steps))


def months(steps: int, start: str = "1949-01") -> list[str]:
    return [str(m) for m in np.arange(np.datetime64(start, "M"), np.datetime64(start, "M") + steps)]


def days(steps: int, start: str = "2020-01-01") -> list[str]:
    return [str(d) for d in np.arange(np.datetime64(start, "D"), np.datetime64(start, "D") + steps)]


def write(path, header: list[str], rows) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def monthly_csv(path, values, time_column: str = "month", label_column: str = "passengers") -> str:
    return write(path, [time_column, label_column], zip(months(len(values)), np.round(values, 3)))


def stores_csv(path, stores: int = 3, steps: int = 200) -> str:
    """Daily sales of several stores, a weekly season each, with a price covariate."""
    rng = np.random.default_rng(2)
    rows = []
    for s in range(stores):
        t = np.arange(steps)
        price = 2 + 0.5 * np.sin(t / 17 + s)
        units = 30 + 10 * s + 8 * np.sin(2 * np.pi * t / 7) - 4 * price + rng.normal(0, 1, steps)
        rows += [(d, f"store{s}", round(u, 3), round(p, 3)) for d, u, p in zip(days(steps), units, price)]
    return write(path, ["date", "store", "units", "price"], rows)


SHAPES = ("bump", "step", "dip")


def shapes(count: int, steps: int = 60, seed: int = 3) -> tuple[np.ndarray, list[str]]:
    """Series whose class is their shape (a bump, a step up, a dip) at a random place, on a random level, noisy."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    values, labels = [], []
    for i in range(count):
        kind, where = SHAPES[i % 3], rng.uniform(0.2, 0.8) * steps
        bump = np.exp(-0.5 * ((t - where) / 4) ** 2)
        shape = {"bump": bump, "step": (t > where).astype(float), "dip": -bump}[kind]
        values.append(rng.normal(5, 2) + 3 * shape + rng.normal(0, 0.3, steps))
        labels.append(kind)
    return np.array(values), labels


def wide_csv(path, count: int, steps: int = 60, seed: int = 3, header: bool = True, sep: str = ",") -> str:
    """One series per row: the label first, then its values (a header of t0, t1, … or none, as the UCR archive's
    .tsv files)."""
    values, labels = shapes(count, steps, seed)
    with open(path, "w") as f:
        if header:
            f.write(sep.join(["label"] + [f"t{i}" for i in range(steps)]) + "\n")
        for label, row in zip(labels, values):
            f.write(sep.join([label] + [f"{v:.4f}" for v in row]) + "\n")
    return str(path)


def long_csv(path, count: int, seed: int = 5, second_scale: float = 1.0) -> str:
    """Recordings of two channels and 40–60 steps, one row per step: the first channel's shape is the class, the
    second a random walk (times `second_scale`: a sensor in other units); ids and times as a logger writes them."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(count):
        steps = int(rng.integers(40, 61))
        values, labels = shapes(r % 3 + 1, steps, seed=seed * 1000 + r)  # the last one is of class r % 3
        drift = np.cumsum(rng.normal(0, 0.1, steps)) * second_scale
        second = [round(v, 4) if second_scale == 1 else float(f"{v:.4g}") for v in drift]  # 4 digits of each
        rows += [(f"rec{r:03d}", t, labels[-1], round(values[-1][t], 4), second[t]) for t in range(steps)]
    return write(path, ["recording", "t", "activity", "acc", "gyro"], rows)


def nearest_neighbour_accuracy(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                               each: bool = True) -> float:
    """1-NN's accuracy, computed here by brute force (every test series against every train series, Euclidean),
    each series first z-normalised by its own mean and deviation when `each`: what a baseline must report."""
    def scaled(x):
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return (x - x.mean(1, keepdims=True)) / np.maximum(x.std(1, keepdims=True), 1e-6) if each else x
    reference, queries = scaled(train[0]), scaled(test[0])
    distances = ((queries[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
    return float(np.mean(np.asarray(train[1])[distances.argmin(1)] == np.asarray(test[1])))
