"""The runner: runs the stages of a config in order over one task folder, which it locks, and prints a summary
(tracked in MLflow or W&B with --track: pipelines/tracking.py).

Whether a stage is up to date, what it is keyed by and what a later stage adopts from the trained model is
state.py's; what each stage does is its module's in stages/. A multi-worker job's other workers and a KerasTuner
worker run only their part (train beside the chief, the trials they are given) and write nothing of the chief's.
"""

import dataclasses
import errno
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from pipelines import artifacts, distribution, state, tracking
from pipelines.config import RunConfig
from pipelines.context import Context, StageResult
from pipelines.errors import PipelineError
from pipelines.stages import STAGES, tune
from pipelines.tasks import TASKS


@dataclasses.dataclass(frozen=True)
class StageRecord:
    stage: str
    seconds: float
    result: str
    outputs: tuple[str, ...]


def run(config: RunConfig) -> list[StageRecord]:
    """Runs config.stages over config.task; artifacts go to <output_dir>/<task>/, which this process locks."""
    if tune.is_worker():
        return _run_tuning_worker(config)
    # Before any other TensorFlow work: a strategy configures the runtime, which it can only do before it starts.
    strategy, cluster = distribution.make_strategy(config.distribute, config.cpu_replicas, config.cluster_timeout)
    if cluster and not cluster.is_chief:
        return _run_training_worker(config, strategy, cluster)
    state.check_inputs(config)
    _make_output_dir(config)
    with artifacts.TaskLock(config.task_dir), tracking.tracked(config) as tracked:
        return _run_locked(state.adopt_trained_settings(config), strategy, cluster, tracked)


def _make_output_dir(config: RunConfig) -> None:
    try:
        os.makedirs(config.task_dir, exist_ok=True)
        open(os.path.join(config.task_dir, artifacts.LOCK), "a").close()
    except OSError as e:
        raise PipelineError(f"cannot write to output dir {config.task_dir} ({e.strerror}): "
                            "choose a writable --output_dir") from None


def _run_locked(config: RunConfig, strategy=None, cluster=None,
                tracked: tracking.Tracking | None = None) -> list[StageRecord]:
    records = state.Records(config)
    state.check_unchanged(config, records.stages)
    # Seeded before any data pipeline is made: a shuffle's order depends on the global seed as well as its own,
    # and without this a process's first run shuffled differently from its later ones.
    keras.utils.set_random_seed(config.seed)
    ctx = Context(config, TASKS[config.task], strategy, cluster, tracked)
    summary = []
    for i, name in enumerate(config.stages, 1):
        config = ctx.config  # as train resolved it (its hyperparameters), for the stages after it
        header = f"── [{i}/{len(config.stages)}] {name} · task={config.task} dataset={config.dataset}"
        key, inputs = state.stage_key(config, name, records)
        outputs = STAGES[name].all_outputs(config)
        if not config.force and not STAGES[name].starts_over(config) and records.up_to_date(name, key, outputs):
            print(f"{header} · up to date, reused ──", flush=True)
            summary.append(StageRecord(name, 0.0, "reused", _existing(config, outputs)))
            ctx = ctx.replaced(records.resolved(name, config))
            continue
        print(f"{header} ──", flush=True)
        start = time.perf_counter()
        result = _run_stage(ctx, name, key, inputs)
        if result.config is not None or result.inputs is not None:  # what train resolved, for the stages after it
            ctx = ctx.replaced(result.config, result.inputs)
        if result.withdrawn:  # what it read is now as it left it: its record says so, and so does the producer's
            state.withdraw(records, result.withdrawn)
            key, inputs = state.stage_key(config, name, records)
        inputs = {**inputs, **records.hashes(result.read)}
        # Recorded only now: a failed stage leaves its outputs as they were (atomic writes), and any it did replace
        # no longer match their recorded hashes, so they are never reused by mistake.
        stale = [s for s in records.record(name, key, ctx.config, inputs, outputs) if s not in config.stages[i:]]
        if stale:
            print(f"removed the outputs of {', '.join(stale)}: they were made from the {name} outputs just replaced",
                  flush=True)
        summary.append(StageRecord(name, time.perf_counter() - start, result.line, _existing(config, outputs)))
    ctx.tracking.finish(ctx.config, [a for record in summary for a in record.outputs])
    print(f"\nartifacts in {config.task_dir}/\n{format_summary(summary)}", flush=True)
    return summary


def _existing(config: RunConfig, outputs: tuple[str, ...]) -> tuple[str, ...]:
    """The outputs a stage wrote (a family makes only some of the pictures a stage declares)."""
    return tuple(a for a in outputs if os.path.exists(os.path.join(config.task_dir, a)))


def _run_stage(ctx: Context, name: str, key: str, inputs: dict) -> StageResult:
    """One stage's run, its file and memory failures named for what they are."""
    ctx.stage_key, ctx.stage_settings, ctx.stage_inputs = key, state.settings(ctx.config, name), inputs
    try:
        result = STAGES[name].run(ctx)
        return result if isinstance(result, StageResult) else StageResult(result)
    except OSError as e:  # a full disk, a folder that became unwritable, a file that cannot be read
        raise _os_error(name, e, ctx.config.task_dir) from None
    except (tf.errors.ResourceExhaustedError, MemoryError):
        # TensorFlow reports a write that found no room as resources exhausted too: the disk, if it is full.
        artifacts.require_space(ctx.config.task_dir, 0, f"stage {name}")
        raise PipelineError(f"stage {name} ran out of memory: make the model smaller or lower --batch_size") from None


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
    They read the chief's folder (storage every worker sees, as with any TF_CONFIG job) for three things: whether
    train is up to date there (the chief's own check), the resume state, so that every worker continues from the
    epoch the chief backed up, and the prepared data cache, prepared once by whichever process comes first."""
    others = [s for s in config.stages if s != "train"]
    if "train" not in config.stages:
        print(f"{cluster.name}: nothing to train; {', '.join(others)} run on the chief", flush=True)
        return []
    records = state.Records(config)
    key, inputs = state.stage_key(config, "train", records)
    if not config.force and records.up_to_date("train", key, STAGES["train"].all_outputs(config)):
        print(f"{cluster.name}: train is up to date in {config.task_dir}; nothing to do", flush=True)
        return [StageRecord("train", 0.0, "reused", ())]
    with tempfile.TemporaryDirectory(prefix="dlpipe-worker-") as scratch:
        mine = dataclasses.replace(config, output_dir=scratch, stages=("train",), cache_dir=config.data_cache_dir)
        chief_backup = os.path.join(config.task_dir, artifacts.BACKUP, key)
        if os.path.isdir(chief_backup) and not config.force:
            shutil.copytree(chief_backup, os.path.join(mine.task_dir, artifacts.BACKUP, key))
        keras.utils.set_random_seed(config.seed)
        start = time.perf_counter()
        result = _run_stage(Context(mine, TASKS[config.task], strategy, cluster), "train", key, inputs).line
    print(f"{cluster.name}: trained beside the chief ({result}); the chief writes the artifacts"
          + (f" and runs {', '.join(others)}" if others else ""), flush=True)
    return [StageRecord("train", time.perf_counter() - start, result, ())]
