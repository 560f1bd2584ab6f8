"""TensorFlow internals: op determinism off again, an op's registered FLOP count, the gradient registry's entries,
and the coordination service of a multi-worker job. TESTED is the release series they were written for."""

import contextlib

import tensorflow as tf

from pipelines.upstream import require

TESTED = "2.21"


def _check() -> None:
    require("TensorFlow", tf.__version__, TESTED, "tensorflow")


@contextlib.contextmanager
def op_determinism(enabled: bool):
    """Deterministic kernels while the block runs (--deterministic), the process-wide switch left as it was found:
    only enabling it is public (tf.config.experimental.enable_op_determinism)."""
    if not enabled:
        yield
        return
    _check()
    from tensorflow.python.framework import config
    switched = not config.is_op_determinism_enabled()
    if switched:
        config.enable_op_determinism()
    try:
        yield
    finally:
        if switched:
            config.disable_op_determinism()


def graph_flops(graph: tf.Graph) -> int:
    """The FLOPs of every op of a graph by TensorFlow's registered cost functions (its profiler's): ops without one
    count zero."""
    _check()
    from tensorflow.python.framework import ops
    from tensorflow.python.util import deprecation
    total = 0
    with deprecation.silence():  # the cost functions call a deprecated shape helper, which warns once
        for op in graph.get_operations():
            try:
                total += ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0
            except ValueError:  # no cost registered for this op
                continue
    return total


def custom_gradients() -> set[str]:
    """The names of the CustomGradient-N entries in TensorFlow's global gradient registry."""
    _check()
    from tensorflow.python.framework import ops
    return {name for name in ops.gradient_registry.list() if name.startswith("CustomGradient-")}


def forget_gradients(names) -> None:
    """Unregisters gradient entries: there is no public way, and each holds a traced function's whole graph."""
    _check()
    from tensorflow.python.framework import ops
    for name in names:
        del ops.gradient_registry._registry[name]


def configure_coordination(cluster_spec: tf.train.ClusterSpec, jobs: dict[str, int], register_timeout_s: float,
                           heartbeat_timeout_ms: int) -> None:
    """The coordination service a multi-worker strategy starts, with bounded waits (its defaults wait forever)."""
    _check()
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(cluster_spec),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=name, num_tasks=count)
                          for name, count in jobs.items()],
        cluster_register_timeout_in_ms=int(register_timeout_s * 1000), heartbeat_timeout_in_ms=heartbeat_timeout_ms)
