"""What a run folder holds and whose it is: the stages' fingerprints and records, the up-to-date check, the
settings a later stage adopts from the trained model (the resume folder of an interrupted training is resume.py's).

Every artifact belongs to the config that made it. A stage is reused only when its fingerprint (the settings it
depends on, the package versions, the content hashes of what it reads) is the one recorded and its outputs are
the files it wrote; a stage that runs again removes what later stages made from its old outputs. Stages run
alone (`--stages=export,verify`) take the data and model settings from the trained model's config.json. The
chief of a multi-worker job and its workers key the train stage the same way (`stage_key`).
"""

import dataclasses
import hashlib
import importlib.metadata
import json
import os

import keras
import tensorflow as tf

from pipelines import artifacts
from pipelines.config import NOT_IDENTITY, RunConfig, from_record, show
from pipelines.data import sources
from pipelines.errors import PipelineError
from pipelines.stages import STAGES, producer


def _versions() -> str:
    try:
        own = importlib.metadata.version("dlpipe")
    except importlib.metadata.PackageNotFoundError:
        own = "source"
    return f"dlpipe {own}, tensorflow {tf.__version__}, keras {keras.__version__}"


VERSIONS = _versions()
DATA = "<dataset folder>"  # the key of a folder data set's contents among a stage's recorded inputs


def settings(config: RunConfig, stage_name: str) -> dict:
    """The config fields a stage's outputs depend on: all but NOT_IDENTITY and what the stage ignores."""
    ignored = NOT_IDENTITY | set(STAGES[stage_name].ignores)
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in ignored}


