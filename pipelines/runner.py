"""The runner: checks that each stage will find its inputs, runs the stages in order, prints a summary."""

import dataclasses
import os
import time

from pipelines import artifacts
from pipelines.config import RunConfig
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.stages import STAGE_ORDER, STAGES
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
                producer = next(s for s in STAGE_ORDER if artifact in STAGES[s].outputs)
                raise PipelineError(f"stage {name} needs {artifact} in {config.task_dir}, which is missing: "
                                    f"run --stages={producer} first (or add it to --stages)")
        made.update(STAGES[name].outputs)


def _prepare_output_dir(config: RunConfig) -> None:
    try:
        os.makedirs(config.task_dir, exist_ok=True)
        artifacts.write_json(os.path.join(config.task_dir, artifacts.CONFIG), dataclasses.asdict(config))
    except OSError as e:
        raise PipelineError(f"cannot write to output dir {config.task_dir} ({e.strerror}): "
                            "choose a writable --output_dir") from None


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
    records = []
    for i, name in enumerate(config.stages, 1):
        stage = STAGES[name]
        print(f"── [{i}/{len(config.stages)}] {name} · task={config.task} dataset={config.dataset} ──", flush=True)
        start = time.perf_counter()
        result = stage.run(ctx)
        records.append(StageRecord(name, time.perf_counter() - start, result, stage.outputs))
    print(f"\nartifacts in {config.task_dir}/\n{format_summary(records)}", flush=True)
    return records
