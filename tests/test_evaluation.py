"""Evaluation a person can read, on cases small enough to check by hand."""

import numpy as np
import pytest
from PIL import Image

from pipelines import evaluation

NAMES = ("cat", "dog", "eel")
LABELS = np.array([0, 0, 1, 1, 2])
PREDICTED = np.array([0, 1, 1, 1, 0])


def test_confusion_matrix_counts_true_rows_by_predicted_columns():
    np.testing.assert_array_equal(evaluation.confusion_matrix(LABELS, PREDICTED, 3),
                                  [[1, 1, 0], [0, 2, 0], [1, 0, 0]])


def test_per_class_precision_recall_f1_and_support_by_name():
    rows = evaluation.per_class(evaluation.confusion_matrix(LABELS, PREDICTED, 3), NAMES)
    assert rows["cat"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert rows["dog"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    # Never predicted: precision 0 (no true positives), not a division by zero.
    assert rows["eel"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_pictures_are_png_files(tmp_path):
    counts = evaluation.confusion_matrix(LABELS, PREDICTED, 3)
    evaluation.plot_confusion_matrix(counts, NAMES, str(tmp_path / "confusion.png"))
    assert evaluation.plot_training_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "grad_norm": [2.0, 1.0]},
                                           str(tmp_path / "curves.png"))
    evaluation.plot_predictions(np.array([1.0, 2.0, 2.5]), np.array([1.0, 2.5, 2.0]), str(tmp_path / "pred.png"))
    for name in ("confusion.png", "curves.png", "pred.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 200


def test_no_history_draws_nothing(tmp_path):
    assert not evaluation.plot_training_curves({}, str(tmp_path / "curves.png"))
    assert not (tmp_path / "curves.png").exists()


def test_misclassified_shows_the_surest_errors_only(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(evaluation, "MISCLASSIFIED_SHOWN", 2)
    original = evaluation.plt.subplots

    def spy(*args, **kwargs):
        fig, axes = original(*args, **kwargs)
        shown.append(axes)
        return fig, axes
    monkeypatch.setattr(evaluation.plt, "subplots", spy)
    images = np.zeros((4, 8, 8, 1), np.float32)
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])  # 1, 2 and 3 are wrong
    labels = np.array([0, 0, 0, 0])
    assert evaluation.plot_misclassified(images, labels, probabilities, ("a", "b"), str(tmp_path / "m.png")) == 2
    captions = [text.get_text() for text in shown[0].texts]
    assert captions == ["true a\ncalled b 80%", "true a\ncalled b 70%"]  # surest first; the 60% one left out
    assert evaluation.plot_misclassified(images, labels, np.array([[1.0, 0.0]] * 4), ("a", "b"),
                                         str(tmp_path / "none.png")) == 0


def test_a_thousand_classes_draw_a_picture_of_bounded_size(tmp_path):
    """A label with 1,000 distinct values once drew a 110,400 × 55,200-pixel matrix (killed at 23 GB)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 1000, 5000)
    labels[:400] = 7  # the most frequent class is among those shown
    counts = evaluation.confusion_matrix(labels, rng.integers(0, 1000, 5000), 1000)
    shown = evaluation.pictured_classes(counts)
    assert len(shown) == evaluation.MAX_PICTURED_CLASSES and 7 in shown
    evaluation.plot_confusion_matrix(counts, tuple(f"c{i}" for i in range(1000)), str(tmp_path / "cm.png"))
    width, height = Image.open(tmp_path / "cm.png").size
    assert width < 5000 and height < 3000
    assert (evaluation.wilson_interval(0, 0), evaluation.wilson_interval(5, 5)[1]) == ((0.0, 1.0), 1.0)


def test_balanced_weights_make_every_class_weigh_the_same_and_an_absent_class_weighs_one():
    labels = np.array([0] * 90 + [1] * 10)
    weights = evaluation.balanced_weights(labels, 3)
    assert weights == pytest.approx({0: 100 / (2 * 90), 1: 100 / (2 * 10), 2: 1.0})
    assert weights[0] * 90 == pytest.approx(weights[1] * 10)  # each class's examples add up to the same


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_the_test_split_holds():
    counts = np.array([[90, 0, 0], [8, 2, 0], [0, 0, 0]])  # true class by row; class 2 never occurs
    assert evaluation.balanced_accuracy(counts) == pytest.approx((1.0 + 0.2) / 2)
