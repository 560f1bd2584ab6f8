"""--trainer=numpy: the dense task trained by the NumPy network of models/numpy_mlp.py instead of Keras' `fit`.

The same tf.data splits as every run (iterated as NumPy arrays), the same learning-rate schedule and label
smoothing, per-epoch loss and accuracy in history.json and TensorBoard (Keras' layout: logs/train, logs/validation),
and a stop at a diverged loss. The trained weights then go into the Keras dense model, so evaluate, export and
verify ship the user's from-scratch network like any other.
"""

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from models.numpy_mlp import MLP, SGD, cross_entropy, to_keras
from pipelines import artifacts
from pipelines.schedules import learning_rate
from pipelines.errors import PipelineError


def _evaluate(mlp: MLP, split: tf.data.Dataset, label_smoothing: float) -> tuple[float, float]:
    """Mean loss and accuracy over a batched split."""
    loss = correct = count = 0.0
    for x, y in split.as_numpy_iterator():
        logits = mlp.predict(x)
        loss += cross_entropy(logits, y, label_smoothing)[0] * len(y)
        correct += (logits.argmax(axis=-1) == y).sum()
        count += len(y)
    return loss / count, correct / count


def train(ctx, model: keras.Model) -> dict[str, list[float]]:
    """Trains the NumPy network for ctx.config.epochs, copies its weights into `model`, and returns the curves."""
    config, inputs = ctx.config, ctx.inputs
    if ctx.data.modality != "image":
        raise PipelineError(f"--trainer=numpy trains on images; {config.dataset} holds {ctx.data.modality} examples: "
                            "use --trainer=keras")
    rng = np.random.default_rng(config.seed)
    sizes = [math.prod(inputs.input_shape), *config.hparams["hidden_units"], ctx.data.num_classes]
    mlp = MLP.initialise(sizes, rng)
    sgd = SGD(mlp.weights + mlp.biases)
    schedule = learning_rate(config, inputs.steps_per_epoch)  # the Keras trainer's, as a function of the step
    writers = {split: tf.summary.create_file_writer(os.path.join(ctx.path(artifacts.LOGS), split))
               for split in ("train", "validation")}
    curves: dict[str, list[float]] = {}
    step = 0
    for epoch in range(config.epochs):
        start = time.perf_counter()
        loss_sum = correct = count = 0.0
        for x, y in inputs.train.as_numpy_iterator():
            logits, cache = mlp.forward(x, dropout=config.hparams["dropout"], rng=rng)
            loss, dlogits = cross_entropy(logits, y, config.label_smoothing)
            if not math.isfinite(loss):
                raise PipelineError(f"training diverged: loss became {loss} at epoch {epoch + 1}, step "
                                    f"{step + 1}: lower --learning_rate")
            grad_w, grad_b = mlp.backward(dlogits, cache)
            rate = float(schedule(step)) if callable(schedule) else schedule
            sgd.step(mlp.weights + mlp.biases, grad_w + grad_b, rate)
            loss_sum += loss * len(y)
            correct += (logits.argmax(axis=-1) == y).sum()
            count += len(y)
            step += 1
        seconds = time.perf_counter() - start
        val_loss, val_accuracy = _evaluate(mlp, inputs.validation, config.label_smoothing)
        logs = {"loss": loss_sum / count, "accuracy": correct / count, "val_loss": val_loss,
                "val_accuracy": val_accuracy, "examples_per_second": count / seconds}
        for name, value in logs.items():
            curves.setdefault(name, []).append(float(value))
        for split, prefix in (("train", ""), ("validation", "val_")):
            with writers[split].as_default():
                for name in ("loss", "accuracy"):
                    tf.summary.scalar(f"epoch_{name}", logs[prefix + name], step=epoch)
        print(f"Epoch {epoch + 1}/{config.epochs} - {seconds:.1f}s - " + " - ".join(
            f"{name}: {value:.4f}" for name, value in logs.items()), flush=True)
    for writer in writers.values():
        writer.close()
    to_keras(mlp, model)
    return curves
