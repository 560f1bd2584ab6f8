"""Train stage: build the task's model from its hyperparameters and fit it on the train split.

In the order of `run`: the settings resolved (a sweep's hyperparameters, enough epochs for a small data set), the
model built and compiled (under the strategy and precision, from --init_from or a preset), the callbacks that
watch and keep the run, Keras' `fit`, and the model saved in float32 with the settings it was trained with.
Resumable: a killed run's state is kept in backup/<fingerprint>/ (resume.py), so only the same settings continue
it.
"""

import contextlib
import dataclasses
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from models import backbones, pretrained
from pipelines import artifacts, distribution, interrupts, numpy_trainer, precision, resume
from pipelines.context import Context, StageResult
from pipelines.errors import PipelineError
from pipelines.flops import Throughput, sustained, train_flops_per_example
from pipelines.health import DiskSpace, EpochCheckpoint, EpochLog, GradientNorm, StopOnDivergence
from pipelines.upstream import tensorflow as tf_internals

CURVES = "curves.json"  # backup/<fingerprint>/curves.json: the finished epochs' logs


def resolve_hyperparameters(ctx: Context) -> Context:
    """With tune in this run, train with the sweep's best_hparams.json; say so when one is beside the model but
    not used (--hparams_file was already read into the config)."""
    config, best = ctx.config, ctx.path(artifacts.BEST_HPARAMS)
    if "tune" in config.stages:
        hparams, rate = ctx.task.read_hparams_file(best)
        config = dataclasses.replace(config, hparams={**config.hparams, **hparams},
                                     learning_rate=rate or config.learning_rate)
        print(f"hyperparameters from {best}: {hparams}, learning_rate={config.learning_rate:g}")
        return ctx.replaced(config=config)
    if config.hparams_file:
        print(f"hyperparameters from {config.hparams_file}: {dict(config.hparams)}, "
              f"learning_rate={config.learning_rate:g}")
    elif os.path.exists(best):
        print(f"note: not training with the sweep's {best}: add --hparams_file={best}, or tune in the same run")
    return ctx


def resolve_epochs(ctx: Context) -> Context:
    """The epochs and the passes over the train split an epoch makes: --passes_per_epoch if given; else, on a data
    set too small for the family's minimum of steps, more epochs (--epochs not given), or, for a family that
    repeats small data, more passes an epoch. Those passes are the data set's and the task's (its default epochs
    reach the minimum), whatever --epochs says: --epochs=15 then trains 1.5 times the default's steps, not 15
    passes."""
    config, steps, least = ctx.config, ctx.inputs.steps_per_epoch, ctx.family.min_train_steps
    if ctx.task.solve:
        return ctx
    if config.passes_per_epoch:
        return ctx.replaced(inputs=ctx.inputs.repeated(config.passes_per_epoch))
    if ctx.family.repeat_small_data:
        passes = math.ceil(least / (steps * ctx.task.epochs))
        if passes <= 1:
            return ctx
        print(f"note: {ctx.inputs.num_train} train examples make {steps} step{'s' * (steps > 1)} a pass: an epoch "
              f"makes {passes} passes, so the task's {ctx.task.epochs} epochs make at least {least} steps "
              f"(--passes_per_epoch sets it); this run trains {config.epochs} epochs, {config.epochs * passes * steps} "
              "steps", flush=True)
        return ctx.replaced(inputs=ctx.inputs.repeated(passes))
    if "epochs" in config.explicit or config.epochs * steps >= least:
        return ctx
    more = math.ceil(least / steps)
    print(f"note: {ctx.inputs.num_train} train examples make {steps} step{'s' * (steps > 1)} an epoch: training "
          f"{more} epochs instead of {config.epochs}, for at least {least} steps (--epochs sets it)")
    return ctx.replaced(config=dataclasses.replace(config, epochs=more))


