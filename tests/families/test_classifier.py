import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.dense import build_dense_classifier
from pipelines.families import classifier
from pipelines.families.classifier import SmoothedSparseCrossentropy, compile_classifier
from tests import series as made
from tests.conftest import config_from_flags

LOGITS = np.array([[4.0, -1.0, 0.5], [0.2, 0.1, 3.0]], np.float32)
LABELS = np.array([0, 1])


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_smoothed_loss_is_categorical_crossentropy_on_smoothed_one_hot_targets(smoothing):
    expected = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)(
        np.eye(3)[LABELS], LOGITS)
    assert float(SmoothedSparseCrossentropy(smoothing)(LABELS, LOGITS)) == pytest.approx(float(expected), rel=1e-6)
    if smoothing == 0.0:
        plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, LOGITS)
        assert float(SmoothedSparseCrossentropy(0.0)(LABELS, LOGITS)) == pytest.approx(float(plain), rel=1e-6)


def test_smoothing_penalizes_overconfident_logits():
    confident = np.array([[20.0, 0.0, 0.0]], np.float32)
    moderate = np.array([[4.0, 0.0, 0.0]], np.float32)
    loss = SmoothedSparseCrossentropy(0.1)
    assert float(loss([0], moderate)) < float(loss([0], confident))  # plain cross-entropy prefers the larger logit


@pytest.mark.parametrize("flag, loss_type", [("--label_smoothing=0.2", SmoothedSparseCrossentropy),
                                             ("--label_smoothing=0", keras.losses.SparseCategoricalCrossentropy)])
def test_the_flag_sets_the_classifiers_loss(flag, loss_type):
    config = config_from_flags("--task=dense", flag)
    model = build_dense_classifier((4, 4, 1), 3, hidden_units=(8,))
    compile_classifier(model, config)
    assert isinstance(model.loss, loss_type)
    assert getattr(model.loss, "label_smoothing", 0.0) == config.label_smoothing


def test_a_model_compiled_with_the_smoothed_loss_saves_and_loads(tmp_path):
    model = build_dense_classifier((4, 4, 1), 3, hidden_units=(8,))
    compile_classifier(model, config_from_flags("--task=dense"))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, SmoothedSparseCrossentropy) and loaded.loss.label_smoothing == 0.1


def hard_shapes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shapes under heavy noise, each series at its own scale: 1-NN is right on some, and scaling matters."""
    values, labels = made.shapes(count, steps=40, seed=seed)
    rng = np.random.default_rng(seed)
    values = (values + rng.normal(0, 1.5, values.shape)) * rng.uniform(0.3, 3, (count, 1))
    return values[..., None].astype(np.float32), np.array([made.SHAPES.index(label) for label in labels])


@pytest.mark.parametrize("each", [True, False])
def test_the_sequence_baseline_is_1nn_on_the_train_series_scaled_as_the_model_scales(each, monkeypatch):
    train, test = hard_shapes(120, seed=1), hard_shapes(60, seed=2)
    inputs = types.SimpleNamespace(train=tf.data.Dataset.from_tensor_slices(train).batch(16),
                                   test=tf.data.Dataset.from_tensor_slices(test).batch(16))
    expected = made.nearest_neighbour_accuracy(train, test, each)
    assert 0.4 < expected < 0.9  # neither chance nor perfect: a wrong neighbour search scores otherwise
    assert expected != made.nearest_neighbour_accuracy(train, test, not each)
    assert classifier.nearest_neighbour_baseline(inputs, test[1], each) == {
        "baseline_1nn_accuracy": pytest.approx(expected), "baseline_rows": 120}
    monkeypatch.setattr(classifier, "NEIGHBOUR_ROWS", 30)  # a long train split: its first series only
    expected = made.nearest_neighbour_accuracy((train[0][:30], train[1][:30]), test, each)
    assert classifier.nearest_neighbour_baseline(inputs, test[1], each) == {
        "baseline_1nn_accuracy": pytest.approx(expected), "baseline_rows": 30}


def test_the_minirocket_baseline_fits_on_the_first_labelled_series_only(monkeypatch):
    """A ridge's leave-one-out fit grows with the square of its series: the baseline reads at most
    MINIROCKET_ROWS of them, the first of every labelled series (train, then validation), and is scored on the
    test split; a model that is MiniRocket gets none."""
    from models import rocket
    train, test = hard_shapes(60, seed=1), hard_shapes(30, seed=2)
    batches = lambda pair: tf.data.Dataset.from_tensor_slices(pair).batch(16)  # noqa: E731
    inputs = types.SimpleNamespace(labelled=lambda: batches(train), test=batches(test))
    scale = {"mean": [float(train[0].mean())], "std": [float(train[0].std())], "low": float(train[0].min()),
             "high": float(train[0].max()), "classify": True, "each": False}
    work = types.SimpleNamespace(inputs=inputs, data=types.SimpleNamespace(
        label_names=made.SHAPES, sequences=types.SimpleNamespace(scale=lambda: scale)))
    network = keras.Sequential([keras.Input((40, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    monkeypatch.setattr(classifier, "MINIROCKET_ROWS", 25)
    found = classifier.minirocket_baseline(network, work, test[1])
    reference = rocket.build_rocket_classifier((40, 1), 3, series_scale=scale)
    rocket.fit(reference, [(train[0][:25], train[1][:25])])
    expected = np.mean(reference.predict(test[0], verbose=0).argmax(-1) == test[1])
    assert found == {"baseline_minirocket_accuracy": pytest.approx(expected), "baseline_minirocket_rows": 25}
    assert classifier.minirocket_baseline(reference, work, test[1]) == {}


def test_the_scorer_counts_an_unlearned_label_as_an_error_in_its_accuracy_and_its_log_loss():
    """Three labelled rows (one of a class the model never learned, p = 1e-15) and one without a label: accuracy 1
    of 3, the log loss -(log 0.8 + log 0.3 + log 1e-15) / 3."""
    scorer = classifier.AccuracyScorer(["cat", "dog"])
    scorer.add(np.array([[0.8, 0.2], [0.7, 0.3], [0.5, 0.5], [0.1, 0.9]]), ["cat", "dog", None, "bird"])
    result = scorer.result()
    assert result["examples"] == 3 and result["accuracy"] == pytest.approx(1 / 3)
    assert result["log_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.3) + np.log(1e-15)) / 3)
    assert result["labels_not_learned"] == {"bird": 1} and "1 have a label the model never learned (bird)" in (
        scorer.line())
