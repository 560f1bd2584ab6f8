"""How close generated images are to real ones, measured without labels and without downloading anything.

Distances between sets of images are taken in the features of a network: the Fréchet distance (FID's formula)
and the kernel distance (KID: the unbiased squared MMD under a cubic polynomial kernel, averaged over subsets;
unlike the Fréchet distance it is unbiased, so it can be compared across sample sizes and holds on small sets).

The network, when the data have no labels, is RANDOM_FEATURES: a fixed convolutional network whose weights are
drawn from a seeded NumPy generator (the same on every machine, never trained, nothing to download), its features
each block's mean and maximum activation per channel (the maximum sees blur the mean misses). docs/gan.md has the
measurements it is chosen on: it ranks real images above blurred ones, a trained generator above an untrained one,
and a collapsed generator (a few pictures repeated) far from the real ones; it does not see which shapes are drawn
(a generator of one kind of object among several scores like the real set): the classifier's features, on
labelled data, do.

`coverage` asks what a distance can hide (a distance over means and covariances rated a collapsed generator, one
plaid repeated, 0.24 of an untrained one's): do the samples look like the pictures, all the pictures? In each
picture shrunk to COVERAGE_SIDE pixels a side (what a person sees first: layout and colour), k-nearest-neighbour
precision and recall (Kynkäänniemi et al. 2019: the share of samples inside the real pictures' manifold, and of
real pictures inside the samples'), and the samples' diversity (their mean pairwise distance over the real
pictures'), each beside what held-out real pictures score, with a verdict when the samples collapse.

`memorization` answers the other question a distance cannot: does the generator copy its training images? For a
sample of generated images, how much nearer (in pixels) each is to its nearest training image than to the next,
against the same for test images (real pictures the generator never saw).
"""

from typing import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf
from keras import layers

# The label-free feature network: its block widths and the seed its weights are drawn from. Changing either makes
# another measure: the version is recorded in metrics.json beside the distances.
RANDOM_FEATURES = {"name": "random_conv", "version": 2, "widths": (32, 64, 128, 256), "seed": 0}
KID_SUBSETS, KID_SUBSET_SIZE = 10, 1000
MEMORIZATION_SIDE = 32     # images are compared at most this many pixels a side
MEMORIZATION_SAMPLES = 500  # generated images checked
COPY_QUANTILE = 0.05        # a generated image as set apart by one training image as 5% of test images is "a copy"
COPIED_FLAG = 0.25          # … and a generator with this share of copies (5 times the test images') is flagged
COVERAGE_SIDE = 16          # pictures are compared at this many pixels a side for precision, recall and diversity
COVERAGE_NEIGHBOURS = 3     # k: a picture's manifold ball reaches its k-th nearest neighbour (the paper's k)
COVERAGE_SAMPLES = 1000     # at most this many pictures of each set
# Collapsed: samples this much less diverse than real pictures, or covering this little of them. Measured on the
# issue's photos: a collapsed generator scored diversity 0.125 and recall 0.0, a poor but varied one 1.0 and 0.435.
COLLAPSED_DIVERSITY, COLLAPSED_RECALL = 0.5, 0.1


def random_feature_network(image_shape) -> keras.Model:
    """Pixels 0..255 → RANDOM_FEATURES' features: blocks of a 3×3 convolution (He-scaled normal weights from the
    seed, no bias), ReLU and 2×2 average pooling; each block's mean and maximum activation per channel, joined."""
    rng = np.random.default_rng(RANDOM_FEATURES["seed"])
    pixels = keras.Input(shape=tuple(image_shape), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(pixels)
    pooled, channels = [], image_shape[-1]
    for i, width in enumerate(RANDOM_FEATURES["widths"]):
        conv = layers.Conv2D(width, 3, padding="same", use_bias=False, activation="relu", name=f"random{i}")
        x = conv(x)
        conv.set_weights([rng.standard_normal((3, 3, channels, width)).astype(np.float32)
                          * np.sqrt(2.0 / (9 * channels))])
        pooled += [layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)]
        x = layers.AveragePooling2D(2, padding="same")(x)
        channels = width
    return keras.Model(pixels, layers.Concatenate()(pooled), name="random_features")


