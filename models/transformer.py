"""Transformer encoder classifier: a small Vision Transformer over image patches, or the same encoder over a text's
tokens.

    image → rescale → patches (a strided convolution: one linear map per patch) ─┐
    text → TextVectorization → token ids → embedding ───────────────────────────┴→ + learned positions
        → encoder layers (layer norm → multi-head self-attention → residual; layer norm → GELU MLP → residual)
        → layer norm → mean over positions → logits

Every op converts to TFLite builtins (attention's matrix products, layer norm's moments, GELU), so the mobile
export needs no Flex delegate, and to ONNX.
"""

from typing import Sequence

import keras
from keras import layers

from models import BuildError
from models.recurrent import TOKEN_CLASSIFIER
from models.sequence import Window


@keras.saving.register_keras_serializable(package="dlpipe")
def gelu(x):
    """GELU in its tanh form: TFLite's builtin GELU takes it, and so does ONNX (the exact form's erfc has no ONNX
    op in the opset tf2onnx targets, so onnxruntime refused the file)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="dlpipe")
class AddPositions(layers.Layer):
    """Adds a learned vector per position: attention itself does not know the order of what it reads."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=tuple(input_shape[1:]), name="positions",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        return x + self.positions


def _encoder(x, *, encoder_layers: int, attention_heads: int, model_width: int, dropout: float):
    for i in range(encoder_layers):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"encoder_{i}_norm_1")(x)
        h = layers.MultiHeadAttention(attention_heads, model_width // attention_heads, dropout=dropout,
                                      name=f"encoder_{i}_attention")(h, h)
        x = layers.Add(name=f"encoder_{i}_residual_1")([x, layers.Dropout(dropout, name=f"encoder_{i}_drop_1")(h)])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"encoder_{i}_norm_2")(x)
        h = layers.Dense(2 * model_width, activation=gelu, name=f"encoder_{i}_mlp_1")(h)
        h = layers.Dense(model_width, name=f"encoder_{i}_mlp_2")(h)
        x = layers.Add(name=f"encoder_{i}_residual_2")([x, layers.Dropout(dropout, name=f"encoder_{i}_drop_2")(h)])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    return layers.GlobalAveragePooling1D(name="pool")(x)


def build_transformer_classifier(input_shape: Sequence[int], num_classes: int, *, patch_size: int = 7,
                                 encoder_layers: int = 4, attention_heads: int = 4, model_width: int = 64,
                                 dropout: float = 0.1, vocabulary: Sequence[str] | None = None,
                                 sequence_length: int = 200, series_scale: dict | None = None) -> keras.Model:
    """Without `vocabulary`: raw pixels [H, W, C] in, cut into `patch_size` squares (a 28-pixel image in 7-pixel
    patches is a sequence of 16). With `vocabulary` (text): raw strings in; the `token_classifier` part (token
    ids → logits) is what ships to TFLite, with the vocabulary beside it, as for the recurrent task."""
    if model_width % attention_heads:
        raise BuildError(f"model_width={model_width}", f"it must divide among --attention_heads={attention_heads}")
    encoder = dict(encoder_layers=encoder_layers, attention_heads=attention_heads, model_width=model_width,
                   dropout=dropout)
    if series_scale is not None:  # each step of the window a token
        window = Window(input_shape, series_scale)
        x = layers.Dense(model_width, name="steps_in")(window.relative)
        return window.output(_encoder(AddPositions(name="positions")(x), **encoder), num_classes,
                             "transformer_forecaster")
    if vocabulary is None:
        height, width = input_shape[0], input_shape[1]
        if height % patch_size or width % patch_size:
            raise BuildError(f"patch_size={patch_size}", f"a {height}x{width} image does not divide into "
                             f"{patch_size}x{patch_size} patches: give a divisor of {height} and {width}")
        inputs = keras.Input(shape=tuple(input_shape), name="image")
        x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
        x = layers.Conv2D(model_width, patch_size, strides=patch_size, name="patches")(x)
        x = layers.Reshape(((height // patch_size) * (width // patch_size), model_width), name="sequence")(x)
        x = _encoder(AddPositions(name="positions")(x), **encoder)
        outputs = layers.Dense(num_classes, name="logits")(layers.Dropout(dropout, name="head_dropout")(x))
        return keras.Model(inputs, outputs, name="transformer_classifier")

    token_ids = keras.Input(shape=(sequence_length,), dtype="int64", name="token_ids")
    # +2: TextVectorization's padding (0) and out-of-vocabulary (1) ids come before the vocabulary.
    x = layers.Embedding(len(vocabulary) + 2, model_width, name="embedding")(token_ids)
    x = _encoder(AddPositions(name="positions")(x), **encoder)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(dropout, name="head_dropout")(x))
    token_classifier = keras.Model(token_ids, logits, name=TOKEN_CLASSIFIER)
    text = keras.Input(shape=(), dtype="string", name="text")
    vectorize = layers.TextVectorization(vocabulary=list(vocabulary), output_sequence_length=sequence_length,
                                         name="vectorize")
    return keras.Model(text, token_classifier(vectorize(text)), name="transformer_text_classifier")
