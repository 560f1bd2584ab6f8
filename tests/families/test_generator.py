
import numpy as np
import tensorflow as tf

from pipelines.families.generator import frechet_distance, grid_png


def test_frechet_distance_is_zero_for_the_same_sample_and_the_mean_shift_squared_for_a_shifted_one():
    a = np.random.default_rng(0).standard_normal((2000, 8))
    assert abs(frechet_distance(a, a)) < 1e-6
    assert abs(frechet_distance(a, a + 3.0) - 8 * 9.0) < 1e-6


def test_frechet_distance_grows_with_a_covariance_mismatch():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4000, 4)), rng.standard_normal((4000, 4))
    # For N(0, I) vs N(0, s²I): d * (1 - s)², here 4 * (1 - 2)² = 4.
    assert frechet_distance(a, b) < 0.05
    assert abs(frechet_distance(a, 2 * b) - 4.0) < 0.3


def test_grid_png_tiles_images_row_by_row():
    pixels = np.stack([np.full((2, 3, 1), 10.0 * i) for i in range(6)])
    image = tf.io.decode_png(grid_png(pixels, rows=2)).numpy()
    assert image.shape == (4, 9, 1)
    assert image[0, 0, 0] == 0 and image[0, 3, 0] == 10 and image[2, 0, 0] == 30 and image[3, 8, 0] == 50
