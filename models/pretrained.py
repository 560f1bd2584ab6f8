"""A pretrained text encoder from KerasHub, fine-tuned as a classifier (`--init_from=<preset>`).

A preset brings an architecture, its trained weights and the tokenizer it was trained with: a handle that KerasHub
downloads (`bert_tiny_en_uncased`, `kaggle://keras/bert/keras/bert_tiny_en_uncased/2`, `hf://…`) or a folder that
`save_to_preset` wrote. The model keeps the shape of the package's other text models:

    text → PresetTokens (the preset's tokenizer and packer: [CLS] … [SEP], padded) → token ids
         → token_classifier: the preset's own TextClassifier (its backbone, its pooling, a head for our classes)

so the `token_classifier` part ships to TFLite and ONNX (builtin ops) with the preset's vocabulary packed beside
it, and the SavedModel takes strings. KerasHub (and tensorflow-text, whose ops its tokenizers run on) is imported
only when a preset is used or a model made from one is loaded.
"""

import hashlib
import os
import re
import zipfile
from typing import Any

import keras
from keras import layers

from models import BuildError
from models.recurrent import TOKEN_CLASSIFIER

# A handle KerasHub resolves: a preset name, or kaggle://, hf://, gs:// … followed by its path.
_HANDLE = re.compile(r"^([a-z0-9]+://)?[A-Za-z0-9_.\-/]+$")


def is_preset(init_from: str) -> bool:
    """--init_from names a KerasHub preset (or a keras.applications weights file, built as an image preset is:
    models/backbones.py) unless it is an earlier run's .keras or .weights.h5 file."""
    return not init_from.endswith((".keras", ".weights.h5"))


def preset_problem(init_from: str) -> str | None:
    """Why --init_from cannot name a preset, or None: a local path must be a preset folder (its config.json)."""
    if os.path.isfile(init_from):
        return None if init_from.endswith(".h5") else (
            f"{init_from} is neither a .keras, a .weights.h5 nor a keras.applications .h5 file")
    if os.path.isdir(init_from):
        return None if os.path.isfile(os.path.join(init_from, "config.json")) else (
            f"{init_from} is a folder without the config.json a KerasHub preset folder has")
    if os.sep in init_from and "://" not in init_from:
        return f"{init_from} does not exist"
    return None if _HANDLE.match(init_from) else f"{init_from!r} is not a KerasHub preset handle"


def preset_hash(init_from: str) -> str:
    """What a run started from a preset depends on, as a hash: a folder's contents are hashed by the caller; a
    handle stands for itself (a versioned Kaggle handle pins the weights; a bare name follows KerasHub's registry)."""
    return hashlib.sha256(f"keras_hub preset {init_from}".encode()).hexdigest()


def import_keras_hub():
    import keras_hub  # noqa: F401  (imports tensorflow_text, registering its ops, and KerasHub's classes)
    return keras_hub


def load_preset(preset: str, num_classes: int, sequence_length: int, dropout: float) -> tuple[Any, Any]:
    """The preset's TextClassifier for `num_classes` logits (no preprocessor attached) and its preprocessor packing
    up to `sequence_length` tokens, or a one-line BuildError: offline, KerasHub's download fails within a second."""
    keras_hub = import_keras_hub()
    try:
        classifier = keras_hub.models.TextClassifier.from_preset(
            preset, num_classes=num_classes, activation=None, preprocessor=None, dropout=dropout)
        limit = getattr(classifier.backbone, "max_sequence_length", None) or sequence_length
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            preset, sequence_length=min(sequence_length, limit))
    except Exception as e:  # requests' ConnectionError, KerasHub's ValueError for an unknown or non-text preset …
        raise failed_to_load(preset, e, "a text model with a TextClassifier") from None
    return classifier, preprocessor


def failed_to_load(preset: str, error: Exception, kind: str) -> BuildError:
    """The one line for a preset KerasHub could not load: why, and what a preset must be."""
    text = " ".join(str(error).split())
    return BuildError(f"init_from={preset}", f"the KerasHub preset did not load ({type(error).__name__}: "
                      f"{text[:160]}{'…' if len(text) > 160 else ''}); a preset name downloads on first use, so "
                      "this needs network access to Kaggle or Hugging Face, or a folder that save_to_preset wrote; "
                      f"it must be {kind}")


