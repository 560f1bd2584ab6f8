"""Evaluate stage: the trained model measured on the test split, by the task's own measure."""

import os

from pipelines import artifacts
from pipelines.context import Context


def run(ctx: Context) -> str:
    model = ctx.trained_model()
    family = ctx.family
    family.compile(model, ctx.config)  # the family's own loss and metrics, as in training
    metrics = {"dataset": ctx.config.dataset, "num_test_examples": ctx.inputs.num_test,
               **family.evaluate(ctx, model), **ctx.data.report}
    history = artifacts.read_json(ctx.path(artifacts.HISTORY)) if os.path.exists(ctx.path(artifacts.HISTORY)) else {}
    if "grad_norm" in history:
        metrics["train_grad_norm_per_epoch"] = history["grad_norm"]
    artifacts.write_json(ctx.path(artifacts.METRICS), metrics)
    return f"{family.headline}={metrics[family.headline]:.4f}"
