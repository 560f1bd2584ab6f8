"""The label-free measures: a fixed random network's features, the kernel distance, and the memorization check."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipelines.families import image_quality
from pipelines.families.image_quality import kernel_distance, memorization, random_feature_network
from tests.pictures import SHAPES, picture


@pytest.fixture(scope="module")
def shapes():
    """(train, test) pixels of the tests' coloured shapes, 32×32 RGB, float 0..255."""
    rng = np.random.default_rng(0)
    images = np.stack([np.asarray(picture(rng, 32, SHAPES[i % 3]), np.float32) for i in range(700)])
    return images[:500], images[500:]


def test_the_random_network_is_the_same_on_every_build_and_depends_on_its_seed_alone():
    pixels = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    a, b = random_feature_network((32, 32, 3)), random_feature_network((32, 32, 3))
    np.testing.assert_array_equal(a.predict(pixels, verbose=0), b.predict(pixels, verbose=0))
    assert a.output_shape == (None, 2 * sum(image_quality.RANDOM_FEATURES["widths"]))


def test_kernel_distance_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((600, 16)), rng.standard_normal((600, 16))
    same, _ = kernel_distance(a, b)
    shifted, spread = kernel_distance(a, b + 0.5)
    assert abs(same) < 0.01 and shifted > 0.05 and spread > 0


def test_the_label_free_distance_ranks_real_images_above_blur_and_noise_and_sees_a_collapse(shapes):
    train, test = shapes
    embed = image_quality.embedding(random_feature_network((32, 32, 3)))
    real = embed(test)
    noise = np.random.default_rng(2).uniform(0, 255, train[:200].shape).astype(np.float32)
    collapsed = np.repeat(train[:5], 40, axis=0)  # a generator that learned five pictures
    blurred = np.stack([np.asarray(Image.fromarray(x.astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)),
                                   np.float32) for x in train[:200]])
    sets = {"real": train[:200], "noise": noise, "collapsed": collapsed, "blurred": blurred}
    kid = {name: kernel_distance(embed(pixels), real)[0] for name, pixels in sets.items()}
    assert kid["real"] < 0.1 * min(kid["collapsed"], kid["blurred"]) and kid["collapsed"] < kid["noise"]
    fd = {name: image_quality.frechet_distance(embed(pixels), real) for name, pixels in sets.items()}
    assert fd["real"] < 0.6 * min(fd["collapsed"], fd["blurred"]) and fd["collapsed"] < fd["noise"]


def test_memorization_flags_a_generator_that_outputs_training_images_and_not_new_ones(shapes):
    train, test = shapes

    def batches():
        return (train[i:i + 128] for i in range(0, len(train), 128))
    copies = memorization(train[::2], test, batches)
    assert copies["memorizing"] and copies["copied_fraction"] == 1.0
    assert copies["median_nearest_train_distance_generated"] < 1e-2
    rng = np.random.default_rng(9)  # new pictures of the same kind: what a good generator draws
    fresh = np.stack([np.asarray(picture(rng, 32, SHAPES[i % 3]), np.float32) for i in range(200)])
    honest = memorization(fresh, test, batches)
    assert not honest["memorizing"] and honest["copied_fraction"] < 0.15
    noisy = memorization(np.random.default_rng(3).uniform(0, 255, (100, 32, 32, 3)), test, batches)
    assert not noisy["memorizing"] and noisy["copied_fraction"] == 0
    # An undertrained generator's blur is near every picture's background, and no copy of any one of them.
    blurred = train.mean(axis=0, keepdims=True) + np.random.default_rng(4).normal(0, 5, (100, 32, 32, 3))
    assert memorization(blurred, test, batches)["copied_fraction"] == 0


def test_large_images_are_compared_shrunk_to_32_pixels_a_side():
    big = np.asarray(Image.new("RGB", (128, 128), (10, 200, 30)), np.float32)[None]
    assert image_quality._small(big).shape == (1, 32 * 32 * 3)


def test_coverage_tells_real_pictures_from_a_collapse_and_from_noise(shapes):
    train, test = shapes
    real = image_quality.coverage(test, train[:200], train[200:400])  # new real pictures as the "samples"
    # As the held-out real pictures score (0.78 and 0.75 on 200 pictures, k = 3), within noise.
    assert abs(real["precision"] - real["real_precision"]) < 0.1 and abs(real["recall"] - real["real_recall"]) < 0.1
    assert real["precision"] > 0.6 and real["recall"] > 0.6 and 0.8 < real["diversity"] < 1.25
    assert not real["collapsed"] and real["pictures"] == 200
    collapsed = image_quality.coverage(test, train[:200], np.repeat(train[:3], 67, axis=0))  # three pictures
    assert collapsed["collapsed"] and collapsed["recall"] < 0.1 and collapsed["diversity"] < 0.9
    plaid = np.tile(np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((8, 8)))[..., None] * 255, (200, 1, 1, 3))
    repeated = image_quality.coverage(test, train[:200], plaid)  # one pattern: no diversity at all
    assert repeated["collapsed"] and repeated["diversity"] == pytest.approx(0, abs=1e-6)
    noise = np.random.default_rng(3).uniform(0, 255, (200, 32, 32, 3))
    assert image_quality.coverage(test, train[:200], noise)["precision"] < 0.1  # nothing like the pictures


def test_precision_and_recall_follow_their_definition_on_points():
    real = np.array([[0.0, 0], [1, 0], [0, 1], [1, 1]])
    inside, outside = np.array([[0.5, 0.5]]), np.array([[5.0, 5.0]])
    # Half the samples lie in the real manifold; the two samples' balls (each reaching the other) hold every real point.
    assert image_quality.precision_recall(real, np.vstack([inside, outside]), k=1) == (0.5, 1.0)
