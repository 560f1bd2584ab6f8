"""Numerical health during training: the gradient norm per epoch, a stop at the first diverged loss that says
where it happened and what to try, and per-epoch checkpoints that a diverged epoch never writes."""

import math
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from pipelines import artifacts
from pipelines.errors import PipelineError

# A loss this many times its first value has diverged even while finite: float32 gradients of such a loss are
# noise, and a model trained into it must not replace a good one.
DIVERGED_FACTOR = 1e4


class StopOnDivergence(keras.callbacks.Callback):
    """Like Keras' TerminateOnNaN, but also stops on a finite loss DIVERGED_FACTOR times the run's first, and
    remembers where it happened and the last sound loss, for the message."""

    def __init__(self, loss_key: str = "loss"):
        super().__init__()
        self.loss_key = loss_key  # the training log to watch (a family's own: the GAN's generator loss)
        self.epoch, self.first, self.last_finite, self.failure = 0, None, None, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get(self.loss_key)
        if loss is None:
            return
        loss = float(loss)
        if self.first is None and math.isfinite(loss):
            self.first = max(abs(loss), 1e-3)
        if math.isfinite(loss) and abs(loss) <= DIVERGED_FACTOR * self.first:
            self.last_finite = loss
            return
        # With several steps per execution Keras reports the execution's last step, which may lie past the epoch's.
        steps = (self.params or {}).get("steps") or batch + 1
        self.failure = (self.epoch + 1, min(batch + 1, steps), loss)
        self.model.stop_training = True

    def raise_if_failed(self) -> None:
        if not self.failure:
            return
        epoch, step, loss = self.failure
        if self.last_finite is None:  # not one sound loss logged: the data or the rate, not a slow divergence
            raise PipelineError(
                f"training failed with no sound loss logged: the loss was {loss:.4g} at epoch {epoch}, step {step}, "
                "the first step logged; a value too large for float32's arithmetic in the data (a label of 1e19 or "
                "more squares past it) or a far too high --learning_rate does this: rescale the data, or lower "
                "--learning_rate")
        raise PipelineError(
            f"training diverged: loss became {loss:.4g} at epoch {epoch}, step {step} (last sound loss "
            f"{self.last_finite:.4g}); lower --learning_rate or set --clip_norm; the checkpoints of finished epochs "
            "are kept")


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes checkpoints/epoch_NNN.weights.h5 after each epoch, atomically, and not for an epoch that diverged.

    Keras' ModelCheckpoint writes in place (a full disk leaves half a file) and cannot ask `health`. When the
    resume state's weights file is given (`state`, written by BackupAndRestore earlier in the same epoch end: the
    model's and its optimizer's variables, what save_weights writes), the checkpoint is a copy of it: serializing
    the model costs Keras many times what copying the file does.
    """

    def __init__(self, folder: str, health: StopOnDivergence, state: str | None = None):
        super().__init__()
        self.folder, self.health, self.state = folder, health, state

    def on_epoch_end(self, epoch, logs=None):
        if self.health.failure:
            return
        os.makedirs(self.folder, exist_ok=True)
        with artifacts.atomic_path(os.path.join(self.folder, f"epoch_{epoch + 1:03d}.weights.h5")) as tmp:
            if self.state and os.path.exists(self.state):
                shutil.copyfile(self.state, tmp)
            else:
                self.model.save_weights(tmp)


class DiskSpace(keras.callbacks.Callback):
    """Before an epoch's state is written (the resume backup, the checkpoint, TensorBoard's events; listed before
    them), checks that it fits on the disk: the weights and the optimizer's variables, twice (a temporary copy and
    the file it replaces). A full disk is then one line naming it, not an HDF5 crash."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        variables = [*self.model.weights, *(self.model.optimizer.variables if self.model.optimizer else [])]
        state = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
        artifacts.require_space(self.folder, 3 * state, f"backing up epoch {epoch + 1}")


class GradientNorm(keras.callbacks.Callback):
    """Adds `grad_norm` to each epoch's logs: the global norm of the loss gradient on a fixed batch of training
    examples, in inference mode (no dropout), so epochs compare like with like.

    Listed before TensorBoard and History, it lands in both. An exact per-step norm would need a custom
    train_step in every model; one fixed batch per epoch is enough to see gradients explode or vanish.
    """

    def __init__(self, batch):
        super().__init__()
        self.x, self.y = batch
        self._norm = None

    def set_model(self, model):
        super().set_model(model)

        @tf.function  # traced once: an eager tape per epoch cost as much as a short epoch's validation
        def norm(x, y):
            with tf.GradientTape() as tape:  # the compiled loss, however it was given (a name, a Loss)
                loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=False), training=False)
            grads = [g for g in tape.gradient(loss, model.trainable_weights) if g is not None]
            return tf.linalg.global_norm(grads)
        self._norm = norm

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["grad_norm"] = float(self._norm(self.x, self.y))


class EpochLog(keras.callbacks.Callback):
    """Each epoch's logs, kept in a JSON file beside the resume state, so the curves of a resumed run start at
    epoch 1 (Keras' History holds only the epochs this process ran)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.curves = artifacts.read_json(path) if os.path.exists(path) else {}

    def on_epoch_begin(self, epoch, logs=None):
        # Only the epochs the resume state holds: a run killed after this log was written but before the state
        # was backed up repeats that epoch.
        self.curves = {name: values[:epoch] for name, values in self.curves.items()}

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.curves.setdefault(name, []).append(float(value))
        artifacts.write_json(self.path, self.curves)
