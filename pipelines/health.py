"""Numerical health during training: stop at the first non-finite loss and say where and what to try."""

import math

import keras

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
