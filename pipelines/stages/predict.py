"""Predict stage: the run's SavedModel labels --predict_input into predictions.csv (and scores it, when the new data
hold their labels): what dlpipe-predict does, at the end of a pipeline (pipelines/prediction.py does the work)."""

from pipelines import artifacts, prediction
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.families import Asked


def run(ctx: Context) -> str:
    if not ctx.config.predict_input:
        raise PipelineError("stage predict labels --predict_input: give the new examples (a CSV, an image or text "
                            "file, a folder or a glob)")
    artifacts.remove(ctx.path(artifacts.PREDICTION_SCORES))  # an earlier input's scores must not stay beside
    predictor = prediction.open_run(ctx.config.task_dir)
    summary = prediction.predict_file(predictor, ctx.config.predict_input, ctx.path(artifacts.PREDICTIONS),
                                      Asked(predictor.header))
    for failure in summary.failures:
        print(f"warning: {failure}: left out", flush=True)
    if summary.failures:
        raise PipelineError(f"{len(summary.failures)} examples of {ctx.config.predict_input} could not be read "
                            "(named above): remove or replace them")
    return f"{summary.examples:,} predictions" + (f", {summary.score_line}" if summary.score_line else "")
