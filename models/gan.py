"""The GAN: a generator (noise → nearest-upsampling and 3×3 convolution blocks → image in [-1, 1]), a
discriminator at two scales (strided convs over the image, and over the image averaged to a quarter of its side →
two logits), and the Keras model that trains them with its own `train_step` (the keras-io GAN pattern), so `fit`,
callbacks, checkpoints, TensorBoard and BackupAndRestore work as for any other model.

The recipe, measured on photos (docs/gan.md has what each piece bought):
- the generator doubles its side by nearest upsampling and a 3×3 convolution (Odena et al. 2016): a stride-2
  transposed convolution overlaps its kernel unevenly and draws a checkerboard;
- the discriminator also judges the image at a quarter of its side (multi-scale discriminators, Wang et al. 2018),
  where layout and colour are all there is to see;
- the non-saturating loss with an R1 penalty on the real images' gradient (Mescheder et al. 2018; StyleGAN2), which
  keeps the discriminator from outrunning the generator without weakening its layers;
- what is sampled, measured and shipped is `ema_generator`, an exponential moving average of the generator's
  weights (Yazıcı et al. 2019; StyleGAN's Gs): the trained generator's weights circle the equilibrium, their average
  sits nearer it.

Their depth follows the image: one doubling block per doubling of the side from a 4–7 pixel start (28 → 7, 32 → 4,
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
EMA_DECAY = 0.999  # the generator's weights' moving average: about the last thousand steps
COARSE = 4  # the discriminator's second scale: the image averaged over COARSE × COARSE pixels
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


@keras.saving.register_keras_serializable(package="dlpipe")
class NearestUpsampling(layers.Layer):
    """Doubles the side of [batch, h, w, c] by repeating each pixel, as concatenations and reshapes of static shape:
    builtin TFLite ops that quantize to int8 (Keras' UpSampling2D is a tf.repeat whose output shape the converter
    loses, and a convolution of unknown shape does not lower to a builtin op)."""

    def call(self, x):
        height, width, channels = x.shape[1:]
        x = ops.reshape(ops.concatenate([x, x], axis=-1), (-1, height, 2 * width, channels))  # each column twice
        return ops.reshape(ops.concatenate([x, x], axis=2), (-1, 2 * height, 2 * width, channels))  # each row twice

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return batch, 2 * height, 2 * width, channels


def build_generator(noise_dim: int, image_shape: Sequence[int], *, widths: Sequence[int] = (32, 16),
                    num_classes: int | None = None) -> keras.Model:
    """noise [noise_dim] (+ label) → dense → per block: nearest 2× upsampling, 3×3 conv → 3×3 conv to a tanh image.

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
    x = layers.ReLU(name="project_relu")(x)
    x = layers.Reshape((height // scale, width // scale, widths[0]), name="reshape")(x)
    for i, filters in enumerate(widths):
        x = NearestUpsampling(name=f"up{i}")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"up{i}_conv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"up{i}_bn")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    image = layers.Conv2D(channels, 3, padding="same", activation="tanh", name="image")(x)
    return keras.Model([noise, label] if label is not None else noise, image, name="generator")


def _strided(x, widths: Sequence[int], prefix: str):
    """One stride-2 4×4 conv and leaky ReLU per width, flattened, to one logit."""
    for i, filters in enumerate(widths):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"{prefix}{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"{prefix}{i}_relu")(x)
    return layers.Dense(1, name=f"{prefix}_logit")(layers.Flatten(name=f"{prefix}_flatten")(x))


def build_discriminator(image_shape: Sequence[int], *, widths: Sequence[int] = (32, 64),
                        num_classes: int | None = None) -> keras.Model:
    """image in [-1, 1] (+ label as an extra channel) → two logits [batch, 2]: one from a stride-2 conv per block
    over the image, one from two over the image averaged to a quarter of its side (COARSE).

    `widths` are the first blocks' filters; a larger image's last blocks double them."""
    height, width, _ = image_shape
    widths = _widths(widths, depth(image_shape), "discriminator_widths", first=False)
    image = keras.Input(shape=tuple(image_shape), name="image")
    label = _label_input(num_classes)
    x = image
    if label is not None:
        plane = layers.Embedding(num_classes, height * width, name="label_embedding")(label)
        x = layers.Concatenate(name="image_and_label")([image, layers.Reshape((height, width, 1))(plane)])
    coarse = layers.AveragePooling2D(COARSE, name="coarse")(x)
    logits = layers.Concatenate(name="logits")([_strided(x, widths, "down"),
                                                _strided(coarse, (2 * widths[0], 4 * widths[0]), "coarse_down")])
    return keras.Model([image, label] if label is not None else image, logits, name="discriminator")


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
    """Trains `generator` against `discriminator` on batches of (raw pixels 0..255, label), with an R1 penalty of
    weight `r1`, and keeps `ema_generator`: the moving average of the generator's weights (`ema` is its decay),
    what draws."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, noise_dim: int,
                 num_classes: int | None = None, r1: float = 1.0, ema: float = EMA_DECAY, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.noise_dim = noise_dim
        self.num_classes = num_classes
        self.r1, self.ema = r1, ema
        # Its weights start as the generator's (a loaded model's then take the saved averages).
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
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
                "r1": self.r1, "ema": self.ema, "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "discriminator"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Built here, inside the scope compile runs in: an optimizer first built in a replicated train_step would
        # create its variables inside one replica's graph, which tf.distribute cannot run.
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, inputs, training=False):
        return self.ema_generator(inputs, training=training)

    def _with_label(self, x, labels):
        return [x, labels] if self.conditional else x

    def _gan_losses(self, real_images, labels, training):
        """The non-saturating loss (Goodfellow et al. 2014), each of the discriminator's logits (its scales)
        counted, and the R1 penalty on its real images' gradient (Mescheder et al. 2018), while training."""
        batch = ops.shape(real_images)[0]
        noise = keras.random.normal((batch, self.noise_dim), seed=self.seed_generator)
        fake = self.generator(self._with_label(noise, labels), training=training)
        if training and self.augment:  # both alike, so the discriminator cannot tell them by it
            real_images, fake = (diff_augment(real_images, self.seed_generator),
                                 diff_augment(fake, self.seed_generator))
        with tf.GradientTape() as tape:
            tape.watch(real_images)
            # The losses in float32 whatever the policy computes in.
            real_logits = ops.cast(self.discriminator(self._with_label(real_images, labels), training=training),
                                   "float32")
            summed = ops.sum(real_logits)  # inside the tape: R1's gradient is of it
        fake_logits = ops.cast(self.discriminator(self._with_label(fake, labels), training=training), "float32")
        d_loss = ops.mean(ops.sum(ops.softplus(-real_logits) + ops.softplus(fake_logits), axis=-1))
        g_loss = ops.mean(ops.sum(ops.softplus(-fake_logits), axis=-1))
        if training and self.r1:
            gradient = tape.gradient(summed, real_images)
            d_loss += self.r1 / 2 * ops.mean(ops.sum(ops.square(ops.cast(gradient, "float32")), axis=(1, 2, 3)))
        return d_loss, g_loss

    def _update_ema(self):
        """ema_generator ← decay · itself + (1 − decay) · generator, every weight (batch-norm statistics too); the
        decay warms up as (1 + step) / (10 + step) so the first steps' random weights fade quickly."""
        step = ops.cast(self.g_optimizer.iterations, "float32")
        decay = ops.minimum(self.ema, (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.ema_generator.weights, self.generator.weights):
            average.assign(decay * average + (1.0 - decay) * ops.cast(weight, average.dtype))

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
        self._update_ema()
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        pixels, labels = data
        d_loss, g_loss = self._gan_losses(pixels / 127.5 - 1.0, labels, training=False)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}


def build_gan(image_shape: Sequence[int], num_classes: int, *, noise_dim: int = 128,
              generator_widths: Sequence[int] = (32, 16), discriminator_widths: Sequence[int] = (32, 64),
              r1: float = 1.0, conditional: bool = False) -> GAN:
    """The task's builder: a GAN for images of `image_shape`, class-conditional when `conditional`."""
    classes = num_classes if conditional else None
    return GAN(build_generator(noise_dim, image_shape, widths=generator_widths, num_classes=classes),
               build_discriminator(image_shape, widths=discriminator_widths, num_classes=classes),
               noise_dim=noise_dim, num_classes=classes, r1=r1, name="gan")


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
