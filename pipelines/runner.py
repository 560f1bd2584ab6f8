"""The runner: owns the task folder (its lock, the stages' fingerprints), runs the stages in order, prints a summary.

Every artifact belongs to the config that made it. A stage is reused only when its fingerprint (the settings it
depends on, the package versions, the content hashes of what it reads) is the one recorded and its outputs are
the files it wrote; a stage that runs again removes what later stages made from its old outputs. Stages run
alone (`--stages=export,verify`) take the data and model settings from the trained model's config.json.
"""

import dataclasses
import errno
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from pipelines import artifacts, distribution
from pipelines.config import NOT_IDENTITY, RunConfig, from_record, show
from pipelines.context import Context
from pipelines.data import sources
from pipelines.errors import PipelineError
from pipelines.stages import PRODUCERS, STAGES, tune
from pipelines.tasks import TASKS


@dataclasses.dataclass(frozen=True)
class StageRecord:
    stage: str
    seconds: float
    result: str
    outputs: tuple[str, ...]


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


def _inputs_from_earlier_runs(config: RunConfig):
    """(stage, artifact) for each input a stage of this run reads that no earlier stage of this run makes (a
    stage that reads what it finds is not owed a missing one)."""
    made = set()
    for name in config.stages:
        for artifact in STAGES[name].all_inputs(config):
            missing = not os.path.exists(os.path.join(config.task_dir, artifact))
            if artifact not in made and not (STAGES[name].inputs_optional and missing):
                yield name, artifact
        made.update(STAGES[name].all_outputs(config))


def _check_inputs(config: RunConfig) -> None:
    """Fails before any work if a stage needs an artifact that neither this run nor an earlier one makes."""
    for name, artifact in _inputs_from_earlier_runs(config):
        if not os.path.exists(os.path.join(config.task_dir, artifact)):
            raise PipelineError(f"stage {name} needs {artifact} in {config.task_dir}, which is missing: "
                                f"run --stages={PRODUCERS[artifact]} first (or add it to --stages)")


def _check_unchanged(config: RunConfig, recorded: dict) -> None:
    """An input an earlier run made must be the file its stage recorded: not truncated, edited or replaced."""
    for _, artifact in _inputs_from_earlier_runs(config):
        producer = PRODUCERS[artifact]
        expected = recorded.get(producer, {}).get("outputs", {}).get(artifact)
        if expected is not None and artifacts.content_hash(os.path.join(config.task_dir, artifact)) != expected:
            raise PipelineError(f"{artifact} in {config.task_dir} is not the one stage {producer} wrote "
                                f"(damaged or replaced): run --stages={producer} again (add it to --stages)")


def _make_output_dir(config: RunConfig) -> None:
    try:
        os.makedirs(config.task_dir, exist_ok=True)
        probe = os.path.join(config.task_dir, artifacts.LOCK)
        open(probe, "a").close()
    except OSError as e:
        raise PipelineError(f"cannot write to output dir {config.task_dir} ({e.strerror}): "
                            "choose a writable --output_dir") from None


def _read_records(path: str) -> dict:
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
        self.stages = _read_records(self.path)

    def hashes(self, names) -> dict[str, str | None]:
        return {a: artifacts.content_hash(os.path.join(self.config.task_dir, a))
                for a in names if a not in artifacts.UNHASHED}

    def up_to_date(self, name: str, key: str, outputs: tuple[str, ...]) -> bool:
        """The recorded fingerprint, and every output as written (a missing one hashes to None). Folders of state
        and diagnostics (artifacts.UNHASHED: checkpoints, logs, …) do not decide it."""
        record = self.stages.get(name)
        return record is not None and record["key"] == key and self.hashes(outputs) == record.get("outputs")

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


