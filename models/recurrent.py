"""Recurrent classifier over sequences: image rows (28 steps × 28 features) or text (token ids from a vocabulary).

Every recurrent layer is unrolled over a fixed sequence length. A Keras 3 LSTM exported to TFLite otherwise
keeps a TensorList loop (`FlexTensorListReserve`), a Flex op the LiteRT interpreter cannot run; unrolled, the
layer converts to builtin ops only. The same holds for SimpleRNN and GRU, so all three are unrolled.
"""

from typing import Literal, Sequence, get_args

import keras
from keras import layers

from models.sequence import Window

Cell = Literal["simple_rnn", "lstm", "gru"]  # its values are the --cell flag's
CELLS = dict(zip(get_args(Cell), (layers.SimpleRNN, layers.LSTM, layers.GRU)))
TOKEN_CLASSIFIER = "token_classifier"  # the text model's part from token ids, which is what ships to TFLite


def _recurrent_stack(x, *, cell: str, units: int, num_layers: int, bidirectional: bool, dropout: float):
    for i in range(num_layers):
        last = i == num_layers - 1
        layer = CELLS[cell](units, return_sequences=not last, unroll=True, name=f"{cell}_{i}")
        if bidirectional:
            layer = layers.Bidirectional(layer, name=f"bidirectional_{i}")
        x = layer(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def build_recurrent_classifier(input_shape: Sequence[int], num_classes: int, *, cell: Cell = "gru",
                               rnn_units: int = 128, rnn_layers: int = 1, bidirectional: bool = False,
                               dropout: float = 0.0, vocabulary: Sequence[str] | None = None,
                               sequence_length: int = 200, embedding_dim: int = 64,
                               series_scale: dict | None = None) -> keras.Model:
    """Without `vocabulary`: raw pixels [H, W, C] → H steps of W × C values (its rows) → rescale → recurrent
    layers → logits.

    With `vocabulary` (text): raw strings → TextVectorization(vocabulary, `sequence_length` tokens) → the
    `token_classifier` model (token ids → embedding → recurrent layers → logits). TFLite has no string ops for
    TextVectorization, so the mobile export is `token_classifier` with the vocabulary shipped beside it.

    With `series_scale` (a time series, models/sequence.py): the window's steps → recurrent layers → the next
    `num_classes` values: the lessons' RNN-then-linear forecaster.

    GRU by default: on Fashion-MNIST's rows it is the more accurate cell and its quantized exports agree with Keras
    more often than the LSTM's (docs/tasks.md).
    """
    stack = dict(cell=cell, units=rnn_units, num_layers=rnn_layers, bidirectional=bidirectional, dropout=dropout)
    if series_scale is not None:
        window = Window(input_shape, series_scale)
        return window.output(_recurrent_stack(window.relative, **stack), num_classes, f"{cell}_forecaster")
    if vocabulary is None:
        inputs = keras.Input(shape=tuple(input_shape), name="image")
        height, width, channels = input_shape
        x = layers.Reshape((height, width * channels), name="rows")(inputs)
        x = layers.Rescaling(1.0 / 255, name="rescale")(x)
        x = _recurrent_stack(x, **stack)
        outputs = layers.Dense(num_classes, name="logits")(x)
        return keras.Model(inputs, outputs, name=f"{cell}_classifier")

    token_ids = keras.Input(shape=(sequence_length,), dtype="int64", name="token_ids")
    # +2: TextVectorization's padding (0) and out-of-vocabulary (1) ids come before the vocabulary.
    x = layers.Embedding(len(vocabulary) + 2, embedding_dim, name="embedding")(token_ids)
    x = _recurrent_stack(x, **stack)
    token_classifier = keras.Model(token_ids, layers.Dense(num_classes, name="logits")(x), name=TOKEN_CLASSIFIER)

    text = keras.Input(shape=(), dtype="string", name="text")
    vectorize = layers.TextVectorization(vocabulary=list(vocabulary), output_sequence_length=sequence_length,
                                         name="vectorize")
    return keras.Model(text, token_classifier(vectorize(text)), name=f"{cell}_text_classifier")


def adapt_vocabulary(texts, max_tokens: int = 20000) -> tuple[str, ...]:
    """The vocabulary of the training texts, most frequent first, without the padding and OOV entries."""
    vectorize = layers.TextVectorization(max_tokens=max_tokens)
    vectorize.adapt(texts)
    return tuple(vectorize.get_vocabulary()[2:])