def build(ctx: Context) -> keras.Model:
    """The task's model from the run's resolved hyperparameters and what it learned from the training split; from
    a KerasHub preset (--init_from=<preset>), the preset's encoder and tokenizer, or its image backbone and
    preprocessing, instead."""
    config = ctx.config
    if config.init_from and pretrained.is_preset(config.init_from):
        return ctx.task.build_from_preset(config.init_from, ctx.inputs.input_shape, ctx.data.num_classes,
                                          config.explicit, modality=ctx.data.modality, **config.hparams)
    return ctx.task.build(ctx.inputs.input_shape, ctx.data.num_classes, **config.hparams, **ctx.learned_args)


def build_compiled(ctx: Context) -> tuple[keras.Model, float]:
    """The model, its variables on every replica of the strategy and in the run's precision, initialized
    (--init_from) and compiled; and the FLOPs one training example costs it."""
    config, family, inputs = ctx.config, ctx.family, ctx.inputs
    replicas = ctx.strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise PipelineError(f"--batch_size={config.batch_size} is the global batch and must divide among the "
                            f"{replicas} replicas of --distribute={config.distribute}: give a multiple of {replicas}")
    with ctx.strategy.scope(), precision.policy(config.precision):
        model = build(ctx)
        if config.init_from and not pretrained.is_preset(config.init_from):  # a preset came with its weights
            print(family.initialize(model, config.init_from), flush=True)
        family.compile(model, config, steps_per_epoch=inputs.steps_per_epoch)
    counted = model
    if config.distribute != "none":
        distribution.steps_per_execution(model, inputs.steps_per_epoch, inputs.validation_steps)
        # Tracing a replicated model's train_step outside its replicas is not allowed: count a twin's.
        with precision.policy(config.precision):
            counted = build(ctx)
        family.compile(counted, config, steps_per_epoch=inputs.steps_per_epoch)
    return model, train_flops_per_example(counted, inputs.train.element_spec, config.batch_size)


def describe(ctx: Context, model: keras.Model, flops: float) -> None:
    config, inputs = ctx.config, ctx.inputs
    replicas = ctx.strategy.num_replicas_in_sync
    print(f"{model.name}: {model.count_params():,} parameters, {flops / 1e6:.3g} MFLOP per training example; "
          f"{inputs.num_train} train / {inputs.num_validation} validation examples from {ctx.data.source}"
          + (f"; {replicas} replicas of {config.batch_size // replicas} examples (--distribute={config.distribute})"
             if config.distribute != "none" else ""))
    print(f"precision {config.precision} ({config.precision_reason}); the train split "
          + ("held in memory, shuffled whole each epoch" if inputs.in_memory.get("train", True) else
             f"read from disk each epoch, shuffled by shard and within {inputs.shuffle_buffer:,} examples"),
          flush=True)
    if not precision.this_device().native(config.precision):
        print(f"warning: {config.precision_reason}: --precision=auto or float32 trains faster here", flush=True)


GRADIENT_NORM_EXAMPLES = 256  # the fixed examples grad_norm is measured on each epoch, if the batch is as large


def callbacks(ctx: Context, model: keras.Model, backup: str, health: StopOnDivergence, curves: EpochLog,
              flops: float) -> list:
    """In the order they must see each epoch's end."""
    inputs, family = ctx.inputs, ctx.family
    return [
        # First: a replicated model's BatchNorm statistics are made equal before anything reads them.
        *([distribution.AverageMovingStatistics(ctx.strategy)] if ctx.strategy.num_replicas_in_sync > 1 else []),
        Throughput(inputs.num_train * inputs.passes, flops),
        health,
        DiskSpace(ctx.config.task_dir),  # before anything writes this epoch's state
        # On one batch's worth of examples at most: a fixed set twice the batch set the run's peak memory.
        *([GradientNorm(inputs.first_train_batch(min(GRADIENT_NORM_EXAMPLES, ctx.config.batch_size)))]
          if family.gradient_norm else []),
        *family.callbacks(ctx.workspace),  # before the logs are read: a family's callback may add to them
        *([backbones.FineTunePhase()] if backbones.gates(model) else []),  # a preset's frozen, then top, phase
        curves,
        keras.callbacks.BackupAndRestore(backup),
        # After the backup: the checkpoint copies the weights file it just wrote (Keras' name for it).
        EpochCheckpoint(ctx.path(artifacts.CHECKPOINTS), health, state=os.path.join(backup, "latest.weights.h5")),
        keras.callbacks.TensorBoard(ctx.path(artifacts.LOGS)),
        *ctx.tracking.callbacks(),  # --track: each epoch's logs in MLflow or W&B
        interrupts.AtStepEnd(),  # last: a Ctrl-C waits for the step to end and the epoch's backup to be written
    ]


