"""The dense task's network written in NumPy alone: what Keras does for `build_dense_classifier`, by hand.

    x (pixels 0..255) → x / 255 → flatten → [Dense + ReLU] per hidden layer → Dense → logits → softmax

Everything a framework hides is here in a few lines each: He initialisation, the forward pass, a numerically stable
softmax cross-entropy (with the same label smoothing as the Keras runs), the backward pass by the chain rule,
inverted dropout, and mini-batch SGD with momentum. Its weights have the Keras model's shapes and order, so
`to_keras` turns the trained network into the model every later stage (evaluate, export, verify) takes.
"""

import dataclasses

import numpy as np

# Plain SGD needs a larger step than Adam's 3e-3 (the Keras trainer's): docs/tasks.md has the figures.
LEARNING_RATE = 0.05
MOMENTUM = 0.9


@dataclasses.dataclass
class MLP:
    """Weights (in, out) and biases (out,) per layer, the last one giving the logits."""
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def initialise(cls, sizes: list[int], rng: np.random.Generator, dtype=np.float32) -> "MLP":
        """He initialisation: weights ~ N(0, 2 / fan_in) keep a ReLU layer's output variance near its input's, so
        the signal neither dies nor explodes with depth; biases start at zero."""
        weights = [(rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
                   for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        return cls(weights, [np.zeros(n_out, dtype) for n_out in sizes[1:]])

    def forward(self, x: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None):
        """Logits for a batch of images, and what the backward pass needs: each layer's input and, for a hidden
        layer, the mask its ReLU (and dropout) applied. Dropout only when given an `rng` (training)."""
        h = x.reshape(len(x), -1) / 255.0
        cache = []
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            z = h @ w + b
            mask = (z > 0).astype(h.dtype)  # ReLU(z) = z * mask, and its derivative is the mask
            if dropout and rng is not None:
                # Inverted dropout: drop units with probability p and scale the rest by 1 / (1 - p), so nothing
                # changes at inference (what Keras' Dropout does).
                mask *= (rng.random(z.shape) >= dropout) / (1.0 - dropout)
            cache.append((h, mask))
            h = z * mask
        cache.append((h, None))
        return h @ self.weights[-1] + self.biases[-1], cache

    def backward(self, dlogits: np.ndarray, cache) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients of the loss by every weight and bias, from the gradient by the logits (chain rule, last
        layer first)."""
        grad_w, grad_b = [], []
        delta = dlogits
        for i in reversed(range(len(self.weights))):
            h, _ = cache[i]
            grad_w.insert(0, h.T @ delta)
            grad_b.insert(0, delta.sum(axis=0))  # a bias's gradient sums over the batch: (out,), like the bias
            if i:
                delta = (delta @ self.weights[i].T) * cache[i - 1][1]  # through the ReLU (and dropout) mask
        return grad_w, grad_b

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Over the classes (the last axis), shifted by each row's maximum so exp never overflows."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0):
    """Mean cross-entropy against smoothed one-hot targets, and its gradient by the logits.

    Computed from log-softmax (logits - logsumexp), never log(softmax): a probability that underflows to 0 would
    give log(0) = -inf. The gradient of softmax + cross-entropy together is (probabilities - targets) / batch.
    """
    n, classes = logits.shape
    targets = np.full((n, classes), label_smoothing / classes, logits.dtype)
    targets[np.arange(n), labels] += 1.0 - label_smoothing
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    loss = -(targets * log_probs).sum(axis=-1).mean()
    return loss, (np.exp(log_probs) - targets) / n


class SGD:
    """Mini-batch SGD with momentum: v ← μv − lr·g, θ ← θ + v (the form Keras' SGD uses)."""

    def __init__(self, params: list[np.ndarray], momentum: float = MOMENTUM):
        self.momentum = momentum
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], learning_rate: float) -> None:
        for p, g, v in zip(params, grads, self.velocity):
            v *= self.momentum
            v -= learning_rate * g
            p += v  # in place: `params` are the network's own arrays


def to_keras(mlp: MLP, model) -> None:
    """Copies the weights into the Keras dense model (build_dense_classifier's layers, same order and shapes)."""
    dense = [layer for layer in model.layers if layer.weights]
    if len(dense) != len(mlp.weights):
        raise ValueError(f"the Keras model has {len(dense)} weighted layers, the NumPy network {len(mlp.weights)}")
    for layer, w, b in zip(dense, mlp.weights, mlp.biases):
        layer.set_weights([w, b])
