"""--init_from in process: a model.keras of another head loads layer by layer, a .weights.h5 loads by structure,
and a file that is neither is one line."""

import numpy as np
import pytest

from models.conv import build_conv_classifier
from pipelines.errors import PipelineError
from pipelines.initialization import initialize_by_layer as initialise_from

SMALL = dict(conv_filters=(8, 16), dense_units=16)


def test_a_model_for_other_classes_keeps_the_body_and_starts_a_fresh_head(tmp_path):
    source = build_conv_classifier((28, 28, 1), 10, **SMALL)
    source.save(tmp_path / "model.keras")
    target = build_conv_classifier((28, 28, 1), 3, **SMALL)
    message = initialise_from(target, str(tmp_path / "model.keras"))
    assert message.startswith("initialised 5 of 6 layers") and message.endswith("starting fresh: logits")
    for name in ("block0_conv", "block1_bn", "dense"):
        for got, expected in zip(target.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, expected)


def test_a_weights_file_loads_by_structure(tmp_path):
    source = build_conv_classifier((28, 28, 1), 10, **SMALL)
    source.save_weights(tmp_path / "model.weights.h5")
    target = build_conv_classifier((28, 28, 1), 10, **SMALL)
    assert "weights from" in initialise_from(target, str(tmp_path / "model.weights.h5"))
    for got, expected in zip(target.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_a_damaged_file_and_a_model_of_another_task_are_one_line(tmp_path):
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    target = build_conv_classifier((28, 28, 1), 10, **SMALL)
    with pytest.raises(PipelineError, match=r"cannot load --init_from=.*bad.keras \(.*\): give the model.keras"):
        initialise_from(target, str(tmp_path / "bad.keras"))
    from models.dense import build_dense_classifier
    other = build_dense_classifier((28, 28, 1), 10, hidden_units=(7,))
    other.save(tmp_path / "dense.keras")
    with pytest.raises(PipelineError, match="no layer of .* fits the conv_classifier model"):
        initialise_from(target, str(tmp_path / "dense.keras"))
