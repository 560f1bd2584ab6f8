"""Evaluate stage: the trained Keras model's loss and accuracy on the test split."""

import keras

from pipelines import artifacts
from pipelines.context import Context


def run(ctx: Context) -> str:
    model = keras.models.load_model(ctx.path(artifacts.MODEL))
    results = model.evaluate(ctx.inputs.test, verbose=0, return_dict=True)
    metrics = {
        "dataset": ctx.config.dataset,
        "num_test_examples": ctx.inputs.num_test,
        "test_loss": float(results["loss"]),
        "test_accuracy": float(results["accuracy"]),
    }
    artifacts.write_json(ctx.path(artifacts.METRICS), metrics)
    return f"test_accuracy={metrics['test_accuracy']:.4f}"
