"""DCGAN: a generator (noise → transposed convs → image in [-1, 1]), a discriminator (strided convs → logit),
and the Keras model that trains them with its own `train_step` (the keras-io DCGAN pattern), so `fit`, callbacks,
checkpoints, TensorBoard and BackupAndRestore work as for any other model.

Their depth follows the image: one stride-2 block per doubling of the side from a 4–7 pixel start (28 → 7, 32 → 4,
64 → 4, 128 → 4), the widths given for the last blocks of the generator and the first of the discriminator,
doubled (up to WIDEST) for the blocks a larger image adds. With `conditional`, both nets also take the class label
(an embedding joined to their input). With `augment` (an attribute, set before training), real and generated
images alike pass through differentiable augmentation before the discriminator (DiffAugment, Zhao et al. 2020:
colour, translation, cutout), so a discriminator shown a few hundred images cannot memorize them.
"""

from typing import Sequence

import keras
import tensorflow as tf
from keras import layers, ops

from models import BN_MOMENTUM, BuildError


WIDEST = 256  # the widest block a larger image's extra depth adds
START = (4, 7)  # the side (in pixels) the generator starts from and the discriminator ends at


def _label_input(num_classes: int | None):
    return keras.Input(shape=(), dtype="int32", name="label") if num_classes else None


def depth(image_shape: Sequence[int], flag: str = "image_size") -> int:
    """The stride-2 blocks that take a START-sized square to the image: one per halving of its side."""
    height, width = image_shape[:2]
    side, blocks = height, 0
    while side % 2 == 0 and side > START[1]:
        side, blocks = side // 2, blocks + 1
    if height != width or not START[0] <= side <= START[1]:
        raise BuildError(flag, f"the GAN draws square images whose side halves down to {START[0]}–{START[1]} pixels "
                               f"(28, 32, 64, 128, …), and {height}x{width} is not one: give --image_size=64,64 "
                               "or another such size")
    return blocks


def _widths(widths: Sequence[int], blocks: int, flag: str, first: bool) -> tuple[int, ...]:
    """`widths` grown to `blocks` entries, by doubling (up to WIDEST) at the low-resolution end."""
    widths = tuple(widths)
    if len(widths) > blocks:
        raise BuildError(flag, f"this image size takes {blocks} stride-2 blocks, and {len(widths)} widths are "
                               f"given: give at most {blocks}")
    while len(widths) < blocks:
        widths = (min(2 * widths[0], WIDEST),) + widths if first else widths + (min(2 * widths[-1], WIDEST),)
    return widths


