"""Artifact names and atomic writes: one source of truth for what a run leaves in <output_dir>/<task>/.

Every artifact is written under a temporary name and renamed into place only once complete, so a crash or a
failed stage never leaves a half-written file where a good one was.
"""

import contextlib
import json
import os
import shutil
from typing import Any, Iterator

CONFIG = "config.json"          # every setting of the last run
FINGERPRINTS = "fingerprints.json"  # per stage: a hash of the config it used and of its inputs' fingerprints
TUNING = "tuning"               # KerasTuner's state: an interrupted sweep continues from it
TRIALS_CSV = "trials.csv"       # one row per trial: id, status, objective, epochs, seconds, hyperparameters
TRIALS_PNG = "trials.png"       # the objective per trial
BEST_HPARAMS = "best_hparams.json"  # the best trial's builder arguments and learning rate (tune → train)
MODEL = "model.keras"           # the trained Keras model (train → evaluate, export, verify)
HISTORY = "history.json"        # per-epoch training curves
CHECKPOINTS = "checkpoints"     # per-epoch weights (ModelCheckpoint)
BACKUP = "backup"               # mid-training state for resuming after a crash (BackupAndRestore)
LOGS = "logs"                   # TensorBoard event files
METRICS = "metrics.json"        # test-split metrics of the Keras model
SAVED_MODEL = "saved_model"     # SavedModel with a serving_default signature
TFLITE = "model.tflite"         # float32 TFLite, builtin ops only; the other variants: see tflite_file()
LABELS = "labels.txt"           # line i names class i, beside the TFLite files
VERIFY = "export_report.json"   # per export: parity with Keras, test accuracy, size, latency; pass or fail
VERIFY_MD = "export_report.md"  # the same as a table


# The TFLite variants, in the order they are exported and reported (see stages/export.py).
TFLITE_VARIANTS = ("float32", "dynamic_range", "float16", "int8")


def tflite_file(variant: str) -> str:
    """model.tflite for float32, model_<variant>.tflite for the others (model_int8.tflite, …)."""
    return TFLITE if variant == "float32" else f"model_{variant}.tflite"


def _tmp(path: str) -> str:
    head, tail = os.path.split(path)
    root, ext = os.path.splitext(tail)
    # Keep the extension: Keras decides the save format from it (`model.keras`).
    return os.path.join(head, f".{root}.tmp{ext}")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path to write a file or folder to; on success it replaces `path`, on error it goes away."""
    tmp = _tmp(path)
    _remove(tmp)
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            # os.replace cannot swap over a non-empty folder: move the old one aside first.
            old = _tmp(path) + ".old"
            _remove(old)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_json(path: str, obj: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)
