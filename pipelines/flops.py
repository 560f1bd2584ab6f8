"""Training compute: the FLOPs of one training example, and what a run achieves per second.

Counted from the graph TensorFlow runs, not from a formula per layer: the model's own `train_step` (forward,
loss, backward, optimizer update) is traced for one batch of the run's batch size and every op's cost is summed
by TensorFlow's registered cost functions (the ones its profiler uses). Elementwise ops count too; ops without a
registered cost (string lookups, random numbers) count zero. The optimizer update is shared by the batch.
"""

import time

import keras
import tensorflow as tf

from pipelines.upstream.tensorflow import graph_flops


def train_flops_per_example(model: keras.Model, element_spec, batch_size: int) -> float:
    """FLOPs of one training step on `batch_size` examples shaped like `element_spec` (a dataset's batched
    spec), divided by `batch_size`. The model must be compiled; tracing runs nothing and changes no weight."""
    def batched(spec: tf.TensorSpec) -> tf.TensorSpec:
        return tf.TensorSpec([batch_size, *spec.shape[1:]], spec.dtype)
    spec = tf.nest.map_structure(batched, element_spec)
    step = tf.function(model.train_step, autograph=False)
    return graph_flops(step.get_concrete_function(spec).graph) / batch_size


class Throughput(keras.callbacks.Callback):
    """Adds each epoch's training speed to its logs (so to history.json and TensorBoard): `examples_per_second`
    and `gflop_per_second`, timed from the epoch's start to its validation (or end), over `examples`."""

    def __init__(self, examples: int, flops_per_example: float):
        super().__init__()
        self.examples, self.flops_per_example = examples, flops_per_example
        self.start = self.seconds = None

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.seconds = time.perf_counter(), None

    def on_test_begin(self, logs=None):  # fit's validation: the epoch's training is done
        if self.start is not None and self.seconds is None:
            self.seconds = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.seconds if self.seconds is not None else time.perf_counter() - self.start
        if logs is not None and seconds > 0:
            logs["examples_per_second"] = self.examples / seconds
            logs["gflop_per_second"] = self.examples * self.flops_per_example / seconds / 1e9
        self.start = None


def sustained(per_epoch: list[float]) -> float:
    """The median of a per-epoch speed over the epochs after the first (which traces the step and fills the
    input cache), or the first when it is the only one."""
    steady = sorted(per_epoch[1:] or per_epoch)
    return steady[len(steady) // 2]
