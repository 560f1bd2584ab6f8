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
    # The RunConfig fields its outputs depend on: with its inputs, they make its fingerprint (see runner).
    uses: tuple[str, ...]


DATA = ("task", "dataset", "data_dir", "idx_dir", "data_source", "batch_size", "seed")
TRAIN_DATA = DATA + ("validation_split", "max_train_examples")
TEST_DATA = DATA + ("max_test_examples",)
STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("tune", tune.run, inputs=(), outputs=(a.TRIALS_CSV, a.TRIALS_PNG, a.BEST_HPARAMS, a.TUNING),
          uses=TRAIN_DATA + ("hparams", "fixed_hparams", "tuner", "max_trials", "tuning_epochs",
                             "executions_per_trial", "objective", "learning_rate", "lr_schedule", "clip_norm",
                             "label_smoothing")),
    Stage("train", train.run, inputs=(), outputs=(a.MODEL, a.HISTORY, a.CHECKPOINTS, a.LOGS),
          uses=TRAIN_DATA + ("epochs", "learning_rate", "discriminator_learning_rate", "hparams", "hparams_file",
                             "lr_schedule", "clip_norm", "label_smoothing", "deterministic")),
    Stage("evaluate", evaluate.run, inputs=(a.MODEL,), outputs=(a.METRICS,),
          uses=TEST_DATA + ("label_smoothing",)),  # test_loss is the training loss
    # export also writes a TFLite file per --tflite_variants (artifacts.tflite_file), checked by verify itself.
    Stage("export", export.run, inputs=(a.MODEL,), outputs=(a.SAVED_MODEL, a.TFLITE, a.LABELS),
          uses=TRAIN_DATA + ("tflite_variants", "representative_examples")),
    Stage("verify", verify.run, inputs=(a.MODEL, a.SAVED_MODEL), outputs=(a.VERIFY, a.VERIFY_MD),
          uses=TEST_DATA + ("tflite_variants",)),
)}
STAGE_ORDER = tuple(STAGES)
PRODUCERS = {artifact: stage.name for stage in STAGES.values() for artifact in stage.outputs}
DEFAULT_STAGES = ("train", "evaluate", "export", "verify")
