"""Train stage: build the task's model from its hyperparameters and fit it on the train split."""

import dataclasses
import os
import sys

import keras
import tensorflow as tf

from pipelines import artifacts
from pipelines.context import Context
from pipelines.health import GradientNorm, StopOnNonFiniteLoss


def hparams_source(ctx: Context) -> str | None:
    """--hparams_file, else the tune stage's best_hparams.json when tune ran in this run, else none."""
    if ctx.config.hparams_file:
        return ctx.config.hparams_file
    return ctx.path(artifacts.BEST_HPARAMS) if "tune" in ctx.config.stages else None


def run(ctx: Context) -> str:
    config, task, inputs = ctx.config, ctx.task, ctx.inputs
    source = hparams_source(ctx)
    if source:
        hparams, rate = task.read_hparams_file(source)
        config = dataclasses.replace(config, hparams={**config.hparams, **hparams},
                                     learning_rate=rate or config.learning_rate)
        print(f"hyperparameters from {source}: {hparams}, learning_rate={config.learning_rate:g}")
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()  # same seed, same numbers: slower kernels on some ops
    model = task.build(inputs.input_shape, ctx.data.num_classes, **config.hparams, **ctx.learned_args)
    task.compile(model, config, steps_per_epoch=inputs.steps_per_epoch)
    print(f"{model.name}: {model.count_params():,} parameters, {inputs.num_train} train / "
          f"{inputs.num_validation} validation examples from {ctx.data.source}")
    health = StopOnNonFiniteLoss()
    # The GAN's two losses live in its own train_step; its gradient norm is not measured here.
    grad_norm = [GradientNorm(next(iter(inputs.train.unbatch().batch(256))))] if model.loss else []
    callbacks = [
        *grad_norm,
        keras.callbacks.BackupAndRestore(ctx.path(artifacts.BACKUP)),
        keras.callbacks.ModelCheckpoint(
            os.path.join(ctx.path(artifacts.CHECKPOINTS), "epoch_{epoch:03d}.weights.h5"), save_weights_only=True),
        keras.callbacks.TensorBoard(ctx.path(artifacts.LOGS)),
        health,
        *task.callbacks(ctx),
    ]
    history = model.fit(inputs.train, validation_data=inputs.validation, epochs=config.epochs,
                        callbacks=callbacks, shuffle=False,  # the input pipeline shuffles
                        verbose=1 if sys.stdout.isatty() else 2)
    health.raise_if_failed()  # before saving: a diverged model must not replace a good one
    with artifacts.atomic_path(ctx.path(artifacts.MODEL)) as tmp:
        model.save(tmp)
    curves = {name: [float(v) for v in values] for name, values in history.history.items()}
    artifacts.write_json(ctx.path(artifacts.HISTORY), curves)
    return " ".join(f"{name}={values[-1]:.4f}" for name, values in curves.items() if name.startswith("val_"))
