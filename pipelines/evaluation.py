"""Evaluation a person can read: per-class numbers, the confusion matrix, the worst errors, the training curves
and a regressor's predictions, as metrics and PNG files beside the model (the evaluate stage writes them)."""

import math

import matplotlib
import matplotlib.ticker
import numpy as np

from pipelines import artifacts

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

MISCLASSIFIED_SHOWN = 25  # the worst errors in misclassified.png: a 5 × 5 grid


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j]: test examples of class i the model called class j."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return counts


def balanced_accuracy(counts: np.ndarray) -> float:
    """The mean over the classes the test split holds of each one's recall (confusion matrix rows: true classes)."""
    totals = counts.sum(1)
    return float(np.mean(np.diag(counts)[totals > 0] / totals[totals > 0]))


def balanced_weights(labels: np.ndarray, classes: int) -> dict[int, float]:
    """Each class's weight n / (k × its count), over the k classes the labels hold (scikit-learn's "balanced"): the
    weighted examples of every class add up to the same. A class without examples weighs 1 (it never occurs)."""
    counts = np.bincount(labels, minlength=classes)
    present = int(np.count_nonzero(counts))
    return {c: float(len(labels) / (present * counts[c])) if counts[c] else 1.0 for c in range(classes)}


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% interval of a proportion measured as successes / trials (Wilson's score interval, sound at 0, 1 and
    on few trials): what an accuracy measured on 30 test examples can and cannot say."""
    if not trials:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def per_class(counts: np.ndarray, names: tuple[str, ...]) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class, keyed by its name; a class never predicted has
    precision 0 (no true positives), as scikit-learn's zero_division=0."""
    true_positives = np.diag(counts).astype(np.float64)
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    rows = {}
    for i, name in enumerate(names):
        precision = true_positives[i] / predicted[i] if predicted[i] else 0.0
        recall = true_positives[i] / support[i] if support[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support[i])}
    return rows


def _save(fig, path: str) -> None:
    with artifacts.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


MAX_PICTURED_CLASSES = 30  # a picture shows at most this many classes: the ones with the most test examples


def pictured_classes(counts: np.ndarray) -> np.ndarray:
    """The indices of the classes a picture shows: all, or the MAX_PICTURED_CLASSES with the most test examples
    (a 1,000-class matrix drawn whole would be 55,000 pixels wide)."""
    if len(counts) <= MAX_PICTURED_CLASSES:
        return np.arange(len(counts))
    return np.sort(np.argsort(-counts.sum(axis=1), kind="stable")[:MAX_PICTURED_CLASSES])


def plot_confusion_matrix(counts: np.ndarray, names: tuple[str, ...], path: str) -> None:
    """Counts beside the row-normalised matrix (each true class's share of each prediction: recall on the
    diagonal), one cell label each; of many classes, the most frequent (metrics.json holds the whole matrix)."""
    shown, total = pictured_classes(counts), len(counts)
    rows = (counts / np.maximum(counts.sum(axis=1, keepdims=True), 1))[np.ix_(shown, shown)]
    counts, names = counts[np.ix_(shown, shown)], [names[i] for i in shown]
    size = max(6.0, 0.55 * len(names) + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    of = f" ({len(shown)} of {total} classes: those with the most test examples)" if len(shown) < total else ""
    for ax, values, title, form in ((axes[0], counts, "counts", "{:d}"), (axes[1], rows, "share of the true class",
                                                                          "{:.2f}")):
        ax.imshow(values, cmap="Blues")
        ax.set(title=title + of, xlabel="predicted", ylabel="true", xticks=range(len(names)),
               yticks=range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right")
        ax.set_yticklabels(names)
        if len(names) <= 20:
            high = values.max() / 2
            for (i, j), value in np.ndenumerate(values):
                ax.text(j, i, form.format(value), ha="center", va="center", fontsize=7,
                        color="white" if value > high else "black")
    _save(fig, path)


def surest_errors(labels: np.ndarray, probabilities: np.ndarray, count: int) -> np.ndarray:
    """The indices of the (at most) `count` wrong predictions the model gave the highest probability, surest first."""
    predicted = probabilities.argmax(axis=-1)
    wrong = np.flatnonzero(predicted != labels)
    return wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:count]


def plot_misclassified(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                       names: tuple[str, ...], path: str) -> int:
    """The test errors the model was surest of, with their true and predicted names; returns how many."""
    predicted = probabilities.argmax(axis=-1)
    worst = surest_errors(labels, probabilities, MISCLASSIFIED_SHOWN)
    if not len(worst):
        return 0
    # One mosaic in one Axes, a caption under each tile: a grid of Axes costs a second of drawing per run.
    side = math.ceil(math.sqrt(len(worst)))
    height, width, channels = images.shape[1:]
    gap, caption = 2, max(height // 2, 12)
    mosaic = np.full((side * (height + caption + gap), side * (width + gap), channels), 255, np.uint8)
    fig, ax = plt.subplots(figsize=(2.2 * side, 2.4 * side))
    for k, i in enumerate(worst):
        top, left = (k // side) * (height + caption + gap), (k % side) * (width + gap)
        mosaic[top:top + height, left:left + width] = np.clip(images[i], 0, 255).astype(np.uint8)
        ax.text(left + width / 2, top + height + 1, f"true {names[labels[i]]}\ncalled {names[predicted[i]]} "
                f"{probabilities[i, predicted[i]]:.0%}", ha="center", va="top", fontsize=7)
    ax.imshow(mosaic.squeeze(-1) if channels == 1 else mosaic, cmap="gray" if channels == 1 else None,
              vmin=0, vmax=255)
    ax.axis("off")
    _save(fig, path)
    return len(worst)


def plot_training_curves(history: dict[str, list[float]], path: str) -> bool:
    """One panel per measure trained on (loss, accuracy, …), its train and validation curves per epoch, then the
    gradient norm and the speed (examples/s; GFLOP/s is the same curve scaled). False when there is nothing."""
    trained = [name for name in history if f"val_{name}" in history]
    others = [name for name in history if not name.startswith("val_") and name not in trained
              and name != "gflop_per_second"]
    measures = [name for name in sorted(trained, key=lambda n: n != "loss") + others if history[name]]
    if not measures:
        return False
    columns = min(3, len(measures))
    rows = math.ceil(len(measures) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, measures):
        ax.axis("on")
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="train")
        if history.get(f"val_{name}"):
            ax.plot(range(1, len(history[f"val_{name}"]) + 1), history[f"val_{name}"], marker="o",
                    label="validation")
            ax.legend(fontsize=8)
        ax.set(title=name, xlabel="epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_predictions(predicted: np.ndarray, actual: np.ndarray, path: str) -> None:
    """A regressor's predicted against true values (the diagonal is perfect), and its residuals against the
    prediction (a pattern there is what the model misses)."""
    predicted, actual = predicted.reshape(-1), actual.reshape(-1)
    fig, (scatter, residuals) = plt.subplots(1, 2, figsize=(10, 4.5))
    scatter.scatter(actual, predicted, s=6, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    scatter.plot([low, high], [low, high], color="gray", linewidth=1)
    scatter.set(title="predicted vs true", xlabel="true", ylabel="predicted")
    residuals.scatter(predicted, actual - predicted, s=6, alpha=0.5)
    residuals.axhline(0, color="gray", linewidth=1)
    residuals.set(title="residuals", xlabel="predicted", ylabel="true - predicted")
    _save(fig, path)
