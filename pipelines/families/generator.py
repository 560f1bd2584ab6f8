"""The generator family (the GAN task): its compile, a sample grid per epoch, distances to real images, a
memorization check, the pictures people look at (the grids as an animation, a walk through the noise), and what
ships (the generator, emitting uint8 pixels).

Distances (image_quality.py) are measured in the features of a network that needs no download. On data with
class labels that is a classifier this package trains on the same data (the conv task's model): fixed, trained
with settings of its own (FEATURE_CLASSIFIER), seeded, once per data set and subset, kept under
`feature_classifiers/<key>.keras` and named in metrics.json with its content hash. Without labels (a folder of
pictures) it is image_quality's seeded random network; labelled data get that measure too, under `label_free`, so
runs on either kind compare.
"""

import dataclasses
import hashlib
import json
import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from models.conv import FEATURE_LAYER, build_conv_classifier
from models.gan import GAN, build_pixel_generator, to_pixels
from pipelines import artifacts
from pipelines.config import RunConfig
from pipelines.data.examples import image_example
from pipelines.data.pipeline import make_input_pipeline
from pipelines.errors import PipelineError
from pipelines.families import Column, Family, Picture, Workspace, image_quality
from pipelines.families.classifier import compile_classifier
from pipelines.families.image_quality import frechet_distance, kernel_distance
from pipelines.metadata import LABELS, TensorInfo
from pipelines.shipping import Shipment

SAMPLES = "samples"                             # samples/epoch_NNN.png: the fixed-noise grid after each epoch
TRAINING_GIF = "training.gif"                   # those grids, one frame per epoch
INTERPOLATION_PNG = "interpolation.png"         # rows of images between two noise draws
GIF_FRAMES = 30
FEATURE_CLASSIFIERS = "feature_classifiers"     # feature_classifiers/<key>.keras (+ .json: how it was made)
# The measuring stick's own settings, whatever the GAN run's or the conv task's defaults: this conv model,
# trained this way (in float32, one step per execution).
FEATURE_CLASSIFIER = {"epochs": 3, "batch_size": 64, "learning_rate": 1e-3, "seed": 0, "label_smoothing": 0.1,
                      "lr_schedule": "constant", "steps_per_execution": 1,
                      "model": {"conv_filters": [32, 64, 128], "dense_units": 128, "dropout": 0.3}}
FRECHET_EXAMPLES = 2000
GRID = 10                                       # a 10 × 10 grid; conditional: one row per class
FRECHET_OBJECTIVE = "val_frechet_distance"      # what the tune stage minimizes for the GAN
# Unless --diff_augment says, a data set with fewer train images than this trains with DiffAugment (docs/gan.md).
DIFF_AUGMENT_BELOW = 1_000
# Unless --epochs is given, a GAN trains for at least this many steps (a folder of 600 images is 10 batches an
# epoch: the task's 10 epochs would leave noise; docs/gan.md).
MIN_TRAIN_STEPS = 2_000


def compile_gan(gan: GAN, config: RunConfig, steps_per_epoch: int = 0) -> None:
    # Adam with beta_1 = 0.5 (DCGAN's) and beta_2 = 0.99 for both nets, at constant rates (no --lr_schedule).
    # In float16 each is wrapped for loss scaling, as Keras' own compile wraps a model's one optimizer.
    def adam(rate):
        optimizer = keras.optimizers.Adam(rate, beta_1=0.5, beta_2=0.99, global_clipnorm=config.clip_norm)
        return keras.optimizers.LossScaleOptimizer(optimizer) if config.precision == "float16" else optimizer
    gan.compile(g_optimizer=adam(config.learning_rate),
                d_optimizer=adam(config.discriminator_learning_rate or config.learning_rate),
                steps_per_execution=config.steps_per_execution)


def generator_inputs(gan_or_generator, count: int, seed: int, label: int | None = None) -> dict[str, np.ndarray]:
    """Seeded noise, and for a conditional generator labels cycling through the classes (or all `label`)."""
    generator = getattr(gan_or_generator, "generator", gan_or_generator)
    noise_dim = generator.get_layer("noise").output.shape[-1]
    batch = {"noise": np.random.default_rng(seed).standard_normal((count, noise_dim)).astype(np.float32)}
    if "label" in [t.name for t in generator.inputs]:
        classes = generator.get_layer("label_embedding").input_dim
        batch["label"] = np.full(count, label, np.int32) if label is not None else \
            (np.arange(count) % classes).astype(np.int32)
    elif label is not None:
        raise PipelineError("this GAN was trained without --conditional: it draws no chosen class; drop --class_name")
    return batch


