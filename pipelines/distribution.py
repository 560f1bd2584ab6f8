"""--distribute: data-parallel training on tf.distribute, the engine TensorFlow users already run.

none: one process, TensorFlow's default strategy. mirrored: MirroredStrategy over this machine's devices (its GPUs;
on a machine without, its CPU, split into --cpu_replicas logical devices). multi_worker: MultiWorkerMirroredStrategy
over the processes TF_CONFIG names (Kubernetes' TFJob, Vertex AI, plain VMs), the same command on every worker.

--batch_size is the global batch: each of N replicas takes batch_size / N examples of it, the gradients are
averaged across replicas, and the optimizer takes the step one process would take on the whole batch, so the
learning rate needs no change. (Scaling out by raising --batch_size N-fold is the linear scaling rule's case:
raise --learning_rate with it; the one-cycle schedule already warms up.)

Why Keras' own `fit` with a small patch (of three ways that trained bit-identical weights here): every callback
(resume, checkpoints, TensorBoard, the divergence check), the GAN's own `train_step` and the classifiers' compile
work unchanged under every strategy; a custom loop would write `fit` again, and tf-keras would be a second Keras.
The patch (`keras_multi_worker_fixes`) touches two functions of Keras' TensorFlow trainer only while a
multi-worker `fit` runs, and only on the Keras version it was written for.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from pipelines.errors import PipelineError
from pipelines.upstream import keras as keras_internals
from pipelines.upstream import tensorflow as tf_internals

MODES = ("none", "mirrored", "multi_worker")
TF_CONFIG = "TF_CONFIG"
EXAMPLE_TF_CONFIG = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                     '"index": 0}}')


class WorkerLost(PipelineError):
    """A peer of a multi-worker job stopped answering. The process must end without the interpreter's teardown,
    which would wait on TensorFlow's threads that wait on the lost worker."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in the job: its task and the addresses of all."""
    jobs: dict[str, tuple[str, ...]]  # job name → host:port of each task
    task_type: str
    index: int

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule: the `chief` task if the cluster has one, else worker 0."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.index == 0

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.index}"

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.index]

    @property
    def input_pipeline(self) -> tuple[int, int]:
        """(this worker's input pipeline, how many there are), in TensorFlow's order: the chief, then the workers."""
        order = [(job, i) for job in ("chief", "worker") for i in range(len(self.jobs.get(job, ())))]
        return order.index((self.task_type, self.index)), len(order)

    def peers(self) -> list[str]:
        return [a for tasks in self.jobs.values() for a in tasks if a != self.address]


def read_tf_config(text: str | None) -> Cluster:
    """TF_CONFIG as a Cluster; anything TensorFlow would misread or wait on forever is one line."""
    fix = f"set it on every worker, e.g. TF_CONFIG='{EXAMPLE_TF_CONFIG}'"
    if not text:
        raise PipelineError(f"--distribute=multi_worker reads the cluster from TF_CONFIG, which is not set: {fix}")
    try:
        spec = json.loads(text)
        jobs = {name: tuple(addresses) for name, addresses in spec["cluster"].items()}
        task_type, index = spec["task"]["type"], spec["task"]["index"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise PipelineError(f"TF_CONFIG is malformed ({type(e).__name__}: {e}): {fix}") from None
    unknown = sorted(set(jobs) - {"chief", "worker"})
    if unknown or "worker" not in jobs:
        raise PipelineError(f"TF_CONFIG's cluster has jobs {sorted(jobs)}: multi_worker training takes 'worker' "
                            "addresses (and at most one 'chief'); " + fix)
    for name, addresses in jobs.items():
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise PipelineError(f"TF_CONFIG's {name} address {address!r} is not host:port: {fix}")
    if task_type not in jobs:
        raise PipelineError(f"TF_CONFIG's task type {task_type!r} is not a job of its cluster ({', '.join(jobs)})")
    if not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise PipelineError(f"TF_CONFIG's task index {index!r} is out of range: cluster.{task_type} has "
                            f"{len(jobs[task_type])} addresses (index 0 to {len(jobs[task_type]) - 1})")
    return Cluster(jobs, task_type, index)


# A watchdog of its own process: while TensorFlow waits for the cluster it holds the GIL, so no thread of this
# process could run. It waits for its stdin to close (the cluster joined); past the deadline it names the peers
# that do not answer and ends the waiting process.
_WATCHDOG = """
import os, select, signal, socket, sys
pid, seconds, name, peers = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
if select.select([sys.stdin], [], [], seconds)[0]:
    sys.exit(0)
def answers(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False
missing = [a for a in peers if not answers(a)] or peers
print(f"error: {name} waited {seconds:g} s for the cluster and {', '.join(missing)} did not join: start the same "
      "command on every worker of TF_CONFIG (or raise --cluster_timeout)", file=sys.stderr, flush=True)
os.kill(pid, signal.SIGKILL)
"""


@contextlib.contextmanager
def _deadline(seconds: float, cluster: Cluster):
    """TensorFlow waits for every worker without limit: past `seconds`, name the peers that do not answer and end
    this process (it cannot be interrupted while TensorFlow waits)."""
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), cluster.name,
                                 *cluster.peers()], stdin=subprocess.PIPE)
    try:
        yield
    finally:
        watchdog.stdin.close()
        watchdog.wait()


