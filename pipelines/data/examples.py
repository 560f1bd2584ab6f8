"""How one example becomes (model input, label): each task names one of these (Task.to_example); the input
pipeline maps it over every split."""

import tensorflow as tf


def image_example(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Raw pixels as float32 [H, W, C]; the model rescales them itself. A time series' window as it is (every
    task that reads images reads a window of steps too)."""
    if "window" in features:
        return features["window"], features["label"]
    return tf.cast(features["image"], tf.float32), features["label"]


def flat_example(features: dict):
    """An image's pixels, or a table row's raw columns (the model encodes them itself)."""
    if "table" in features:
        return features["table"], features["label"]
    return image_example(features)


def sequence_example(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Text stays a string (the model vectorizes it); an image stays an image (the model reads its rows)."""
    if "text" in features:
        return features["text"], features["label"]
    return image_example(features)  # an image, or a series' window