def generate_pixels(generator: keras.Model, count: int, seed: int) -> np.ndarray:
    """`count` generated images as float pixels 0..255, the scale the classifiers read."""
    batch = generator_inputs(generator, count, seed)
    images = generator.predict(batch if len(batch) > 1 else batch["noise"], batch_size=250, verbose=0)
    return to_pixels(images)


def grid_png(pixels: np.ndarray, rows: int) -> bytes:
    """Tiles [N, H, W, C] pixels into a rows × (N / rows) PNG."""
    n, h, w, c = pixels.shape
    tiles = pixels.reshape(rows, n // rows, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, n // rows * w, c)
    return tf.io.encode_png(np.clip(np.round(tiles), 0, 255).astype(np.uint8)).numpy()


class SampleGrid(keras.callbacks.Callback):
    """Writes samples/epoch_NNN.png from the same noise every epoch, so the grids show progress. A run that starts
    at epoch 1 (not resumed) first clears the grids of an earlier model."""

    def __init__(self, folder: str, seed: int):
        super().__init__()
        self.folder, self.seed = folder, seed

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            artifacts.remove(self.folder)

    def on_epoch_end(self, epoch, logs=None):
        # Keras 3 sets the trained model here; its generator makes the grid.
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"epoch_{epoch + 1:03d}.png")
        with artifacts.atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(grid_png(generate_pixels(self.model.ema_generator, GRID * GRID, self.seed), GRID))


class SmallDataAugment(keras.callbacks.Callback):
    """Turns DiffAugment on or off before the first step is traced, by --diff_augment and, for `auto`, by the
    number of train images (which compile does not see)."""

    def __init__(self, config: RunConfig, num_train: int, quiet: bool = False):
        super().__init__()
        self.on = config.diff_augment == "on" or (config.diff_augment == "auto" and num_train < DIFF_AUGMENT_BELOW)
        self.quiet = quiet
        self.why = f"--diff_augment={config.diff_augment}" + (
            f": {num_train:,} train images, {'fewer' if self.on else 'not fewer'} than {DIFF_AUGMENT_BELOW:,}"
            if config.diff_augment == "auto" else "")

    def on_train_begin(self, logs=None):
        self.model.augment = self.on
        if not self.quiet:
            print(f"DiffAugment {'on' if self.on else 'off'} ({self.why})", flush=True)


def gan_callbacks(work: Workspace) -> list[keras.callbacks.Callback]:
    return [SmallDataAugment(work.config, work.inputs.num_train), SampleGrid(work.path(SAMPLES), work.config.seed)]


class FrechetDistance(keras.callbacks.Callback):
    """Logs `val_frechet_distance` after each epoch: the generator's images against the validation split's, in the
    measuring stick's features. The GAN's tuning objective: its losses say who is winning, not how good the
    images are (a weaker discriminator lowers the generator's loss)."""

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], real_features: np.ndarray, seed: int):
        super().__init__()
        self.embed, self.real_features, self.seed = embed, real_features, seed

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:  # History and KerasTuner read the same dict after this callback
            return
        generated = generate_pixels(self.model.ema_generator, len(self.real_features), self.seed)
        logs[FRECHET_OBJECTIVE] = frechet_distance(self.embed(generated), self.real_features)


def gan_tuning_callbacks(work: Workspace) -> list[keras.callbacks.Callback]:
    embed, _ = measuring_stick(work)
    return [SmallDataAugment(work.config, work.inputs.num_train, quiet=True),
            FrechetDistance(embed, embed(real_pixels(work.inputs.validation)), work.config.seed)]


