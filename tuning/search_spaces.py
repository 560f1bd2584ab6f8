"""Each task's search space: a function from KerasTuner's `hp` to keyword arguments of the task's builder.

The builders in models/ are the one source of truth for the architecture; a space only says which values of
their arguments to try. `learning_rate` is searched for every task and is not a builder argument.
"""

import inspect
from typing import Any, Callable

import keras_tuner as kt

from models.recurrent import CELLS, build_recurrent_classifier

LEARNING_RATE = "learning_rate"


def dense(hp: kt.HyperParameters) -> dict[str, Any]:
    layers = hp.Int("hidden_layers", 1, 3)
    return {"hidden_units": tuple(hp.Int(f"hidden_units_{i}", 64, 512, step=64) for i in range(layers)),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1)}


def conv(hp: kt.HyperParameters) -> dict[str, Any]:
    blocks = hp.Int("conv_blocks", 2, 3)
    base = hp.Choice("conv_base_filters", [16, 32, 48])
    return {"conv_filters": tuple(base * 2 ** i for i in range(blocks)),
            "dense_units": hp.Choice("dense_units", [64, 128, 256]),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
            "augment": hp.Boolean("augment", default=False)}


def recurrent(hp: kt.HyperParameters) -> dict[str, Any]:
    return {"cell": hp.Choice("cell", list(CELLS), default=_builder_default(build_recurrent_classifier, "cell")),
            "rnn_units": hp.Choice("rnn_units", [32, 64, 128]),
            "rnn_layers": hp.Int("rnn_layers", 1, 2),
            "bidirectional": hp.Boolean("bidirectional", default=False),
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1)}


def gan(hp: kt.HyperParameters) -> dict[str, Any]:
    # Two stride-2 stages each: 28-pixel images need a side divisible by 2 ** depth.
    g_width = hp.Choice("generator_base_width", [32, 64, 128], default=64)
    d_width = hp.Choice("discriminator_base_width", [32, 64], default=64)
    return {"noise_dim": hp.Choice("noise_dim", [32, 64, 128], default=64),
            "generator_widths": (g_width, g_width // 2),
            "discriminator_widths": (d_width, 2 * d_width)}


SEARCH_SPACES: dict[str, Callable[[kt.HyperParameters], dict[str, Any]]] = {
    "dense": dense,
    "conv": conv,
    "recurrent": recurrent,
    "gan": gan,
}


def _builder_default(builder: Callable, name: str) -> Any:
    return inspect.signature(builder).parameters[name].default


def learning_rate(hp: kt.HyperParameters, default: float = 1e-3) -> float:
    """Searched for every task on a log scale; `default` (the task's own rate) is where Bayesian search starts."""
    return hp.Float(LEARNING_RATE, 1e-4, 1e-2, sampling="log", default=default)
