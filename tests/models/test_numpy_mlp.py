"""The NumPy network: its gradients against central differences, its forward pass against the Keras model holding
the same weights, its softmax and cross-entropy where naive ones overflow, and its SGD step."""

import numpy as np

from models.dense import build_dense_classifier
from models.numpy_mlp import MLP, SGD, cross_entropy, softmax, to_keras


def loss_of(mlp, x, y, smoothing):
    return cross_entropy(mlp.predict(x), y, smoothing)[0]


def test_backward_pass_matches_central_differences_in_float64():
    rng = np.random.default_rng(0)
    mlp = MLP.initialise([12, 7, 5, 3], rng, dtype=np.float64)
    for b in mlp.biases:  # non-zero biases, so their gradients are exercised away from the start
        b += rng.standard_normal(b.shape) * 0.1
    x, y = rng.uniform(0, 255, (6, 3, 4)), rng.integers(0, 3, 6)
    logits, cache = mlp.forward(x)
    _, dlogits = cross_entropy(logits, y, 0.1)
    grad_w, grad_b = mlp.backward(dlogits, cache)
    eps = 1e-6
    for params, grads in ((mlp.weights, grad_w), (mlp.biases, grad_b)):
        for p, g in zip(params, grads):
            numeric = np.zeros_like(p)
            for index in np.ndindex(p.shape):
                saved = p[index]
                p[index] = saved + eps
                up = loss_of(mlp, x, y, 0.1)
                p[index] = saved - eps
                down = loss_of(mlp, x, y, 0.1)
                p[index] = saved
                numeric[index] = (up - down) / (2 * eps)
            error = np.linalg.norm(g - numeric) / max(np.linalg.norm(g) + np.linalg.norm(numeric), 1e-12)
            assert error <= 1e-6, error


def test_forward_pass_equals_the_keras_model_with_the_same_weights():
    rng = np.random.default_rng(1)
    mlp = MLP.initialise([784, 32, 16, 10], rng)
    model = build_dense_classifier((28, 28, 1), 10, hidden_units=(32, 16))
    to_keras(mlp, model)
    x = rng.uniform(0, 255, (64, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(mlp.predict(x), model.predict(x, verbose=0), atol=1e-5)


def test_softmax_and_cross_entropy_stay_finite_where_naive_ones_overflow():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])
    probabilities = softmax(logits)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[:, :2], [[1, 0], [0, 1]])
    loss, grad = cross_entropy(logits, np.array([2, 0]))
    assert np.isfinite(loss) and loss > 1000  # both wrong by 1000 or 2000 nats, not inf
    assert np.isfinite(grad).all()
    assert cross_entropy(logits, np.array([0, 1]))[0] < 1e-6  # both right and sure


def test_softmax_normalises_over_the_classes_not_the_batch():
    probabilities = softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(probabilities.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(probabilities[1], [1 / 3] * 3)


def test_sgd_with_momentum_moves_the_networks_own_arrays():
    w = np.array([1.0, 2.0])
    sgd = SGD([w], momentum=0.9)
    sgd.step([w], [np.array([1.0, -1.0])], 0.1)
    np.testing.assert_allclose(w, [0.9, 2.1])
    sgd.step([w], [np.array([1.0, -1.0])], 0.1)  # velocity 0.9 * -0.1 - 0.1 = -0.19
    np.testing.assert_allclose(w, [0.71, 2.29])


def test_he_initialisation_keeps_the_variance_of_a_relu_layer():
    mlp = MLP.initialise([1000, 1000, 10], np.random.default_rng(2))
    assert abs(mlp.weights[0].var() - 2 / 1000) < 1e-4
    assert not any(b.any() for b in mlp.biases)
