"""Serving: what of a trained model the export stage ships, and how verify feeds it."""

import dataclasses
from typing import Callable

import keras
import numpy as np

Batch = dict[str, np.ndarray]  # a batch of model inputs, keyed by input name


@dataclasses.dataclass(frozen=True)
class Serving:
    saved_model: keras.Model                   # served by the SavedModel's serving_default signature
    tflite: keras.Model                        # converted to model.tflite (the SavedModel's model, or a part of it)
    to_tflite_inputs: Callable[[Batch], Batch] = lambda batch: batch
    side_files: dict[str, str] = dataclasses.field(default_factory=dict)  # written beside model.tflite
    # Inputs for parity checks of a model that does not read the test split (a generator's noise); None means
    # verify uses test examples and also measures the TFLite file's accuracy.
    sample_inputs: Callable[[int], Batch] | None = None
    max_abs_diff: float = 1e-4                 # allowed difference of SavedModel and TFLite outputs from Keras