def feature_classifier(work: Workspace) -> tuple[keras.Model, dict]:
    """The conv classifier whose features measure the GAN on this data set and subset, trained once with
    FEATURE_CLASSIFIER's settings, and how it was made (data, settings, validation accuracy, content hash)."""
    c = work.config
    made_from = {"dataset": c.dataset, "max_train_examples": c.max_train_examples,
                 "validation_split": c.validation_split, "builder": "build_conv_classifier", **FEATURE_CLASSIFIER}
    key = hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()[:12]
    path = os.path.join(work.path(FEATURE_CLASSIFIERS), f"{key}.keras")
    record_path = os.path.join(work.path(FEATURE_CLASSIFIERS), f"{key}.json")
    if os.path.exists(path) and os.path.exists(record_path):
        record = artifacts.read_json(record_path)
        if artifacts.content_hash(path) == record.get("sha256"):
            return keras.models.load_model(path, compile=False), record
    print(f"training the conv classifier whose features measure the GAN ({FEATURE_CLASSIFIER['epochs']} epochs, "
          f"its own settings: {FEATURE_CLASSIFIER})")
    inputs = make_input_pipeline(work.data, image_example, batch_size=FEATURE_CLASSIFIER["batch_size"],
                                 seed=FEATURE_CLASSIFIER["seed"], validation_split=c.validation_split,
                                 max_train_examples=c.max_train_examples)
    keras.utils.set_random_seed(FEATURE_CLASSIFIER["seed"])
    classifier = build_conv_classifier(inputs.input_shape, work.data.num_classes, **FEATURE_CLASSIFIER["model"])
    compiled_with = ("epochs", "learning_rate", "label_smoothing", "lr_schedule", "steps_per_execution")
    compile_classifier(classifier, dataclasses.replace(
        c, clip_norm=None, **{k: v for k, v in FEATURE_CLASSIFIER.items() if k in compiled_with}))
    history = classifier.fit(inputs.train, validation_data=inputs.validation, epochs=FEATURE_CLASSIFIER["epochs"],
                             shuffle=False, verbose=2)  # the pipeline shuffles
    os.makedirs(work.path(FEATURE_CLASSIFIERS), exist_ok=True)
    with artifacts.atomic_path(path) as tmp:
        classifier.save(tmp)
    record = {**made_from, "path": path, "sha256": artifacts.content_hash(path),
              "val_accuracy": float(history.history["val_accuracy"][-1])}
    artifacts.write_json(record_path, record)
    return classifier, record


