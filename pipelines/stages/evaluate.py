"""Evaluate stage: the trained model measured on the test split by its family (its headline and whatever else it
reports, the pictures it draws), the training curves drawn, and training's speed and precision recorded."""

import os

from pipelines import artifacts, evaluation
from pipelines.context import Context
from pipelines.flops import sustained
from pipelines.tasks import pictures


def run(ctx: Context) -> str:
    model, family = ctx.trained_model(), ctx.family
    # Each run draws its own: an earlier run's pictures must not stay.
    for picture in (artifacts.CURVES_PNG, *pictures(ctx.config.task)):
        artifacts.remove(ctx.path(picture))
    family.compile(model, ctx.config)  # the family's own loss and metrics, as in training
    metrics = {"dataset": ctx.config.dataset, "num_test_examples": ctx.inputs.num_test, "family": family.name,
               "headline": family.headline, **family.evaluate(model, ctx.workspace), **ctx.data.report}
    trained = artifacts.read_json(ctx.path(artifacts.CONFIG))
    metrics.update(precision=trained.get("precision"), precision_reason=trained.get("precision_reason"))
    history = artifacts.read_json(ctx.path(artifacts.HISTORY)) if os.path.exists(ctx.path(artifacts.HISTORY)) else {}
    if not ctx.task.solve:  # a closed-form fit has no epochs: its history holds what it chose, one value each
        evaluation.plot_training_curves(history, ctx.path(artifacts.CURVES_PNG))
    if "grad_norm" in history:
        metrics["train_grad_norm_per_epoch"] = history["grad_norm"]
    if history.get("gflop_per_second"):  # training's speed, in the epochs after the first
        speed, examples = sustained(history["gflop_per_second"]), sustained(history["examples_per_second"])
        metrics.update(train_flops_per_example=round(speed * 1e9 / examples), train_examples_per_second=examples,
                       train_gflop_per_second=speed)
    artifacts.write_json(ctx.path(artifacts.METRICS), metrics)
    return f"{family.headline}={metrics[family.headline]:.4f}"
