"""Ctrl-C and SIGTERM: a KeyboardInterrupt where the program stands, except inside training, where it is raised at
the end of the running step instead.

TensorFlow runs a step in C++ while Python waits; a KeyboardInterrupt raised in the Python around it (a tf.data
iterator's wrapper, a context TensorFlow keeps) left TensorFlow's state half-updated, and the process sometimes
crashed on its way out (a segmentation fault in one suite run of three on a loaded 2-core machine). At a step's end
nothing of TensorFlow's is in flight. A second signal while one waits is raised at once: a user who insists gets
the program back.
"""

import contextlib
import signal

import keras


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `kill`, a job scheduler's stop, a container's shutdown), handled as Ctrl-C is."""


_pending: list[int] = []
_deferring = False


def _raise(signum: int):
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum, frame):
    if _deferring and not _pending:
        _pending.append(signum)
        return
    _raise(signum)


def install() -> None:
    """Ctrl-C and SIGTERM handled here. A SIGINT the process was started with ignored (a background job's) stays
    ignored, as Python leaves it."""
    signal.signal(signal.SIGTERM, _handler)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)


@contextlib.contextmanager
def at_step_ends():
    """Within it, a signal waits for AtStepEnd (or the block's end) to be raised."""
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    _raise_pending()


def _raise_pending() -> None:
    if _pending:
        _raise(_pending.pop())


class AtStepEnd(keras.callbacks.Callback):
    """Raises a signal that arrived during a training step once the step is done (last among the callbacks, so an
    epoch's backup is written first)."""

    def on_train_batch_end(self, batch, logs=None):
        _raise_pending()

    def on_epoch_end(self, epoch, logs=None):
        _raise_pending()
