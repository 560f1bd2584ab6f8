"""Verify stage: reload the exported SavedModel and TFLite file, check them against Keras, measure TFLite accuracy.

The TFLite file runs in the LiteRT interpreter (ai-edge-litert) as it would on a phone: builtin ops, no Flex.
"""

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pipelines import artifacts
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.tasks import MobileModel

PARITY_EXAMPLES = 1024   # compared three ways (Keras, SavedModel, TFLite); at least 256 are required
MAX_ABS_DIFF = 1e-4


class TFLiteRunner:
    """Runs a TFLite file on batches of any size (the file keeps the model's dynamic batch dimension)."""

    def __init__(self, path: str):
        self.interpreter = Interpreter(model_path=path)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch_size = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] != self.batch_size:
            self.interpreter.resize_tensor_input(self.input["index"], x.shape)
            self.interpreter.allocate_tensors()
            self.batch_size = x.shape[0]
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])


def verify_tflite_parity(keras_model: keras.Model, serving_fn, tflite: TFLiteRunner, mobile: MobileModel,
                         x: np.ndarray) -> dict:
    """Max absolute differences of the SavedModel's and the TFLite file's outputs from the Keras model's."""
    expected = keras_model.predict(tf.data.Dataset.from_tensor_slices(x).batch(256), verbose=0)
    (input_name,) = serving_fn.structured_input_signature[1]
    (served,) = serving_fn(**{input_name: tf.constant(x)}).values()
    return {
        "parity_examples": int(x.shape[0]),
        "saved_model_max_abs_diff": float(np.max(np.abs(served.numpy() - expected))),
        "tflite_max_abs_diff": float(np.max(np.abs(tflite(mobile.to_inputs(x)) - expected))),
    }


def run(ctx: Context) -> str:
    keras_model = keras.models.load_model(ctx.path(artifacts.MODEL))
    serving_fn = tf.saved_model.load(ctx.path(artifacts.SAVED_MODEL)).signatures["serving_default"]
    tflite = TFLiteRunner(ctx.path(artifacts.TFLITE))
    mobile = ctx.task.to_mobile(keras_model)

    test = ctx.inputs.test
    parity_x = np.concatenate([x for x, _ in test.unbatch().batch(PARITY_EXAMPLES).take(1).as_numpy_iterator()])
    report = verify_tflite_parity(keras_model, serving_fn, tflite, mobile, parity_x)
    correct = total = 0
    for x, y in test.as_numpy_iterator():
        correct += int(np.sum(np.argmax(tflite(mobile.to_inputs(x)), axis=-1) == y))
        total += len(y)
    report.update(tflite_test_accuracy=correct / total, num_test_examples=total, max_abs_diff_allowed=MAX_ABS_DIFF)
    report["passed"] = max(report["saved_model_max_abs_diff"], report["tflite_max_abs_diff"]) <= MAX_ABS_DIFF
    artifacts.write_json(ctx.path(artifacts.VERIFY), report)
    if not report["passed"]:
        raise PipelineError(
            f"exported models disagree with Keras (SavedModel {report['saved_model_max_abs_diff']:.2e}, TFLite "
            f"{report['tflite_max_abs_diff']:.2e} > {MAX_ABS_DIFF:g}); see {ctx.path(artifacts.VERIFY)}")
    return f"tflite_accuracy={report['tflite_test_accuracy']:.4f} max_diff={report['tflite_max_abs_diff']:.1e}"