def fit(ctx: Context, model: keras.Model, watchers: list) -> None:
    """Keras' fit over the pipeline's splits (which shuffle), each split's steps given so the next pass's shuffle
    buffer refills while validation runs; under --distribute each split repeated, so Keras keeps one iterator
    (a new distributed one each epoch costs seconds), and a lost worker is one line."""
    config, inputs = ctx.config, ctx.inputs
    data = dict(x=inputs.train, steps_per_epoch=inputs.steps_per_epoch,
                validation_data=inputs.validation, validation_steps=inputs.validation_steps)
    if config.distribute != "none":
        data.update(x=inputs.train.repeat(), validation_data=inputs.validation.repeat())
    mended = distribution.keras_multi_worker_fixes() if ctx.cluster else contextlib.nullcontext()
    try:
        with tf_internals.op_determinism(config.deterministic), mended, interrupts.at_step_ends():
            model.fit(**data, **ctx.family.fit_options(ctx.workspace), epochs=config.epochs, callbacks=watchers,
                      shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError) as e:
        if not ctx.cluster:
            raise
        raise distribution.WorkerLost(f"{ctx.cluster.name} lost the cluster during training "
                                      f"({type(e).__name__}): the finished epochs are backed up in "
                                      f"{ctx.path(artifacts.BACKUP)}; start the same command on every worker to "
                                      "resume") from None


def run(ctx: Context) -> StageResult:
    """Trains the model; returns, beside its summary, the config and inputs it resolved (StageResult)."""
    ctx = resolve_epochs(resolve_hyperparameters(ctx))
    options = ctx.family.fit_options(ctx.workspace) if ctx.config.trainer == "numpy" or ctx.task.solve else {}
    if options:  # each named as the flag that asks for it
        how = "--trainer=numpy" if ctx.config.trainer == "numpy" else f"--task={ctx.task.name} (fitted in closed form)"
        raise PipelineError(f"{how} does not train with Keras' fit, which --{', --'.join(options)} sets: leave "
                            f"{'it' if len(options) == 1 else 'them'} out")
    line = (_run_numpy(ctx) if ctx.config.trainer == "numpy" else _run_solved(ctx) if ctx.task.solve
            else _run_keras(ctx))
    return StageResult(line, config=ctx.config, inputs=ctx.inputs)


def _run_keras(ctx: Context) -> str:
    backup, resumed = resume.folder(ctx.path(artifacts.BACKUP), ctx.stage_key, ctx.stage_settings, ctx.config.force)
    if not resumed:  # the curves and checkpoints of an earlier model do not belong beside this one
        for folder in (artifacts.CHECKPOINTS, artifacts.LOGS):
            artifacts.remove(ctx.path(folder))
    keras.utils.set_random_seed(ctx.config.seed)
    model, flops = build_compiled(ctx)
    describe(ctx, model, flops)
    health, curves = StopOnDivergence(ctx.family.loss_key), EpochLog(os.path.join(backup, CURVES))
    fit(ctx, model, callbacks(ctx, model, backup, health, curves, flops))
    resume.finish(backup, diverged=bool(health.failure))
    health.raise_if_failed()  # before saving: a diverged model must not replace a good one
    model = precision.in_float32(model, lambda: build(ctx))  # what later stages load computes in float32
    if ctx.cluster:  # every worker prints it: equal lines, equal models
        print(f"{ctx.cluster.name}: trained weights {distribution.weights_digest(model)}", flush=True)
    return save(ctx, model, curves.curves)


