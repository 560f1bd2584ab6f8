"""Verify's judgement: agreement limits that mean the same on 150 inputs as on 10,000, an undertrained model's
exports judged on the examples it is clear about, and the judged inputs topped up from the validation and train
splits when the test split is small."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.data.pipeline import make_input_pipeline
from pipelines.stages.verify import (PARITY_EXAMPLES, UNDERTRAINED_CLEAR_FRACTION, Reference, allowed_misses, judge,
                                     judged_batches, passes)
from tests.conftest import make_image_dataset


def image_model() -> keras.Model:
    image = keras.Input((28, 28, 1), name="image")
    return keras.Model(image, keras.layers.Identity()(image))


def pipeline(num_train: int, num_test: int, batch_size: int):
    return make_input_pipeline(make_image_dataset(num_train, num_test),
                               lambda f: (tf.cast(f["image"], tf.float32), f["label"]), batch_size=batch_size,
                               seed=0, validation_split=0.1)


@pytest.mark.parametrize("examples, misses", [(20, 1), (100, 3), (150, 4), (1024, 16), (10_000, 117)])
def test_a_99_percent_limit_allows_what_chance_gives_a_file_at_the_limit(examples, misses):
    assert allowed_misses(examples, 0.99) == misses


def test_agreement_passes_within_the_allowance_and_fails_past_it():
    limit = ("top1_agreement", 0.99)
    assert passes({"top1_agreement": 146 / 150, "agreement_examples": 150}, limit)      # 4 misses
    assert not passes({"top1_agreement": 145 / 150, "agreement_examples": 150}, limit)  # 5
    assert passes({"max_abs_diff": 1e-5}, ("max_abs_diff", 1e-4))
    assert not passes({"max_abs_diff": 1e-3}, ("max_abs_diff", 1e-4))


def clear_about(fraction: float, examples: int = 1000) -> Reference:
    """A classifier's reference that leads clearly on `fraction` of its judged examples."""
    clear = np.arange(examples) < round(fraction * examples)
    return Reference(parity={}, outputs=np.zeros((examples, 2)), batches=[], clear=clear)


def agreeing(on_all: float, on_clear: float, examples: int = 1000) -> dict:
    return {"top1_agreement": on_all, "agreement_examples": examples, "top1_agreement_clear": on_clear}


def test_an_undertrained_models_export_is_judged_on_the_examples_it_is_clear_about():
    limit = ("top1_agreement", 0.99)
    unsure = clear_about(UNDERTRAINED_CLEAR_FRACTION - 0.2)
    row = agreeing(on_all=0.95, on_clear=1.0)  # its misses are all near-ties
    judge(row, limit, unsure, None)
    assert row["passed"] and row["judged_on"] == "clear examples: the model is undertrained"
    row = agreeing(on_all=0.95, on_clear=0.97)  # it misses clear examples too: a broken export
    judge(row, limit, unsure, None)
    assert not row["passed"] and "judged_on" in row


def test_a_trained_models_export_is_judged_on_every_example_and_one_within_its_limit_is_never_rejudged():
    limit = ("top1_agreement", 0.99)
    row = agreeing(on_all=0.95, on_clear=1.0)
    judge(row, limit, clear_about(UNDERTRAINED_CLEAR_FRACTION), None)
    assert not row["passed"] and "judged_on" not in row
    row = agreeing(on_all=0.995, on_clear=0.99)
    judge(row, limit, clear_about(0.3), None)
    assert row["passed"] and "judged_on" not in row
    row = agreeing(on_all=0.995, on_clear=1.0)
    judge(row, limit, clear_about(0.3), "no labels file packed in")  # bad metadata fails whatever the agreement
    assert not row["passed"] and row["metadata"] == "no labels file packed in"


def test_a_small_test_split_is_topped_up_with_unlabelled_validation_and_train_inputs():
    inputs = pipeline(num_train=200, num_test=30, batch_size=16)
    batches, labels = judged_batches(image_model(), inputs)
    judged = np.concatenate([b["image"] for b in batches])
    assert len(labels) == 30 and len(judged) == 230  # every input there is, test first
    test = np.concatenate([x for x, _ in inputs.test.as_numpy_iterator()])
    np.testing.assert_array_equal(judged[:30], test)


def test_a_large_test_split_is_judged_alone_up_to_the_parity_batch():
    batches, labels = judged_batches(image_model(), pipeline(num_train=100, num_test=PARITY_EXAMPLES + 40,
                                                             batch_size=64))
    assert len(labels) == PARITY_EXAMPLES + 40 == sum(len(b["image"]) for b in batches)