# How soon a lost worker fails the job on the others: TensorFlow's coordination service misses its heartbeats.
HEARTBEAT_TIMEOUT_MS = 10_000


def _configure_coordination(cluster: Cluster, register_timeout_s: float) -> None:
    """The coordination service MultiWorkerMirroredStrategy would start, with bounded waits: a worker that dies
    fails the job on every other worker within HEARTBEAT_TIMEOUT_MS instead of leaving them hanging."""
    spec = tf.train.ClusterSpec({name: list(addresses) for name, addresses in cluster.jobs.items()})
    tf_internals.configure_coordination(spec, {name: len(addresses) for name, addresses in cluster.jobs.items()},
                                        register_timeout_s, HEARTBEAT_TIMEOUT_MS)


def make_strategy(mode: str, cpu_replicas: int = 1, cluster_timeout: float = 300.0):
    """The strategy --distribute names, and this process's Cluster (None unless multi_worker). Called before any
    other TensorFlow work: both strategies configure the runtime, which can only happen before it starts."""
    if mode == "none":
        return tf.distribute.get_strategy(), None
    if mode == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy(), None
        cpu = tf.config.list_physical_devices("CPU")[0]
        if cpu_replicas > 1:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices), None
    cluster = read_tf_config(os.environ.get(TF_CONFIG))
    _configure_coordination(cluster, cluster_timeout)
    with _deadline(cluster_timeout, cluster):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        # The first collective is where TensorFlow waits for the others: inside the deadline too.
        tf.function(lambda: strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None),
                    autograph=False)()
    return strategy, cluster


def is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


class StepsPerExecution:
    """Keras' `steps_per_execution` under a strategy, where Keras 3.15's own multi-step loop fails (a placeholder
    its while loop never feeds, mirrored and multi_worker alike): up to `model.steps_per_execution` steps in one
    traced call, the logs of the last reduced once. Keras calls a train or test function once per
    `steps_per_execution` steps of a pass, so the pass's last call runs what is left of it and no call reads into the
    next pass of a repeated split. Set as the model's `train_function` / `test_function` after compiling."""

    def __init__(self, model: keras.Model, step_function, steps_per_pass: int):
        k = model.steps_per_execution
        self.counts = [k] * (steps_per_pass // k) + ([steps_per_pass % k] if steps_per_pass % k else [])
        self.calls = 0
        strategy = model.distribute_strategy

        def run(iterator, count):
            def step(i):
                strategy.run(step_function, args=(next(iterator),))
                return i + 1
            tf.while_loop(lambda i: i < count - 1, step, [tf.constant(0)])
            outputs = strategy.run(step_function, args=(next(iterator),))
            return keras_internals.reduce_per_replica(outputs, strategy)
        self._run = tf.function(run, autograph=False)

    def __call__(self, iterator):
        count = self.counts[self.calls % len(self.counts)]
        self.calls += 1
        return self._run(iterator, tf.constant(count))


class AverageMovingStatistics(keras.callbacks.Callback):
    """BatchNormalization across replicas for one all-reduce per variable per epoch, not five per layer per step.

    Each replica normalizes a batch with its own shard's statistics (what PyTorch's DDP does by default) and its
    moving statistics follow them; once an epoch's steps are done (before validation) they are replaced by their
    mean over the replicas, so every worker validates, backs up and saves the same model. Keras' synchronized
    BatchNorm instead all-reduces three statistics in every layer's forward pass and two in its backward pass, and
    two workers were then slower than one (benchmarks/distributed.py; docs/distributed.md).
    """

    def __init__(self, strategy: tf.distribute.Strategy):
        super().__init__()
        self.strategy = strategy
        self._average, self._averaged_epoch = None, None

    def _build(self):
        variables = [v.value for layer in all_layers(self.model) if isinstance(layer, keras.layers.BatchNormalization)
                     for v in (layer.moving_mean, layer.moving_variance)]

        @tf.function
        def average():
            for variable in variables:
                local = self.strategy.run(lambda v=variable: tf.identity(v))  # each replica's own value
                variable.assign(self.strategy.reduce(tf.distribute.ReduceOp.MEAN, local, axis=None))
        return average

    def _average_once(self, epoch):
        if self._averaged_epoch != epoch:
            self._average = self._average or self._build()
            self._average()
            self._averaged_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_test_begin(self, logs=None):  # fit's validation: the epoch's training is done
        self._average_once(self.epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._average_once(epoch)


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of a model, the layers of nested models included."""
    return [inner for layer in model.layers
            for inner in ([layer, *all_layers(layer)] if isinstance(layer, keras.Model) else [layer])]


def steps_per_execution(model: keras.Model, train_steps: int, validation_steps: int) -> None:
    """The model's train and test functions, each running up to `steps_per_execution` steps a call under the
    strategy (StepsPerExecution): Keras' own multi-step loop fails under one."""
    model.train_function = StepsPerExecution(model, model.train_step, train_steps)
    model.test_function = StepsPerExecution(model, model.test_step, validation_steps)


def weights_digest(model: keras.Model) -> str:
    """A short hash of every weight's bytes: what the workers print, so equal training is checked across them."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


keras_multi_worker_fixes = keras_internals.multi_worker_fixes  # used around a multi-worker fit (stages/train.py)