@keras.saving.register_keras_serializable(package="dlpipe")
class PresetTokens(layers.Layer):
    """Strings → the token ids a preset's encoder reads, by the preset's own tokenizer and packer (a KerasHub
    TextClassifierPreprocessor), as [batch, sequence_length] int32."""

    def __init__(self, preprocessor, **kwargs):
        super().__init__(**kwargs)
        self.preprocessor = preprocessor

    def build(self, input_shape):
        self.built = True  # a tokenizer and a packer: nothing to build

    def call(self, text):
        # The packer pads to the length, but its output's static shape leaves both dimensions open; known ones
        # let TensorFlow cost the encoder's matrix products (pipelines/flops.py).
        return keras.ops.reshape(self.preprocessor(text)["token_ids"],
                                 (keras.ops.shape(text)[0], self.preprocessor.sequence_length))

    def compute_output_spec(self, text):
        return keras.KerasTensor((text.shape[0], self.preprocessor.sequence_length), dtype="int32")

    @property
    def tokenizer(self):
        return self.preprocessor.tokenizer

    def vocabulary(self) -> list[str]:
        """Line i is token i: what an app tokenizing on its own looks ids up in."""
        return [str(token) for token in self.tokenizer.get_vocabulary()]

    def describe(self) -> str:
        """How an app turns text into these ids, for the model's metadata."""
        return (f"{type(self.tokenizer).__name__} of the KerasHub preset (lowercase: "
                f"{getattr(self.tokenizer, 'lowercase', 'as the preset')}), packed as the preset does "
                f"(a start and an end token, padded with id {self.pad_id}) to {self.preprocessor.sequence_length}")

    @property
    def pad_id(self) -> int:
        return int(getattr(self.tokenizer, "pad_token_id", 0) or 0)

    def get_config(self):
        return {**super().get_config(), "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)}

    @classmethod
    def from_config(cls, config):
        import_keras_hub()
        return cls(keras.saving.deserialize_keras_object(config.pop("preprocessor")), **config)


def build_preset_text_classifier(input_shape, num_classes: int, *, preset: str, sequence_length: int = 200,
                                 dropout: float = 0.1) -> keras.Model:
    """Raw strings → logits; the preset fixes the encoder (its depth, width, heads and vocabulary). `input_shape`
    is taken as every builder takes it: a string per example reads none."""
    classifier, preprocessor = load_preset(preset, num_classes, sequence_length, dropout)
    tokenize = PresetTokens(preprocessor, name="tokenize")
    token_ids = keras.Input(shape=(preprocessor.sequence_length,), dtype="int32", name="token_ids")
    # The encoder's other inputs follow from the ids: where the padding is, and one segment.
    derived = {"token_ids": token_ids, "padding_mask": keras.ops.not_equal(token_ids, tokenize.pad_id),
               "segment_ids": keras.ops.zeros_like(token_ids)}
    needed = list(classifier.backbone.input)
    if not isinstance(classifier.backbone.input, dict) or set(needed) - set(derived):
        raise BuildError(f"init_from={preset}", f"its encoder reads {needed}; a fine-tunable text encoder reads "
                         "token ids (and a padding mask, segment ids)")
    # The preset's TextClassifier as a plain functional model of the same layers: KerasHub's Task would carry its
    # own compile settings into every saved file.
    encoder = keras.Model(classifier.input, classifier.output, name="preset_classifier")
    token_classifier = keras.Model(token_ids, encoder({name: derived[name] for name in needed}), name=TOKEN_CLASSIFIER)
    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(text, token_classifier(tokenize(text)), name="pretrained_text_classifier")


def load_model(path: str) -> keras.Model:
    """keras.models.load_model, with KerasHub's classes registered first when the file holds a preset's model."""
    try:
        with zipfile.ZipFile(path) as archive:
            needs_hub = b'"keras_hub' in archive.read("config.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        needs_hub = False  # load_model says what is wrong with the file
    if needs_hub:
        import_keras_hub()
    return keras.models.load_model(path, compile=False)
