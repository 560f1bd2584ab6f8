"""The Shipment: what of a trained model the export stage ships, within which limits, and how verify feeds it
(each family makes its own: Family.ship). And the wrappers that make a model take what a camera gives."""

import dataclasses
from typing import Callable

import keras
import numpy as np
from keras import layers, ops

from pipelines.metadata import TensorInfo

Batch = dict[str, np.ndarray]  # a batch of model inputs, keyed by input name


def unchanged(batch: Batch) -> Batch:
    return batch


def as_batch(model: keras.Model, x) -> Batch:
    """The pipeline's inputs `x` keyed by the model's input names: a table's columns already are."""
    return dict(x) if isinstance(x, dict) else {model.inputs[0].name: x}


@dataclasses.dataclass(frozen=True)
class Shipment:
    # Served by the SavedModel's serving_default signature and converted to the float TFLite variants
    # (float32, dynamic_range, float16).
    model: keras.Model
    # Converted to the int8 variant: full-integer quantization calibrates float inputs, so this is the model
    # before any uint8 input cast; its float inputs become int8 with the scale and zero point in the file.
    quantizable: keras.Model
    # The Keras reference every export is compared with, fed the pipeline's own input batches.
    reference: keras.Model
    # The reference's outputs as every TFLite file gives them: a classifier's files output probabilities, which
    # an app reads as scores (MediaPipe's score_threshold) and which int8 quantizes well (see with_probabilities).
    to_tflite_outputs: Callable[[np.ndarray], np.ndarray] = lambda outputs: outputs
    # A part of `model` that ships to TFLite instead of all of it (text: from token ids), or None.
    tflite_model: keras.Model | None = None
    # The pipeline's input batch → the inputs of `model`, of the float TFLite variants, of the int8 variant.
    to_model_inputs: Callable[[Batch], Batch] = unchanged
    to_tflite_inputs: Callable[[Batch], Batch] = unchanged
    to_quantizable_inputs: Callable[[Batch], Batch] = unchanged
    side_files: dict[str, str] = dataclasses.field(default_factory=dict)  # written beside the TFLite files
    # Inputs for a model that does not read examples (a generator's noise): (count, seed=7, label=None) -> Batch,
    # for verify's parity checks and dlpipe-predict's samples (label: one class, for a conditional generator).
    # None means verify uses test examples and also measures each TFLite file's accuracy.
    sample_inputs: Callable[..., Batch] | None = None
    # What each export must meet against `reference`: variant → (measure, bound). "savedmodel" is the SavedModel.
    limits: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    # A TFLite file's outputs → the reference's (a regressor's standardised value → the label's units).
    from_tflite_outputs: Callable[[np.ndarray], np.ndarray] = unchanged
    # Whether the outputs score classes (top-1 agreement and accuracy on the test split); a regressor's are values.
    classes: bool = True
    # What the TFLite files' inputs and outputs hold, by name, for their metadata (pipelines/metadata).
    tensors: dict[str, TensorInfo] = dataclasses.field(default_factory=dict)
    # The int8 file's input and output types: int8, or uint8 where an app feeds or shows bytes (pixels).
    int8_input: str = "int8"
    int8_output: str = "int8"
    # The calibration batch (train examples) → what the quantized files calibrate on: the inputs whose range
    # every input an app feeds must fall in (a classifier adds a black and a white frame, so its uint8 input reads
    # raw bytes; a forecaster adds its windows shifted up and down, so a level beyond the train period's fits).
    widen_calibration: Callable[[Batch], Batch] = unchanged
    # The run's artifacts beside the model that it was made from (a forecaster's metrics.json, whose intervals its
    # files carry): export records them among its inputs, so that a new evaluation makes its files stale.
    made_from: tuple[str, ...] = ()

    @property
    def packed_files(self) -> list[str]:
        """The side files the TFLite files carry inside (labels.txt, vocab.txt), by name: those `tensors` name."""
        return sorted({name for tensor in self.tensors.values() for name, _ in tensor.files})


