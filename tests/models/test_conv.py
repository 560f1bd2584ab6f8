import numpy as np
import pytest

from models import BuildError
from models.conv import build_conv_classifier


def test_blocks_follow_conv_filters_and_shapes_follow_the_input():
    model = build_conv_classifier((32, 32, 3), 7, conv_filters=(8, 16, 32), dense_units=20)
    convs = [layer for layer in model.layers if layer.name.endswith("_conv")]
    assert [layer.filters for layer in convs] == [8, 16, 32]
    assert model.get_layer("block2_pool").output.shape[1:] == (4, 4, 32)
    assert model.get_layer("dense").units == 20 and model.output_shape == (None, 7)
    assert model.input_shape == (None, 32, 32, 3)


def test_each_block_pools_before_its_elementwise_work():
    model = build_conv_classifier((28, 28, 1), 10, conv_filters=(8, 16))
    names = [layer.name for layer in model.layers if layer.name.startswith("block0_")]
    assert names == ["block0_conv", "block0_pool", "block0_bn", "block0_relu"]
    assert model.get_layer("block0_bn").output.shape[1:] == (14, 14, 8)
    assert model.get_layer("block0_bn").momentum == 0.9


@pytest.mark.parametrize("augment, layers", [("none", set()), ("flip", {"random_flip"}),
                                             ("flip_translate", {"random_flip", "random_translation"})])
def test_augment_names_the_random_layers(augment, layers):
    model = build_conv_classifier((28, 28, 1), 10, conv_filters=(4,), augment=augment)
    assert {layer.name for layer in model.layers if layer.name.startswith("random_")} == layers


def test_an_unknown_augmentation_is_a_build_error():
    with pytest.raises(BuildError, match="augment: 'rotate' is not one of none, flip, flip_translate"):
        build_conv_classifier((28, 28, 1), 10, augment="rotate")


def test_augmentation_acts_in_training_only():
    model = build_conv_classifier((28, 28, 1), 10, conv_filters=(4,), augment="flip_translate")
    x = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    augmented = model.get_layer("random_translation")(model.get_layer("rescale")(x), training=True)
    assert not np.allclose(augmented, model.get_layer("rescale")(x))


def test_a_depth_the_image_cannot_take_names_the_argument_and_the_limit():
    build_conv_classifier((28, 28, 1), 10, conv_filters=(8,) * 4)  # 28 → 14 → 7 → 3 → 1
    with pytest.raises(BuildError, match="conv_filters: 5 blocks .* at most 4 widths"):
        build_conv_classifier((28, 28, 1), 10, conv_filters=(8,) * 5)
