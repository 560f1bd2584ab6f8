"""Verify stage: reload the exported SavedModel and TFLite file, check them against Keras, measure TFLite accuracy.

The TFLite file runs in the LiteRT interpreter (ai-edge-litert) as it would on a phone: builtin ops, no Flex.
"""

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pipelines import artifacts
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.serving import Batch, Serving

PARITY_EXAMPLES = 1024   # compared three ways (Keras, SavedModel, TFLite); at least 256 are required


def only_value(outputs: dict) -> np.ndarray:
    (value,) = outputs.values()
    return np.asarray(value)


def verify_tflite_parity(serving: Serving, serving_fn, tflite, batch: Batch) -> dict:
    """Max absolute differences of the SavedModel's and the TFLite file's outputs from the Keras model's."""
    model_inputs = batch if len(batch) > 1 else next(iter(batch.values()))
    expected = serving.saved_model.predict(model_inputs, batch_size=256, verbose=0).astype(np.float64)
    served = only_value(serving_fn(**{name: tf.constant(x) for name, x in batch.items()}))
    from_tflite = only_value(tflite(**serving.to_tflite_inputs(batch)))
    return {
        "parity_examples": len(expected),
        "saved_model_max_abs_diff": float(np.max(np.abs(served - expected))),
        "tflite_max_abs_diff": float(np.max(np.abs(from_tflite - expected))),
        "max_abs_diff_allowed": serving.max_abs_diff,
    }


def run(ctx: Context) -> str:
    serving = ctx.task.serving(ctx.trained_model())
    serving_fn = tf.saved_model.load(ctx.path(artifacts.SAVED_MODEL)).signatures["serving_default"]
    # The signature runner keeps the signature's input and output names and resizes inputs to each batch.
    tflite = Interpreter(model_path=ctx.path(artifacts.TFLITE)).get_signature_runner("serving_default")
    if serving.sample_inputs is not None:
        report = verify_tflite_parity(serving, serving_fn, tflite, serving.sample_inputs(PARITY_EXAMPLES))
    else:
        (input_name,) = serving_fn.structured_input_signature[1]
        test = ctx.inputs.test
        parity_x = next(test.unbatch().batch(PARITY_EXAMPLES).take(1).as_numpy_iterator())[0]
        report = verify_tflite_parity(serving, serving_fn, tflite, {input_name: parity_x})
        correct = total = 0
        for x, y in test.as_numpy_iterator():
            logits = only_value(tflite(**serving.to_tflite_inputs({input_name: x})))
            correct += int(np.sum(np.argmax(logits, axis=-1) == y))
            total += len(y)
        report.update(tflite_test_accuracy=correct / total, num_test_examples=total)
    worst = max(report["saved_model_max_abs_diff"], report["tflite_max_abs_diff"])
    report["passed"] = worst <= serving.max_abs_diff
    artifacts.write_json(ctx.path(artifacts.VERIFY), report)
    if not report["passed"]:
        raise PipelineError(
            f"exported models disagree with Keras (SavedModel {report['saved_model_max_abs_diff']:.2e}, TFLite "
            f"{report['tflite_max_abs_diff']:.2e} > {serving.max_abs_diff:g}); see {ctx.path(artifacts.VERIFY)}")
    accuracy = f"tflite_accuracy={report['tflite_test_accuracy']:.4f} " if "tflite_test_accuracy" in report else ""
    return f"{accuracy}max_diff={report['tflite_max_abs_diff']:.1e}"