def with_full_pixel_range(batch: Batch) -> Batch:
    """The batch with a black and a white image first: an int8 file calibrated on it reads raw bytes (scale 1, zero
    point 0) whatever the train split's brightest and darkest pixels."""
    return {name: np.concatenate([np.zeros_like(x[:1]), np.full_like(x[:1], 255), x]) for name, x in batch.items()}


def with_range(low: float, high: float) -> Callable[[Batch], Batch]:
    """The batch with one example first whose values span [low, high] exactly (a series' first two values; the rest
    0): an int8 file calibrated on it takes inputs on the lattice a model computes on (models/rocket.py)."""
    def widened(batch: Batch) -> Batch:
        found = {}
        for name, x in batch.items():
            edge = np.zeros_like(x[:1])
            edge.reshape(-1)[:2] = low, high
            found[name] = np.concatenate([edge, x])
        return found
    return widened


def with_probabilities(model: keras.Model) -> keras.Model:
    """`model` ending in a softmax named `probabilities`: what a classifier's TFLite files output.

    Quantized to int8, logits spanning tens of units keep a resolution of about a third of a unit, so close
    classes tie at the top (docs/shipping.md has how often).
    Probabilities quantize with a fixed 1/256 resolution, which separates them.
    """
    probabilities = layers.Softmax(name="probabilities")(model.outputs[0])
    return keras.Model(model.inputs, probabilities, name=f"{model.name}_probabilities")


def for_int8(model: keras.Model) -> keras.Model:
    """`model` as its int8 file computes it: each layer that says how it differs there (`int8_config()`, a change to
    its config) rebuilt with that change and its weights kept; a model without such a layer is itself."""
    if not any(hasattr(layer, "int8_config") for layer in model.layers):
        return model

    def rebuilt(layer):
        config = {**layer.get_config(), **(layer.int8_config() if hasattr(layer, "int8_config") else {})}
        return layer.__class__.from_config(config)
    copy = keras.models.clone_model(model, clone_function=rebuilt)
    copy.set_weights(model.get_weights())
    return copy


# ITU-R BT.601 luma, as Pillow's convert("L") computes it: how a folder's colour files become a grayscale data
# set's training images (pipelines/data/folders.py), so a camera frame reaches a grayscale model the same way.
LUMA = (0.299, 0.587, 0.114)


def _taking_pixels(model: keras.Model, channels: int, dtype: str, suffix: str) -> keras.Model:
    """`model` behind a new pixel input with `channels` channels of `dtype`, cast to float32 (the model rescales
    itself); three channels reach a grayscale model as their luma. Inputs and outputs keep their names, which
    become the serving signature's keys."""
    (inp,) = model.inputs
    pixels = keras.Input(shape=(*inp.shape[1:-1], channels), dtype=dtype, name=inp.name)
    x = ops.cast(pixels, "float32")
    if channels == 3 and inp.shape[-1] == 1:
        x = ops.sum(x * np.asarray(LUMA, np.float32), axis=-1, keepdims=True)
    (output_name,) = model.output_names
    return keras.Model(pixels, layers.Identity(name=output_name)(model(x)), name=f"{model.name}_{suffix}")


def with_uint8_pixels(model: keras.Model) -> keras.Model:
    """`model` taking uint8 pixels in its own channels, as the SavedModel serves it."""
    return _taking_pixels(model, model.inputs[0].shape[-1], "uint8", "uint8")


def with_rgb_pixels(model: keras.Model, dtype: str = "uint8") -> keras.Model:
    """`model` taking RGB pixels (H×W×3) as a camera gives them: uint8 for the float TFLite files, float 0–255
    for the model the int8 file is calibrated from. A grayscale model sees their luma; an RGB one, them."""
    return _taking_pixels(model, 3, dtype, "rgb")


def as_rgb(batch: Batch, dtype=np.uint8) -> Batch:
    """A batch of images (H×W×1 or H×W×3, 0–255) as RGB: a gray pixel's three channels are equal."""
    return {name: np.repeat(x, 3 // x.shape[-1], axis=-1).astype(dtype) for name, x in batch.items()}
