"""A KerasHub image backbone as a classifier: its preprocessing inside, batch norm and the lower layers frozen, and
FineTuneAdam's two phases."""

import os

import keras
import numpy as np
import pytest

from models import BuildError, backbones
from tests.conftest import write_image_preset


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset")
    write_image_preset(path, image_size=40)
    return str(path)


def test_the_model_takes_the_datas_pixels_and_resizes_them_as_the_preset_does(preset):
    model = backbones.build_preset_image_classifier((28, 28, 1), 4, preset=preset, augment="none")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 4)
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert backbone.input_shape[1:] == (None, None, 3) and [g.name for g in backbones.gates(model)] == [
        "fine_tune_gate"]
    frozen = [layer for layer in backbone.layers if layer.weights and not layer.trainable]
    assert all(not layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert frozen and any(layer.trainable for layer in backbone.layers if layer.weights)  # the top learns


def test_fine_tune_adam_leaves_the_backbone_while_frozen_and_steps_it_at_a_tenth_after(preset):
    model = backbones.build_preset_image_classifier((32, 32, 3), 3, preset=preset, augment="none")
    model.compile(optimizer=backbones.FineTuneAdam(1e-2).attach(model),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 3

    def snapshot():
        return [v.numpy().copy() for v in backbone.trainable_variables], model.get_layer("logits").get_weights()
    before, head_before = snapshot()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after, head_after = snapshot()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # frozen
    assert not np.array_equal(head_before[0], head_after[0])  # the head learns
    backbones.gates(model)[0].open.assign(1.0)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    moved, _ = snapshot()
    assert any(not np.array_equal(a, b) for a, b in zip(after, moved))


def test_a_keras_applications_weights_file_is_a_backbone_with_its_own_preprocessing(tmp_path):
    network = keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), include_top=False, weights=None,
                                                  minimalistic=True)
    path = str(tmp_path / "weights_mobilenet_v3_small_minimalistic_96_1.0_no_top.h5")
    network.save(path)  # Keras writes the legacy HDF5 layout keras.applications' files have
    model = backbones.build_preset_image_classifier((32, 32, 1), 2, preset=path, augment="none")
    backbone = next(layer for layer in model.layers if layer.name.startswith("MobileNetV3"))
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(backbone(pixels), network(pixels), atol=1e-5)  # the file's weights
    assert model.input_shape == (None, 32, 32, 1) and model.output_shape == (None, 2)
    renamed = tmp_path / "weights_mobilenet_v3_small_96_1.0_no_top.h5"  # says the full network, holds another
    os.rename(path, renamed)
    with pytest.raises(BuildError, match="give the network's no_top weights file"):
        backbones.load_application(str(renamed))
    with pytest.raises(BuildError, match="names none of the keras.applications networks"):
        backbones.load_application(str(tmp_path / "mystery.h5"))
