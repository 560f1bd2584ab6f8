"""Each task's search space: a function from KerasTuner's `hp` to how each of the task's builder arguments is
sampled (a function per argument, so an argument the user fixed on the command line is never sampled: its
hyperparameters do not enter the space, and trials that differ only in them cannot repeat one model).

The builders in models/ are the one source of truth for the architecture; a space only says which values of
their arguments to try, and each value's default is the builder's own, so the unflagged model is a point of
every space. `learning_rate` is searched for every task and is not a builder argument. Each task's record
(pipelines/tasks.py) names its space.
"""

import inspect
from typing import Any, Callable

import keras_tuner as kt

from models.conv import AUGMENTATIONS, build_conv_classifier
from models.dense import build_dense_classifier
from models.gan import build_gan
from models.recurrent import CELLS, build_recurrent_classifier
from models.transformer import build_transformer_classifier

LEARNING_RATE = "learning_rate"
Sampler = Callable[[], Any]  # draws one builder argument's value from `hp`
Space = Callable[[kt.HyperParameters], dict[str, Sampler]]  # a task's search space (Task.search_space)


def dense(hp: kt.HyperParameters) -> dict[str, Sampler]:
    default = _builder_defaults(build_dense_classifier)

    def hidden_units():
        layers = hp.Int("hidden_layers", 1, 3, default=len(default["hidden_units"]))
        width = default["hidden_units"][0]
        return tuple(hp.Int(f"hidden_units_{i}", 64, 512, step=64, default=width) for i in range(layers))
    return {"hidden_units": hidden_units,
            "dropout": lambda: hp.Float("dropout", 0.0, 0.5, step=0.1, default=default["dropout"])}


def conv(hp: kt.HyperParameters) -> dict[str, Sampler]:
    default = _builder_defaults(build_conv_classifier)

    def conv_filters():
        blocks = hp.Int("conv_blocks", 2, 3, default=len(default["conv_filters"]))
        base = hp.Choice("conv_base_filters", [16, 24, 32, 48], default=default["conv_filters"][0])
        return tuple(base * 2 ** i for i in range(blocks))
    return {"conv_filters": conv_filters,
            "dense_units": lambda: hp.Choice("dense_units", [64, 128, 256], default=default["dense_units"]),
            "dropout": lambda: hp.Float("dropout", 0.0, 0.5, step=0.1, default=default["dropout"]),
            "augment": lambda: hp.Choice("augment", list(AUGMENTATIONS), default=default["augment"])}


def recurrent(hp: kt.HyperParameters) -> dict[str, Sampler]:
    default = _builder_defaults(build_recurrent_classifier)
    return {"cell": lambda: hp.Choice("cell", list(CELLS), default=default["cell"]),
            "rnn_units": lambda: hp.Choice("rnn_units", [32, 64, 128], default=default["rnn_units"]),
            "rnn_layers": lambda: hp.Int("rnn_layers", 1, 2, default=default["rnn_layers"]),
            "bidirectional": lambda: hp.Boolean("bidirectional", default=default["bidirectional"]),
            "dropout": lambda: hp.Float("dropout", 0.0, 0.5, step=0.1, default=default["dropout"])}


def transformer(hp: kt.HyperParameters) -> dict[str, Sampler]:
    default = _builder_defaults(build_transformer_classifier)
    return {"patch_size": lambda: hp.Choice("patch_size", [4, 7], default=default["patch_size"]),
            "encoder_layers": lambda: hp.Int("encoder_layers", 2, 6, default=default["encoder_layers"]),
            "attention_heads": lambda: hp.Choice("attention_heads", [2, 4, 8], default=default["attention_heads"]),
            "model_width": lambda: hp.Choice("model_width", [32, 64, 128], default=default["model_width"]),
            "dropout": lambda: hp.Float("dropout", 0.0, 0.3, step=0.1, default=default["dropout"])}


def gan(hp: kt.HyperParameters) -> dict[str, Sampler]:
    # Two stride-2 stages each: 28-pixel images need a side divisible by 2 ** depth.
    default = _builder_defaults(build_gan)

    def generator_widths():
        width = hp.Choice("generator_base_width", [32, 64, 128], default=default["generator_widths"][0])
        return width, width // 2

    def discriminator_widths():
        width = hp.Choice("discriminator_base_width", [32, 64], default=default["discriminator_widths"][0])
        return width, 2 * width
    return {"noise_dim": lambda: hp.Choice("noise_dim", [32, 64, 128], default=default["noise_dim"]),
            "generator_widths": generator_widths, "discriminator_widths": discriminator_widths}


def sample(space: Space, hp: kt.HyperParameters, fixed=()) -> dict[str, Any]:
    """The builder arguments `hp` stands for in `space`, leaving out (and never sampling) the `fixed` ones."""
    return {name: draw() for name, draw in space(hp).items() if name not in fixed}


def _builder_defaults(builder: Callable) -> dict[str, Any]:
    """The builder's keyword defaults: every space's defaults are these, so a search's default point (where
    Bayesian search starts, and the control trial of tuning/oracles.py) is the model --task builds unflagged."""
    return {name: p.default for name, p in inspect.signature(builder).parameters.items()
            if p.default is not inspect.Parameter.empty}


def learning_rate(hp: kt.HyperParameters, default: float = 1e-3) -> float:
    """Searched for every task on a log scale; `default` (the task's own rate) is where Bayesian search starts."""
    return hp.Float(LEARNING_RATE, 1e-4, 1e-2, sampling="log", default=default)
