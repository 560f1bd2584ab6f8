"""Export stage: a SavedModel (serving_default signature) and the TFLite variants a phone app can ship.

Variants: float32; dynamic_range (int8 weights, float activations); float16 (float16 weights); int8 (full
integer: int8 weights and activations, int8 inputs and outputs — uint8 for images — calibrated on examples of the
train split). Each file carries TFLite metadata (pipelines/metadata) with its labels and vocabulary packed in;
beside them: labels.txt (line i is class i) and the task's own side files (a text model's vocab.txt). The files
of variants not asked for are removed, so every file in the folder comes from the model beside it.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from pipelines import artifacts, metadata
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.serving import Serving, as_batch

# What each variant is, for its metadata's description.
VARIANT_NOTES = {
    "float32": "float32 weights and compute",
    "dynamic_range": "int8 weights, float activations",
    "float16": "float16 weights, float32 compute",
    "int8": "int8 weights and activations; integer inputs and outputs, with their scale and zero point in the file",
}


def export_saved_model(model: keras.Model, path: str) -> None:
    """Writes a SavedModel whose `serving_default` signature keeps the model's layer names.

    `model.export()` would name the output `output_0`; a serving or mobile client keys on these names, so the
    signature maps input layer names to output layer names (e.g. image → logits).
    """
    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    def serve(*args):
        if isinstance(model.input, dict):  # a table's columns, by name
            args = [dict(zip([t.name for t in model.inputs], args))]
        outputs = model(list(args) if len(args) > 1 else args[0], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(model.output_names, outputs))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", tf.function(serve, input_signature=specs))
    with artifacts.atomic_path(path) as tmp:
        archive.write_out(tmp, verbose=False)


def convert(saved_model_dir: str, variant: str, representative: list[dict] | None = None,
            int8_io: str = "int8") -> bytes:
    """Converts a SavedModel to one TFLite variant, builtin ops only.

    Not `TFLiteConverter.from_keras_model`, which breaks on Keras 3 models (tensorflow#63867), and not Keras'
    `format='litert'`, which enables SELECT_TF_OPS: the LiteRT pip interpreter has no Flex delegate (LiteRT#6458),
    so a model needing Flex ops must fail here, at conversion, rather than on a phone.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        converter.representative_dataset = lambda: iter(representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.as_dtype(int8_io)
    try:
        return converter.convert()
    except Exception as e:  # the converter raises ConverterError and assorted others with multi-line text
        text = str(e).strip()
        first_line = next((line for line in text.splitlines() if "error" in line.lower()), text[:200]) or type(e)
        raise PipelineError(f"TFLite {variant} conversion with builtin ops failed ({first_line}): the model uses an "
                            "op LiteRT cannot run without Flex, or (int8) one it cannot quantize; drop the variant "
                            "from --tflite_variants or change the model") from None


def calibration_examples(ctx: Context, serving: Serving, count: int) -> list[dict]:
    """`count` single-example batches of the int8 model's inputs: train examples (never test ones), or a
    generator's own noise."""
    if serving.sample_inputs is not None:
        batch = serving.sample_inputs(count)
    else:
        x = tf.nest.map_structure(lambda t: t.numpy(), ctx.inputs.first_train_batch(count)[0])
        batch = serving.to_quantizable_inputs(as_batch(serving.reference, x))
    if serving.calibrate_full_pixel_range:
        batch = {name: np.concatenate([np.zeros_like(x[:1]), np.full_like(x[:1], 255), x]) for name, x in batch.items()}
    count = len(next(iter(batch.values())))
    return [{name: np.asarray(values[i:i + 1]) for name, values in batch.items()} for i in range(count)]


def model_info(ctx: Context, serving: Serving, variant: str) -> metadata.ModelInfo:
    config = ctx.config
    return metadata.ModelInfo(
        name=f"{serving.reference.name} ({config.task}, {config.dataset})",
        description=f"dlpipe --task={config.task} trained on {config.dataset} ({ctx.family.name}); TFLite {variant}: "
                    f"{VARIANT_NOTES[variant]}",
        version=f"model.keras sha256 {artifacts.content_hash(ctx.path(artifacts.MODEL))[:16]}",
        inputs=serving.tensors, outputs=serving.tensors)


def run(ctx: Context) -> str:
    metadata.require_schema()
    serving = ctx.family.serving(ctx.trained_model())
    export_saved_model(serving.model, ctx.path(artifacts.SAVED_MODEL))
    sizes = {}
    scratch = artifacts.scratch_dir(ctx.config.task_dir)  # a killed run's is cleared by the next (TaskLock)
    try:
        sources = {"float": ctx.path(artifacts.SAVED_MODEL)}
        if serving.tflite_model is not None:
            sources["float"] = os.path.join(scratch, "tflite")
            export_saved_model(serving.tflite_model, sources["float"])
        if "int8" in ctx.config.tflite_variants:
            sources["int8"] = os.path.join(scratch, "int8")
            export_saved_model(serving.quantizable, sources["int8"])
        # Convert every variant before writing any, so a failure leaves the previous files as they were.
        flatbuffers = {}
        for variant in ctx.config.tflite_variants:
            if variant == "int8":
                calibration = calibration_examples(ctx, serving, ctx.config.representative_examples)
                flatbuffers[variant] = convert(sources["int8"], variant, calibration, serving.int8_io)
            else:
                flatbuffers[variant] = convert(sources["float"], variant)
    finally:
        artifacts.remove(scratch)
    side_files = dict(serving.side_files)
    if ctx.data.label_names:  # a classifier's; a regressor has none
        side_files[artifacts.LABELS] = "\n".join(ctx.data.label_names) + "\n"
    else:
        artifacts.remove(ctx.path(artifacts.LABELS))
    packed = {name: side_files[name].encode() for info in serving.tensors.values() for name, _ in info.files}
    for variant in set(artifacts.TFLITE_VARIANTS) - set(flatbuffers):
        artifacts.remove(ctx.path(artifacts.tflite_file(variant)))
    for variant, flatbuffer in flatbuffers.items():
        flatbuffer = metadata.add_metadata(flatbuffer, model_info(ctx, serving, variant), packed)
        with artifacts.atomic_path(ctx.path(artifacts.tflite_file(variant))) as tmp, open(tmp, "wb") as f:
            f.write(flatbuffer)
        sizes[variant] = len(flatbuffer)
    for name, text in side_files.items():
        artifacts.write_text(ctx.path(name), text)
    return " ".join(f"{variant}={size / 1024:.0f}KiB" for variant, size in sizes.items())
