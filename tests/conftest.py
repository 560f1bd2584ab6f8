"""Shared fixtures: IDX files made by the tests, and small in-memory data sets."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines import console

console.start_tensorflow()  # TensorFlow's start-up chatter hidden, as the console scripts hide it

import tensorflow as tf  # noqa: E402

from tests.loopback import free_ports  # noqa: E402,F401  (tests import it from here)
from pipelines.data import idx  # noqa: E402
from pipelines.data.sources import DataSet, streamed  # noqa: E402
from pipelines.flags import to_config  # noqa: E402

REAL_IDX_DIR = idx.DEFAULT_IDX_DIR
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_from_flags(*args: str):
    """The RunConfig the command line would build from these flags, for tests that call the runner directly; the
    global flag values are restored afterwards."""
    from absl import flags
    from absl.testing import flagsaver
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["dlpipe", *args])
        return to_config()


def write_idx(path: str, magic: int, array: np.ndarray) -> None:
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def fake_idx_dir(tmp_path_factory) -> str:
    """A valid Fashion-MNIST-shaped IDX folder: real counts, image i filled with its label i % 10."""
    folder = str(tmp_path_factory.mktemp("idx"))
    for images_file, labels_file, count in idx.FILES.values():
        labels = np.arange(count) % 10
        images = np.broadcast_to(labels[:, None, None] * 25, (count, 28, 28))
        write_idx(os.path.join(folder, images_file), idx.IMAGE_MAGIC, images)
        write_idx(os.path.join(folder, labels_file), idx.LABEL_MAGIC, labels)
    return folder


def make_image_dataset(num_train: int = 100, num_test: int = 40, shape=(28, 28, 1), classes: int = 10) -> DataSet:
    """Images whose pixels all equal 20 × their label; examples numbered by their label order."""
    def split(n):
        labels = np.arange(n, dtype=np.int64) % classes
        images = np.broadcast_to((labels * 20).astype(np.uint8).reshape(-1, 1, 1, 1), (n, *shape)).copy()
        return streamed(tf.data.Dataset.from_tensor_slices({"image": images, "label": labels}))
    return DataSet("fake", split(num_train), split(num_test), tuple(str(i) for i in range(classes)), source="memory")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs `python -m pipelines` with the given flags, as a user would."""
    return subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _console_script(args, run_main: bool) -> subprocess.CompletedProcess:
    import contextlib
    import io

    from absl import flags
    from absl.testing import flagsaver

    from pipelines import __main__ as entry
    from pipelines import flags as pipeline_flags
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    with flagsaver.flagsaver(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        flags.FLAGS.unparse_flags()
        try:
            argv = pipeline_flags.parse(["dlpipe", *args])
            if run_main:
                entry.main(argv)
        except SystemExit as e:
            code = e.code
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def parse_cli(*args: str) -> subprocess.CompletedProcess:
    """The console script's flag parsing (pipelines.flags.parse, which absl's app.run calls) on these flags, in this
    process: its exit code and what it printed. The global flag values are restored afterwards."""
    return _console_script(args, run_main=False)


def cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """The console script's whole path — flag parsing, then pipelines.__main__.main — in this process, without the
    seconds a new interpreter spends importing TensorFlow; run_cli starts a real one."""
    return _console_script(args, run_main=True)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """The CLI failed with a non-zero code and one `error:` line naming the problem, without a traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


REVIEW_WORDS = {"negative": ("dull", "slow", "boring", "weak"), "positive": ("great", "fun", "moving", "sharp")}
REVIEW_FILLER = ("the", "film", "was", "a", "plot", "and", "cast")


def write_reviews(root, per_class: int = 150) -> None:
    """A text folder (one subfolder per class) whose class is decided by its signal words."""
    rng = np.random.default_rng(0)
    for label, signal in REVIEW_WORDS.items():
        os.makedirs(os.path.join(root, label), exist_ok=True)
        for i in range(per_class):
            text = " ".join(rng.choice(REVIEW_FILLER + signal, size=10))
            with open(os.path.join(root, label, f"{i:03d}.txt"), "w") as f:
                f.write(f"{text} {rng.choice(signal)}.")


def write_tiny_preset(path, seed: int = 0) -> list[str]:
    """A KerasHub preset folder, as save_to_preset writes one: a one-layer BERT and its WordPiece tokenizer over
    the reviews' words. What --init_from=<preset name> downloads has the same layout. Returns its vocabulary."""
    import keras
    import keras_hub
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *REVIEW_FILLER,
                  *(word for words in REVIEW_WORDS.values() for word in words), "##s"]
    keras.utils.set_random_seed(seed)
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(str(path))
    keras_hub.models.BertBackbone(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                                  intermediate_dim=32, max_sequence_length=64).save_to_preset(str(path))
    return vocabulary


def write_image_preset(path, image_size: int = 48, seed: int = 0) -> None:
    """A KerasHub image classifier preset folder, as save_to_preset writes one: a one-block ResNet (random
    weights) and its ImageConverter (resize to `image_size`, scale to 0..1). What --init_from=<preset name>
    downloads has the same layout."""
    import keras
    import keras_hub
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64], stackwise_num_blocks=[1],
        stackwise_num_strides=[1], block_type="basic_block", use_pre_activation=False, image_shape=(None, None, 3))
    converter = keras_hub.layers.ResNetImageConverter(image_size=(image_size, image_size), scale=1 / 255.0)
    keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=2,
        preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter),
    ).save_to_preset(str(path))


@pytest.fixture(scope="module")
def mediapipe_python():
    """MediaPipe's own venv (numpy<2, protobuf<5): `make test` builds it first; a bare pytest run builds it here."""
    python = os.path.join(ROOT, ".venv-mediapipe", "bin", "python")
    if not os.path.exists(python):
        subprocess.run(["make", "-C", str(ROOT), "mediapipe"], check=True, capture_output=True)
    return python
