"""The stages, in the only order they run, each with the artifacts it reads and writes."""

import dataclasses
from typing import Callable

from pipelines import artifacts as a
from pipelines.stages import evaluate, export, train, tune, verify


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    run: Callable  # (Context) -> str: a one-line key result for the summary
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("tune", tune.run, inputs=(), outputs=(a.TRIALS_CSV, a.TRIALS_PNG, a.BEST_HPARAMS, a.TUNING)),
    Stage("train", train.run, inputs=(), outputs=(a.MODEL, a.HISTORY, a.CHECKPOINTS, a.LOGS)),
    Stage("evaluate", evaluate.run, inputs=(a.MODEL,), outputs=(a.METRICS,)),
    # export also writes a TFLite file per --tflite_variants (artifacts.tflite_file), checked by verify itself.
    Stage("export", export.run, inputs=(a.MODEL,), outputs=(a.SAVED_MODEL, a.TFLITE, a.LABELS)),
    Stage("verify", verify.run, inputs=(a.MODEL, a.SAVED_MODEL), outputs=(a.VERIFY, a.VERIFY_MD)),
)}
STAGE_ORDER = tuple(STAGES)
DEFAULT_STAGES = ("train", "evaluate", "export", "verify")
