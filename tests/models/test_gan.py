import numpy as np
import pytest

import keras
from models.gan import GAN, build_discriminator, build_gan, build_generator, build_pixel_generator


def test_generator_maps_noise_to_images_in_minus_one_to_one():
    generator = build_generator(16, (28, 28, 1))
    images = generator(np.random.default_rng(0).standard_normal((3, 16)).astype("float32"))
    assert images.shape == (3, 28, 28, 1)
    assert float(np.min(images)) >= -1 and float(np.max(images)) <= 1


def test_widths_set_the_upsampling_and_image_shape_comes_from_the_data_set():
    generator = build_generator(8, (32, 32, 3), widths=(64, 32, 16))
    assert generator.get_layer("reshape").output.shape[1:] == (4, 4, 64)
    assert generator.output_shape == (None, 32, 32, 3)
    assert build_discriminator((32, 32, 3), widths=(8, 16)).output_shape == (None, 2)  # the image and a quarter


def test_nearest_upsampling_repeats_each_pixel_into_a_square_of_four():
    from models.gan import NearestUpsampling
    x = np.arange(2 * 3 * 4 * 5, dtype="float32").reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(NearestUpsampling()(x), x.repeat(2, axis=1).repeat(2, axis=2))


def test_the_discriminator_s_second_logit_sees_only_the_image_averaged_over_four_by_four_squares():
    discriminator = build_discriminator((32, 32, 3), widths=(8, 16))
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    # Within each 4×4 square, move values about without changing the square's mean.
    shuffled = image.reshape(1, 8, 4, 8, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(1, 8, 8, 16, 3)
    shuffled = shuffled[:, :, :, rng.permutation(16)].reshape(1, 8, 8, 4, 4, 3).transpose(0, 1, 3, 2, 4, 5)
    a, b = np.asarray(discriminator(image)), np.asarray(discriminator(shuffled.reshape(1, 32, 32, 3)))
    assert abs(a[0, 1] - b[0, 1]) < 1e-5 and abs(a[0, 0] - b[0, 0]) > 1e-4


def test_conditional_nets_take_a_label_as_a_second_input():
    gan = build_gan((28, 28, 1), 10, noise_dim=8, conditional=True)
    assert [t.name for t in gan.generator.inputs] == ["noise", "label"]
    assert [t.name for t in gan.discriminator.inputs] == ["image", "label"]
    noise = np.zeros((2, 8), "float32")
    a = gan.generator([noise, np.array([0, 0])])
    b = gan.generator([noise, np.array([0, 7])])
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[1], b[1])  # the label changes the image


@pytest.mark.parametrize("conditional", [False, True])
def test_train_step_updates_both_nets_and_reports_both_losses(conditional):
    gan = build_gan((28, 28, 1), 10, noise_dim=8, generator_widths=(8, 4), discriminator_widths=(4, 8),
                    conditional=conditional)
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
    g_before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    pixels = np.random.default_rng(0).uniform(0, 255, (16, 28, 28, 1)).astype("float32")
    history = gan.fit(pixels, np.arange(16) % 10, batch_size=8, epochs=1, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(g_before, gan.generator.trainable_weights))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(d_before, gan.discriminator.trainable_weights))


def test_gan_saves_and_loads_as_a_keras_file(tmp_path):
    gan = build_gan((28, 28, 1), 10, noise_dim=8, conditional=True)
    gan.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras", compile=False)
    assert isinstance(loaded, GAN) and loaded.conditional and loaded.noise_dim == 8
    inputs = [np.ones((1, 8), "float32"), np.array([3])]
    np.testing.assert_allclose(loaded.generator(inputs), gan.generator(inputs), atol=1e-6)


def test_the_r1_penalty_is_half_its_weight_times_the_squared_gradient_at_the_real_images():
    import tensorflow as tf
    gan = build_gan((28, 28, 1), 10, noise_dim=8, generator_widths=(8, 4), discriminator_widths=(4, 8), r1=3.0)
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype("float32"))
    keras.utils.set_random_seed(1)
    gan.seed_generator = keras.random.SeedGenerator(5)
    with_penalty, _ = gan._gan_losses(real, None, training=True)
    gan.seed_generator, gan.r1 = keras.random.SeedGenerator(5), 0.0
    without, _ = gan._gan_losses(real, None, training=True)  # the same noise, no penalty
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(gan.discriminator(real))
    expected = 3.0 / 2 * np.mean(np.sum(np.square(tape.gradient(total, real)), axis=(1, 2, 3)))
    np.testing.assert_allclose(float(with_penalty) - float(without), expected, rtol=1e-4)


