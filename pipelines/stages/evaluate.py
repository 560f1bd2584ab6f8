"""Evaluate stage: the trained model measured on the test split, by the task's own measure."""

import os

from pipelines import artifacts
from pipelines.context import Context
from pipelines.flops import sustained


def run(ctx: Context) -> str:
    model = ctx.trained_model()
    family = ctx.family
    family.compile(model, ctx.config)  # the family's own loss and metrics, as in training
    metrics = {"dataset": ctx.config.dataset, "num_test_examples": ctx.inputs.num_test,
               **family.evaluate(ctx, model), **ctx.data.report}
    history = artifacts.read_json(ctx.path(artifacts.HISTORY)) if os.path.exists(ctx.path(artifacts.HISTORY)) else {}
    if "grad_norm" in history:
        metrics["train_grad_norm_per_epoch"] = history["grad_norm"]
    if history.get("gflop_per_second"):  # training's speed, in the epochs after the first
        speed, examples = sustained(history["gflop_per_second"]), sustained(history["examples_per_second"])
        metrics.update(train_flops_per_example=round(speed * 1e9 / examples), train_examples_per_second=examples,
                       train_gflop_per_second=speed)
    artifacts.write_json(ctx.path(artifacts.METRICS), metrics)
    return f"{family.headline}={metrics[family.headline]:.4f}"
