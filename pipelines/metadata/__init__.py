"""TFLite metadata: what an app reads from a .tflite file itself (MediaPipe Tasks, Android Studio's ML model
binding): the model's name and description, each input's and output's meaning and value range, an image input's
colour space and normalisation, and the labels (TENSOR_AXIS_LABELS) and vocabulary (VOCABULARY) as files packed
into the model.

It follows the published schema, `metadata_schema.fbs` beside this file (MediaPipe 0.10.21's copy, Apache 2.0),
through the Python code `flatc --python --gen-object-api --gen-onefile` generates from it, kept in generated/ so
that a plain `pip install` needs no flatc (`make metadata` regenerates it; a test checks that it matches the
schema). The maintained writers built on the same code, tflite-support's and MediaPipe's, cannot be installed
beside TensorFlow 2.21 (they need protobuf < 4 and NumPy < 2), so the two steps they add are done here by hand, as
their `MetadataPopulator` does them: the metadata is added to the model as a buffer named TFLITE_METADATA,
and the associated files are appended to the file as a zip archive (which a flatbuffer reader ignores).
"""

import dataclasses
import io
import zipfile

import flatbuffers
from ai_edge_litert import schema_py_generated as tflite_schema

from pipelines.metadata.generated import metadata_schema_generated as schema

METADATA_NAME = "TFLITE_METADATA"   # the model's metadata entry MediaPipe and tflite-support look for
METADATA_IDENTIFIER = b"M001"       # the schema's file_identifier
MODEL_IDENTIFIER = b"TFL3"
# The schema's History: VOCABULARY files came in 1.0.1; everything else written here is in 1.0.0.
PARSER_VERSION, VOCABULARY_PARSER_VERSION = "1.0.0", "1.0.1"

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the packed files' timestamp: zip's earliest, so a file depends on its content only
LABELS, VOCABULARY = "labels", "vocabulary"  # the kinds of associated file written here


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One input or output of the file, as its metadata describes it."""
    description: str
    # An image input: RGB, fed as it comes (uint8, 0–255) and normalised inside the model, so the mean and std an
    # app applies first are 0 and 1 (written, as readers of float image inputs require them).
    image: bool = False
    value_range: tuple[float, float] | None = None  # the values the tensor holds (Stats min and max)
    files: tuple[tuple[str, str], ...] = ()         # (file name, LABELS or VOCABULARY) packed into the model


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    inputs: dict[str, TensorInfo]   # keyed by the serving signature's input names
    outputs: dict[str, TensorInfo]  # and output names
    version: str = ""
    author: str = "dlpipe"


def _tensor_metadata(name: str, info: TensorInfo):
    tensor = schema.TensorMetadataT()
    tensor.name, tensor.description = name, info.description
    content = schema.ContentT()
    if info.image:
        content.contentPropertiesType = schema.ContentProperties.ImageProperties
        content.contentProperties = schema.ImagePropertiesT()
        content.contentProperties.colorSpace = schema.ColorSpaceType.RGB
        normalization = schema.NormalizationOptionsT()
        normalization.mean, normalization.std = [0.0], [1.0]
        unit = schema.ProcessUnitT()
        unit.optionsType, unit.options = schema.ProcessUnitOptions.NormalizationOptions, normalization
        tensor.processUnits = [unit]
    else:
        content.contentPropertiesType = schema.ContentProperties.FeatureProperties
        content.contentProperties = schema.FeaturePropertiesT()
    tensor.content = content
    if info.value_range is not None:
        tensor.stats = schema.StatsT()
        tensor.stats.min, tensor.stats.max = [float(info.value_range[0])], [float(info.value_range[1])]
    tensor.associatedFiles = []
    for file_name, kind in info.files:
        packed = schema.AssociatedFileT()
        packed.name = file_name
        if kind == LABELS:
            packed.type, packed.description = schema.AssociatedFileType.TENSOR_AXIS_LABELS, "line i names class i"
        else:
            packed.type, packed.description = schema.AssociatedFileType.VOCABULARY, "line i is token id i"
        tensor.associatedFiles.append(packed)
    return tensor


def _signature_order(model) -> tuple[list[str], list[str]]:
    """The serving signature's input and output names in the order of the subgraph's tensors: the order a
    metadata reader pairs tensor metadata with tensors in."""
    (signature,) = model.signatureDefs
    subgraph = model.subgraphs[signature.subgraphIndex]

    def ordered(maps, tensors):
        by_index = {m.tensorIndex: m.name.decode() for m in maps}
        return [by_index[i] for i in tensors]
    return ordered(signature.inputs, subgraph.inputs), ordered(signature.outputs, subgraph.outputs)


def _metadata_buffer(info: ModelInfo, inputs: list[str], outputs: list[str]) -> bytes:
    subgraph = schema.SubGraphMetadataT()
    subgraph.name = info.name
    subgraph.inputTensorMetadata = [_tensor_metadata(name, info.inputs[name]) for name in inputs]
    subgraph.outputTensorMetadata = [_tensor_metadata(name, info.outputs[name]) for name in outputs]
    metadata = schema.ModelMetadataT()
    metadata.name, metadata.description, metadata.version, metadata.author = (
        info.name, info.description, info.version, info.author)
    metadata.subgraphMetadata = [subgraph]
    kinds = {kind for tensor in [*info.inputs.values(), *info.outputs.values()] for _, kind in tensor.files}
    metadata.minParserVersion = VOCABULARY_PARSER_VERSION if VOCABULARY in kinds else PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), METADATA_IDENTIFIER)
    return bytes(builder.Output())


def add_metadata(flatbuffer: bytes, info: ModelInfo, files: dict[str, bytes]) -> bytes:
    """`flatbuffer` with `info` as its metadata and `files` (name → content) packed in."""
    model = tflite_schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    inputs, outputs = _signature_order(model)
    missing = (set(inputs) - set(info.inputs)) | (set(outputs) - set(info.outputs))
    if missing:  # a family's ModelInfo out of step with its model: a bug, not a user's error
        raise ValueError(f"no metadata for the TFLite tensors {sorted(missing)}")
    buffer = tflite_schema.BufferT()
    buffer.data = list(_metadata_buffer(info, inputs, outputs))
    model.buffers.append(buffer)
    entry = tflite_schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() != METADATA_NAME] + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), MODEL_IDENTIFIER)
    archive = io.BytesIO()
    archive.write(bytes(builder.Output()))
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_STORED) as zf:  # stored, as MediaPipe's own writer packs them
        for name, content in sorted(files.items()):
            zf.writestr(zipfile.ZipInfo(name, date_time=ZIP_TIME), content)  # the same model, the same bytes
    return archive.getvalue()


def read_metadata(flatbuffer: bytes):
    """A file's metadata (the schema's ModelMetadataT) and the files packed in it (name → bytes)."""
    model = tflite_schema.Model.GetRootAs(flatbuffer, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() != METADATA_NAME:
            continue
        data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
        if not schema.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0):
            raise ValueError(f"the {METADATA_NAME} buffer lacks the schema's identifier {METADATA_IDENTIFIER!r}")
        metadata = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAs(data, 0))
        with zipfile.ZipFile(io.BytesIO(flatbuffer)) as zf:
            return metadata, {name: zf.read(name) for name in zf.namelist()}
    raise ValueError(f"the file has no {METADATA_NAME} entry")
