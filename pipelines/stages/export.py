"""Export stage: a SavedModel (serving_default signature) and the files the run ships, one per export target it
asks for (pipelines/exporters.py: the TFLite variants a phone app runs, and what desktops and browsers run), each
with its metadata (labels and vocabulary packed in). Beside them: labels.txt (line i is class i) and the task's own side
files (a text model's vocab.txt). The files of targets not asked for are removed, so every file in the folder
comes from the model beside it. Everything is converted before anything is written: a failure leaves the previous
files as they were.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from pipelines import artifacts, exporters, metadata, sagemaker
from pipelines.context import Context, StageResult
from pipelines.shipping import Shipment, as_batch


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
        if isinstance(outputs, dict):  # by name already (a forecast and its bounds)
            return outputs
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(model.output_names, outputs))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", tf.function(serve, input_signature=specs))
    with artifacts.atomic_path(path) as tmp:
        archive.write_out(tmp, verbose=False)


def calibration_examples(ctx: Context, shipment: Shipment, count: int) -> list[dict]:
    """`count` single-example batches of the int8 model's inputs: train examples (never test ones), or a
    generator's own noise."""
    if shipment.sample_inputs is not None:
        batch = shipment.sample_inputs(count)
    else:
        x = tf.nest.map_structure(lambda t: t.numpy(), ctx.inputs.first_train_batch(count)[0])
        batch = shipment.to_quantizable_inputs(as_batch(shipment.reference, x))
    batch = shipment.widen_calibration(batch)
    count = len(next(iter(batch.values())))
    return [{name: np.asarray(values[i:i + 1]) for name, values in batch.items()} for i in range(count)]


def model_info(ctx: Context, shipment: Shipment) -> metadata.ModelInfo:
    """What every exported file says of itself; each target's file adds what it is to the description."""
    config = ctx.config
    return metadata.ModelInfo(
        name=f"{shipment.reference.name} ({config.task}, {config.dataset})",
        description=f"dlpipe --task={config.task} trained on {config.dataset} ({ctx.family.name})",
        version=f"model.keras sha256 {ctx.model_sha256[:16]}",
        inputs=shipment.tensors, outputs=shipment.tensors)


def left_out_by_default(ctx: Context) -> dict[str, str]:
    """The variants the task's and its family's defaults leave out, with why, when the defaults chose
    (--tflite_variants not given)."""
    return {} if "tflite_variants" in ctx.config.explicit else {**ctx.task.left_out, **ctx.family.left_out}


def convert_all(ctx: Context, shipment: Shipment, info: metadata.ModelInfo, packed: dict[str, bytes]) -> dict:
    """Every target asked for, written in memory (file → bytes), from SavedModels in a scratch folder: the float
    files from the part that ships to TFLite, the int8 file from the quantizable model."""
    config, files = ctx.config, {}
    targets = exporters.asked(config)
    scratch = artifacts.scratch_dir(config.task_dir)  # a killed run's is cleared by the next (TaskLock)
    try:
        sources = {"float": ctx.path(artifacts.SAVED_MODEL)}
        if shipment.tflite_model is not None:
            sources["float"] = os.path.join(scratch, "tflite")
            export_saved_model(shipment.tflite_model, sources["float"])
        if any(t.quantized_inputs for t in targets):
            sources["quantizable"] = os.path.join(scratch, "int8")
            export_saved_model(shipment.quantizable, sources["quantizable"])
        job = exporters.Job(sources, lambda: calibration_examples(ctx, shipment, config.representative_examples),
                            info, packed, (shipment.int8_input, shipment.int8_output))
        for target in targets:
            print(f"  {target.note}", flush=True)
            files[target.file] = target.write(job)
    finally:
        artifacts.remove(scratch)
    return files


def write_all(ctx: Context, files: dict[str, bytes], side_files: dict[str, str]) -> None:
    """The files, each atomically; the files of targets not asked for go, so every file in the folder comes from
    the model beside it."""
    for name in {t.file for t in exporters.TARGETS.values()} | {artifacts.LABELS}:
        if name not in files and name not in side_files:
            artifacts.remove(ctx.path(name))
    for name, content in files.items():
        with artifacts.atomic_path(ctx.path(name)) as tmp, open(tmp, "wb") as f:
            f.write(content)
    for name, text in side_files.items():
        artifacts.write_text(ctx.path(name), text)


def run(ctx: Context) -> StageResult:
    config = ctx.config
    # The SavedModel, a scratch SavedModel or two and the targets' files: each about the model's size.
    artifacts.require_space(config.task_dir, (3 + len(exporters.asked(config))) * os.path.getsize(
        ctx.path(artifacts.MODEL)), "exporting the model")
    shipment = ctx.family.ship(ctx.trained_model(), ctx.workspace)
    export_saved_model(shipment.model, ctx.path(artifacts.SAVED_MODEL))
    side_files = dict(shipment.side_files)
    if ctx.data.label_names:  # a classifier's; a regressor has none
        side_files[artifacts.LABELS] = "\n".join(ctx.data.label_names) + "\n"
    packed = {name: side_files[name].encode() for name in shipment.packed_files}
    # Everything converted before anything is written: a failure leaves the previous files as they were.
    files = convert_all(ctx, shipment, model_info(ctx, shipment), packed)
    write_all(ctx, files, side_files)
    if config.sagemaker:
        with artifacts.atomic_path(ctx.path(sagemaker.ARCHIVE)) as tmp, open(tmp, "wb") as f:
            f.write(sagemaker.archive(ctx.path(artifacts.SAVED_MODEL), side_files.get(artifacts.LABELS)))
    else:  # an earlier run's archive is not this model
        artifacts.remove(ctx.path(sagemaker.ARCHIVE))
    sizes = {target.name: len(files[target.file]) for target in exporters.asked(config)}
    left_out = left_out_by_default(ctx)
    for variant, why in left_out.items():
        print(f"note: {variant} is left out of --task={config.task}'s default variants: {why}; "
              f"--tflite_variants=...,{variant} exports it")
    return StageResult(" ".join([f"{name}={size / 1024:.0f}KiB" for name, size in sizes.items()]
                                + [f"({variant} left out)" for variant in left_out]), read=shipment.made_from)
