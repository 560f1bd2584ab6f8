"""What a stage receives: the run's config, its task, artifact paths, and the data, loaded once on first use; and
what it returns beside its files (StageResult)."""

import dataclasses
import functools
import os

import keras
import tensorflow as tf

from pipelines import artifacts, trained
from pipelines.tracking import Tracking
from pipelines.config import RunConfig
from pipelines.data.pipeline import Inputs, make_input_pipeline
from pipelines.data.sources import DATA_SETTINGS, DataSet, Request, load, settings_given_in_vain
from pipelines.distribution import Cluster
from pipelines.errors import PipelineError
from pipelines.families import Family, Workspace
from pipelines.tasks import TASKS, Task, family_of


@dataclasses.dataclass(frozen=True)
class StageResult:
    """What a stage made beyond its files, for the runner: its one-line summary, and the files of earlier stages it
    withdrew from what ships (verify's optional exports that missed their limits), which the runner records as
    withdrawn so that the same command reuses the stages instead of making them again; and what it resolved for
    the stages after it, which the runner hands on in a new context."""
    line: str
    withdrawn: tuple[str, ...] = ()
    # Artifacts of earlier stages it read beyond its declared inputs (export: a forecaster's metrics.json, whose
    # intervals its files carry): recorded among its inputs, so that a stage which replaces them makes it stale.
    read: tuple[str, ...] = ()
    # What train resolved, for the stages after it: the config it trained with (the sweep's hyperparameters, the
    # epochs a small data set needs) and its inputs (more passes an epoch); None: as they were.
    config: RunConfig | None = None
    inputs: Inputs | None = None


# Why a data setting may not apply, and what makes it apply: the settings of series, sequences, tables and images.
_SETTING_NEEDS = {
    **dict.fromkeys(("series_id_column", "horizon", "window", "season"), "a CSV time series: give --time_column too"),
    **dict.fromkeys(("test_dataset", "series_scaling"), "a CSV or TSV of sequences to classify, read by --task="
                    + " or --task=".join(t.name for t in TASKS.values() if t.rows_as_sequences)),
    **dict.fromkeys(("label_column", "problem", "id_column", "ignore_columns", "keep_columns", "time_column"),
                    "a CSV or TSV data set"),
    **dict.fromkeys(("image_size", "color_mode", "test_split"), "a folder or a tfds: data set (the offline "
                    "Fashion-MNIST mirror has its own size, colour and split)"),
}


def data_request(c: RunConfig, task: Task) -> Request:
    """The data set the run asks for: every data setting of the config, and what the task and family need of it."""
    return Request(c.dataset, **{name: getattr(c, name) for name in DATA_SETTINGS},
                   validation_split=c.validation_split, cache_dir=c.data_cache_dir,
                   rows_as_sequences=task.rows_as_sequences, labeled=task.family.needs_labels(c),
                   generative=task.family.generative, padding=task.padding)


def check_settings_apply(c: RunConfig, request: Request) -> None:
    """A data setting given on the command line that would change nothing for this data set is one line, not
    silently ignored."""
    vain = settings_given_in_vain(request, set(c.explicit))
    if vain:
        raise PipelineError(f"--{vain[0]} does not apply to --dataset={c.dataset} with these flags: it applies to "
                            f"{_SETTING_NEEDS.get(vain[0], 'another kind of data set')}; drop it otherwise")


class Context:
    def __init__(self, config: RunConfig, task: Task, strategy: tf.distribute.Strategy | None = None,
                 cluster: Cluster | None = None, tracking: Tracking | None = None):
        self.config = config  # after train, the one it resolved (StageResult.config: the runner hands it on)
        self.task = task
        # Where training runs (--distribute; pipelines/distribution.py), and this process's place in a
        # multi-worker job (None otherwise).
        self.strategy = strategy or tf.distribute.get_strategy()
        self.cluster = cluster
        self.tracking = tracking or Tracking()  # --track's run (pipelines/tracking.py); untracked: does nothing
        # The running stage's fingerprint, the settings in it (what its resumable state is keyed by), and the
        # content hashes of the artifacts it reads.
        self.stage_key, self.stage_settings, self.stage_inputs = "", {}, {}
        self.model_sha256 = ""

    def replaced(self, config: RunConfig | None = None, inputs: Inputs | None = None) -> "Context":
        """This context with another config or inputs (what a stage resolved), the data and what was learned from it
        kept: they depend on the data settings, which no stage changes."""
        other = Context(config or self.config, self.task, self.strategy, self.cluster, self.tracking)
        other.stage_key, other.stage_settings, other.stage_inputs = self.stage_key, self.stage_settings, \
            self.stage_inputs
        other.model_sha256 = self.model_sha256
        for name in ("data", "inputs", "learned_args"):  # functools.cached_property keeps them in __dict__
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        if inputs is not None:
            other.__dict__["inputs"] = inputs
        return other

    def path(self, artifact: str) -> str:
        """The path of a named artifact (see pipelines.artifacts) in this run's folder."""
        return os.path.join(self.config.task_dir, artifact)

    def trained_model(self) -> keras.Model:
        """The train stage's model, uncompiled: a stage that needs its loss compiles it with the task's.

        The file is read once, and its bytes are what is hashed and what is loaded: they must be the model this
        stage's fingerprint was computed from, so a model.keras replaced meanwhile (another run, a copy) is refused
        instead of exported under this run's name. `model_sha256` is then the loaded model's hash."""
        model, self.model_sha256 = trained.load(self.path(artifacts.MODEL), self.stage_inputs.get(artifacts.MODEL))
        return model

    @functools.cached_property
    def data(self) -> DataSet:
        c = self.config
        request = data_request(c, self.task)
        check_settings_apply(c, request)
        self.task.check_image_size(c.image_size)
        data = load(request)
        if data.modality not in self.task.modalities:
            raise PipelineError(f"{c.dataset} holds {data.modality} examples, and --task={self.task.name} learns from "
                                f"{' or '.join(self.task.modalities)}: choose another --task or --dataset")
        return data

    @property
    def family(self) -> Family:
        """The task's problem family, unless the data make it another (tasks.family_of)."""
        return family_of(self.task, self.data.problem)

    @property
    def workspace(self) -> Workspace:
        """What the family's hooks are given: the settings, the data and inputs, the folder."""
        return Workspace(self.config, self.data, self.inputs, self.config.task_dir)

    @functools.cached_property
    def learned_args(self) -> dict:
        """Builder arguments the task learns from the training inputs (a text vocabulary), computed once."""
        return {**self.data.builder_args, **(self.task.adapt(self.inputs.train, self.data) if self.task.adapt else {})}

    @functools.cached_property
    def inputs(self) -> Inputs:
        c = self.config
        return make_input_pipeline(
            self.data, self.task.to_example, batch_size=c.batch_size, seed=c.seed,
            validation_split=c.validation_split, max_train_examples=c.max_train_examples,
            max_test_examples=c.max_test_examples, cache=c.cache,
            memory_budget=c.memory_budget_mb << 20 if c.memory_budget_mb else None, shuffle_buffer=c.shuffle_buffer,
            worker=self.cluster.input_pipeline if self.cluster else (0, 1))
