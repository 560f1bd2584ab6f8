"""The classifier family: cross-entropy training, evaluation per class, and what a classifier ships."""

import functools

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from models import backbones, rocket
from models.pretrained import PresetTokens
from models.recurrent import TOKEN_CLASSIFIER
from models.sequence import WINDOW
from pipelines import artifacts, evaluation
from pipelines.config import RunConfig
from pipelines.data import sequences
from pipelines.data.pipeline import split_arrays
from pipelines.exported import softmax
from pipelines.families import Asked, Column, Family, Picture, Workspace
from pipelines.families.tables import (BASELINE_ROWS, DESCRIPTION, FEATURES_FILE, CHOICE, choose_members, encode_table,
                                       gradient_boosting, is_table_model, logistic, table_parts, table_shipment,
                                       table_verdict)
from pipelines.metadata import LABELS, VOCABULARY, TensorInfo
from pipelines.schedules import learning_rate
from pipelines.shipping import (Shipment, as_rgb, for_int8, unchanged, with_full_pixel_range, with_probabilities,
                                with_range, with_rgb_pixels, with_uint8_pixels)

VOCABULARY_FILE = "vocab.txt"
NEIGHBOUR_ROWS = 20_000  # a sequence classifier's nearest-neighbour baseline searches at most this many train series
# Its MiniRocket baseline is fitted on at most this many labelled series: a ridge's leave-one-out fit grows with their
# square, and their features (10,000 floats each) are held at once.
MINIROCKET_ROWS = 2_000
QUOTED_ERRORS = 10       # a text model's surest test errors, quoted in metrics.json and report.md

# Logits: float exports match closely; quantized ones must pick Keras' class (top-1) on 99% of the judged inputs.
CLASSIFIER_LIMITS = {
    "savedmodel": ("max_abs_diff", 1e-4),
    "float": ("max_abs_diff", 1e-4),  # the float files (exporters.py: Target.limit)
    "float16": ("max_abs_diff", 1e-2),
    "dynamic_range": ("top1_agreement", 0.99),
    "int8": ("top1_agreement", 0.99),
    "int16x8": ("top1_agreement", 0.99),
}

# A model whose features are step functions (MiniRocket's) is judged by its float files' mean difference in a
# probability. Each series is z-normalised by statistics whose float sums differ between runtimes in the last bits,
# and a value that lands a rounding from a step of the series' grid flips it: ACSF1 (1,460 steps a series) had a
# mean difference of 4.7e-5 in its float32 file (largest 0.035, every class the same), where a conversion that is
# wrong moves it by 1e-2 and more.
STEP_FUNCTION_LIMIT = ("mean_abs_diff", 1e-4)


