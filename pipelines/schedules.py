"""--lr_schedule: the learning rate over a run's steps, for every optimizer the families compile (and the NumPy
trainer's SGD)."""

import keras

from pipelines.config import RunConfig

WARMUP = 0.2  # one_cycle: the share of the run's steps spent rising to --learning_rate


def learning_rate(config: RunConfig, steps_per_epoch: int):
    """--learning_rate, decayed to zero along a cosine over the run's steps with --lr_schedule=cosine, after a
    linear rise from zero over the first WARMUP of them with one_cycle (which lets a short run start high);
    constant, or steps_per_epoch = 0 (evaluation only), keeps it."""
    steps = config.epochs * steps_per_epoch
    if config.lr_schedule == "constant" or not steps:
        return config.learning_rate
    warmup = round(WARMUP * steps) if config.lr_schedule == "one_cycle" else 0
    if warmup:
        return keras.optimizers.schedules.CosineDecay(0.0, max(1, steps - warmup), warmup_target=config.learning_rate,
                                                      warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