def format_summary(records: list[StageRecord]) -> str:
    rows = [("stage", "seconds", "result", "artifacts")]
    rows += [(r.stage, f"{r.seconds:.1f}", r.result, ", ".join(r.outputs)) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{s:<{widths[0]}}  {t:>{widths[1]}}  {m:<{widths[2]}}  {o}" for s, t, m, o in rows)


def _os_error(stage: str, e: OSError, task_dir: str) -> PipelineError:
    """A file problem mid-stage, named for what it is: a full disk, a folder that became unwritable, or a read."""
    where = e.filename or task_dir
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space or choose another --output_dir"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it writable or choose another --output_dir"
    else:
        fix = "check the file, or run again with --force"
    return PipelineError(f"stage {stage} failed on {where} ({e.strerror or e}): {fix}; earlier artifacts are intact")


def run(config: RunConfig) -> list[StageRecord]:
    """Runs config.stages over config.task; artifacts go to <output_dir>/<task>/, which this process locks."""
    if tune.is_worker():
        return _run_tuning_worker(config)
    # Before any other TensorFlow work: a strategy configures the runtime, which it can only do before it starts.
    strategy, cluster = distribution.make_strategy(config.distribute, config.cpu_replicas, config.cluster_timeout)
    if cluster and not cluster.is_chief:
        return _run_training_worker(config, strategy, cluster)
    _check_inputs(config)
    _make_output_dir(config)
    with artifacts.TaskLock(config.task_dir):
        return _run_locked(adopt_trained_settings(config), strategy, cluster)


def _run_locked(config: RunConfig, strategy=None, cluster=None) -> list[StageRecord]:
    records = Records(config)
    _check_unchanged(config, records.stages)
    # Seeded before any data pipeline is made: a shuffle's order depends on the global seed as well as its own,
    # and without this a process's first run shuffled differently from its later ones.
    keras.utils.set_random_seed(config.seed)
    ctx = Context(config, TASKS[config.task], strategy, cluster)
    data = sources.identity(config.dataset)  # a folder's files: changed files make another data set
    summary = []
    for i, name in enumerate(config.stages, 1):
        stage, config = STAGES[name], ctx.config  # train resolves the config (its hyperparameters) for later stages
        header = f"── [{i}/{len(config.stages)}] {name} · task={config.task} dataset={config.dataset}"
        inputs = records.hashes(stage.all_inputs(config))
        if data:
            inputs[DATA] = data
        key = fingerprint(config, name, inputs)  # a multi-worker job's other workers compute train's the same way
        outputs = stage.all_outputs(config)
        fresh_sweep = name == "tune" and config.fresh
        if not config.force and not fresh_sweep and records.up_to_date(name, key, outputs):
            print(f"{header} · up to date, reused ──", flush=True)
            summary.append(StageRecord(name, 0.0, "reused", outputs))
            continue
        print(f"{header} ──", flush=True)
        # Its record stays until it succeeds: a failed run leaves the outputs as they were (atomic writes), and
        # any it did replace no longer match their recorded hashes, so they are never reused by mistake.
        ctx.stage_key, ctx.stage_settings, ctx.stage_inputs = key, settings(config, name), inputs
        start = time.perf_counter()
        try:
            result = stage.run(ctx)
        except OSError as e:  # a full disk, a folder that became unwritable, a file that cannot be read
            raise _os_error(name, e, config.task_dir) from None
        except (tf.errors.ResourceExhaustedError, MemoryError):
            # TensorFlow reports a write that found no room as resources exhausted too: the disk, if it is full.
            artifacts.require_space(config.task_dir, 0, f"stage {name}")
            raise PipelineError(f"stage {name} ran out of memory: make the model smaller or lower --batch_size"
                                ) from None
        stale = records.record(name, key, ctx.config, inputs, outputs)
        later = [s for s in stale if s not in config.stages[i:]]
        if later:
            print(f"removed the outputs of {', '.join(later)}: they were made from the {name} outputs just "
                  "replaced", flush=True)
        written = tuple(a for a in outputs if os.path.exists(os.path.join(config.task_dir, a)))
        summary.append(StageRecord(name, time.perf_counter() - start, result, written))
    print(f"\nartifacts in {config.task_dir}/\n{format_summary(summary)}", flush=True)
    return summary


def _run_tuning_worker(config: RunConfig) -> list[StageRecord]:
    """A KerasTuner worker runs the trials the chief's oracle gives it and writes nothing but their files: the chief
    owns the folder (its lock, fingerprints, results) and runs the later stages."""
    worker = os.environ[tune.TUNER_ID]
    if "tune" not in config.stages:
        raise PipelineError(f"{tune.TUNER_ID}={worker} makes this a tuning worker: give --stages=tune, or unset it")
    _make_output_dir(config)
    start = time.perf_counter()
    result = STAGES["tune"].run(Context(config, TASKS[config.task]))
    others = [s for s in config.stages if s != "tune"]
    if others:
        print(f"worker {worker}: {', '.join(others)} left to the chief", flush=True)
    return [StageRecord("tune", time.perf_counter() - start, result, ())]


def _run_training_worker(config: RunConfig, strategy, cluster: distribution.Cluster) -> list[StageRecord]:
    """A multi-worker job's other workers train beside the chief and write nothing into its folder: their files
    go to a scratch folder that is removed after, and the chief alone saves the model and runs the later stages.
    They read the chief's folder (storage every worker sees, as with any TF_CONFIG job) for two things: whether
    train is up to date there, so that no worker waits on a chief that reuses its model, and the resume state, so
    that every worker continues from the epoch the chief backed up."""
    others = [s for s in config.stages if s != "train"]
    if "train" not in config.stages:
        print(f"{cluster.name}: nothing to train; {', '.join(others)} run on the chief", flush=True)
        return []
    records = Records(config)
    data = sources.identity(config.dataset)
    inputs = {DATA: data} if data else {}
    key = fingerprint(config, "train", inputs)
    outputs = STAGES["train"].all_outputs(config)
    if not config.force and records.up_to_date("train", key, outputs):
        print(f"{cluster.name}: train is up to date in {config.task_dir}; nothing to do", flush=True)
        return [StageRecord("train", 0.0, "reused", ())]
    with tempfile.TemporaryDirectory(prefix="dlpipe-worker-") as scratch:
        # The chief's data cache, which every worker sees as it sees the chief's folder: prepared once, by whichever
        # process comes first (the others wait for it).
        mine = dataclasses.replace(config, output_dir=scratch, stages=("train",), cache_dir=config.data_cache_dir)
        chief_backup = os.path.join(config.task_dir, artifacts.BACKUP, key)
        if os.path.isdir(chief_backup) and not config.force:
            shutil.copytree(chief_backup, os.path.join(mine.task_dir, artifacts.BACKUP, key))
        keras.utils.set_random_seed(config.seed)
        ctx = Context(mine, TASKS[config.task], strategy, cluster)
        ctx.stage_key, ctx.stage_settings = key, settings(mine, "train")
        start = time.perf_counter()
        result = STAGES["train"].run(ctx)
    print(f"{cluster.name}: trained beside the chief ({result}); the chief writes the artifacts"
          + (f" and runs {', '.join(others)}" if others else ""), flush=True)
    return [StageRecord("train", time.perf_counter() - start, result, ())]
