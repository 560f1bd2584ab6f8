"""DCGAN: a generator (noise → transposed convs → image in [-1, 1]), a discriminator (strided convs → logit),
and the Keras model that trains them with its own `train_step` (the keras-io DCGAN pattern), so `fit`, callbacks,
checkpoints, TensorBoard and BackupAndRestore work as for any other model.

With `conditional`, both nets also take the class label (an embedding joined to their input).
"""

from typing import Sequence

import keras
import tensorflow as tf
from keras import layers, ops

from models import BN_MOMENTUM, BuildError


def _label_input(num_classes: int | None):
    return keras.Input(shape=(), dtype="int32", name="label") if num_classes else None


def build_generator(noise_dim: int, image_shape: Sequence[int], *, widths: Sequence[int] = (128, 64),
                    num_classes: int | None = None) -> keras.Model:
    """noise [noise_dim] (+ label) → dense → one stride-2 transposed conv per width → tanh image.

    The image's height and width must be divisible by 2 ** len(widths) (28 → 7, 32 → 8 for two widths).
    """
    height, width, channels = image_shape
    scale = 2 ** len(widths)
    if height % scale or width % scale:  # each stride-2 transposed conv doubles the side
        fits = max(n for n in range(len(widths) + 1) if height % 2 ** n == 0 and width % 2 ** n == 0)
        raise BuildError("generator_widths", f"{len(widths)} stride-2 stages need an image side divisible by "
                                             f"{scale}, and {height}x{width} is not; give at most {fits} widths")
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
    """image in [-1, 1] (+ label as an extra channel) → one stride-2 conv per width → real/fake logit."""
    height, width, _ = image_shape
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