def feature_embedding(classifier: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """Pixels → the classifier's penultimate features, where Fréchet distances are measured."""
    features = keras.Model(classifier.inputs, classifier.get_layer(FEATURE_LAYER).output)
    return lambda pixels: features.predict(pixels, batch_size=250, verbose=0)


def label_free_stick(work: Workspace) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    network = image_quality.random_feature_network(work.inputs.input_shape)
    return image_quality.embedding(network), {"feature_network": dict(image_quality.RANDOM_FEATURES)}


def measuring_stick(work: Workspace) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """The features distances are measured in, and what they are for metrics.json: the feature classifier's on
    data with class labels, else the label-free network's."""
    if work.data.num_classes < 2:
        return label_free_stick(work)
    classifier, record = feature_classifier(work)
    return feature_embedding(classifier), {"feature_network": {"name": "feature_classifier", **{
        k: record[k] for k in ("path", "sha256", "val_accuracy")}}, "classifier": classifier}


def real_pixels(split: tf.data.Dataset) -> np.ndarray:
    """The first FRECHET_EXAMPLES images of a split (fewer if it is smaller)."""
    return np.concatenate([x for x, _ in split.unbatch().take(FRECHET_EXAMPLES).batch(500).as_numpy_iterator()])


def distances(embed: Callable[[np.ndarray], np.ndarray], real: dict[str, np.ndarray],
              generated: dict[str, np.ndarray]) -> dict:
    """The test images' Fréchet and kernel distances to each set of generated images (and to the train images:
    the floor a perfect generator reaches on this many images)."""
    test = embed(real["test"])
    measured = {}
    for name, pixels in {**generated, "train_vs_test": real["train"][:len(real["test"])]}.items():
        suffix = "" if name == "trained" else f"_{name}"
        features = embed(pixels)
        measured[f"frechet_distance{suffix}"] = frechet_distance(features, test)
        measured[f"kid{suffix}"], measured[f"kid_std{suffix}"] = kernel_distance(features, test)
    measured["distance_ratio_to_untrained"] = measured["frechet_distance"] / measured[
        "frechet_distance_untrained_generator"]
    return measured


def evaluate_gan(gan: GAN, work: Workspace) -> dict:
    embed, stick = measuring_stick(work)
    real = {"test": real_pixels(work.inputs.test), "train": real_pixels(work.inputs.train)}
    n = len(real["test"])
    keras.utils.set_random_seed(work.config.seed)
    untrained = keras.models.clone_model(gan.ema_generator)  # the generator's architecture, fresh weights
    generated = {"trained": generate_pixels(gan.ema_generator, n, work.config.seed),
                 "untrained_generator": generate_pixels(untrained, n, 0)}
    metrics = {**distances(embed, real, generated), "frechet_examples": n, **{
        k: v for k, v in stick.items() if k != "classifier"}}
    if "classifier" in stick:  # labelled data: the label-free measure too, and what the classifier sees drawn
        free, _ = label_free_stick(work)
        metrics["label_free"] = distances(free, real, generated)
        predicted = np.argmax(stick["classifier"].predict(generated["trained"], batch_size=250, verbose=0), axis=-1)
        histogram = np.bincount(predicted, minlength=work.data.num_classes) / n
        metrics["class_histogram"] = {name: float(f) for name, f in zip(work.data.label_names, histogram)}
        metrics["min_class_fraction"] = float(histogram.min())
        if gan.conditional:
            labels = generator_inputs(gan, n, work.config.seed)["label"]
            metrics["conditional_label_accuracy"] = float(np.mean(predicted == labels))
    metrics["coverage"] = image_quality.coverage(real["test"], real["train"], generated["trained"])
    if metrics["coverage"]["collapsed"]:
        c = metrics["coverage"]
        print(f"warning: the samples collapse: diversity {c['diversity']:.2f} of the real pictures', recall "
              f"{c['recall']:.2f} (real pictures {c['real_recall']:.2f}): the generator draws a few patterns; an "
              "earlier epoch's samples (samples/) may be better, or fewer epochs, or --diff_augment=on", flush=True)
    samples = generate_pixels(gan.ema_generator, image_quality.MEMORIZATION_SAMPLES, work.config.seed + 1)
    metrics["memorization"] = image_quality.memorization(samples, real["test"], lambda: (
        x for x, _ in work.inputs.examples.batch(1000).as_numpy_iterator()))
    if metrics["memorization"]["memorizing"]:
        print(f"warning: {metrics['memorization']['copied_fraction']:.0%} of the generated images stand as near "
              "one training image as copies do: the generator is memorizing its training set (more images, or "
              "--diff_augment=on)", flush=True)
    draw_pictures(gan, work)
    return metrics


def draw_pictures(gan: GAN, work: Workspace) -> None:
    """training.gif from the epochs' grids, and interpolation.png: each row walks in a straight line between two
    noise draws (a generator that learned a smooth space changes its picture gradually)."""
    grids = sorted(f for f in os.listdir(work.path(SAMPLES)) if f.endswith(".png")) \
        if os.path.isdir(work.path(SAMPLES)) else []
    if grids:  # at most GIF_FRAMES of them, evenly spread, the last one always
        chosen = sorted({grids[round(i * (len(grids) - 1) / max(1, GIF_FRAMES - 1))] for i in range(GIF_FRAMES)})
        frames = [Image.open(os.path.join(work.path(SAMPLES), f)).convert("RGB") for f in chosen]
        with artifacts.atomic_path(work.path(TRAINING_GIF)) as tmp:
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:] + frames[-1:] * 3,
                           duration=400, loop=0)
    rows, steps = 6, 10
    ends = generator_inputs(gan, 2 * rows, work.config.seed + 2)
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]
    batch = {k: v.reshape(rows, 2, *v.shape[1:]) for k, v in ends.items()}
    noise = (batch["noise"][:, :1] * (1 - weights) + batch["noise"][:, 1:] * weights).reshape(rows * steps, -1)
    inputs = {"noise": noise, **({"label": np.repeat(batch["label"][:, 0], steps)} if "label" in batch else {})}
    images = gan.ema_generator.predict(inputs if len(inputs) > 1 else noise, batch_size=250, verbose=0)
    with artifacts.atomic_path(work.path(INTERPOLATION_PNG)) as tmp, open(tmp, "wb") as f:
        f.write(grid_png(to_pixels(images), rows))


