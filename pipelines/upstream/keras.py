"""Keras internals: the mend that lets Keras 3's `fit` train under MultiWorkerMirroredStrategy, the per-replica
reduction the distributed steps-per-execution loop shares with it, and an optimizer's key of a variable.

The mended functions are checked by the SHA-256 of their source as written for TESTED: a Keras whose functions
differ is refused in one line instead of patched blindly (and tests/upstream/test_keras.py fails).
"""

import contextlib
import hashlib
import inspect

import keras
import tensorflow as tf

from pipelines.errors import PipelineError
from pipelines.upstream import require

TESTED = "3.15"
PATCHED_SOURCE = {
    "_maybe_symbolic_build": "92a504f5eba9b29f",
    "reduce_per_replica": "2e7d54b1e6edc29a",
    "_symbolic_build": "96220cc3b88fe768",  # whose conditions _unbuilt repeats
    "EpochIterator.reset": "b73c9f2daadc29b4",
}


def _trainer():
    from keras.src.backend.tensorflow import trainer
    return trainer


def _epoch_iterator():
    from keras.src.trainers import epoch_iterator
    return epoch_iterator.EpochIterator


def patched_source_digests() -> dict[str, str]:
    t = _trainer()
    functions = {"_maybe_symbolic_build": t.TensorFlowTrainer._maybe_symbolic_build,
                 "reduce_per_replica": t.reduce_per_replica,
                 "_symbolic_build": t.TensorFlowTrainer._symbolic_build,
                 "EpochIterator.reset": _epoch_iterator().reset}
    return {name: hashlib.sha256(inspect.getsource(f).encode()).hexdigest()[:16] for name, f in functions.items()}


def reduce_per_replica(outputs, strategy):
    """A step's outputs reduced over the replicas as Keras' own train function reduces them."""
    require("Keras", keras.__version__, TESTED, "keras")
    return _trainer().reduce_per_replica(outputs, strategy, reduction="auto")


def _unbuilt(model: keras.Model) -> bool:
    """Whether Keras' `_symbolic_build` has anything to build (its own conditions)."""
    return (not all(layer.built for layer in model._flatten_layers())
            or any(part is not None and not part.built
                   for part in (model._compile_metrics, model._compile_loss, model.optimizer)))


def _mended_build(original):
    """(1) The symbolic build passes the whole (x, y) batch to `strategy.reduce`, which takes one tensor: build from
    this worker's own slice, and only when something is unbuilt (Keras pulls a batch for it before every
    validation, for nothing once the model is built, and pulling makes a new distributed iterator)."""
    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and not _unbuilt(self):
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(
                    lambda x: self.distribute_strategy.experimental_local_results(x)[0]
                    if isinstance(x, tf.distribute.DistributedValues) else x, next(it))
                break
        return original(self, data_batch=data_batch)
    return maybe_symbolic_build


def _mended_reduce(original, trainer):
    """(2) Scalar logs are reduced along an axis 0 they do not have: reduce them whole, all of a step's in one
    all-reduce (each all-reduce is a round trip between the workers)."""
    def reduce(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            flat = tf.nest.flatten(values)
            scalars = [v for v in flat if not v.shape.rank]
            means = iter(strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.MEAN, [(v, v) for v in scalars]))
            return tf.nest.pack_sequence_as(values, [
                strategy.experimental_local_results(next(means))[0] if not v.shape.rank
                else strategy.reduce("MEAN", v, axis=0) for v in flat])
        return original(values, strategy, reduction)
    return reduce


def _mended_reset(original):
    """(3) Before every validation Keras drops the validation iterator and makes a new one, and deleting a live
    distributed iterator takes a large share of a short epoch: keep an iterator over an endless (repeated) split,
    read a fixed number of steps per pass, and let it read on."""
    def reset(self):
        if self._current_iterator is not None and self.steps_per_epoch and self.data_adapter.num_batches is None:
            self._steps_seen = 0
            return
        original(self)
    return reset


@contextlib.contextmanager
def multi_worker_fixes():
    """Keras 3 `fit` under MultiWorkerMirroredStrategy, mended (keras-team/keras#20585) while the block runs, and
    only on the Keras whose functions it was written for."""
    if patched_source_digests() != PATCHED_SOURCE:
        raise PipelineError(f"this Keras ({keras.__version__}) changed the trainer functions dlpipe mends for "
                            f"multi-worker training (written for Keras {TESTED}): install keras=={TESTED}.* or "
                            "use --distribute=mirrored")
    trainer, iterator = _trainer(), _epoch_iterator()
    originals = (trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica, iterator.reset)
    trainer.TensorFlowTrainer._maybe_symbolic_build = _mended_build(originals[0])
    trainer.reduce_per_replica = _mended_reduce(originals[1], trainer)
    iterator.reset = _mended_reset(originals[2])
    try:
        yield
    finally:
        trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica, iterator.reset = originals


def variable_key(optimizer: keras.optimizers.Optimizer, variable) -> str:
    """The optimizer's own key of a variable: what its slots are looked up by, and the one name of the variable that
    holds for the backend's variable an `update_step` is handed as for the Keras variable a model lists."""
    require("Keras", keras.__version__, TESTED, "keras")
    return optimizer._var_key(variable)
