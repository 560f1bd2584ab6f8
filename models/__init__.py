"""Keras functional model builders, one module per family: pure functions from shapes and hyperparameters."""

# BatchNormalization's moving statistics follow each batch by this much. Keras' default 0.99 leaves them far
# from the data after short runs (the model then scores near chance in inference mode; docs/tasks.md). Every
# builder's BatchNormalization uses it.
BN_MOMENTUM = 0.9


class BuildError(ValueError):
    """A builder argument that cannot make a model for the given input: `argument` names it, the message says why
    and what would fit."""

    def __init__(self, argument: str, problem: str):
        super().__init__(f"{argument}: {problem}")
        self.argument = argument


# The widest layer a flag may ask for: 784 × 16384 float32 weights are 51 MB; a typo of 100000000 would be 313 GB.
MAX_WIDTH = 16384
# What each builder argument that is a flag means, and its range (pipelines/flags.py makes the flags from the
# builders' signatures: their names, types, defaults and, from a Literal annotation, their choices).
ARGUMENTS = {
    "hidden_units": ("dense: units of each hidden layer.", {}),
    "dropout": ("Dropout rate.", dict(lower_bound=0.0, upper_bound=0.9)),
    "conv_filters": ("conv: filters of each conv block; the number of entries is the depth.", {}),
    "dense_units": ("conv: units of the dense head.", dict(lower_bound=1, upper_bound=MAX_WIDTH)),
    "augment": ("conv: random changes to training images only (flip: horizontal; flip_translate: and a shift of up "
                "to 10%).", {}),
    "cell": ("recurrent: the recurrent cell.", {}),
    "rnn_units": ("recurrent: units per recurrent layer.", dict(lower_bound=1, upper_bound=MAX_WIDTH)),
    "rnn_layers": ("recurrent: stacked recurrent layers.", dict(lower_bound=1, upper_bound=8)),
    "bidirectional": ("recurrent: read sequences both ways.", {}),
    "sequence_length": ("recurrent and transformer, text data sets: tokens per text, padded or cut.",
                        dict(lower_bound=1, upper_bound=2000)),
    "patch_size": ("transformer, images: the side of the square patches an image is cut into (a token each).",
                   dict(lower_bound=1, upper_bound=256)),
    "encoder_layers": ("transformer: encoder layers.", dict(lower_bound=1, upper_bound=48)),
    "attention_heads": ("transformer: heads of each self-attention; they share --model_width.",
                        dict(lower_bound=1, upper_bound=64)),
    "model_width": ("transformer: the width of every token's vector (the MLPs are twice as wide).",
                    dict(lower_bound=1, upper_bound=MAX_WIDTH)),
    "noise_dim": ("gan: size of the generator's noise input.", dict(lower_bound=1, upper_bound=4096)),
    "generator_widths": ("gan: filters of the generator's last doubling blocks (nearest upsampling, 3×3 conv); a "
                         "larger image's first blocks double them.", {}),
    "discriminator_widths": ("gan: filters of the discriminator's first stride-2 convs; a larger image's last blocks "
                             "double them.", {}),
    "r1": ("gan: weight of the R1 penalty on the discriminator's gradient at the real images (0 turns it off).",
           dict(lower_bound=0.0)),
    "conditional": ("gan: class-conditional generator and discriminator (label as a second input).", {}),
}
