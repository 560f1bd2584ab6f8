"""TFLite metadata written by pipelines/metadata and read back with the schema's own generated code, and the
camera-ready RGB input a grayscale model's TFLite files take."""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from pipelines import metadata
from pipelines.metadata.generated.metadata_schema_generated import AssociatedFileType, ContentProperties
from pipelines.shipping import as_rgb, with_rgb_pixels
from pipelines.exporters import convert_tflite as convert
from pipelines.stages.export import export_saved_model

INFO = metadata.ModelInfo(
    name="tiny", description="a test model", version="v1",
    inputs={"tokens": metadata.TensorInfo("token ids", value_range=(0, 9),
                                          files=(("vocab.txt", metadata.VOCABULARY),))},
    outputs={"scores": metadata.TensorInfo("class scores", files=(("labels.txt", metadata.LABELS),))})
FILES = {"labels.txt": b"cat\ndog\n", "vocab.txt": b"\n[UNK]\nthe\n"}


@pytest.fixture(scope="module")
def flatbuffer(tmp_path_factory):
    tokens = keras.Input((4,), name="tokens")
    model = keras.Model(tokens, keras.layers.Dense(2, name="scores")(tokens))
    path = str(tmp_path_factory.mktemp("tiny") / "saved_model")
    export_saved_model(model, path)
    return convert(path, "float32")


def run(buffer: bytes, x: np.ndarray) -> np.ndarray:
    (value,) = Interpreter(model_content=buffer).get_signature_runner()(tokens=x).values()
    return value


def test_metadata_reads_back_with_the_schema_and_the_file_still_runs(flatbuffer):
    written = metadata.add_metadata(flatbuffer, INFO, FILES)
    info, packed = metadata.read_metadata(written)
    assert (info.name, info.description, info.version, info.author) == (b"tiny", b"a test model", b"v1", b"dlpipe")
    assert info.minParserVersion == b"1.0.1"  # a VOCABULARY file needs the 1.0.1 parser
    (subgraph,) = info.subgraphMetadata
    (tokens,), (scores,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert tokens.name == b"tokens" and tokens.content.contentPropertiesType == ContentProperties.FeatureProperties
    assert list(tokens.stats.max) == [9] and tokens.associatedFiles[0].type == AssociatedFileType.VOCABULARY
    assert scores.associatedFiles[0].name == b"labels.txt"
    assert scores.associatedFiles[0].type == AssociatedFileType.TENSOR_AXIS_LABELS
    assert packed == FILES
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(run(written, x), run(flatbuffer, x))


def test_the_same_model_and_metadata_give_the_same_bytes(flatbuffer):
    assert metadata.add_metadata(flatbuffer, INFO, FILES) == metadata.add_metadata(flatbuffer, INFO, FILES)


def test_writing_twice_replaces_the_metadata_instead_of_adding_a_second(flatbuffer):
    again = metadata.add_metadata(metadata.add_metadata(flatbuffer, INFO, {}), INFO, FILES)
    info, packed = metadata.read_metadata(again)
    assert info.name == b"tiny" and packed == FILES


def test_a_tensor_without_a_description_is_refused(flatbuffer):
    with pytest.raises(ValueError, match="scores"):
        metadata.add_metadata(flatbuffer, metadata.ModelInfo("tiny", "", INFO.inputs, {}), {})


def test_a_file_without_metadata_says_so(flatbuffer):
    with pytest.raises(ValueError, match="no TFLITE_METADATA"):
        metadata.read_metadata(flatbuffer)


def test_a_grayscale_model_sees_a_colour_frame_as_pillow_converts_it():
    """The luma inside the camera-ready model is Pillow's convert("L"), which made the training images."""
    gray = keras.Input((4, 5, 1), name="image")
    identity = keras.Model(gray, keras.layers.Identity(name="pixels")(gray))
    frame = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    seen = np.asarray(with_rgb_pixels(identity)(frame[None]))[0, ..., 0]
    pillow = np.asarray(Image.fromarray(frame).convert("L"), np.float32)
    assert np.abs(seen - pillow).max() <= 0.5  # Pillow rounds to whole levels


def test_a_gray_batch_becomes_rgb_with_equal_channels():
    gray = np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)
    rgb = as_rgb({"image": gray})["image"]
    assert rgb.shape == (1, 2, 3, 3) and rgb.dtype == np.uint8 and (rgb == gray.astype(np.uint8)).all()


def test_the_kept_metadata_code_is_what_flatc_generates_from_the_schema(tmp_path):
    """The generated code is kept in git so that `pip install .` needs no flatc; it must stay the schema's."""
    import os
    import shutil
    import subprocess
    flatc = shutil.which("flatc")
    if flatc is None:
        pytest.skip("flatc is not installed (`make flatc`; make test installs it)")
    package = os.path.dirname(metadata.__file__)
    subprocess.run([flatc, "--python", "--gen-object-api", "--gen-onefile", "-o", str(tmp_path),
                    os.path.join(package, "metadata_schema.fbs")], check=True)
    kept = os.path.join(package, "generated", "metadata_schema_generated.py")
    with open(kept, "rb") as a, open(tmp_path / "metadata_schema_generated.py", "rb") as b:
        assert a.read() == b.read(), "regenerate it with `make metadata`"
