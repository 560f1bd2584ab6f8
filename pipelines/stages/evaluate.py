"""Evaluate stage: the trained model measured on the test split, by the task's own measure."""

import os

from pipelines import artifacts
from pipelines.context import Context

# How the summary line shows each task family's headline number.
HEADLINES = ("test_accuracy", "frechet_distance")


def run(ctx: Context) -> str:
    model = ctx.trained_model()
    ctx.task.compile(model, ctx.config)  # the task's own loss and metrics, as in training
    metrics = {"dataset": ctx.config.dataset, "num_test_examples": ctx.inputs.num_test,
               **ctx.task.evaluate(ctx, model)}
    history = artifacts.read_json(ctx.path(artifacts.HISTORY)) if os.path.exists(ctx.path(artifacts.HISTORY)) else {}
    if "grad_norm" in history:
        metrics["train_grad_norm_per_epoch"] = history["grad_norm"]
    artifacts.write_json(ctx.path(artifacts.METRICS), metrics)
    return " ".join(f"{name}={metrics[name]:.4f}" for name in HEADLINES if name in metrics)
