"""Convolutional classifier: Conv2D → BatchNorm → ReLU blocks with pooling, dropout, a dense head."""

from typing import Literal, Sequence, get_args

import keras
from keras import layers

from models import BN_MOMENTUM, BuildError
from models.sequence import Window

# Training-only augmentations: none; a random horizontal flip; the flip and a random shift of up to 10%.
Augment = Literal["none", "flip", "flip_translate"]  # its values are the --augment flag's
AUGMENTATIONS = get_args(Augment)
FEATURE_LAYER = "dense"  # the penultimate layer: what a model's features are read from (the GAN's measuring stick)


def build_conv_classifier(input_shape: Sequence[int], num_classes: int, *, conv_filters: Sequence[int] = (24, 48, 96),
                          dense_units: int = 128, dropout: float = 0.1, augment: Augment = "none",
                          series_scale: dict | None = None) -> keras.Model:
    """Raw pixels → [augment] → rescale → per width in conv_filters: 3×3 conv, max-pool, BN, ReLU → dense → logits.

    Pooling comes straight after the convolution: ReLU commutes with max-pooling, and BatchNormalization is
    monotonic in each channel, so the block computes nearly what conv-BN-ReLU-pool does, with its elementwise
    work on a quarter of the values, and trains markedly faster (docs/performance.md). `len(conv_filters)` is the
    depth in blocks.
    Augmentation layers (AUGMENTATIONS) are active only in training, so the same model serves inference unchanged.
    With `series_scale` (a time series): causal 1-D convolutions over the window's steps (series_body); a sequence
    to classify: the fully convolutional network (fcn_body).
    """
    if series_scale is not None:
        window = Window(input_shape, series_scale)
        body = fcn_body if window.classify else series_body
        x = body(window.relative, conv_filters=conv_filters, dense_units=dense_units, dropout=dropout)
        return window.output(x, num_classes, "conv_forecaster")
    side = min(input_shape[:2])
    if 2 ** len(conv_filters) > side:  # each block's pooling halves the image
        most = side.bit_length() - 1
        raise BuildError("conv_filters", f"{len(conv_filters)} blocks halve a {side}-pixel image to nothing; give "
                                         f"at most {most} widths")
    if augment not in AUGMENTATIONS:
        raise BuildError("augment", f"{augment!r} is not one of {', '.join(AUGMENTATIONS)}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if augment != "none":
        x = layers.RandomFlip("horizontal", name="random_flip")(x)
    if augment == "flip_translate":
        x = layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="random_translation")(x)
    for block, filters in enumerate(conv_filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(dense_units, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="conv_classifier")


def series_body(x, *, conv_filters: Sequence[int], dense_units: int, dropout: float):
    """Per width: a causal 3-step 1-D convolution (a step sees only itself and the steps before it), BN, ReLU; then
    the steps' features flattened into a dense layer."""
    for block, filters in enumerate(conv_filters):
        x = layers.Conv1D(filters, 3, padding="causal", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    x = layers.Dropout(dropout, name="dropout")(layers.Flatten(name="flatten")(x))
    return layers.Dense(dense_units, activation="relu", name=FEATURE_LAYER)(x)


FCN_KERNELS = (8, 5, 3)  # Wang et al. 2017's kernel sizes, block by block (a fourth block and on: 3)


def fcn_body(x, *, conv_filters: Sequence[int], dense_units: int, dropout: float):
    """The fully convolutional network of Wang et al. 2017 for sequences: per width, a 1-D convolution (kernel 8,
    5, 3), BN, ReLU; then the average over the steps. `dense_units` is unused: the logits read the pooled
    features (the series' class, wherever in it the shape lies)."""
    for block, filters in enumerate(conv_filters):
        kernel = FCN_KERNELS[block] if block < len(FCN_KERNELS) else FCN_KERNELS[-1]
        x = layers.Conv1D(filters, kernel, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
    x = layers.GlobalAveragePooling1D(name="average")(x)
    return layers.Dropout(dropout, name=FEATURE_LAYER)(x)
