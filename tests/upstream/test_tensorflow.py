"""TensorFlow internals behind pipelines/upstream/tensorflow.py: each test fails when TensorFlow changes underneath
a use (a symbol gone, a behaviour changed), and a release other than the tested one is one line."""

import pytest
import tensorflow as tf

from pipelines.errors import PipelineError
from pipelines.upstream import require
from pipelines.upstream import tensorflow as tf_internals


def test_the_installed_tensorflow_is_the_tested_one_and_another_is_one_line():
    tf_internals._check()
    with pytest.raises(PipelineError, match=r"TensorFlow 2.99.0 is installed, .* written for 2.21: install "
                                            r"tensorflow==2.21.\*"):
        require("TensorFlow", "2.99.0", "2.21", "tensorflow")


def test_op_determinism_is_switched_on_for_the_block_and_left_as_it_was_found():
    from tensorflow.python.framework import config
    assert not config.is_op_determinism_enabled()
    with tf_internals.op_determinism(True):
        assert config.is_op_determinism_enabled()
    assert not config.is_op_determinism_enabled()
    with tf_internals.op_determinism(False):
        assert not config.is_op_determinism_enabled()


def test_a_matmul_costs_its_registered_flops():
    graph = tf.function(lambda a, b: tf.linalg.matmul(a, b)).get_concrete_function(
        tf.TensorSpec((8, 16)), tf.TensorSpec((16, 4))).graph
    assert tf_internals.graph_flops(graph) == 2 * 8 * 16 * 4


def test_a_custom_gradient_registered_by_a_traced_function_can_be_forgotten():
    before = tf_internals.custom_gradients()

    @tf.custom_gradient
    def double(x):
        return 2 * x, lambda dy: 2 * dy
    tf.function(lambda x: double(x)).get_concrete_function(tf.TensorSpec(()))
    made = tf_internals.custom_gradients() - before
    assert made
    tf_internals.forget_gradients(made)
    assert tf_internals.custom_gradients() == before


def test_the_coordination_service_is_configured_with_the_fences_leader_jobs_and_bounded_waits(monkeypatch):
    """On a context of its own: the process's context is configured once (tests/e2e/test_distributed.py runs that),
    and a context only reads its configuration when it starts."""
    from tensorflow.python.eager import context
    fresh = context.Context()
    monkeypatch.setattr(context, "context", lambda: fresh)
    spec = tf.train.ClusterSpec({"chief": ["h:0"], "worker": ["h:1", "h:2"]})
    tf_internals.configure_coordination(spec, {"chief": 1, "worker": 2}, register_timeout_s=1.5,
                                        heartbeat_timeout_ms=4000)
    configured = fresh.coordination_service
    assert configured.service_type == "standalone"
    assert configured.service_leader == "/job:chief/replica:0/task:0"
    assert [(job.name, job.num_tasks) for job in configured.coordinated_job_list] == [("chief", 1), ("worker", 2)]
    assert configured.cluster_register_timeout_in_ms == 1500 and configured.heartbeat_timeout_in_ms == 4000
