"""Export targets, one record each: the file a target writes, what it is, how it is written, the client that runs
it, the family limit that judges it, and whether a default run may leave it out.

The export stage writes every target a run asks for (`asked`), verify opens each in its client and judges it,
report.md and dlpipe-predict find a file's target here. Nothing else names a target: adding one (Core ML, TF.js,
an 8-bit variant) is one record in TARGETS and a writer and opener beside it.

Targets today: the four TFLite variants (run by LiteRT, as a phone runs them: builtin ops, no Flex delegate), and
the float model for ONNX Runtime (iOS, web, desktop), each with the model's own input and output names and its
metadata (labels and vocabulary packed in).
"""

import dataclasses
import warnings
from typing import Callable

from pipelines import console, metadata
from pipelines.config import TFLITE_VARIANTS
from pipelines.errors import PipelineError
from pipelines.exported import ExportedModel, TFLiteModel, answer_of, in_chunks, named_in_chunks


@dataclasses.dataclass(frozen=True)
class Job:
    """What a writer is given: the SavedModels it converts ("float": what ships, "quantizable": before any integer
    input cast), the calibration batches (a function: only the int8 file needs them), what every file says of
    itself, the files packed inside, and the int8 file's input and output types."""
    sources: dict[str, str]
    calibration: Callable[[], list[dict]]
    info: metadata.ModelInfo
    packed: dict[str, bytes]
    int8_io: tuple[str, str] = ("int8", "int8")


@dataclasses.dataclass(frozen=True)
class Target:
    name: str                      # as --tflite_variants, export_report.json and report.md name it
    file: str                      # the artifact it writes in the task folder
    note: str                      # what the file holds, for its metadata and report.md
    client: str                    # the program verify runs it in, as an app would
    write: Callable[[Job], bytes]  # its bytes, metadata included
    open: Callable[[str], ExportedModel]
    wanted: Callable[..., bool]    # (RunConfig) -> whether the run asks for it (its flag)
    # Which of a family's limits (Shipment.limits) judges it: "float" (equal to Keras up to rounding) or its own.
    limit: str = "float"
    # Fed the quantizable model's inputs (float pixels where the float files take uint8 ones).
    quantized_inputs: bool = False
    # An 8-bit or 16-bit file: what a default run leaves out, with its measured reason, when it misses its limit.
    # The float files are what a user must have: they fail the run.
    optional: bool = False


def _tflite_file(variant: str) -> str:
    return "model.tflite" if variant == "float32" else f"model_{variant}.tflite"


def convert_tflite(saved_model_dir: str, variant: str, representative: list[dict] | None = None,
                   int8_io: tuple[str, str] = ("int8", "int8")) -> bytes:
    """A SavedModel as one TFLite variant, builtin ops only.

    Not `TFLiteConverter.from_keras_model`, which breaks on Keras 3 models (tensorflow#63867), and not Keras'
    `format='litert'`, which enables SELECT_TF_OPS: the LiteRT pip interpreter has no Flex delegate (LiteRT#6458),
    so a model needing Flex ops must fail here, at conversion, rather than on a phone.
    """
    import tensorflow as tf
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
    if variant == "int16x8":  # float inputs and outputs, quantized inside
        converter.representative_dataset = lambda: iter(representative)
        int16x8 = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        converter.target_spec.supported_ops = [int16x8]
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


def _tflite_target(variant: str, note: str) -> Target:
    quantizable = variant in ("int8", "int16x8")

    def write(job: Job) -> bytes:
        if quantizable:
            flatbuffer = convert_tflite(job.sources["quantizable"], variant, job.calibration(), job.int8_io)
        else:
            flatbuffer = convert_tflite(job.sources["float"], variant)
        info = dataclasses.replace(job.info, description=f"{job.info.description}; TFLite {variant}: {note}")
        return metadata.add_metadata(flatbuffer, info, job.packed)
    return Target(name=variant, file=_tflite_file(variant), note=f"TFLite {variant}: {note}", client="LiteRT",
                  write=write, open=TFLiteModel, wanted=lambda config: variant in config.tflite_variants,
                  limit="float" if variant == "float32" else variant,
                  quantized_inputs=quantizable, optional=variant != "float32")


