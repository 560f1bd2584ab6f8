"""Verify stage: every export loaded back and measured against the Keras model it came from.

The SavedModel through `tf.saved_model.load`, each TFLite variant in the LiteRT interpreter (ai-edge-litert) as a
phone runs it: builtin ops, no Flex delegate. For each: parity with Keras, accuracy on the test split (classifiers),
file size and single-example latency. Written to export_report.json and export_report.md; the stage fails when an
export misses its limit (see Serving.limits).
"""

import os
import statistics
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pipelines import artifacts
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.serving import Batch

PARITY_EXAMPLES = 1024   # the batch every export is compared on; at least 256 are required
LATENCY_RUNS, WARMUP_RUNS = 100, 10


def only_value(outputs: dict) -> np.ndarray:
    (value,) = outputs.values()
    return np.asarray(value)


class TFLiteModel:
    """One TFLite file behind its serving_default signature, taking and returning real (dequantized) values."""

    def __init__(self, path: str):
        self.runner = Interpreter(model_path=path).get_signature_runner("serving_default")
        self.inputs, self.outputs = self.runner.get_input_details(), self.runner.get_output_details()

    @staticmethod
    def _scale(detail) -> tuple[float, int]:
        scale, zero_point = detail["quantization"]
        return (scale, zero_point) if detail["dtype"] == np.int8 and scale else (0.0, 0)

    def __call__(self, batch: Batch) -> np.ndarray:
        feed = {}
        for name, value in batch.items():
            scale, zero_point = self._scale(self.inputs[name])
            if scale:  # int8 input: quantize with the file's own parameters, as an app would
                value = np.clip(np.round(value / scale + zero_point), -128, 127)
            feed[name] = np.asarray(value).astype(self.inputs[name]["dtype"])
        (name, value), = self.runner(**feed).items()
        scale, zero_point = self._scale(self.outputs[name])
        return (value.astype(np.float64) - zero_point) * scale if scale else value.astype(np.float64)

    def input_quantization(self) -> dict:
        return {name: {"dtype": np.dtype(d["dtype"]).name, "scale": float(d["quantization"][0]),
                       "zero_point": int(d["quantization"][1])} for name, d in self.inputs.items()}


def median_ms(call, runs: int) -> float:
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def keras_predict(model, batch: Batch) -> np.ndarray:
    # Through tf.data: Keras' predict cannot take NumPy string (object) arrays, a text model's input.
    inputs = batch if len(batch) > 1 else next(iter(batch.values()))
    return model.predict(tf.data.Dataset.from_tensor_slices(inputs).batch(256), verbose=0).astype(np.float64)


def first(batch: Batch, n: int) -> Batch:
    return {name: value[:n] for name, value in batch.items()}


def measure(outputs: np.ndarray, expected: np.ndarray) -> dict:
    diff = np.abs(outputs - expected)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}


def passes(measures: dict, limit: tuple[str, float]) -> bool:
    name, bound = limit
    return measures[name] >= bound if name == "top1_agreement" else measures[name] <= bound


