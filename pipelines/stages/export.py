"""Export stage: a SavedModel (serving_default signature) and the TFLite variants a phone app can ship.

Variants: float32; dynamic_range (int8 weights, float activations); float16 (float16 weights); int8 (full
integer: int8 weights and activations, int8 inputs and outputs — uint8 for images — calibrated on examples of
the train split). Each file carries TFLite metadata (pipelines/metadata) with its labels and vocabulary packed
in; model.onnx (--onnx) is the float model for ONNX Runtime, with the same inputs and outputs. Beside them:
labels.txt (line i is class i) and the task's own side files (a text model's vocab.txt). The files of variants
not asked for are removed, so every file in the folder comes from the model beside it.
"""

import dataclasses
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from pipelines import artifacts, console, metadata
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.shipping import Shipment, as_batch

ONNX_OPSET = 17  # ONNX Runtime 1.14+ on every platform, web and mobile included

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
            int8_io: tuple[str, str] = ("int8", "int8")) -> bytes:
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
        converter.inference_input_type, converter.inference_output_type = map(tf.as_dtype, int8_io)
    try:
        with warnings.catch_warnings(), console.native_chatter_hidden():
            # The int8 converter's own use of tf.lite.Interpreter warns of itself.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return converter.convert()
    except Exception as e:  # the converter raises ConverterError and assorted others with multi-line text
        text = str(e).strip()
        first_line = next((line for line in text.splitlines() if "error" in line.lower()), text[:200]) or type(e)
        raise PipelineError(f"TFLite {variant} conversion with builtin ops failed ({first_line}): the model uses an "
                            "op LiteRT cannot run without Flex, or (int8) one it cannot quantize; drop the variant "
                            "from --tflite_variants or change the model") from None


def calibration_examples(ctx: Context, shipment: Shipment, count: int) -> list[dict]:
    """`count` single-example batches of the int8 model's inputs: train examples (never test ones), or a
    generator's own noise."""
    if shipment.sample_inputs is not None:
        batch = shipment.sample_inputs(count)
    else:
        x = tf.nest.map_structure(lambda t: t.numpy(), ctx.inputs.first_train_batch(count)[0])
        batch = shipment.to_quantizable_inputs(as_batch(shipment.reference, x))
    if shipment.calibrate_full_pixel_range:
        batch = {name: np.concatenate([np.zeros_like(x[:1]), np.full_like(x[:1], 255), x]) for name, x in batch.items()}
    count = len(next(iter(batch.values())))
    return [{name: np.asarray(values[i:i + 1]) for name, values in batch.items()} for i in range(count)]


def model_info(ctx: Context, shipment: Shipment) -> metadata.ModelInfo:
    """What every exported file says of itself; a TFLite file's description adds its variant (for_variant)."""
    config = ctx.config
    return metadata.ModelInfo(
        name=f"{shipment.reference.name} ({config.task}, {config.dataset})",
        description=f"dlpipe --task={config.task} trained on {config.dataset} ({ctx.family.name})",
        version=f"model.keras sha256 {ctx.model_sha256[:16]}",
        inputs=shipment.tensors, outputs=shipment.tensors)


def for_variant(info: metadata.ModelInfo, variant: str) -> metadata.ModelInfo:
    return dataclasses.replace(info, description=f"{info.description}; TFLite {variant}: {VARIANT_NOTES[variant]}")


def convert_onnx(saved_model_dir: str, properties: dict[str, str]) -> bytes:
    """The float model as ONNX (opset ONNX_OPSET) through tf2onnx, from its SavedModel's serving signature, so its
    inputs and outputs keep their names; `properties` become the file's metadata_props (ONNX Runtime's
    `get_modelmeta().custom_metadata_map`)."""
    import tf2onnx  # only export needs it, and it takes a second to import
    loaded = tf.saved_model.load(saved_model_dir)  # kept alive: the signature refers to its variables
    serve = loaded.signatures["serving_default"]
    names = list(serve.structured_input_signature[1])
    specs = [tf.TensorSpec(spec.shape, spec.dtype, name=name)
             for name, spec in serve.structured_input_signature[1].items()]
    function = tf.function(lambda *args: serve(**dict(zip(names, args))), input_signature=specs)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=ONNX_OPSET)
    except Exception as e:  # tf2onnx raises assorted errors with multi-line text
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        first_line = next((line for line in lines if "error" in line.lower()), lines[-1])[:200]
        raise PipelineError(f"ONNX conversion failed ({first_line}): leave it out with --noonnx") from None
    extra = [i.name for i in proto.graph.input if i.name not in names]
    if extra:  # tf2onnx left tensors the function captures (not variables) as inputs an app cannot feed
        raise PipelineError(f"ONNX conversion left {len(extra)} of the model's constants as inputs ({extra[0]}, "
                            "…; keras.applications' EfficientNet normalization does this): leave it out with --noonnx")
    for key, value in properties.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def onnx_properties(info: metadata.ModelInfo, packed: dict[str, bytes]) -> dict[str, str]:
    """What the ONNX file says of itself: TFLite metadata's name, description and version, and the packed files'
    contents (labels, vocabulary) under their names."""
    return {"name": info.name, "description": f"{info.description}; ONNX: {VARIANT_NOTES['float32']}",
            "version": info.version, "author": info.author,
            **{name: content.decode() for name, content in packed.items()}}


