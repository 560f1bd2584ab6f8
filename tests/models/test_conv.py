import numpy as np
import pytest

from models import BuildError
from models.conv import build_conv_classifier


def test_blocks_follow_conv_filters_and_shapes_follow_the_input():
    model = build_conv_classifier((32, 32, 3), 7, conv_filters=(8, 16, 32), dense_units=20, augment=False)
    convs = [layer for layer in model.layers if layer.name.endswith("_conv")]
    assert [layer.filters for layer in convs] == [8, 16, 32]
    assert model.get_layer("block2_pool").output.shape[1:] == (4, 4, 32)
    assert model.get_layer("dense").units == 20 and model.output_shape == (None, 7)
    assert model.input_shape == (None, 32, 32, 3)


def test_augmentation_acts_in_training_only():
    model = build_conv_classifier((28, 28, 1), 10, conv_filters=(4,), augment=True)
    assert {"random_flip", "random_translation"} <= {layer.name for layer in model.layers}
    x = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    augmented = model.get_layer("random_translation")(model.get_layer("rescale")(x), training=True)
    assert not np.allclose(augmented, model.get_layer("rescale")(x))


def test_without_augmentation_the_model_has_no_random_layers():
    model = build_conv_classifier((28, 28, 1), 10, augment=False)
    assert not [layer for layer in model.layers if layer.name.startswith("random_")]


def test_a_depth_the_image_cannot_take_names_the_argument_and_the_limit():
    build_conv_classifier((28, 28, 1), 10, conv_filters=(8,) * 4)  # 28 → 14 → 7 → 3 → 1
    with pytest.raises(BuildError, match="conv_filters: 5 blocks .* at most 4 widths"):
        build_conv_classifier((28, 28, 1), 10, conv_filters=(8,) * 5)
