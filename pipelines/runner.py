"""The runner: checks that each stage will find its inputs, runs the stages in order, prints a summary."""

import dataclasses
import hashlib
import json
import os
import time

from pipelines import artifacts
from pipelines.config import RunConfig
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.stages import PRODUCERS, STAGES
from pipelines.tasks import TASKS


@dataclasses.dataclass(frozen=True)
class StageRecord:
    stage: str
    seconds: float
    result: str
    outputs: tuple[str, ...]


def _check_inputs(config: RunConfig) -> None:
    """Fails before any work if a stage needs an artifact that neither this run nor an earlier one makes."""
    made = set()
    for name in config.stages:
        for artifact in STAGES[name].inputs:
            if artifact not in made and not os.path.exists(os.path.join(config.task_dir, artifact)):
                raise PipelineError(f"stage {name} needs {artifact} in {config.task_dir}, which is missing: "
                                    f"run --stages={PRODUCERS[artifact]} first (or add it to --stages)")
        made.update(STAGES[name].outputs)


def _prepare_output_dir(config: RunConfig) -> None:
    try:
        os.makedirs(config.task_dir, exist_ok=True)
        artifacts.write_json(os.path.join(config.task_dir, artifacts.CONFIG), dataclasses.asdict(config))
    except OSError as e:
        raise PipelineError(f"cannot write to output dir {config.task_dir} ({e.strerror}): "
                            "choose a writable --output_dir") from None


def fingerprint(config: RunConfig, stage_name: str, recorded: dict[str, str]) -> str:
    """What a stage's outputs depend on: the config fields it uses and the fingerprints of what made its inputs.

    TFX's caching, in small: a stage whose fingerprint matches the recorded one, with its outputs present, is
    reused instead of run again.
    """
    stage = STAGES[stage_name]
    upstream = {PRODUCERS[a]: recorded.get(PRODUCERS[a]) for a in stage.inputs}
    if stage_name == "train" and "tune" in config.stages:
        upstream["tune"] = recorded.get("tune")  # train reads the sweep's best_hparams.json
    if stage_name == "train" and config.hparams_file:
        with open(config.hparams_file, "rb") as f:
            upstream["hparams_file"] = hashlib.sha256(f.read()).hexdigest()
    used = {name: getattr(config, name) for name in stage.uses}
    return hashlib.sha256(json.dumps([used, upstream], sort_keys=True, default=list).encode()).hexdigest()[:16]


def format_summary(records: list[StageRecord]) -> str:
    rows = [("stage", "seconds", "result", "artifacts")]
    rows += [(r.stage, f"{r.seconds:.1f}", r.result, ", ".join(r.outputs)) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{s:<{widths[0]}}  {t:>{widths[1]}}  {m:<{widths[2]}}  {o}" for s, t, m, o in rows)


def run(config: RunConfig) -> list[StageRecord]:
    """Runs config.stages over config.task; artifacts go to <output_dir>/<task>/."""
    _check_inputs(config)
    _prepare_output_dir(config)
    ctx = Context(config, TASKS[config.task])
    fingerprints_path = ctx.path(artifacts.FINGERPRINTS)
    recorded = artifacts.read_json(fingerprints_path) if os.path.exists(fingerprints_path) else {}
    records = []
    for i, name in enumerate(config.stages, 1):
        stage = STAGES[name]
        header = f"── [{i}/{len(config.stages)}] {name} · task={config.task} dataset={config.dataset}"
        current = fingerprint(config, name, recorded)
        fresh_sweep = name == "tune" and config.fresh
        if (recorded.get(name) == current and not config.force and not fresh_sweep
                and all(os.path.exists(ctx.path(out)) for out in stage.outputs)):
            print(f"{header} · up to date, reused ──", flush=True)
            records.append(StageRecord(name, 0.0, "reused", stage.outputs))
            continue
        print(f"{header} ──", flush=True)
        recorded.pop(name, None)  # until it succeeds, its outputs are not known to match
        start = time.perf_counter()
        try:
            result = stage.run(ctx)
        except OSError as e:  # a full disk or a folder that became unwritable while the stage ran
            raise PipelineError(f"stage {name} could not write {e.filename or config.task_dir} ({e.strerror}): free "
                                "disk space or choose another --output_dir; earlier artifacts are intact") from None
        recorded[name] = current
        artifacts.write_json(fingerprints_path, recorded)
        records.append(StageRecord(name, time.perf_counter() - start, result, stage.outputs))
    print(f"\nartifacts in {config.task_dir}/\n{format_summary(records)}", flush=True)
    return records