def left_out_by_default(ctx: Context) -> dict[str, str]:
    """The variants the task's and its family's defaults leave out, with why, when the defaults chose
    (--tflite_variants not given)."""
    return {} if "tflite_variants" in ctx.config.explicit else {**ctx.task.left_out, **ctx.family.left_out}


def convert_all(ctx: Context, shipment: Shipment, info: metadata.ModelInfo, packed: dict[str, bytes]) -> dict:
    """Every file asked for, converted in memory (name → bytes), from SavedModels written to a scratch folder: the
    float variants from the part that ships to TFLite, int8 from the quantizable model."""
    config, files = ctx.config, {}
    scratch = artifacts.scratch_dir(config.task_dir)  # a killed run's is cleared by the next (TaskLock)
    try:
        sources = {"float": ctx.path(artifacts.SAVED_MODEL)}
        if shipment.tflite_model is not None:
            sources["float"] = os.path.join(scratch, "tflite")
            export_saved_model(shipment.tflite_model, sources["float"])
        if "int8" in config.tflite_variants:
            sources["int8"] = os.path.join(scratch, "int8")
            export_saved_model(shipment.quantizable, sources["int8"])
        for variant in config.tflite_variants:
            print(f"  TFLite {variant}: {VARIANT_NOTES[variant]}", flush=True)
            if variant == "int8":
                calibration = calibration_examples(ctx, shipment, config.representative_examples)
                flatbuffer = convert(sources["int8"], variant, calibration,
                                     (shipment.int8_input, shipment.int8_output))
            else:
                flatbuffer = convert(sources["float"], variant)
            files[artifacts.tflite_file(variant)] = metadata.add_metadata(flatbuffer, for_variant(info, variant),
                                                                          packed)
        if config.onnx:
            print(f"  ONNX (opset {ONNX_OPSET}): the float model for ONNX Runtime", flush=True)
            files[artifacts.ONNX] = convert_onnx(sources["float"], onnx_properties(info, packed))
    finally:
        artifacts.remove(scratch)
    return files


def write_all(ctx: Context, files: dict[str, bytes], side_files: dict[str, str]) -> None:
    """The files, each atomically; the files of variants not asked for go, so every file in the folder comes from
    the model beside it."""
    for name in {artifacts.tflite_file(v) for v in artifacts.TFLITE_VARIANTS} | {artifacts.ONNX, artifacts.LABELS}:
        if name not in files and name not in side_files:
            artifacts.remove(ctx.path(name))
    for name, content in files.items():
        with artifacts.atomic_path(ctx.path(name)) as tmp, open(tmp, "wb") as f:
            f.write(content)
    for name, text in side_files.items():
        artifacts.write_text(ctx.path(name), text)


def run(ctx: Context) -> str:
    config = ctx.config
    # The SavedModel, a scratch SavedModel or two, the variants and the ONNX file: each about the model's size.
    artifacts.require_space(config.task_dir, (4 + len(config.tflite_variants)) * os.path.getsize(
        ctx.path(artifacts.MODEL)), "exporting the model")
    shipment = ctx.family.ship(ctx.trained_model())
    export_saved_model(shipment.model, ctx.path(artifacts.SAVED_MODEL))
    side_files = dict(shipment.side_files)
    if ctx.data.label_names:  # a classifier's; a regressor has none
        side_files[artifacts.LABELS] = "\n".join(ctx.data.label_names) + "\n"
    packed = {name: side_files[name].encode() for name in shipment.packed_files}
    # Everything converted before anything is written: a failure leaves the previous files as they were.
    files = convert_all(ctx, shipment, model_info(ctx, shipment), packed)
    write_all(ctx, files, side_files)
    sizes = {variant: len(files[artifacts.tflite_file(variant)]) for variant in config.tflite_variants}
    sizes.update({"onnx": len(files[artifacts.ONNX])} if config.onnx else {})
    left_out = left_out_by_default(ctx)
    for variant, why in left_out.items():
        print(f"note: {variant} is left out of --task={config.task}'s default variants: {why}; "
              f"--tflite_variants=...,{variant} exports it")
    return " ".join([f"{name}={size / 1024:.0f}KiB" for name, size in sizes.items()]
                    + [f"({variant} left out)" for variant in left_out])
