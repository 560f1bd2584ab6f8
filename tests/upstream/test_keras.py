"""Keras internals behind pipelines/upstream/keras.py: each test fails when Keras changes underneath a use."""

import keras
import tensorflow as tf

from pipelines.upstream import keras as keras_internals


def test_the_keras_functions_the_multi_worker_fix_replaces_are_the_ones_it_was_written_for():
    """Fails when Keras changes underneath the fix: read the new functions, mend or drop the fix, update the hashes."""
    assert keras.__version__.startswith(keras_internals.TESTED)
    assert keras_internals.patched_source_digests() == keras_internals.PATCHED_SOURCE


def test_under_the_fix_an_endless_split_keeps_its_iterator_across_passes_and_a_finite_one_does_not():
    """Keras drops the validation iterator before every pass; the fix keeps one over a repeated split, which then
    reads on: each pass is one whole pass over the split."""
    from keras.src.backend.tensorflow.trainer import TFEpochIterator
    split = tf.data.Dataset.range(10).shuffle(10, seed=1, reshuffle_each_iteration=True).batch(4)  # 3 steps

    def read_passes(dataset, steps):
        it = TFEpochIterator(x=dataset, steps_per_epoch=steps, shuffle=False,
                             distribute_strategy=tf.distribute.get_strategy())
        seen, iterators = [], []
        for _ in range(2):
            it.reset()
            values = []
            for _, _, iterator in it:
                values += [int(v) for v in next(iterator)]
            seen.append(values)
            iterators.append(it._current_iterator)
        return seen, iterators

    with keras_internals.multi_worker_fixes():
        seen, iterators = read_passes(split.repeat(), 3)
        assert [sorted(values) for values in seen] == [list(range(10))] * 2 and seen[0] != seen[1]
        assert iterators[0] is iterators[1]
        _, iterators = read_passes(split, 3)
        assert iterators[0] is not iterators[1]
    _, iterators = read_passes(split.repeat(), 3)
    assert iterators[0] is not iterators[1]  # outside the fix, Keras' own reset


def test_an_optimizer_keys_the_backend_variable_update_step_is_given_as_the_model_lists_it():
    """What FineTuneAdam (models/backbones.py) relies on: the key of a model's variable is the key of the variable
    the optimizer's update_step receives for it."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    seen = []

    class Keys(keras.optimizers.SGD):
        def update_step(self, gradient, variable, learning_rate):
            seen.append(keras_internals.variable_key(self, variable))
            super().update_step(gradient, variable, learning_rate)
    optimizer = Keys(0.1)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(tf.ones((4, 2)), tf.ones((4, 1)), epochs=1, verbose=0)
    assert set(seen) == {keras_internals.variable_key(optimizer, v) for v in model.trainable_variables}