def test_the_moving_average_after_one_step_weighs_the_new_weights_by_the_warm_up():
    gan = build_gan((28, 28, 1), 10, noise_dim=8, generator_widths=(8, 4), discriminator_widths=(4, 8))
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-2), d_optimizer=keras.optimizers.Adam(1e-2))
    before = [w.numpy().copy() for w in gan.generator.weights]
    np.testing.assert_array_equal(before[0], gan.ema_generator.weights[0].numpy())  # it starts as the generator
    pixels = np.random.default_rng(0).uniform(0, 255, (8, 28, 28, 1)).astype("float32")
    gan.fit(pixels, np.zeros(8, np.int64), batch_size=8, epochs=1, verbose=0)  # one step
    decay = min(gan.ema, 2 / 11)  # (1 + step) / (10 + step) at step 1
    for old, new, average in zip(before, gan.generator.weights, gan.ema_generator.weights):
        np.testing.assert_allclose(average.numpy(), decay * old + (1 - decay) * new.numpy(), rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, gan.generator.trainable_weights))


def test_the_moving_average_is_what_draws_saves_and_ships(tmp_path):
    from pipelines.families.generator import ship_generator
    gan = build_gan((28, 28, 1), 10, noise_dim=8, generator_widths=(8, 4), discriminator_widths=(4, 8))
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-2), d_optimizer=keras.optimizers.Adam(1e-2))
    pixels = np.random.default_rng(0).uniform(0, 255, (32, 28, 28, 1)).astype("float32")
    gan.fit(pixels, np.zeros(32, np.int64), batch_size=8, epochs=3, verbose=0)
    noise = np.random.default_rng(1).standard_normal((4, 8)).astype("float32")
    average, last = np.asarray(gan.ema_generator(noise)), np.asarray(gan.generator(noise))
    assert np.abs(average - last).max() > 1e-3  # they differ, so the checks below can tell them apart
    np.testing.assert_allclose(gan(noise), average, atol=1e-6)
    expected = np.clip(np.round((average + 1) * 127.5), 0, 255)
    assert np.abs(np.asarray(ship_generator(gan).model(noise), np.float32) - expected).max() <= 1  # a .5 may round
    gan.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras", compile=False)
    np.testing.assert_allclose(loaded.ema_generator(noise), average, atol=1e-6)
    np.testing.assert_allclose(loaded.generator(noise), last, atol=1e-6)


def test_exported_generator_emits_uint8_pixels():
    generator = build_generator(8, (28, 28, 1))
    pixels = build_pixel_generator(generator)(np.random.default_rng(1).standard_normal((2, 8)).astype("float32"))
    assert pixels.dtype == "uint8" and pixels.shape == (2, 28, 28, 1)
    expected = np.round((generator(np.random.default_rng(1).standard_normal((2, 8)).astype("float32")) + 1) * 127.5)
    np.testing.assert_array_equal(np.asarray(pixels), expected.astype("uint8"))


def test_diff_augment_keeps_the_shape_passes_gradients_and_cuts_a_square_out():
    import tensorflow as tf
    from models.gan import diff_augment
    images = tf.Variable(np.full((4, 32, 32, 3), 0.5, "float32"))
    with tf.GradientTape() as tape:
        augmented = diff_augment(images, keras.random.SeedGenerator(0))
        total = tf.reduce_sum(augmented)
    assert augmented.shape == (4, 32, 32, 3)
    assert float(tf.reduce_mean(tf.cast(tape.gradient(total, images) != 0, "float32"))) > 0.5  # the generator learns
    for image in augmented.numpy():  # a 16×16 square of zeros (the cutout) in every image
        zero_rows, zero_columns = np.nonzero((image == 0).all(axis=-1))
        assert zero_rows.size >= 16 * 16


@pytest.mark.parametrize("setting,count,on", [
    ("auto", 999, True), ("auto", 1000, False), ("on", 60_000, True), ("off", 10, False)])
def test_the_family_turns_diff_augment_on_below_its_threshold_or_as_told(setting, count, on):
    from pipelines.config import RunConfig
    from pipelines.families.generator import SmallDataAugment
    gan = build_gan((28, 28, 1), 10, noise_dim=8, generator_widths=(8, 4), discriminator_widths=(4, 8))
    switch = SmallDataAugment(RunConfig(diff_augment=setting), count, quiet=True)
    switch.set_model(gan)
    switch.on_train_begin()
    assert gan.augment is on