def save(ctx: Context, model: keras.Model, curves: dict[str, list[float]]) -> str:
    """model.keras, history.json, and config.json (what the model is: the settings train depends on, as
    resolved, so the hyperparameters actually used), the family's choice from the trained model what is saved;
    returns the summary line."""
    model, chosen = ctx.family.choose(model, ctx.workspace)
    weights = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    artifacts.require_space(ctx.config.task_dir, 2 * weights, "saving the trained model")
    with artifacts.atomic_path(ctx.path(artifacts.MODEL)) as tmp:
        model.save(tmp)
    artifacts.write_json(ctx.path(artifacts.HISTORY), curves)
    trained = {name: getattr(ctx.config, name) for name in ctx.stage_settings}
    artifacts.write_json(ctx.path(artifacts.CONFIG), {**trained, "precision_reason": ctx.config.precision_reason,
                                                      "trained_on": trained_on(ctx), "chosen": chosen})
    speed = curves.get("gflop_per_second", [])
    return " ".join([f"{name}={values[-1]:.4f}" for name, values in curves.items() if name.startswith("val_")]
                    + ([f"{sustained(speed):.0f} GFLOP/s"] if speed else []))


def trained_on(ctx: Context) -> dict:
    """What the model reads and answers, for those who use it later (dlpipe-predict): its family, the kind of
    example, the classes, and a table's columns by input name and its id columns."""
    data = ctx.data
    described = {"family": ctx.family.name, "modality": data.modality, "problem": data.problem,
                 "label_names": list(data.label_names)}
    if data.table is not None:
        described.update(label_column=data.table.label_column, columns=list(data.table.inputs.items()),
                         id_columns=list(data.table.ids))
    if data.series is not None:
        described.update(label_column=data.series.label_column, columns=list(data.series.columns),
                         time_column=ctx.config.time_column, series_id_column=ctx.config.series_id_column,
                         window=data.series.window, horizon=data.series.horizon, step=data.series.step)
    if data.sequences is not None:
        described.update(label_column=data.sequences.label_column, steps=data.sequences.steps,
                         columns=list(data.sequences.columns), padding=data.sequences.padding,
                         **data.sequences.layout)
    return described


def _run_solved(ctx: Context) -> str:
    """A task fitted in closed form (Task.solve: MiniRocket's biases and ridge head): no epochs, so no resume
    state; history.json holds what the fit chose."""
    for folder in (artifacts.CHECKPOINTS, artifacts.LOGS, artifacts.BACKUP):
        artifacts.remove(ctx.path(folder))
    keras.utils.set_random_seed(ctx.config.seed)
    model = build(ctx)
    print(f"{model.name}: fitted in closed form on {ctx.inputs.num_train} train and {ctx.inputs.num_validation} "
          f"validation examples from {ctx.data.source}", flush=True)
    fitted = ctx.task.solve(model, ctx.inputs)
    print("  " + ", ".join(f"{name} {value:.4g}" for name, value in fitted.items()), flush=True)
    return save(ctx, model, {name: [value] for name, value in fitted.items()})


def _run_numpy(ctx: Context) -> str:
    """--trainer=numpy (pipelines/numpy_trainer.py): no resume state, since its epochs take seconds."""
    for folder in (artifacts.CHECKPOINTS, artifacts.LOGS, artifacts.BACKUP):
        artifacts.remove(ctx.path(folder))
    keras.utils.set_random_seed(ctx.config.seed)
    model = build(ctx)
    return save(ctx, model, numpy_trainer.train(ctx, model))
