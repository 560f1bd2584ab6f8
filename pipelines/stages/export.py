"""Export stage: the trained model as a SavedModel (serving_default signature) and a float32 TFLite file."""

import os
import tempfile

import keras
import tensorflow as tf

from pipelines import artifacts
from pipelines.context import Context
from pipelines.errors import PipelineError


def export_saved_model(model: keras.Model, path: str) -> None:
    """Writes a SavedModel whose `serving_default` signature keeps the model's layer names.

    `model.export()` would name the output `output_0`; a serving or mobile client keys on these names, so the
    signature maps input layer names to output layer names (e.g. image → logits).
    """
    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    def serve(*args):
        outputs = model(list(args) if len(args) > 1 else args[0], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(model.output_names, outputs))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", tf.function(serve, input_signature=specs))
    with artifacts.atomic_path(path) as tmp:
        archive.write_out(tmp, verbose=False)


def export_tflite(saved_model_dir: str, path: str) -> int:
    """Converts a SavedModel to TFLite with builtin ops only; returns the file size in bytes.

    Not `TFLiteConverter.from_keras_model`, which breaks on Keras 3 models (tensorflow#63867), and not Keras'
    `format='litert'`, which enables SELECT_TF_OPS: the LiteRT pip interpreter has no Flex delegate (LiteRT#6458),
    so a model needing Flex ops must fail here, at conversion, rather than on a phone.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        flatbuffer = converter.convert()
    except Exception as e:  # the converter raises ConverterError and assorted others with multi-line text
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PipelineError(f"TFLite conversion with builtin ops failed ({first_line}): the model uses an op "
                            "LiteRT cannot run without Flex; change the model (e.g. unroll recurrent layers)") from None
    with artifacts.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(flatbuffer)
    return len(flatbuffer)


def run(ctx: Context) -> str:
    serving = ctx.task.serving(ctx.trained_model())
    export_saved_model(serving.saved_model, ctx.path(artifacts.SAVED_MODEL))
    # TFLite converts from a SavedModel of the model it ships: a scratch one when that is only a part.
    with tempfile.TemporaryDirectory(dir=ctx.config.task_dir) as scratch:
        source = ctx.path(artifacts.SAVED_MODEL)
        if serving.tflite is not serving.saved_model:
            source = os.path.join(scratch, "tflite_saved_model")
            export_saved_model(serving.tflite, source)
        size = export_tflite(source, ctx.path(artifacts.TFLITE))
    for name, text in serving.side_files.items():
        with artifacts.atomic_path(ctx.path(name)) as tmp, open(tmp, "w") as f:
            f.write(text)
    return f"tflite={size / 1024:.0f} KiB"
