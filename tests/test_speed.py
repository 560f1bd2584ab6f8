"""The speed settings and measures: FLOPs counted from the train step's graph, the per-epoch speed logs,
--precision, --steps_per_execution and the one-cycle schedule."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.conv import build_conv_classifier
from pipelines import precision
from pipelines.families.classifier import compile_classifier
from pipelines.schedules import WARMUP, learning_rate
from pipelines.flops import Throughput, sustained, train_flops_per_example
from tests.conftest import config_from_flags


def _dataset(n=64, batch=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _matmul_flops(filters, dense_units=128, classes=10):
    """The conv model's multiply-adds by formula: forward, and training = 3 × forward less the first layer's input
    gradient (nothing is upstream of it)."""
    side, channels, forward, first = 28, 1, 0, None
    for width in filters:
        conv = 2 * side * side * 9 * channels * width
        first = conv if first is None else first
        forward += conv
        side, channels = side // 2, width
    flat = side * side * channels
    forward += 2 * (flat * dense_units + dense_units * classes)
    return 3 * forward - first


def test_counted_train_flops_are_the_formulas_matmuls_plus_a_few_percent_of_elementwise_work():
    config = config_from_flags("--task=conv")
    model = build_conv_classifier((28, 28, 1), 10, conv_filters=(32, 64, 128))
    compile_classifier(model, config, steps_per_epoch=10)
    counted = train_flops_per_example(model, _dataset().element_spec, batch_size=64)
    formula = _matmul_flops((32, 64, 128))
    assert round(formula / 1e5) == 451  # 45.1 MFLOP per example, as the issue counted it
    assert formula <= counted <= 1.05 * formula
    assert model.optimizer.iterations.numpy() == 0  # counting runs nothing


def test_each_epoch_logs_its_speed_and_the_flops_per_example_are_recoverable():
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(_dataset(), validation_data=_dataset(seed=1), epochs=2, verbose=0, shuffle=False,
                        callbacks=[Throughput(examples=64, flops_per_example=1e6)])
    speed, examples = history.history["gflop_per_second"], history.history["examples_per_second"]
    assert len(speed) == 2 and all(s > 0 for s in speed)
    np.testing.assert_allclose(np.array(speed) * 1e9 / np.array(examples), 1e6)


def test_the_sustained_speed_leaves_out_the_first_epoch():
    assert sustained([1.0, 9.0, 5.0, 7.0]) == 7.0
    assert sustained([3.0]) == 3.0


def test_a_bfloat16_model_computes_in_bfloat16_and_ships_as_the_same_model_in_float32():
    def build():
        keras.utils.set_random_seed(0)
        return build_conv_classifier((28, 28, 1), 10, conv_filters=(8,))
    before = keras.config.dtype_policy().name
    with precision.policy("bfloat16"):
        model = build()
    assert keras.config.dtype_policy().name == before  # restored
    assert model.get_layer("block0_conv").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.weights)
    shipped = precision.in_float32(model, build)
    assert {layer.compute_dtype for layer in shipped.layers} == {"float32"}
    for a, b in zip(model.get_weights(), shipped.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = next(iter(_dataset()))[0]
    np.testing.assert_allclose(shipped(x), model(x), atol=0.1)  # bfloat16 keeps about 3 digits
    assert precision.in_float32(shipped, build) is shipped


def test_one_cycle_rises_from_zero_to_the_rate_then_falls_to_zero():
    config = dataclasses.replace(config_from_flags("--task=conv"), lr_schedule="one_cycle", learning_rate=3e-3,
                                 epochs=5)
    schedule = learning_rate(config, steps_per_epoch=100)
    warmup = round(WARMUP * 500)
    rates = [float(schedule(step)) for step in (0, warmup // 2, warmup, 250, 499)]
    assert rates[0] == 0 and rates[1] == pytest.approx(1.5e-3) and rates[2] == pytest.approx(3e-3)
    assert rates[2] > rates[3] > rates[4] and rates[4] < 1e-6


def _linear_classifier(steps_per_execution: int, steps_per_epoch: int) -> keras.Model:
    """A seeded one-layer classifier compiled as the dense task compiles, with `steps_per_execution`."""
    config = config_from_flags("--task=dense", f"--steps_per_execution={steps_per_execution}")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    compile_classifier(model, config, steps_per_epoch=steps_per_epoch)
    assert model.steps_per_execution == steps_per_execution
    return model


def test_steps_per_execution_changes_speed_not_the_trained_weights():
    weights = []
    for steps in (1, 4):
        model = _linear_classifier(steps, steps_per_epoch=8)
        model.fit(_dataset(n=256), epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_steps_per_execution_under_a_strategy_ends_each_pass_where_it_ends():
    """distribution.StepsPerExecution (Keras' own multi-step loop fails under a strategy) on a repeated split of 7
    batches, 3 steps a call: calls of 3, 3, 1 steps each epoch, the same weights and logs as one step per call on
    the finite split."""
    from pipelines import distribution
    results = []
    for steps in (1, 3):
        model = _linear_classifier(steps, steps_per_epoch=7)
        data = _dataset(n=7 * 32 - 5)  # 7 batches, the last one short
        if steps == 1:
            history = model.fit(data, validation_data=data, epochs=3, verbose=0, shuffle=False)
        else:
            model.train_function = distribution.StepsPerExecution(model, model.train_step, steps_per_pass=7)
            model.test_function = distribution.StepsPerExecution(model, model.test_step, steps_per_pass=7)
            assert model.train_function.counts == [3, 3, 1]
            history = model.fit(data.repeat(), steps_per_epoch=7, validation_data=data.repeat(),
                                validation_steps=7, epochs=3, verbose=0, shuffle=False)
            assert model.train_function.calls == 3 * 3
        results.append((model.get_weights(), history.history))
    (w1, h1), (w3, h3) = results
    for a, b in zip(w1, w3):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(h1[key], h3[key], rtol=1e-6)


def test_a_run_too_short_to_warm_up_starts_at_the_rate():
    config = dataclasses.replace(config_from_flags("--task=conv"), lr_schedule="one_cycle", learning_rate=3e-3,
                                 epochs=1)
    assert float(learning_rate(config, steps_per_epoch=2)(0)) == pytest.approx(3e-3)