def embedding(network: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    return lambda pixels: network.predict(pixels, batch_size=250, verbose=0).astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½), with Tr((Σa Σb)^½) from the eigenvalues of Σa Σb (real, ≥ 0 for
    covariance matrices; tiny negative or imaginary parts are round-off)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eigenvalues = np.linalg.eigvals(cov_a @ cov_b)
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def kernel_distance(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased MMD² between a and b under k(x, y) = (x·y / d + 1)³, its mean and standard deviation over
    KID_SUBSETS random subsets of each, of KID_SUBSET_SIZE or (fewer images) half the smaller set."""
    rng, d = np.random.default_rng(seed), a.shape[1]
    m = max(2, min(KID_SUBSET_SIZE, min(len(a), len(b)) // 2))
    values = []
    for _ in range(KID_SUBSETS):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _small(pixels: np.ndarray) -> np.ndarray:
    """Pixels scaled to 0..1 and shrunk (area-averaged) to at most MEMORIZATION_SIDE a side, flattened."""
    height, width = pixels.shape[1:3]
    factor = max(1, int(np.ceil(max(height, width) / MEMORIZATION_SIDE)))
    if factor > 1:
        pixels = tf.image.resize(pixels, (height // factor, width // factor), method="area").numpy()
    return pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0


def nearest_two(queries: np.ndarray, references: Iterable[np.ndarray]) -> np.ndarray:
    """Each query image's Euclidean distances (in _small's pixels) to its two nearest reference images, [N, 2],
    the references streamed in batches (memory: one batch)."""
    q = _small(queries)
    q_norms, nearest = (q ** 2).sum(axis=1), np.full((len(q), 2), np.inf)
    for batch in references:
        r = _small(batch)
        squared = q_norms[:, None] - 2 * q @ r.T + (r ** 2).sum(axis=1)[None]
        both = np.concatenate([nearest, squared], axis=1)
        nearest = np.partition(both, 1, axis=1)[:, :2]
    return np.sqrt(np.clip(nearest, 0, None))


def memorization(generated: np.ndarray, test: np.ndarray,
                 train_batches: Callable[[], Iterable[np.ndarray]]) -> dict:
    """Whether generated images are copies of training images. An image is judged by how much nearer it is to
    its nearest training image than to the second nearest (the ratio of the two distances): a copy is at 0, a
    blur or an average of many pictures near 1, and a new real picture (a test image) in between. `copied_fraction`
    is the share of generated images with a smaller ratio than all but COPY_QUANTILE of the test images;
    `memorizing` when it reaches COPIED_FLAG."""
    generated = generated[:MEMORIZATION_SAMPLES]
    to_generated, to_test = nearest_two(generated, train_batches()), nearest_two(test, train_batches())

    def ratio(d):
        return d[:, 0] / np.maximum(d[:, 1], 1e-12)
    threshold = float(np.quantile(ratio(to_test), COPY_QUANTILE))
    copied = float(np.mean(ratio(to_generated) <= threshold))
    return {"generated_checked": len(generated),
            "median_nearest_train_distance_generated": float(np.median(to_generated[:, 0])),
            "median_nearest_train_distance_test": float(np.median(to_test[:, 0])),
            "copy_ratio_threshold": threshold, "copied_fraction": copied, "memorizing": copied >= COPIED_FLAG}


def _shrunk(pixels: np.ndarray) -> np.ndarray:
    """Pixels 0..1, area-averaged to COVERAGE_SIDE a side (any channels), flattened; at most COVERAGE_SAMPLES."""
    pixels = np.asarray(pixels[:COVERAGE_SAMPLES], np.float32)
    if pixels.shape[1:3] != (COVERAGE_SIDE, COVERAGE_SIDE):
        pixels = tf.image.resize(pixels, (COVERAGE_SIDE, COVERAGE_SIDE), method="area").numpy()
    return pixels.reshape(len(pixels), -1) / 255.0


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a ** 2).sum(1)[:, None] - 2 * a @ b.T + (b ** 2).sum(1)[None]
    return np.sqrt(np.clip(squared, 0, None))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = COVERAGE_NEIGHBOURS) -> tuple[float, float]:
    """k-NN precision (the share of `fake` within some real point's distance to its k-th nearest real neighbour)
    and recall (the same with the roles swapped), on feature rows."""
    def radii(x):
        within = _distances(x, x)
        return np.sort(within, axis=1)[:, min(k, len(x) - 1)]  # column 0 is the point itself
    across = _distances(fake, real)
    precision = float(np.mean((across <= radii(real)[None, :]).any(axis=1)))
    recall = float(np.mean((across.T <= radii(fake)[None, :]).any(axis=1)))
    return precision, recall


def mean_pairwise_distance(x: np.ndarray) -> float:
    d = _distances(x, x)
    return float(d.sum() / max(1, len(x) * (len(x) - 1)))


def coverage(test: np.ndarray, train: np.ndarray, generated: np.ndarray) -> dict:
    """Precision, recall and diversity of the generated pictures against the test pictures, and the same for the
    train pictures against them (what real pictures score: the floor to read the others by); `collapsed` when the
    samples are far less diverse than real pictures or cover almost none of them."""
    real, held_out, fake = _shrunk(test), _shrunk(train), _shrunk(generated)
    n = min(len(real), len(fake), len(held_out))
    real, held_out, fake = real[:n], held_out[:n], fake[:n]
    spread = mean_pairwise_distance(real)
    precision, recall = precision_recall(real, fake)
    real_precision, real_recall = precision_recall(real, held_out)
    diversity = mean_pairwise_distance(fake) / spread if spread else 0.0
    return {"precision": precision, "recall": recall, "diversity": diversity, "real_precision": real_precision,
            "real_recall": real_recall, "real_diversity": mean_pairwise_distance(held_out) / spread if spread else 0.0,
            "pictures": n, "side": COVERAGE_SIDE, "neighbours": COVERAGE_NEIGHBOURS,
            "collapsed": diversity < COLLAPSED_DIVERSITY or recall < COLLAPSED_RECALL}
