"""What classifier tasks (dense, conv, recurrent) share: compile, evaluation, and what they ship."""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from models.recurrent import TOKEN_CLASSIFIER
from pipelines.serving import Serving

if TYPE_CHECKING:
    from pipelines.config import RunConfig
    from pipelines.context import Context

VOCABULARY_FILE = "vocab.txt"


def compile_classifier(model: keras.Model, config: RunConfig) -> None:
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def evaluate_classifier(ctx: Context, model: keras.Model) -> dict:
    results = model.evaluate(ctx.inputs.test, verbose=0, return_dict=True)
    return {"test_loss": float(results["loss"]), "test_accuracy": float(results["accuracy"])}


def serve_classifier(model: keras.Model) -> Serving:
    """The whole model, except that a text model ships to TFLite from token ids (no string ops in TFLite).

    The app tokenizes with `vocab.txt` (line i is token id i; 0 is padding, 1 out-of-vocabulary), lowercasing and
    stripping punctuation as TextVectorization does, and pads or cuts to the model's sequence length.
    """
    if "vectorize" not in {layer.name for layer in model.layers}:
        return Serving(saved_model=model, tflite=model)
    vectorize = model.get_layer("vectorize")
    vocabulary = "\n".join(str(token) for token in vectorize.get_vocabulary()) + "\n"
    return Serving(saved_model=model, tflite=model.get_layer(TOKEN_CLASSIFIER),
                   to_tflite_inputs=lambda batch: {"token_ids": vectorize(batch["text"]).numpy()},
                   side_files={VOCABULARY_FILE: vocabulary})
