"""Predictions on new data: a finished run's model and new examples → a predictions CSV (dlpipe-predict and the
runner's predict stage share this), or a generator's samples as PNG files.

The run folder is used as a client uses it: the model chosen (the SavedModel by default, what dlpipe-serve serves;
any exported file in the client that runs it, exporters.py: a TFLite file in LiteRT, so a user sees what the phone
will say), each file first checked against the content hash its stage recorded. The new examples are read as the
training examples were (data/new_data.py), a batch at a time, so memory is bounded by the batch whatever the
input's size. The outputs are taken in the terms an app reads (a classifier's probabilities, a regressor's value
in the label's units) and the model's family turns them into the file's columns (Family.answer) and, when the data
hold their true labels, scores them (Family.scorer).
"""

import csv
import dataclasses
import os
import sys
import time
from typing import Callable

import numpy as np

from pipelines import artifacts, console, exporters, trained
from pipelines.config import RunConfig, from_record
from pipelines.data.new_data import Reads, open_new_data
from pipelines.data.tables import NewColumns
from pipelines.errors import PipelineError
from pipelines.exported import Batch, answer_of, keras_predict
from pipelines.families import Asked, Family
from pipelines.shipping import Shipment

SAVED_MODEL = artifacts.SAVED_MODEL
BATCH_SIZE = 256
PROGRESS_SECONDS = 0.5  # a terminal's progress line is redrawn at most this often


@dataclasses.dataclass
class Predictor:
    """A finished run opened for predicting: what it was trained on, its family, what it ships, and the chosen
    model as one call from a batch of pipeline inputs to outputs in the app's terms."""
    folder: str
    config: RunConfig
    trained_on: dict
    family: Family
    shipment: Shipment
    model_name: str
    call: Callable[[Batch], np.ndarray]

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.trained_on.get("label_names", ()))

    @property
    def header(self) -> str:
        """The answer column's name: a table's label column, else "label"."""
        return self.trained_on.get("label_column") or "label"

    def interval(self, level: float) -> Callable[[Batch], np.ndarray]:
        """The run's interval at `level`: from a batch of windows, each one's half-widths per step ahead (evaluate
        measured them on the held-out windows: Family.intervals); one line when it has none."""
        try:
            metrics = artifacts.read_json(os.path.join(self.folder, artifacts.METRICS))
        except (OSError, ValueError):
            metrics = {}
        found = self.family.intervals(metrics) if self.family.intervals else None
        if found is None:
            raise PipelineError(f"--interval: the model in {self.folder} has no intervals (a forecaster's evaluate "
                                "stage measures them): run dlpipe --stages=evaluate for it")
        if str(level) not in found.multiples:
            raise PipelineError(f"--interval={level:g}: the run measured intervals at {', '.join(found.multiples)}: "
                                "give one")
        return lambda batch: found.halfwidths(batch, str(level))

    def reads(self, id_columns: tuple[str, ...] = ()) -> Reads:
        """What the model reads, for data/new_data.py; `id_columns`: more columns to carry through (a table)."""
        reference = self.shipment.reference
        first = reference.inputs[0]
        table = None
        if self.trained_on.get("modality") == "table":
            kinds = {t.name: "categorical" if t.dtype == "string" else "numeric" for t in reference.inputs}
            columns = dict(self.trained_on.get("columns") or [(name, name) for name in kinds])
            ids = tuple(dict.fromkeys((*self.trained_on.get("id_columns", ()), *id_columns)))
            table = NewColumns({column: (name, kinds[name]) for column, name in columns.items()}, ids,
                               self.trained_on.get("label_column"))
        shape = tuple(first.shape[1:]) if len(first.shape) == 4 else None
        modality = self.trained_on.get("modality", "image")
        return Reads(modality, first.name, shape, table, self.label_names,
                     self.trained_on if modality == "series" else None)


def _recorded(folder: str, artifact: str) -> str:
    """The content hash the stage that made `artifact` recorded for it; one line when there is none."""
    try:
        records = artifacts.read_json(os.path.join(folder, artifacts.FINGERPRINTS))
    except (OSError, ValueError):
        records = {}
    producer = "train" if artifact == artifacts.MODEL else "export"
    expected = (records.get(producer) or {}).get("outputs") or {} if isinstance(records, dict) else {}
    if not os.path.exists(os.path.join(folder, artifact)) or expected.get(artifact) is None:
        _left_out(folder, artifact)
        variant = " (with --tflite_variants naming its variant)" if artifact.endswith(".tflite") else ""
        raise PipelineError(f"{folder} has no {artifact} that a finished {producer} stage wrote: run dlpipe "
                            f"--stages={producer} for it first{variant}")
    return expected[artifact]