@keras.saving.register_keras_serializable(package="dlpipe")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy from logits against integer labels, with smoothed targets: 1 - s + s/K for the label and
    s/K for each other of the K classes (Keras' sparse loss has no label_smoothing).

    Smoothing bounds how far apart the logits are pushed, which the float16 and int8 exports need (their
    differences from Keras grow with the logits' spread).
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        targets = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(targets, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def compile_classifier(model: keras.Model, config: RunConfig, steps_per_epoch: int = 0) -> None:
    """Adam on cross-entropy from logits, targets smoothed by --label_smoothing; steps_per_epoch = 0 (evaluation
    only) keeps the rate constant."""
    loss = (SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rate = learning_rate(config, steps_per_epoch)
    # A pretrained backbone's model (models/backbones.py) steps its backbone by its training phase.
    optimizer = (backbones.FineTuneAdam(rate, global_clipnorm=config.clip_norm).attach(model)
                 if backbones.gates(model) else keras.optimizers.Adam(rate, global_clipnorm=config.clip_norm))
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                  steps_per_execution=config.steps_per_execution)


def inputs_at(split: tf.data.Dataset, indices) -> np.ndarray:
    """The inputs of a batched split's examples at `indices` (sorted or not), read in one streamed pass."""
    wanted, found, offset = set(int(i) for i in indices), {}, 0
    for x, _ in split.as_numpy_iterator():
        for i in range(len(x)):
            if offset + i in wanted:
                found[offset + i] = x[i]
        offset += len(x)
    return np.stack([found[int(i)] for i in indices]) if len(indices) else np.zeros((0,))


def labels_of(split: tf.data.Dataset) -> np.ndarray:
    return np.concatenate([y for _, y in split.map(lambda x, y: (0, y)).as_numpy_iterator()]).astype(np.int64)


CLASS_WEIGHTS = ("none", "balanced")  # --class_weight


def class_weights(work: Workspace) -> dict:
    """fit's class_weight for --class_weight=balanced, from the train split's labels (one pass over them)."""
    if work.config.class_weight == "none":
        return {}
    return {"class_weight": evaluation.balanced_weights(labels_of(work.inputs.train), len(work.data.label_names))}


def evaluate_classifier(model: keras.Model, work: Workspace) -> dict:
    """Loss and accuracy on the test split, each class's precision, recall and F1, the confusion matrix (also
    drawn), and the surest errors: drawn for images, quoted for text. The split is streamed: what is held is its
    labels and the model's outputs, and the few examples shown."""
    names, test = work.data.label_names, work.inputs.test
    labels = labels_of(test)  # the split in order: it is never shuffled
    # One pass of the model over the split: the loss, the accuracy and every per-class number come from it.
    logits = model.predict(test, verbose=0)
    probabilities = softmax(logits.astype(np.float64))
    counts = evaluation.confusion_matrix(labels, probabilities.argmax(-1), len(names))
    metrics = {"test_loss": float(model.compute_loss(y=labels, y_pred=logits, training=False)),
               "test_accuracy": float(np.trace(counts) / counts.sum()),
               "test_accuracy_interval": evaluation.wilson_interval(int(np.trace(counts)), int(counts.sum())),
               "test_balanced_accuracy": evaluation.balanced_accuracy(counts),
               "test_log_loss": log_loss(probabilities, np.arange(len(names)), labels),
               "per_class": evaluation.per_class(counts, names),
               "labels": list(names), "confusion_matrix": counts.tolist()}  # row and column i: labels[i]
    evaluation.plot_confusion_matrix(counts, names, work.path(artifacts.CONFUSION_PNG))
    worst = evaluation.surest_errors(labels, probabilities, evaluation.MISCLASSIFIED_SHOWN)
    if work.data.modality == "image":
        evaluation.plot_misclassified(inputs_at(test, worst), labels[worst], probabilities[worst], names,
                                      work.path(artifacts.MISCLASSIFIED_PNG))
    elif work.data.modality == "text":
        worst = worst[:QUOTED_ERRORS]
        metrics["misclassified"] = quoted_errors(inputs_at(test, worst), labels[worst], probabilities[worst], names)
    if is_table_model(model):
        metrics.update(table_baselines(model, work.inputs, labels), **work.chosen(*CHOICE))
    if work.data.sequences is not None:  # the series' scaling read as it was set, not recomputed from the data
        metrics.update(nearest_neighbour_baseline(work.inputs, labels, each=work.data.sequences.scaling == "each"))
        metrics.update(minirocket_baseline(model, work, labels))
    return metrics


def nearest_neighbour_baseline(inputs, test_labels: np.ndarray, each: bool) -> dict:
    """The 1-nearest-neighbour classifier (Euclidean) on the same series, the time-series classification
    literature's reference point (each series z-normalised first when the model does so)."""
    def scaled(x):
        x = sequences.padded(x, "last").reshape(len(x), -1).astype(np.float64)  # past a series' end: its last step
        if each:
            x = (x - x.mean(1, keepdims=True)) / np.maximum(x.std(1, keepdims=True), 1e-6)
        return x
    train_x, train_y = split_arrays(inputs.train, limit=NEIGHBOUR_ROWS)
    train_x = scaled(train_x)
    squares = (train_x ** 2).sum(1)
    predicted = []
    for x, _ in inputs.test.as_numpy_iterator():  # a batch of test series at a time: memory is batch × train
        x = scaled(x)
        predicted.append(train_y[np.argmin(squares[None, :] - 2 * x @ train_x.T, axis=1)])
    predicted = np.concatenate(predicted)
    return {"baseline_1nn_accuracy": float(np.mean(predicted == test_labels)), "baseline_rows": len(train_y)}


def minirocket_baseline(model: keras.Model, work: Workspace, test_labels: np.ndarray) -> dict:
    """MiniRocket (Dempster et al. 2021; models/rocket.py with its defaults), the strong reference of time-series
    classification, fitted in closed form on the same labelled series and scored on the same test split: what a
    network trained on the series must beat. None when the model is one."""
    if any(isinstance(layer, rocket.MiniRocket) for layer in model.layers):
        return {}
    steps, channels = model.inputs[0].shape[1:]
    reference = rocket.build_rocket_classifier((steps, channels), len(work.data.label_names),
                                               series_scale={**work.data.sequences.scale(), "each": False})
    fitted = rocket.fit(reference, [split_arrays(work.inputs.labelled(), limit=MINIROCKET_ROWS)])
    predicted = reference.predict(work.inputs.test, verbose=0).argmax(-1)
    return {"baseline_minirocket_accuracy": float(np.mean(predicted == test_labels)),
            "baseline_minirocket_rows": fitted["examples"]}


def table_baselines(model: keras.Model, inputs, test_labels: np.ndarray) -> dict:
    """What the network adds over the majority class, a logistic regression and gradient boosting on the same
    encoded features (each fitted on at most BASELINE_ROWS train rows)."""
    encoder, _ = table_parts(model)
    train_x, train_y = split_arrays(inputs.train, limit=BASELINE_ROWS)
    train_x = encode_table(encoder, train_x)
    counts = np.bincount(labels_of(inputs.train))
    majority = counts.argmax()
    fitted = {"logistic": logistic(train_x, train_y),
              "gradient_boosting": gradient_boosting(train_x, train_y, classify=True)}
    test_x = [encode_table(encoder, x) for x, _ in inputs.test.as_numpy_iterator()]
    found = {}
    for name, m in fitted.items():
        probabilities = np.concatenate([m.predict_proba(x) for x in test_x])
        found[f"baseline_{name}_accuracy"] = float(np.mean(m.classes_[probabilities.argmax(-1)] == test_labels))
        found[f"baseline_{name}_log_loss"] = log_loss(probabilities, m.classes_, test_labels)
    frequencies = counts / counts.sum()  # the majority's probabilities: the train rows' class frequencies
    return {"baseline_majority_accuracy": float(np.mean(test_labels == majority)),
            "baseline_majority_log_loss": log_loss(frequencies[None].repeat(len(test_labels), 0),
                                                   np.arange(len(counts)), test_labels), **found,
            "baseline_rows": len(train_y)}


LEAST_PROBABILITY = 1e-15  # a log loss's floor: what a class the model never learned, or a zero, counts as


def log_loss(probabilities: np.ndarray, classes, labels) -> float:
    """The mean of -log p(true class) over the rows: `probabilities` [rows, len(classes)] of the classes a model
    learned, in `classes`' order (indices or names; a class it never saw has LEAST_PROBABILITY)."""
    column = {c: i for i, c in enumerate(classes)}
    true = np.array([probabilities[r, column[y]] if y in column else 0.0 for r, y in enumerate(labels)])
    return float(np.mean(-np.log(np.clip(true, LEAST_PROBABILITY, 1.0))))


def quoted_errors(texts: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, names) -> list[dict]:
    """Texts the model was wrong about (surest first): their start, true and predicted names."""
    predicted = probabilities.argmax(-1)
    return [{"text": texts[i].decode(errors="replace")[:300], "true": names[labels[i]],
             "predicted": names[predicted[i]], "probability": float(probabilities[i, predicted[i]])}
            for i in range(len(labels))]


def report_errors(metrics: dict) -> list[str]:
    """report.md's lines for a table's or a sequence's baselines and a text model's quoted errors."""
    quoted = [f"- true {error['true']}, called {error['predicted']} ({error['probability']:.0%}): “{error['text']}”"
              for error in metrics.get("misclassified", [])]
    series = [f"{name} {metrics[f'baseline_{key}_accuracy']:.4f}" for key, name in SEQUENCE_BASELINES.items()
              if f"baseline_{key}_accuracy" in metrics]
    beside = [f"Baselines fitted on the same series, test accuracy: {', '.join(series)}.", ""] if series else []
    return table_verdict(metrics, "accuracy", higher_is_better=True) + beside + (quoted + [""] if quoted else [])


# A sequence classifier's baselines, by how metrics.json names them (baseline_<key>_accuracy).
SEQUENCE_BASELINES = {"1nn": "1-nearest-neighbour (Euclidean)", "minirocket": "MiniRocket"}


# What a classifier's TFLite files output, with labels.txt packed in.
CLASS_OUTPUTS = {"probabilities": TensorInfo(f"the probability of each class; the packed {artifacts.LABELS} names "
                                             "class i on line i", value_range=(0, 1),
                                             files=((artifacts.LABELS, LABELS),))}


def image_shipment(model: keras.Model) -> Shipment:
    """uint8 pixels in: the SavedModel in the model's own channels, the TFLite files RGB as a camera gives them (a
    grayscale model uses their luma, shipping.LUMA), the int8 one uint8 in and out as well."""
    (name,) = [t.name for t in model.inputs]
    height, width, channels = model.inputs[0].shape[1:]

    def as_uint8(batch):
        return {name: batch[name].astype(np.uint8)}
    pixels = TensorInfo(f"RGB pixels as a camera gives them: {height}×{width}×3 uint8, 0–255, normalised inside the "
                        "model" + (" (a grayscale model: it sees their luma, 0.299 R + 0.587 G + 0.114 B)"
                                   if channels == 1 else ""), image=True, value_range=(0, 255))
    return Shipment(model=with_uint8_pixels(model), reference=model, to_tflite_outputs=softmax,
                    tflite_model=with_probabilities(with_rgb_pixels(model)),
                    quantizable=with_probabilities(with_rgb_pixels(model, "float32")),
                    to_model_inputs=as_uint8, to_tflite_inputs=as_rgb,
                    to_quantizable_inputs=lambda batch: as_rgb(batch, np.float32),
                    tensors={name: pixels, **CLASS_OUTPUTS}, int8_input="uint8", limits=dict(CLASSIFIER_LIMITS),
                    int8_output="uint8", widen_calibration=with_full_pixel_range)


def text_shipment(model: keras.Model, tokenize) -> Shipment:
    """Strings in for the SavedModel; token ids for the TFLite files, which have no string ops: the app tokenizes
    with the packed vocab.txt (line i is token id i) as the tokenizer described in the metadata does."""
    token_model = model.get_layer(TOKEN_CLASSIFIER)
    length = token_model.inputs[0].shape[-1]
    if isinstance(tokenize, PresetTokens):  # a KerasHub preset's own tokenizer (models/pretrained.py)
        words = tokenize.vocabulary()
        how = (f"token ids: line i of the packed {VOCABULARY_FILE} is token i; the text tokenized by the "
               f"{tokenize.describe()}")
    else:
        words = [str(token) for token in tokenize.get_vocabulary()]
        how = (f"token ids: line i of the packed {VOCABULARY_FILE} is token i (0 pads, 1 is out of vocabulary); "
               f"the text lowercased, stripped of punctuation, split on whitespace, padded or cut to {length}")

    def to_token_ids(batch):
        return {"token_ids": tokenize(batch["text"]).numpy()}
    tokens = TensorInfo(how, files=((VOCABULARY_FILE, VOCABULARY),), value_range=(0, len(words) - 1))
    # The SavedModel's output is named `logits`, as an image model's is (a client and dlpipe-serve key on it), not
    # after the nested token_classifier that computes it.
    served = keras.Model(model.input, keras.layers.Identity(name="logits")(model.output), name=model.name)
    return Shipment(model=served, quantizable=with_probabilities(token_model), reference=model,
                    to_tflite_outputs=softmax, tflite_model=with_probabilities(token_model),
                    to_tflite_inputs=to_token_ids, to_quantizable_inputs=to_token_ids,
                    side_files={VOCABULARY_FILE: "\n".join(words) + "\n"}, limits=dict(CLASSIFIER_LIMITS),
                    tensors={"token_ids": tokens, **CLASS_OUTPUTS})


def ship_classifier(model: keras.Model, work: Workspace | None = None) -> Shipment:
    """What a classifier ships, by what it reads: a table's columns, text, or images."""
    if is_table_model(model):
        _, body = table_parts(model)
        # The SavedModel outputs `logits`, as every classifier's does (dlpipe-serve adds the label names to them).
        served = keras.Model(model.inputs, keras.layers.Identity(name="logits")(model.outputs[0]),
                             name=f"{model.name}_logits")
        return table_shipment(model, served=served, tflite_model=with_probabilities(body),
                              quantizable=with_probabilities(body), limits=dict(CLASSIFIER_LIMITS), classes=True,
                              to_tflite_outputs=softmax, outputs=CLASS_OUTPUTS)
    if model.inputs[0].name == WINDOW:
        return series_shipment(model)
    tokenizers = [layer for layer in model.layers if isinstance(layer, (keras.layers.TextVectorization, PresetTokens))]
    return text_shipment(model, tokenizers[0]) if tokenizers else image_shipment(model)


def series_shipment(model: keras.Model) -> Shipment:
    """A series of raw values in (scaled inside the model), the class probabilities out in every file."""
    steps, columns = model.inputs[0].shape[1:]
    # A layer that masks the steps past a shorter series' end (MiniRocket's, models/rocket.py) reads them as NaN,
    # and says how an app gives its int8 file them (`int8_input`: there, the lowest code).
    masked = [layer for layer in model.layers if getattr(layer, "masked", False)]
    window = TensorInfo(f"a series of {steps} steps × {columns} column of raw values, oldest step first" + (
        "; past a shorter series' end NaN (an int8 input: its lowest code, -128; values from -127 up)" if masked
        else ""))
    limits = dict(CLASSIFIER_LIMITS)
    if any(getattr(layer, "step_function", False) for layer in model.layers):
        # Features that are step functions (MiniRocket's): an input a rounding error from a step flips one, in any
        # two correct computations, so the float files match Keras on average, not at every output.
        limits.update(savedmodel=STEP_FUNCTION_LIMIT, float=STEP_FUNCTION_LIMIT)
    ranges = [layer.input_range for layer in model.layers if getattr(layer, "input_range", None)]
    return Shipment(model=model, reference=model, to_tflite_outputs=softmax, tflite_model=with_probabilities(model),
                    quantizable=with_probabilities(for_int8(model)), tensors={WINDOW: window, **CLASS_OUTPUTS},
                    limits=limits, widen_calibration=with_range(*ranges[0]) if ranges else unchanged,
                    to_quantizable_inputs=(lambda batch: {name: masked[0].int8_input(x) for name, x in batch.items()})
                    if masked else unchanged)


def answer_classes(probabilities: np.ndarray, names, asked: Asked) -> dict[str, list]:
    """The likeliest class and its probability (top_k of each), and every class's probability when asked."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :asked.top_k]
    columns = {}
    for k in range(order.shape[1]):
        suffix = f"_{k + 1}" if asked.top_k > 1 else ""
        columns[asked.header + suffix] = [names[i] for i in order[:, k]]
        columns["probability" + suffix] = np.take_along_axis(probabilities, order[:, k:k + 1], 1)[:, 0].tolist()
    if asked.probabilities:
        columns.update({f"probability_{name}": probabilities[:, i].tolist() for i, name in enumerate(names)})
    return columns


class AccuracyScorer:
    """Top-1 accuracy against true class names and the log loss (a name the model never learned counts as an error,
    at LEAST_PROBABILITY, and is named)."""

    def __init__(self, names):
        self.index, self.names = {name: i for i, name in enumerate(names)}, tuple(names)
        self.right = self.total = 0
        self.surprise = 0.0  # the sum of -log p(true class) over the labelled examples
        self.unknown: dict[str, int] = {}

    def add(self, probabilities: np.ndarray, truth: list) -> None:
        rows, classes = [], []  # the examples of a learned class, and its index
        for row, true in enumerate(truth):
            if true is None:
                continue
            self.total += 1
            if true not in self.index:  # an error, and LEAST_PROBABILITY to the log loss (as log_loss counts it)
                self.unknown[true] = self.unknown.get(true, 0) + 1
                self.surprise -= float(np.log(LEAST_PROBABILITY))
                continue
            rows.append(row)
            classes.append(self.index[true])
        if rows:
            chosen = np.asarray(probabilities)[rows]
            self.right += int(np.sum(chosen.argmax(-1) == np.array(classes)))
            self.surprise -= float(np.sum(np.log(np.clip(chosen[np.arange(len(rows)), classes], LEAST_PROBABILITY,
                                                         1.0))))

    def result(self) -> dict:
        result = {"examples": self.total, "accuracy": self.right / self.total if self.total else None,
                  "accuracy_interval": evaluation.wilson_interval(self.right, self.total),
                  "log_loss": self.surprise / self.total if self.total else None}
        if self.unknown:
            result["labels_not_learned"] = self.unknown
        return result

    def line(self) -> str:
        low, high = evaluation.wilson_interval(self.right, self.total)
        unknown = (f"; {sum(self.unknown.values())} have a label the model never learned "
                   f"({', '.join(sorted(self.unknown)[:3])})") if self.unknown else ""
        return (f"accuracy {self.right / self.total:.4f} on {self.total:,} labelled examples (95%: "
                f"{low:.3f}–{high:.3f}){unknown}")


CLASSIFIER = Family(
    name="classifier", compile=compile_classifier, evaluate=evaluate_classifier, ship=ship_classifier,
    headline="test_accuracy", objective="val_accuracy", objective_direction="max", loss_key="loss",
    gradient_norm=True,
    export_columns=(Column("test accuracy", "test_accuracy", "{:.4f}"), Column("drop", "accuracy_drop", "{:+.4f}"),
                    Column("top-1 agree", "top1_agreement", "{:.4f}"),
                    Column("max abs diff", "max_abs_diff", "{:.2e}")),
    pictures=(Picture(artifacts.CONFUSION_PNG, "the confusion matrix"),
              Picture(artifacts.MISCLASSIFIED_PNG, "the test errors the model was surest of")),
    side_files={VOCABULARY_FILE: "line i is token id i", FEATURES_FILE: DESCRIPTION}, report=report_errors,
    answer=answer_classes, scorer=AccuracyScorer, choose=functools.partial(choose_members, classify=True),
    fit_options=class_weights,
    left_out={"int16x8": "a classifier's int8 file holds (99% top-1 agreement, a quarter of float32's size) and runs "
                         "on integer accelerators; int16 activations run LiteRT's slower kernels"})
