"""RunConfig: every setting of one run, built once from the flags; the only thing stages receive."""

import dataclasses
import json
import os
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class RunConfig:
    task: str
    dataset: str
    data_dir: str
    idx_dir: str
    data_source: str
    output_dir: str
    stages: tuple[str, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    discriminator_learning_rate: float | None  # gan only; None: learning_rate
    seed: int
    validation_split: float
    max_train_examples: int
    max_test_examples: int
    # The task's builder arguments (see Task.hparams), by name.
    hparams: Mapping[str, Any]
    # Tuning: the hyperparameters given on the command line stay fixed while the rest are searched.
    fixed_hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hparams_file: str | None = None
    tuner: str = "hyperband"
    max_trials: int = 10
    tuning_epochs: int = 4
    executions_per_trial: int = 1
    objective: str = "val_accuracy"
    fresh: bool = False
    # Export.
    tflite_variants: tuple[str, ...] = ("float32", "dynamic_range", "float16", "int8")
    representative_examples: int = 200
    # Training.
    label_smoothing: float = 0.1               # classifiers: of the cross-entropy targets; gan: of real targets
    # Reliability.
    lr_schedule: str = "cosine"                # cosine: decay --learning_rate to 0 over the run; constant
    clip_norm: float | None = None             # clip the global gradient norm to this; None: no clipping
    deterministic: bool = False                # TensorFlow op determinism: identical runs give identical numbers
    force: bool = False                        # re-run stages even when their outputs are up to date

    @property
    def task_dir(self) -> str:
        """Where every artifact of this run lives: <output_dir>/<task>/."""
        return os.path.join(self.output_dir, self.task)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=list)
