"""Train stage: build the task's model from its hyperparameters and fit it on the train split.

Resumable: a killed run's state is kept in backup/<fingerprint>/, so only the same settings continue it; any
other command starts over (and says so). What it trains with is recorded beside the model in config.json.
"""

import contextlib
import dataclasses
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # disable_op_determinism is not exported

from models import pretrained
from pipelines import artifacts, distribution, numpy_trainer, precision
from pipelines.config import describe_changes
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.flops import Throughput, sustained, train_flops_per_example
from pipelines.health import DiskSpace, EpochCheckpoint, EpochLog, GradientNorm, StopOnNonFiniteLoss

SETTINGS = "settings.json"  # backup/<fingerprint>/settings.json: what the interrupted run was training
CURVES = "curves.json"      # backup/<fingerprint>/curves.json: the finished epochs' logs
# Unless --epochs is given, a small data set trains for at least this many optimizer steps: a task's epochs are set
# for data sets of thousands of batches, and a 150-row table at batch 128 would otherwise take 20 steps in all
# (measured: conv on 10 images per class, 0.10 test accuracy after 5 steps, 0.80 after 100; README, Small data).
MIN_TRAIN_STEPS = 100


def resolve_hyperparameters(ctx: Context) -> None:
    """With tune in this run, train with the sweep's best_hparams.json; say so when one is beside the model but
    not used (--hparams_file was already read into the config)."""
    config, best = ctx.config, ctx.path(artifacts.BEST_HPARAMS)
    if "tune" in config.stages:
        hparams, rate = ctx.task.read_hparams_file(best)
        ctx.config = dataclasses.replace(config, hparams={**config.hparams, **hparams},
                                         learning_rate=rate or config.learning_rate)
        print(f"hyperparameters from {best}: {hparams}, learning_rate={ctx.config.learning_rate:g}")
    elif config.hparams_file:
        print(f"hyperparameters from {config.hparams_file}: {dict(config.hparams)}, "
              f"learning_rate={config.learning_rate:g}")
    elif os.path.exists(best):
        print(f"note: not training with the sweep's {best}: add --hparams_file={best}, or tune in the same run")


def resolve_epochs(ctx: Context) -> None:
    """The task's epochs, or (--epochs not given) enough of them for MIN_TRAIN_STEPS steps on a small data set."""
    config, steps = ctx.config, ctx.inputs.steps_per_epoch
    if "epochs" in config.explicit or config.epochs * steps >= MIN_TRAIN_STEPS:
        return
    epochs = math.ceil(MIN_TRAIN_STEPS / steps)
    print(f"note: {ctx.inputs.num_train} train examples make {steps} step{'s' * (steps > 1)} an epoch: training "
          f"{epochs} epochs instead of {config.epochs}, for at least {MIN_TRAIN_STEPS} steps (--epochs sets it)")
    ctx.config = dataclasses.replace(config, epochs=epochs)


def backup_dir(ctx: Context) -> tuple[str, bool]:
    """This config's resume folder, backup/<fingerprint>/, and whether it holds a run to continue. Another
    config's interrupted run, a damaged backup, or --force start over, each said in one line."""
    root, key = ctx.path(artifacts.BACKUP), ctx.stage_key
    mine = os.path.join(root, key)
    if ctx.config.force and os.path.exists(root):
        print("--force: starting training over")
        artifacts.remove(root)
    for other in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        if other == key:
            continue
        try:
            before = artifacts.read_json(os.path.join(root, other, SETTINGS))
            change = describe_changes(before, ctx.stage_settings)
        except (OSError, ValueError):
            change = "settings unknown"
        print(f"starting training over: the interrupted run in {root} had other settings ({change})")
        artifacts.remove(os.path.join(root, other))
    resumed = os.path.exists(os.path.join(mine, "training_metadata.json"))
    if resumed:
        try:
            epoch = artifacts.read_json(os.path.join(mine, "training_metadata.json"))["epoch"]
            print(f"resuming the interrupted training after epoch {epoch}")
        except (OSError, ValueError, KeyError, TypeError):
            print(f"starting training over: the interrupted run's state in {mine} is damaged")
            artifacts.remove(mine)
            resumed = False
    os.makedirs(mine, exist_ok=True)
    artifacts.write_json(os.path.join(mine, SETTINGS), ctx.stage_settings)
    return mine, resumed


def _build(ctx: Context) -> keras.Model:
    """The task's model from the run's resolved hyperparameters and what it learned from the training split; from
    a KerasHub preset (--init_from=<preset>), the preset's encoder and tokenizer instead."""
    config = ctx.config
    if config.init_from and pretrained.is_preset(config.init_from):
        if ctx.data.modality != "text":
            raise PipelineError(f"--init_from={config.init_from} is a KerasHub preset, and the presets fine-tuned "
                                f"here are text encoders; {config.dataset} holds {ctx.data.modality} examples: give "
                                "text data, or an earlier run's model.keras")
        return ctx.task.build_from_preset(config.init_from, ctx.data.num_classes, config.explicit, **config.hparams)
    return ctx.task.build(ctx.inputs.input_shape, ctx.data.num_classes, **config.hparams, **ctx.learned_args)


