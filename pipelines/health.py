"""Numerical health during training: the gradient norm per epoch, and a stop at the first non-finite loss that says
where it happened and what to try."""

import math

import keras
import numpy as np
import tensorflow as tf

from pipelines.errors import PipelineError


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Like Keras' TerminateOnNaN, but remembers where it happened and the last finite loss, for the message."""

    def __init__(self):
        super().__init__()
        self.epoch, self.last_finite, self.failure = 0, None, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss", (logs or {}).get("g_loss"))
        if loss is None:
            return
        loss = float(loss)
        if math.isfinite(loss):
            self.last_finite = loss
            return
        self.failure = (self.epoch + 1, batch + 1, loss)
        self.model.stop_training = True

    def raise_if_failed(self) -> None:
        if self.failure:
            epoch, step, loss = self.failure
            last = f"{self.last_finite:.4g}" if self.last_finite is not None else "none"
            raise PipelineError(
                f"training diverged: loss became {loss} at epoch {epoch}, step {step} (last finite loss {last}); "
                "lower --learning_rate or set --clip_norm; the checkpoints of finished epochs are kept")


class GradientNorm(keras.callbacks.Callback):
    """Adds `grad_norm` to each epoch's logs: the global norm of the loss gradient on a fixed batch of training
    examples, in inference mode (no dropout), so epochs compare like with like.

    Listed before TensorBoard and History, it lands in both. An exact per-step norm would need a custom
    train_step in every model; one fixed batch per epoch is enough to see gradients explode or vanish.
    """

    def __init__(self, batch):
        super().__init__()
        self.x, self.y = batch

    def on_epoch_end(self, epoch, logs=None):
        with tf.GradientTape() as tape:
            loss = self.model.loss(self.y, self.model(self.x, training=False))
        grads = [g for g in tape.gradient(loss, self.model.trainable_weights) if g is not None]
        if logs is not None:
            logs["grad_norm"] = float(np.sqrt(sum(float(tf.reduce_sum(tf.square(g))) for g in grads)))