def run(ctx: Context) -> str:
    serving = ctx.task.serving(ctx.trained_model())
    variants = ctx.config.tflite_variants
    missing = [artifacts.tflite_file(v) for v in variants if not os.path.exists(ctx.path(artifacts.tflite_file(v)))]
    if missing:
        raise PipelineError(f"verify needs {', '.join(missing)} in {ctx.config.task_dir}: run --stages=export "
                            f"with the same --tflite_variants first")

    # The batch every export is compared on, and (classifiers) the whole test split for accuracy.
    if serving.sample_inputs is not None:
        parity, test_batches = serving.sample_inputs(PARITY_EXAMPLES), []
    else:
        name = serving.reference.inputs[0].name
        test_batches = [({name: x}, y) for x, y in ctx.inputs.test.as_numpy_iterator()]
        parity = {name: np.concatenate([b[name] for b, _ in test_batches])[:PARITY_EXAMPLES]}
    reference = keras_predict(serving.reference, parity)
    labels = np.concatenate([y for _, y in test_batches]) if test_batches else None
    reference_classes = (np.concatenate([np.argmax(keras_predict(serving.reference, b), -1) for b, _ in test_batches])
                         if test_batches else None)
    single = first(parity, 1)
    single_input = single if len(single) > 1 else tf.constant(next(iter(single.values())))
    keras_ms = median_ms(lambda: serving.reference(single_input, training=False), LATENCY_RUNS // 2)
    rows = {"keras": {"latency_ms": keras_ms, "passed": True}}
    if labels is not None:
        rows["keras"]["test_accuracy"] = float(np.mean(reference_classes == labels))

    serve_fn = tf.saved_model.load(ctx.path(artifacts.SAVED_MODEL)).signatures["serving_default"]
    model_inputs = serving.to_model_inputs(parity)
    served = only_value(serve_fn(**{k: tf.constant(v) for k, v in model_inputs.items()})).astype(np.float64)
    rows["savedmodel"] = measure(served, reference)
    rows["savedmodel"]["passed"] = passes(rows["savedmodel"], serving.limits["savedmodel"])

    for variant in variants:
        path = ctx.path(artifacts.tflite_file(variant))
        model = TFLiteModel(path)
        int8 = variant == "int8"
        to_inputs = serving.to_quantizable_inputs if int8 else serving.to_tflite_inputs
        row = measure(model(to_inputs(parity)), serving.to_quantized_outputs(reference) if int8 else reference)
        if labels is not None:
            predicted = np.concatenate([np.argmax(model(to_inputs(b)), -1) for b, _ in test_batches])
            row["top1_agreement"] = float(np.mean(predicted == reference_classes))
            row["test_accuracy"] = float(np.mean(predicted == labels))
            row["accuracy_drop"] = rows["keras"]["test_accuracy"] - row["test_accuracy"]
        row["size_bytes"] = os.path.getsize(path)
        one = to_inputs(single)
        row["latency_ms"] = median_ms(lambda: model(one), LATENCY_RUNS)
        row["inputs"] = model.input_quantization()
        row["limit"] = list(serving.limits[variant])
        row["passed"] = passes(row, serving.limits[variant])
        rows[variant] = row

    report = {"parity_examples": len(reference), "num_test_examples": 0 if labels is None else len(labels),
              "exports": rows, "passed": all(r["passed"] for r in rows.values())}
    artifacts.write_json(ctx.path(artifacts.VERIFY), report)
    table = format_report(rows)
    with artifacts.atomic_path(ctx.path(artifacts.VERIFY_MD)) as tmp, open(tmp, "w") as f:
        f.write(f"# Export report: {ctx.config.task} on {ctx.config.dataset}\n\n{table}\n")
    print(table)
    failed = [name for name, r in rows.items() if not r["passed"]]
    if failed:
        raise PipelineError(f"exports miss their limits: {', '.join(failed)} (see {ctx.path(artifacts.VERIFY_MD)}); "
                            "a quantized variant that loses too much can be left out with --tflite_variants")
    float32 = rows.get("float32", rows["savedmodel"])
    accuracy = f"tflite_accuracy={float32['test_accuracy']:.4f} " if "test_accuracy" in float32 else ""
    return f"{accuracy}max_diff={float32['max_abs_diff']:.1e} {len(variants)} variants passed"


def format_report(rows: dict) -> str:
    """A Markdown table: one row per export, Keras first."""
    columns = ("export", "size KiB", "latency ms", "test accuracy", "drop", "top-1 agree", "max abs diff", "passed")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, r in rows.items():
        cells = [name, f"{r['size_bytes'] / 1024:.0f}" if "size_bytes" in r else "",
                 f"{r['latency_ms']:.3f}" if "latency_ms" in r else "",
                 f"{r['test_accuracy']:.4f}" if "test_accuracy" in r else "",
                 f"{r['accuracy_drop']:+.4f}" if "accuracy_drop" in r else "",
                 f"{r['top1_agreement']:.4f}" if "top1_agreement" in r else "",
                 f"{r['max_abs_diff']:.2e}" if "max_abs_diff" in r else "", "yes" if r["passed"] else "NO"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