def _units(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The model's weighted layers by path: a nested model is entered (a text model's token_classifier), any other
    layer is one unit with all its weights (attention's projections inside it stay its own)."""
    units = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            units.update({f"{layer.name}/{name}": unit for name, unit in _units(layer).items()})
        elif layer.weights:
            units[layer.name] = layer
    return units


def initialise_from(model: keras.Model, path: str) -> str:
    """--init_from: the saved model's weights, layer by layer where the names and shapes match; the others (a head
    for another number of classes) keep their fresh initialisation. Returns what was loaded, for the log."""
    try:
        if path.endswith(".weights.h5"):  # no layer names to match: Keras' own loading, by structure
            model.load_weights(path, skip_mismatch=True)
            return f"weights from {path}, where their shapes fit"
        source = pretrained.load_model(path)
    except Exception as e:  # Keras raises ValueError, OSError, zipfile errors … for what it cannot read
        raise PipelineError(f"cannot load --init_from={path} ({type(e).__name__}): give the model.keras of an "
                            "earlier run") from None
    theirs, loaded, fresh = _units(source), [], []
    for name, layer in _units(model).items():
        other = theirs.get(name)
        if other is not None and [w.shape for w in other.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(other.get_weights())
            loaded.append(name)
        else:
            fresh.append(name)
    if not loaded:
        raise PipelineError(f"no layer of {path} fits the {model.name} model (none has the same name and shapes): "
                            "--init_from takes a model of the same task")
    return (f"initialised {len(loaded)} of {len(loaded) + len(fresh)} layers from {path}"
            + (f"; starting fresh: {', '.join(fresh)}" if fresh else ""))


def _twin(build, family, config, inputs) -> keras.Model:
    """The model built and compiled outside the strategy, for counting one example's FLOPs: tracing a replicated
    model's train_step outside its replicas is not allowed."""
    with precision.policy(config.precision):
        twin = build()
    family.compile(twin, config, steps_per_epoch=inputs.steps_per_epoch)
    return twin


def run(ctx: Context) -> str:
    resolve_hyperparameters(ctx)
    resolve_epochs(ctx)
    if ctx.config.trainer == "numpy":
        return _run_numpy(ctx)
    config, inputs = ctx.config, ctx.inputs
    backup, resumed = backup_dir(ctx)
    if not resumed:  # the curves and checkpoints of an earlier model do not belong beside this one
        for folder in (artifacts.CHECKPOINTS, artifacts.LOGS):
            artifacts.remove(ctx.path(folder))
    keras.utils.set_random_seed(config.seed)

    def build():
        return _build(ctx)
    strategy, family = ctx.strategy, ctx.family
    distributed = config.distribute != "none"
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise PipelineError(f"--batch_size={config.batch_size} is the global batch and must divide among the "
                            f"{replicas} replicas of --distribute={config.distribute}: give a multiple of {replicas}")
    with strategy.scope(), precision.policy(config.precision):  # variables, optimizer included, on every replica
        model = build()
        if config.init_from:  # a preset's weights came with its model
            print(f"the KerasHub preset {config.init_from}: its encoder, weights and tokenizer"
                  if pretrained.is_preset(config.init_from) else initialise_from(model, config.init_from), flush=True)
        family.compile(model, config, steps_per_epoch=inputs.steps_per_epoch)
    if distributed:  # Keras' own multi-step loop fails under a strategy
        model.train_function = distribution.StepsPerExecution(model, model.train_step, inputs.steps_per_epoch)
        model.test_function = distribution.StepsPerExecution(model, model.test_step, inputs.validation_steps)
    flops = train_flops_per_example(_twin(build, family, config, inputs) if distributed else model,
                                    inputs.train.element_spec, config.batch_size)
    print(f"{model.name}: {model.count_params():,} parameters, {flops / 1e6:.3g} MFLOP per training example; "
          f"{inputs.num_train} train / {inputs.num_validation} validation examples from {ctx.data.source}"
          + (f"; {replicas} replicas of {config.batch_size // replicas} examples (--distribute={config.distribute})"
             if distributed else ""))
    print(f"precision {config.precision} ({config.precision_reason}); the train split "
          + ("held in memory, shuffled whole each epoch" if inputs.in_memory.get("train", True) else
             f"read from disk each epoch, shuffled by shard and within {inputs.shuffle_buffer:,} examples"),
          flush=True)
    if not precision.this_device().native(config.precision):
        print(f"warning: {config.precision_reason}: --precision=auto or float32 trains faster here", flush=True)
    health = StopOnNonFiniteLoss(family.loss_key)
    grad_norm = [GradientNorm(inputs.first_train_batch(256))] if family.gradient_norm else []
    curves = EpochLog(os.path.join(backup, CURVES))
    callbacks = [
        # First: a replicated model's BatchNorm statistics are made equal before anything reads them.
        *([distribution.AverageMovingStatistics(strategy)] if replicas > 1 else []),
        Throughput(inputs.num_train, flops),
        health,
        DiskSpace(config.task_dir),  # before anything writes this epoch's state
        *grad_norm,
        *family.callbacks(ctx),  # before the logs are read: a family's callback may add to them
        curves,
        keras.callbacks.BackupAndRestore(backup),
        # After the backup: the checkpoint copies the weights file it just wrote (Keras' name for it).
        EpochCheckpoint(ctx.path(artifacts.CHECKPOINTS), health, state=os.path.join(backup, "latest.weights.h5")),
        keras.callbacks.TensorBoard(ctx.path(artifacts.LOGS)),
    ]
    # Same seed, same numbers (slower kernels on some ops). A process-wide switch: left as it was found.
    switched = config.deterministic and not tf_config.is_op_determinism_enabled()
    if switched:
        tf_config.enable_op_determinism()
    fixes = distribution.keras_multi_worker_fixes() if ctx.cluster else contextlib.nullcontext()
    # With the number of steps given, Keras makes each split's next iterator as soon as a pass ends instead of
    # when the next one starts, so the shuffle buffer refills (54,000 examples) while validation runs: the dense
    # train stage measured 0.99-1.01x a plain fit (best of two pairs) with it, 1.055x (best of three) without.
    # Each pass is still one whole permutation; the ones drawn after the first epoch differ from Keras' default.
    data = dict(x=inputs.train, steps_per_epoch=inputs.steps_per_epoch,
                validation_data=inputs.validation, validation_steps=inputs.validation_steps)
    if distributed:
        # Each split repeated, one pass per epoch, so Keras keeps one iterator for the whole fit: a new one each
        # epoch rebuilds the distributed pipeline, measured on one core at 2.2-7.6 s at each epoch's start against
        # 2.5 s of training in it. StepsPerExecution ends each pass's last call where the pass ends.
        data.update(x=inputs.train.repeat(), validation_data=inputs.validation.repeat())
    try:
        with fixes:
            model.fit(**data, epochs=config.epochs, callbacks=callbacks, shuffle=False,  # the pipeline shuffles
                      verbose=1 if sys.stdout.isatty() else 2)
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError) as e:
        if not ctx.cluster:
            raise
        raise distribution.WorkerLost(f"{ctx.cluster.name} lost the cluster during training "
                                      f"({type(e).__name__}): the finished epochs are backed up in "
                                      f"{ctx.path(artifacts.BACKUP)}; start the same command on every worker to "
                                      "resume") from None
    finally:
        if switched:
            tf_config.disable_op_determinism()
    if health.failure:
        artifacts.remove(backup)  # a diverged state is not worth resuming
    if not os.listdir(ctx.path(artifacts.BACKUP)):  # BackupAndRestore removes its own folder when training ends
        os.rmdir(ctx.path(artifacts.BACKUP))
    health.raise_if_failed()  # before saving: a diverged model must not replace a good one
    model = precision.in_float32(model, build)  # what later stages load computes in float32
    if ctx.cluster:  # every worker prints it: equal lines, equal models
        print(f"{ctx.cluster.name}: trained weights {distribution.weights_digest(model)}", flush=True)
    return _save(ctx, model, curves.curves)


def _save(ctx: Context, model: keras.Model, curves: dict[str, list[float]]) -> str:
    """model.keras, history.json, and config.json (what the model is: the settings train depends on, as
    resolved, so the hyperparameters actually used); returns the summary line."""
    weights = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    artifacts.require_space(ctx.config.task_dir, 2 * weights, "saving the trained model")
    with artifacts.atomic_path(ctx.path(artifacts.MODEL)) as tmp:
        model.save(tmp)
    artifacts.write_json(ctx.path(artifacts.HISTORY), curves)
    trained = {name: getattr(ctx.config, name) for name in ctx.stage_settings}
    artifacts.write_json(ctx.path(artifacts.CONFIG), {**trained, "precision_reason": ctx.config.precision_reason})
    speed = curves.get("gflop_per_second", [])
    return " ".join([f"{name}={values[-1]:.4f}" for name, values in curves.items() if name.startswith("val_")]
                    + ([f"{sustained(speed):.0f} GFLOP/s"] if speed else []))


def _run_numpy(ctx: Context) -> str:
    """--trainer=numpy (pipelines/numpy_trainer.py): no resume state, since its epochs take seconds."""
    for folder in (artifacts.CHECKPOINTS, artifacts.LOGS, artifacts.BACKUP):
        artifacts.remove(ctx.path(folder))
    keras.utils.set_random_seed(ctx.config.seed)
    model = _build(ctx)
    return _save(ctx, model, numpy_trainer.train(ctx, model))