def _left_out(folder: str, artifact: str) -> None:
    """One line when verify left the file out of what ships, with its reason."""
    target = exporters.by_file(artifact)
    if target is None:  # model.keras: train's, not an export
        return
    try:
        row = artifacts.read_json(os.path.join(folder, artifacts.VERIFY))["exports"].get(target.name, {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    if isinstance(row, dict) and row.get("left_out"):
        raise PipelineError(f"{artifact} was left out of what {folder} ships: verify measured {row['left_out']}; "
                            f"export it again with --tflite_variants naming {target.name} to have it anyway")


def _checked(folder: str, artifact: str) -> None:
    """The file (or folder) as its stage recorded it, or one line naming the stage to run again."""
    expected = _recorded(folder, artifact)
    if artifacts.content_hash(os.path.join(folder, artifact)) != expected:
        raise PipelineError(f"{artifact} in {folder} is not the one stage export wrote (damaged or replaced): run "
                            f"--stages={'train' if artifact == artifacts.MODEL else 'export'} again")


def recorded_family(record: dict, task: str) -> Family:
    """The family of the model a run's config.json (`record`) describes: the one it was trained as (a dense task's
    table is a classifier or a regressor, its series a forecaster), else its task's."""
    from pipelines.tasks import FAMILIES, TASKS
    return FAMILIES.get((record.get("trained_on") or {}).get("family")) or TASKS[task].family


def open_run(folder: str, model_name: str = SAVED_MODEL) -> Predictor:
    """The run in `folder` (a task folder a dlpipe run wrote) with `model_name` ready to call."""
    config_path = os.path.join(folder, artifacts.CONFIG)
    if not os.path.isfile(config_path):
        raise PipelineError(f"{folder} is not a trained run's folder (no {artifacts.CONFIG}): give the task folder a "
                            "dlpipe run wrote, such as runs/dense")
    try:
        record = artifacts.read_json(config_path)
        config = RunConfig(**from_record(record, [f.name for f in dataclasses.fields(RunConfig)]))
    except (OSError, ValueError, TypeError) as e:
        raise PipelineError(f"{config_path} is damaged ({type(e).__name__}): run --stages=train again") from None
    trained_on = record.get("trained_on") or {}
    family = recorded_family(record, config.task)
    model, _ = trained.load(os.path.join(folder, artifacts.MODEL), _recorded(folder, artifacts.MODEL))
    shipment = family.ship(model)
    if model_name not in (artifacts.MODEL, SAVED_MODEL) and exporters.by_file(model_name) is None:
        raise PipelineError(f"--model={model_name}: give {SAVED_MODEL}, {artifacts.MODEL} or a file the run exports "
                            f"({', '.join(exporters.files())})")
    if model_name != artifacts.MODEL:
        _checked(folder, model_name)
    return Predictor(folder, config, trained_on, family, shipment, model_name,
                     _caller(folder, model_name, shipment))


def _caller(folder: str, model_name: str, shipment: Shipment) -> Callable[[Batch], np.ndarray]:
    """The chosen model as a call from pipeline inputs to outputs in the app's terms (Shipment's TFLite outputs)."""
    path = os.path.join(folder, model_name)
    if model_name == artifacts.MODEL:
        return lambda batch: shipment.to_tflite_outputs(keras_predict(shipment.reference, batch))
    if model_name == SAVED_MODEL:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (the ops a KerasHub preset's tokenizer runs in its SavedModel)
        try:
            function = tf.saved_model.load(path).signatures["serving_default"]
        except Exception as e:  # TensorFlow raises many types for a damaged SavedModel
            raise PipelineError(f"{path} cannot be loaded ({type(e).__name__}): run --stages=export again") from None

        def saved_model(batch):
            inputs = shipment.to_model_inputs(batch)
            value = answer_of(function(**{name: tf.constant(v) for name, v in inputs.items()}))
            return shipment.to_tflite_outputs(np.asarray(value).astype(np.float64))
        return saved_model
    target = exporters.by_file(model_name)
    with console.native_chatter_hidden():  # LiteRT announces its XNNPACK delegate on the first call
        exported = target.open(path)
    to_inputs = shipment.to_quantizable_inputs if target.quantized_inputs else shipment.to_tflite_inputs
    called = []

    def exported_file(batch):
        if called:
            return shipment.from_tflite_outputs(exported(to_inputs(batch)))
        called.append(True)
        with console.native_chatter_hidden():
            return shipment.from_tflite_outputs(exported(to_inputs(batch)))
    return exported_file


class Progress:
    """On a terminal, one line redrawn as batches finish: how many, and how fast. Silent otherwise."""

    def __init__(self, total: int | None, what: str = "examples"):
        self.total, self.what, self.done = total, what, 0
        self.start = self.drawn = time.perf_counter()
        self.terminal = sys.stderr.isatty()

    def step(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if self.terminal and now - self.drawn >= PROGRESS_SECONDS:
            self.drawn = now
            of = f" of {self.total:,}" if self.total else ""
            print(f"\r{self.done:,}{of} {self.what}, {self.rate:,.0f}/s", end="", file=sys.stderr, flush=True)

    @property
    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.start, 1e-9)

    def end(self) -> None:
        if self.terminal and self.done:
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Summary:
    """What predicting did: how many examples, how fast, the scores (labelled data), the files that failed."""
    examples: int
    per_second: float
    output: str
    what: str = "predictions"
    scores: dict | None = None
    score_line: str = ""
    failures: list[str] = dataclasses.field(default_factory=list)

    @property
    def line(self) -> str:
        scored = f"; {self.score_line}" if self.score_line else ""
        return f"{self.examples:,} {self.what} in {self.output} ({self.per_second:,.0f}/s){scored}"


def check_output(output: str, model_dir: str, input_path: str | None) -> None:
    """The output may be neither the input (any spelling of the same file) nor inside the run folder, which
    dlpipe-predict only reads: either would replace what it reads."""
    real = os.path.realpath(output)
    if input_path and os.path.exists(real) and os.path.exists(input_path) and os.path.samefile(real, input_path):
        raise PipelineError(f"--output={output} is the input file {input_path}: writing it would replace the rows "
                            "read; give another --output")
    folder = os.path.realpath(model_dir)
    if os.path.commonpath([real, folder]) == folder:
        raise PipelineError(f"--output={output} is inside --model_dir={model_dir}, which dlpipe-predict only reads "
                            "(its files belong to the run that made them): give a path outside it")


def scores_path(output: str) -> str:
    """Where the scores of labelled new data go: beside the predictions, <name>.scores.json."""
    return os.path.splitext(output)[0] + ".scores.json"


def predict_file(predictor: Predictor, input_path: str, output: str, asked: Asked, *, batch_size: int = BATCH_SIZE,
                 text_column: str = "text", id_columns: tuple[str, ...] = (), submission: bool = False) -> Summary:
    """Predictions for every example at `input_path`, written to the CSV `output` (whole or not at all: a failure
    leaves an earlier file as it was); with `submission`, exactly an id column and the answer (Kaggle's shape).
    When the examples hold their true labels, the scores are printed and written beside it (scores_path)."""
    family = predictor.family
    if family.answer is None:
        raise PipelineError(f"the model in {predictor.folder} answers no inputs (a {family.name}): draw samples "
                            "with dlpipe-predict --num_samples=N instead")
    data = open_new_data(input_path, predictor.reads(id_columns), text_column)
    scorer = family.scorer(predictor.label_names) if family.scorer else None
    progress, scored = Progress(data.count), False
    beside = artifacts.is_regular_or_new(output)  # a device or a pipe has no folder to put the scores in
    with artifacts.user_output(output) as f:
        writer = csv.writer(f)
        for keys, inputs, truth in data.batches(batch_size):
            outputs = predictor.call(inputs)
            columns = family.answer(outputs, predictor.label_names, asked.for_batch(inputs))
            if submission:
                keys, columns = _submission(keys, columns, asked, predictor.folder)
            if not progress.done:
                writer.writerow([*keys, *columns])
            writer.writerows(zip(*keys.values(), *columns.values()))
            if scorer is not None and truth is not None:
                scorer.add(outputs, truth)
                scored = True
            progress.step(len(outputs))
        progress.end()
        if not progress.done:
            raise PipelineError(f"no example of {input_path} could be read: {data.failures[0]}" if data.failures
                                else f"{input_path} holds no examples")
    summary = Summary(progress.done, progress.rate, output, failures=list(data.failures))
    if scored:
        summary.scores, summary.score_line = scorer.result(), scorer.line()
        if beside:
            artifacts.write_json(scores_path(os.path.realpath(output)), {
                "input": input_path, "model": predictor.model_name, **summary.scores})
    return summary


def _submission(keys: dict, columns: dict, asked: Asked, folder: str) -> tuple[dict, dict]:
    """Kaggle's two columns: the one id column, and the answer under the training label column's name."""
    if len(keys) != 1:
        found = f"the id columns {', '.join(keys)}: name one" if keys else \
            f"no id column (the model in {folder} was trained with none found): name it"
        raise PipelineError(f"--submission writes one id column and the prediction, and this input has {found} with "
                            "--id_column")
    return keys, {asked.header: columns[asked.header]}


def write_samples(predictor: Predictor, folder: str, count: int, seed: int, class_name: str | None = None) -> Summary:
    """`count` generated images as PNG files in `folder`, a grid of the first ones, and samples.csv naming each
    file (and its class, for a conditional generator). The folder is written whole or not at all: new, empty, or
    an earlier set of samples (replaced, none of its files left beside the new ones)."""
    sample_inputs = predictor.shipment.sample_inputs
    if sample_inputs is None:
        raise PipelineError(f"the model in {predictor.folder} is a {predictor.family.name}: it answers inputs "
                            "(give --input), it draws no samples")
    inputs = sample_inputs(count, seed, _class_index(predictor, class_name))
    real = _samples_folder(folder)
    try:
        os.makedirs(os.path.dirname(real), exist_ok=True)
        artifacts.clear_dead_temporaries(real)
        with artifacts.atomic_path(real) as tmp:
            os.makedirs(tmp)
            progress = _draw(predictor, inputs, tmp)
    except OSError as e:
        raise PipelineError(f"cannot write --output={folder} ({e.strerror or e}): choose another folder; nothing "
                            "was written over what was there") from None
    return Summary(count, progress.rate, folder, what="samples")


def _class_index(predictor: Predictor, class_name: str | None) -> int | None:
    """The class a conditional generator is asked to draw, or one line when it draws none or not that one."""
    if class_name is None:
        return None
    if "label" not in predictor.shipment.sample_inputs(1, 0):
        raise PipelineError(f"--class_name: the generator in {predictor.folder} was trained without --conditional, "
                            "so it draws no chosen class: drop --class_name")
    if class_name not in predictor.label_names:
        raise PipelineError(f"--class_name={class_name} is not one of the classes the model learned: "
                            f"{', '.join(predictor.label_names)}")
    return predictor.label_names.index(class_name)


def _samples_folder(folder: str) -> str:
    """Where the samples go (a link followed): a folder that is new, empty or an earlier set of samples."""
    real = os.path.realpath(folder)
    if os.path.exists(real) and not os.path.isdir(real):
        raise PipelineError(f"--output={folder} is a file: give a folder for the samples (with --num_samples, "
                            "--output names a folder)")
    if os.path.isdir(real) and os.listdir(real) and not os.path.isfile(os.path.join(real, SAMPLES_CSV)):
        raise PipelineError(f"--output={folder} holds files that are not dlpipe samples: give a new or empty folder "
                            "(an earlier set of samples is replaced whole)")
    return real


def _draw(predictor: Predictor, inputs: dict, folder: str) -> Progress:
    """The samples of `inputs` as PNG files in `folder`, with samples.csv and grid.png."""
    from PIL import Image
    count = len(next(iter(inputs.values())))
    progress, pixels_seen = Progress(count, "samples"), []
    with open(os.path.join(folder, SAMPLES_CSV), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "class"] if "label" in inputs else ["file"])
        for begin in range(0, count, BATCH_SIZE):
            batch = {name: value[begin:begin + BATCH_SIZE] for name, value in inputs.items()}
            pixels = np.clip(np.round(predictor.call(batch)), 0, 255).astype(np.uint8)
            for i, image in enumerate(pixels):
                name = f"sample_{begin + i:05d}.png"
                Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(os.path.join(folder, name))
                classes = [predictor.label_names[int(batch["label"][i])]] if "label" in batch else []
                writer.writerow([name, *classes])
            if len(pixels_seen) < GRID * GRID:
                pixels_seen.extend(pixels[:GRID * GRID - len(pixels_seen)])
            progress.step(len(pixels))
    progress.end()
    _grid(np.stack(pixels_seen), os.path.join(folder, "grid.png"))
    return progress


SAMPLES_CSV = "samples.csv"  # names every sample file of a samples folder (and marks the folder as one)
GRID = 8  # grid.png shows up to GRID × GRID samples


def _grid(pixels: np.ndarray, path: str) -> None:
    from PIL import Image
    columns = min(GRID, len(pixels))
    rows = -(-len(pixels) // columns)
    n, h, w, c = pixels.shape
    canvas = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(pixels):
        canvas[i // columns * h:(i // columns + 1) * h, i % columns * w:(i % columns + 1) * w] = image
    Image.fromarray(canvas[..., 0] if c == 1 else canvas).save(path)