# ONNX Runtime 1.14+ reads this opset on every platform, web and mobile included.
ONNX_OPSET = 17


def _write_onnx(job: Job) -> bytes:
    """The float model as ONNX through tf2onnx, from its SavedModel's serving signature, so its inputs and outputs
    keep their names; the metadata's name, description and version and the packed files' contents (labels,
    vocabulary) become the file's metadata_props (ONNX Runtime's `get_modelmeta().custom_metadata_map`)."""
    import tensorflow as tf
    import tf2onnx  # only export needs it, and it takes a second to import
    loaded = tf.saved_model.load(job.sources["float"])  # kept alive: the signature refers to its variables
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
    info = job.info
    properties = {"name": info.name, "description": f"{info.description}; ONNX: float32 weights and compute",
                  "version": info.version, "author": info.author,
                  **{name: content.decode() for name, content in job.packed.items()}}
    for key, value in properties.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


class OnnxModel:
    """model.onnx in ONNX Runtime's CPU provider, fed and read like a TFLite file (pipelines/exported.py)."""

    def __init__(self, path: str):
        import numpy as np
        import onnxruntime  # only verify and predict need it
        self.types = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(int64)": np.int64,
                      "tensor(int32)": np.int32}
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: self.types[i.type] for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch):
        return in_chunks(lambda part: answer_of(self._run(part)), batch)

    def named(self, batch):
        return named_in_chunks(self._run, batch)

    def _run(self, batch):
        import numpy as np
        values = self.session.run(None, {name: np.asarray(batch[name]).astype(dtype)
                                         for name, dtype in self.inputs.items()})
        return {name: value.astype(np.float64) for name, value in zip(self.outputs, values)}

    def input_quantization(self) -> dict:
        return {}  # the float model: nothing is quantized

    def metadata_problem(self, packed: dict[str, bytes]) -> str | None:
        """The file's metadata_props must hold the files packed in the TFLite files (labels, vocabulary)."""
        properties = dict(self.session.get_modelmeta().custom_metadata_map)
        differ = sorted(name for name, content in packed.items() if properties.get(name, "").encode() != content)
        return f"its metadata_props {differ} differ from the files beside it" if differ else None


_TFLITE_NOTES = {
    "float32": "float32 weights and compute",
    "dynamic_range": "int8 weights, float activations",
    "float16": "float16 weights, float32 compute",
    "int8": "int8 weights and activations; integer inputs and outputs, with their scale and zero point in the file",
    "int16x8": "int8 weights, int16 activations; float inputs and outputs",
}
assert tuple(_TFLITE_NOTES) == TFLITE_VARIANTS  # config.py names the variants --tflite_variants takes
ONNX = Target(name="onnx", file="model.onnx", note="the float model for ONNX Runtime", client="ONNX Runtime",
              write=_write_onnx, open=OnnxModel, wanted=lambda config: config.onnx)

# Every target, in the order files are exported and reported.
TARGETS: dict[str, Target] = {t.name: t for t in (
    *(_tflite_target(variant, note) for variant, note in _TFLITE_NOTES.items()), ONNX)}
# The RunConfig fields that choose the targets (and the int8 file's calibration): what the export stage's outputs
# depend on beside the model.
SETTINGS = ("tflite_variants", "onnx", "representative_examples", "sagemaker")


def asked(config) -> tuple[Target, ...]:
    """The targets a run writes (the TFLite variants it names, the ONNX file unless --noonnx), in TARGETS' order."""
    return tuple(t for t in TARGETS.values() if t.wanted(config))


def by_file(name: str) -> Target | None:
    """The target that writes the file `name`, or None."""
    return next((t for t in TARGETS.values() if t.file == name), None)


def files() -> tuple[str, ...]:
    """Every file a target may write."""
    return tuple(t.file for t in TARGETS.values())