def report_distances(metrics: dict) -> list[str]:
    """The distances against their floor and ceiling, in the measuring stick's features (and label-free ones),
    and the memorization check's answer."""
    if "kid" not in metrics:
        return []
    rows = [("trained generator", ""), ("untrained generator (ceiling)", "_untrained_generator"),
            ("train vs test images (floor)", "_train_vs_test")]
    free = metrics.get("label_free", {})
    table = ["| images vs the test images | Fréchet distance | KID |"
             + (" label-free FD | label-free KID |" * bool(free)),
             "|---|---|---|" + "---|---|" * bool(free)]
    for title, suffix in rows:
        cells = [f"{metrics[f'frechet_distance{suffix}']:.4g}", f"{metrics[f'kid{suffix}']:.4g}"]
        cells += [f"{free[f'frechet_distance{suffix}']:.4g}", f"{free[f'kid{suffix}']:.4g}"] if free else []
        table.append(f"| {title} | {' | '.join(cells)} |")
    stick = metrics["feature_network"]["name"]
    copied = metrics["memorization"]
    floor, kid = metrics["kid_train_vs_test"], metrics["kid"]
    against_floor = (f" ({kid / floor:.0f}× the real pictures' {floor:.3g})" if floor > 0 else
                     f" (the real pictures' {floor:.3g})")
    c = metrics.get("coverage")
    looks = [] if not c else [
        f"Do the samples look like the pictures, all of them? At {c['side']}×{c['side']} pixels, {c['pictures']} "
        f"each, k = {c['neighbours']}: precision {c['precision']:.3f}, recall {c['recall']:.3f}, diversity "
        f"{c['diversity']:.3f}; held-out real pictures {c['real_precision']:.3f}, {c['real_recall']:.3f}, "
        f"{c['real_diversity']:.3f}. " + ("**The samples collapse: a few patterns drawn again and again.**"
                                          if c["collapsed"] else "No collapse seen."), ""]
    return [f"Distances on {metrics['frechet_examples']} test images, in the features of {stick} "
            f"(docs/gan.md): lower is closer. KID {kid:.3g}{against_floor}.", "", *table, "", *looks,
            f"Memorization: {copied['copied_fraction']:.1%} of {copied['generated_checked']} generated images stand "
            "as near one training image (against the next nearest) as only 5% of test images do (median distance "
            f"to the nearest training image {copied['median_nearest_train_distance_generated']:.3g}, the test "
            f"images' {copied['median_nearest_train_distance_test']:.3g}): "
            + ("**the generator is copying its training images**." if copied["memorizing"] else "no copying seen."),
            ""]


# Pixel levels (0..255). float32 may round a value on a .5 boundary the other way: one level. Quantized
# generators are judged on the mean difference: a few levels of noise leave the picture the same.
GENERATOR_LIMITS = {
    "savedmodel": ("max_abs_diff", 1.0),
    "float": ("max_abs_diff", 1.0),  # the float files (exporters.py: Target.limit)
    "float16": ("max_abs_diff", 4.0),
    "dynamic_range": ("mean_abs_diff", 8.0),
    "int8": ("mean_abs_diff", 8.0),
    "int16x8": ("mean_abs_diff", 8.0),
}


def ship_generator(gan: GAN, work: Workspace | None = None) -> Shipment:
    pixel_generator = build_pixel_generator(gan.ema_generator)
    height, width, channels = pixel_generator.outputs[0].shape[1:]
    tensors = {
        "noise": TensorInfo(f"{gan.noise_dim} values drawn from a standard normal distribution: one image per draw"),
        "pixels": TensorInfo(f"the generated image, {height}×{width}×{channels} uint8, 0–255",
                             value_range=(0, 255)),
    }
    if gan.conditional:
        tensors["label"] = TensorInfo(f"the class to draw, 0 to {gan.num_classes - 1}; the packed {artifacts.LABELS} "
                                      "names them", files=((artifacts.LABELS, LABELS),))
    return Shipment(model=pixel_generator, quantizable=build_pixel_generator(gan.ema_generator, rounded=False),
                    reference=pixel_generator, int8_output="uint8",
                    sample_inputs=lambda count, seed=7, label=None: generator_inputs(gan, count, seed, label),
                    limits=GENERATOR_LIMITS,
                    tensors=tensors)


# Losses say which net is winning, not how good the images are: the family is judged and tuned on the distance.
GENERATOR = Family(
    name="generator", compile=compile_gan, evaluate=evaluate_gan, ship=ship_generator, headline="frechet_distance",
    objective=FRECHET_OBJECTIVE, objective_direction="min", loss_key="g_loss", gradient_norm=False,
    export_columns=(Column("mean abs diff", "mean_abs_diff", "{:.3g}"),
                    Column("max abs diff", "max_abs_diff", "{:.3g}")),
    side_files={SAMPLES: "the generator's samples per epoch", FEATURE_CLASSIFIERS: "the GAN's measuring sticks"},
    pictures=(Picture(TRAINING_GIF, "the samples of every epoch, from the same noise"),
              Picture(INTERPOLATION_PNG, "walks between two noise draws, one a row")),
    callbacks=gan_callbacks, tuning_callbacks=gan_tuning_callbacks, report=report_distances,
    needs_labels=lambda config: bool(config.hparams.get("conditional")), generative=True,
    min_train_steps=MIN_TRAIN_STEPS, repeat_small_data=True,
    left_out={"int16x8": "the int8 generator holds (a mean 4.3 levels off Keras' pixels) and is smaller"})
