"""dlpipe-predict: a trained run and new examples → a predictions CSV, or a generator's samples.

    dlpipe-predict --model_dir=runs/dense --input=test.csv --output=predictions.csv [--submission]
    dlpipe-predict --model_dir=runs/conv --input='photos/**/*.jpg' --top_k=3
    dlpipe-predict --model_dir=runs/dense --input=test.csv --model=model_int8.tflite   # what the phone says
    dlpipe-predict --model_dir=runs/gan --num_samples=64 --output=samples/

--model_dir is a task folder a dlpipe run wrote. The folder is only read: its lock is taken shared, so it may be
served and predicted from at once, but not retrained meanwhile. The work is pipelines/prediction.py's; its flags
are this program's own (dlpipe's are in flags.py), as dlpipe-serve's are.
"""

import os
import sys

from pipelines import console

console.start_tensorflow()  # first: its start-up chatter is hidden only around its import

from absl import app, flags, logging  # noqa: E402

from pipelines import artifacts, exporters, interrupts, prediction  # noqa: E402
from pipelines.errors import PipelineError  # noqa: E402
from pipelines.families import Asked  # noqa: E402

MODEL_DIR = flags.DEFINE_string("model_dir", None, "The task folder a dlpipe run wrote (runs/dense): its model and "
                                "what it was trained on.")
INPUT = flags.DEFINE_string(
    "input", None, "The new examples: a CSV, Parquet, Feather or Arrow file of rows (a table model or a series; a "
    "CSV of texts, see --text_column), an image or .txt "
    "file, a folder (searched recursively; class subfolders named as the model's classes are scored), or a glob.")
OUTPUT = flags.DEFINE_string("output", None, "The predictions CSV (default predictions.csv); with --num_samples, "
                             "the folder of PNG samples (default samples).")
MODEL = flags.DEFINE_string(
    "model", prediction.SAVED_MODEL, "Which of the run's models answers: saved_model (what dlpipe-serve serves), "
    "model.keras, or a file the run exported, in the client that runs it: " + ", ".join(
        f"{t.file} ({t.client})" for t in exporters.TARGETS.values()) + ".")
ID_COLUMN = flags.DEFINE_list("id_column", [], "Columns of the input CSV that name a row, written first (beside "
                              "the ones named at training or found there).")
PROBABILITIES = flags.DEFINE_bool("probabilities", False, "A classifier: one column per class with its probability.")
TOP_K = flags.DEFINE_integer("top_k", 1, "A classifier: the k likeliest classes, each with its probability.",
                             lower_bound=1)
INTERVAL = flags.DEFINE_float(
    "interval", None, "A forecaster: add <label>_<k>_lower and _upper for every step ahead k, covering this share of "
    "what follows (split-conformal: the held-out windows' errors, as wide as each window is spread): 0.5, 0.8, "
    "0.9 or 0.95.", lower_bound=0.01,
    upper_bound=0.99)
SUBMISSION = flags.DEFINE_bool("submission", False, "Write exactly two columns: the id column and the prediction "
                               "under the training label column's name (a Kaggle submission).")
TEXT_COLUMN = flags.DEFINE_string("text_column", "text", "A text model given a CSV: the column of texts.")
NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "A generator: draw this many images as PNG files, with a "
                                   "grid.png and samples.csv.", lower_bound=1, upper_bound=1_000_000)
CLASS_NAME = flags.DEFINE_string("class_name", None, "A conditional generator: draw this class only.")
SEED = flags.DEFINE_integer("seed", 0, "A generator: the seed of its noise (the same seed draws the same images).",
                            lower_bound=0, upper_bound=2**63 - 1)
BATCH_SIZE = flags.DEFINE_integer("batch_size", prediction.BATCH_SIZE, "Examples per call into the model; memory "
                                  "is bounded by it.", lower_bound=1, upper_bound=65_536)
flags.mark_flag_as_required("model_dir")


@flags.multi_flags_validator(["input", "num_samples"], message="give --input (the examples to predict) or, for a "
                             "generator, --num_samples (the images to draw): one of them")
def _input_or_samples(values):
    return (values["input"] is None) != (values["num_samples"] is None)


def predict() -> prediction.Summary:
    output = OUTPUT.value or ("samples" if NUM_SAMPLES.value else "predictions.csv")
    prediction.check_output(output, MODEL_DIR.value, INPUT.value)
    predictor = prediction.open_run(MODEL_DIR.value, MODEL.value)
    if NUM_SAMPLES.value:
        return prediction.write_samples(predictor, output, NUM_SAMPLES.value, SEED.value, CLASS_NAME.value)
    asked = Asked(predictor.header, TOP_K.value, PROBABILITIES.value,
                  predictor.interval(INTERVAL.value) if INTERVAL.value else None)
    if asked.top_k > 1 and SUBMISSION.value:
        raise PipelineError("--submission writes one prediction per row: drop --top_k")
    return prediction.predict_file(predictor, INPUT.value, output, asked,
                                   batch_size=BATCH_SIZE.value, text_column=TEXT_COLUMN.value,
                                   id_columns=tuple(ID_COLUMN.value), submission=SUBMISSION.value)


def main(argv) -> None:
    interrupts.install()  # SIGTERM as Ctrl-C: the half-written output's temporary file is removed on the way out
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    try:
        if len(argv) > 1:
            raise PipelineError(f"unexpected arguments {' '.join(argv[1:])}: flags are written --name=value")
        if not os.path.isdir(MODEL_DIR.value):
            raise PipelineError(f"--model_dir={MODEL_DIR.value} is not a folder: give the task folder a dlpipe run "
                                "wrote, such as runs/dense")
        with artifacts.TaskLock(MODEL_DIR.value, shared=True):
            summary = predict()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        how, code = ("terminated (SIGTERM)", 143) if isinstance(e, interrupts.Terminated) else ("interrupted", 130)
        print(f"error: {how}; no predictions file was written (an earlier one is as it was)", file=sys.stderr)
        sys.exit(code)
    for failure in summary.failures:
        print(f"warning: {failure}: left out", file=sys.stderr)
    print(summary.line, flush=True)
    if summary.failures:
        print(f"error: {len(summary.failures)} of {summary.examples + len(summary.failures)} examples could not be "
              f"read (named above); the other {summary.examples} are in {summary.output}", file=sys.stderr)
        sys.exit(1)


def run() -> None:
    app.run(main, flags_parser=lambda argv: console.parse_flags(argv, __name__))


if __name__ == "__main__":
    run()