def build_generator(noise_dim: int, image_shape: Sequence[int], *, widths: Sequence[int] = (128, 64),
                    num_classes: int | None = None) -> keras.Model:
    """noise [noise_dim] (+ label) → dense → one stride-2 transposed conv per block → tanh image.

    `widths` are the last blocks' filters; a larger image's first blocks double them (the module's rule).
    """
    height, width, channels = image_shape
    widths = _widths(widths, depth(image_shape), "generator_widths", first=True)
    scale = 2 ** len(widths)
    noise = keras.Input(shape=(noise_dim,), name="noise")
    label = _label_input(num_classes)
    x = noise
    if label is not None:
        x = layers.Concatenate(name="noise_and_label")([noise, layers.Embedding(num_classes, noise_dim,
                                                                                name="label_embedding")(label)])
    x = layers.Dense((height // scale) * (width // scale) * widths[0], use_bias=False, name="project")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="project_bn")(x)
    x = layers.LeakyReLU(0.2, name="project_relu")(x)
    x = layers.Reshape((height // scale, width // scale, widths[0]), name="reshape")(x)
    for i, filters in enumerate(widths):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, name=f"up{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"up{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"up{i}_relu")(x)
    image = layers.Conv2D(channels, 5, padding="same", activation="tanh", name="image")(x)
    return keras.Model([noise, label] if label is not None else noise, image, name="generator")


def build_discriminator(image_shape: Sequence[int], *, widths: Sequence[int] = (64, 128),
                        num_classes: int | None = None, dropout: float = 0.3) -> keras.Model:
    """image in [-1, 1] (+ label as an extra channel) → one stride-2 conv per block → real/fake logit.

    `widths` are the first blocks' filters; a larger image's last blocks double them."""
    height, width, _ = image_shape
    widths = _widths(widths, depth(image_shape), "discriminator_widths", first=False)
    image = keras.Input(shape=tuple(image_shape), name="image")
    label = _label_input(num_classes)
    x = image
    if label is not None:
        plane = layers.Embedding(num_classes, height * width, name="label_embedding")(label)
        x = layers.Concatenate(name="image_and_label")([image, layers.Reshape((height, width, 1))(plane)])
    for i, filters in enumerate(widths):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"down{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"down{i}_relu")(x)
        x = layers.Dropout(dropout, name=f"down{i}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model([image, label] if label is not None else image, logit, name="discriminator")


def diff_augment(images, seed: keras.random.SeedGenerator, translation: float = 0.125, cutout: float = 0.5):
    """DiffAugment's colour, translation and cutout on images in [-1, 1], differentiable in the images (the
    generator's gradients pass through): a random brightness, saturation and contrast per image, a shift by up to
    `translation` of the side (zeros fill), and a square of `cutout` the side zeroed."""
    batch, height, width, channels = (tf.shape(images)[0], *images.shape[1:])

    def uniform(low=0.0, high=1.0):
        return keras.random.uniform((batch, 1, 1, 1), low, high, seed=seed)

    x = images + uniform(-0.5, 0.5)
    if channels == 3:
        mean = ops.mean(x, axis=3, keepdims=True)
        x = (x - mean) * uniform(0.0, 2.0) + mean
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * uniform(0.5, 1.5) + mean

    shift_y, shift_x = int(height * translation + 0.5), int(width * translation + 0.5)
    padded = tf.pad(x, [[0, 0], [shift_y, shift_y], [shift_x, shift_x], [0, 0]])
    top = keras.random.randint((batch, 1), 0, 2 * shift_y + 1, seed=seed)
    left = keras.random.randint((batch, 1), 0, 2 * shift_x + 1, seed=seed)
    x = tf.gather(padded, top + tf.range(height)[None], axis=1, batch_dims=1)
    x = tf.gather(x, left + tf.range(width)[None], axis=2, batch_dims=1)

    size_y, size_x = int(height * cutout + 0.5), int(width * cutout + 0.5)
    y0 = keras.random.randint((batch, 1), 0, height + 1 - size_y, seed=seed)
    x0 = keras.random.randint((batch, 1), 0, width + 1 - size_x, seed=seed)
    rows, columns = tf.range(height)[None], tf.range(width)[None]
    in_rows = (rows >= y0) & (rows < y0 + size_y)
    in_columns = (columns >= x0) & (columns < x0 + size_x)
    kept = 1.0 - tf.cast(in_rows[:, :, None] & in_columns[:, None, :], x.dtype)
    return x * kept[..., None]


def to_pixels(images):
    """[-1, 1] → 0..255 float, the classifiers' and the apps' pixel scale."""
    return (images + 1.0) * 127.5


@keras.saving.register_keras_serializable(package="dlpipe")
class GAN(keras.Model):
    """Trains `generator` against `discriminator` on batches of (raw pixels 0..255, label)."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, noise_dim: int,
                 num_classes: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.noise_dim = noise_dim
        self.num_classes = num_classes
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.augment = False  # DiffAugment before the discriminator (a training setting, set before fit)
        self.built = True  # both nets are built functional models; nothing is left to build from data

    @property
    def conditional(self) -> bool:
        return bool(self.num_classes)

    def get_config(self):
        return {**super().get_config(), "noise_dim": self.noise_dim, "num_classes": self.num_classes,
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "discriminator"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    def compile(self, g_optimizer, d_optimizer, label_smoothing: float = 0.1, **kwargs):
        """`label_smoothing`: the discriminator's real targets are 1 - label_smoothing (one-sided)."""
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Built here, inside the scope compile runs in: an optimizer first built in a replicated train_step would
        # create its variables inside one replica's graph, which tf.distribute cannot run.
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)
        self.label_smoothing = label_smoothing
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _with_label(self, x, labels):
        return [x, labels] if self.conditional else x

    def _gan_losses(self, real_images, labels, training):
        batch = ops.shape(real_images)[0]
        noise = keras.random.normal((batch, self.noise_dim), seed=self.seed_generator)
        fake = self.generator(self._with_label(noise, labels), training=training)
        if training and self.augment:  # both alike, so the discriminator cannot tell them by it
            real_images, fake = (diff_augment(real_images, self.seed_generator),
                                 diff_augment(fake, self.seed_generator))
        real_logits = self.discriminator(self._with_label(real_images, labels), training=training)
        fake_logits = self.discriminator(self._with_label(fake, labels), training=training)
        # One-sided label smoothing: real targets 1 - smoothing keep the discriminator from overconfidence.
        d_loss = (self.loss_fn(ops.ones_like(real_logits) * (1.0 - self.label_smoothing), real_logits)
                  + self.loss_fn(ops.zeros_like(fake_logits), fake_logits))
        g_loss = self.loss_fn(ops.ones_like(fake_logits), fake_logits)
        return d_loss, g_loss

    def train_step(self, data):
        pixels, labels = data
        real = pixels / 127.5 - 1.0
        # Under tf.distribute each replica's losses average its share of the batch and the optimizers sum the
        # replicas' gradients: divided by the replica count, the sum is the gradient of the global batch's mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            d_loss, g_loss = self._gan_losses(real, labels, training=True)
            # scale_loss: a LossScaleOptimizer's (float16) scaling; the loss itself for any other optimizer.
            d_scaled = self.d_optimizer.scale_loss(d_loss / replicas)
            g_scaled = self.g_optimizer.scale_loss(g_loss / replicas)
        d_vars, g_vars = self.discriminator.trainable_weights, self.generator.trainable_weights
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_vars), d_vars))
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_vars), g_vars))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        pixels, labels = data
        d_loss, g_loss = self._gan_losses(pixels / 127.5 - 1.0, labels, training=False)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}