def fingerprint(config: RunConfig, stage_name: str, input_hashes: dict[str, str | None]) -> str:
    """What a stage's outputs depend on, as one hash: its settings, the versions, its inputs' contents.

    TFX's caching, in small: a stage whose fingerprint matches the recorded one, with its outputs as it left
    them, is reused instead of run again.
    """
    text = json.dumps([settings(config, stage_name), VERSIONS, input_hashes], sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def inputs_from_earlier_runs(config: RunConfig):
    """(stage, artifact) for each input a stage of this run reads that no earlier stage of this run makes (a
    stage that reads what it finds is not owed a missing one)."""
    made = set()
    for name in config.stages:
        for artifact in STAGES[name].all_inputs(config):
            missing = not os.path.exists(os.path.join(config.task_dir, artifact))
            if artifact not in made and not (STAGES[name].inputs_optional and missing):
                yield name, artifact
        made.update(STAGES[name].all_outputs(config))


def check_inputs(config: RunConfig) -> None:
    """Fails before any work if a stage needs an artifact that neither this run nor an earlier one makes."""
    for name, artifact in inputs_from_earlier_runs(config):
        if not os.path.exists(os.path.join(config.task_dir, artifact)):
            raise PipelineError(f"stage {name} needs {artifact} in {config.task_dir}, which is missing: "
                                f"run --stages={producer(artifact)} first (or add it to --stages)")


def check_unchanged(config: RunConfig, recorded: dict) -> None:
    """An input an earlier run made must be the file its stage recorded: not truncated, edited or replaced."""
    for _, artifact in inputs_from_earlier_runs(config):
        maker = producer(artifact)
        expected = recorded.get(maker, {}).get("outputs", {}).get(artifact)
        if expected is not None and artifacts.content_hash(os.path.join(config.task_dir, artifact)) != expected:
            raise PipelineError(f"{artifact} in {config.task_dir} is not the one stage {maker} wrote "
                                f"(damaged or replaced): run --stages={maker} again (add it to --stages)")


def read_records(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    try:
        records = artifacts.read_json(path)
        if isinstance(records, dict) and all(isinstance(r, dict) and "key" in r for r in records.values()):
            return records
    except (OSError, ValueError):
        pass
    print(f"note: {path} is damaged: every stage runs again", flush=True)
    return {}


def adopt_trained_settings(config: RunConfig) -> RunConfig:
    """Without train in this run, the data and model settings are the trained model's (its config.json); a flag
    given on the command line that contradicts them is an error, not a silent mismatch."""
    path = os.path.join(config.task_dir, artifacts.CONFIG)
    reads_model = any(artifacts.MODEL in STAGES[name].all_inputs(config) for name in config.stages)
    if "train" in config.stages or not reads_model or not os.path.exists(path):
        return config
    try:
        trained = from_record(artifacts.read_json(path), settings(config, "train"))
    except (OSError, ValueError, AttributeError) as e:
        raise PipelineError(f"{path} is damaged ({type(e).__name__}): run --stages=train again") from None
    # Where the data lives may move; what the data is may not.
    for location in ("data_dir", "idx_dir", "data_source"):
        trained.pop(location, None)
    given = {name: getattr(config, name) for name in config.explicit if name in trained}
    given.update({name: config.hparams[name] for name in config.explicit if name in config.hparams})
    known = {**trained, **trained.get("hparams", {})}
    for name, value in given.items():
        if name in known and json.dumps(known[name], default=list) != json.dumps(value, default=list):
            raise PipelineError(f"the model in {config.task_dir} was trained with --{name}={show(known[name])}, not "
                                f"{show(value)}: drop --{name} to use the trained model's, or add train to --stages")
    return dataclasses.replace(config, **trained)


class Records:
    """fingerprints.json: per stage, its fingerprint, settings, and the content hashes of its inputs and outputs."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.path = os.path.join(config.task_dir, artifacts.FINGERPRINTS)
        self.stages = read_records(self.path)

    def hashes(self, names) -> dict[str, str | None]:
        return {a: artifacts.content_hash(os.path.join(self.config.task_dir, a))
                for a in names if a not in artifacts.UNHASHED}

    def up_to_date(self, name: str, key: str, outputs: tuple[str, ...]) -> bool:
        """The recorded fingerprint, and every output as written (a missing one hashes to None). Folders of state
        and diagnostics (artifacts.UNHASHED: checkpoints, logs, …) do not decide it."""
        record = self.stages.get(name)
        return record is not None and record["key"] == key and self.hashes(outputs) == record.get("outputs")

    def resolved(self, name: str, config: RunConfig) -> RunConfig:
        """The config as a reused stage left it, for the stages after it: its recorded settings (what train resolved
        when it ran: a sweep's hyperparameters, the epochs), or the stages after a reused train would be keyed, and
        recorded, by settings the model was not trained with."""
        recorded = self.stages[name]["settings"]
        return dataclasses.replace(config, **from_record(recorded, recorded))

    def record(self, name: str, key: str, config: RunConfig, inputs: dict, outputs: tuple[str, ...]) -> list[str]:
        """Records a finished stage; removes what other stages made from the outputs it replaced, and returns
        the names of those stages."""
        new = self.hashes(outputs)
        self.stages[name] = {"key": key, "versions": VERSIONS, "settings": settings(config, name),
                             "inputs": inputs, "outputs": new}
        stale = []
        # A sweep's best_hparams.json is advice to train, not an input a trained model must match.
        changed = set(new) - {artifacts.BEST_HPARAMS}
        while changed:
            later = [s for s, r in self.stages.items() if s != name and s not in stale
                     and any(r.get("inputs", {}).get(a) != new.get(a) for a in changed & set(r.get("inputs", {})))]
            changed = set()
            for s in later:
                stale.append(s)
                for artifact in self.stages.pop(s)["outputs"]:
                    artifacts.remove(os.path.join(self.config.task_dir, artifact))
                    changed.add(artifact)
        artifacts.write_json(self.path, self.stages)
        return stale


def withdraw(records: "Records", artifacts_withdrawn) -> None:
    """Records each artifact as absent from the outputs of the stage that made it (stages.producer): a file a later
    stage withdrew from what ships is not a damaged output to make again."""
    for artifact in artifacts_withdrawn:
        record = records.stages.get(producer(artifact))
        if record is not None:
            record["outputs"][artifact] = None
    artifacts.write_json(records.path, records.stages)


def stage_key(config: RunConfig, name: str, records: Records) -> tuple[str, dict]:
    """A stage's fingerprint and the content hashes it is computed from: its inputs as they are now, and a folder or
    table data set's own hash."""
    inputs = records.hashes(STAGES[name].all_inputs(config))
    data = sources.data_hash(config.dataset)  # a folder's files: changed files make another data set
    if data:
        inputs[DATA] = data
    if config.test_dataset:  # a separate test file's contents are the data set's too
        inputs[DATA + ":test"] = sources.data_hash(config.test_dataset) or ""
    inputs.update(STAGES[name].reads_outside(config))
    return fingerprint(config, name, inputs), inputs