def build_gan(image_shape: Sequence[int], num_classes: int, *, noise_dim: int = 64,
              generator_widths: Sequence[int] = (64, 32), discriminator_widths: Sequence[int] = (64, 128),
              conditional: bool = False) -> GAN:
    """The task's builder: a DCGAN for images of `image_shape`, class-conditional when `conditional`."""
    classes = num_classes if conditional else None
    return GAN(build_generator(noise_dim, image_shape, widths=generator_widths, num_classes=classes),
               build_discriminator(image_shape, widths=discriminator_widths, num_classes=classes),
               noise_dim=noise_dim, num_classes=classes, name="gan")


def build_pixel_generator(generator: keras.Model, rounded: bool = True) -> keras.Model:
    """The exported generator: same inputs, output `pixels` as uint8 0..255, so an app can show it directly.

    rounded=False: the pixel values as floats (a tanh's range scaled to 0..255, so no clip), what the int8 file is
    quantized from: its uint8 output rounds and clips them (quantizing the rounding, the clip and the cast too put
    its pixels three times further from Keras'; docs/shipping.md).
    """
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name) for t in generator.inputs]
    images = generator(inputs if len(inputs) > 1 else inputs[0], training=False)
    if rounded:
        pixels = layers.Lambda(lambda x: ops.cast(ops.clip(ops.round(to_pixels(x)), 0, 255), "uint8"),
                               name="pixels")(images)
    else:
        pixels = layers.Lambda(to_pixels, name="pixels")(images)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], pixels, name="pixel_generator")
