"""Offline Fashion-MNIST from the four IDX `.gz` files of Debian's `dataset-fashion-mnist`.

TFDS checks downloads by checksum, and Debian's gzip bytes differ from the registered ones (same content,
other compression), so these files are validated by content instead: magic number, dimensions, counts, labels.
"""

import gzip
import os
import zlib

import numpy as np

from pipelines.config import RunConfig
from pipelines.errors import PipelineError

DEFAULT_IDX_DIR = RunConfig.idx_dir  # where Debian's dataset-fashion-mnist puts them
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
IMAGE_SIZE, NUM_CLASSES = 28, 10
HOW_TO_GET = ("install it with `apt-get install dataset-fashion-mnist`, point --idx_dir at a folder with the "
              "four files, or use --data_source=tfds with network")


def _read_idx(path: str, magic: int, dims: tuple[int, ...]) -> np.ndarray:
    """Reads one gzipped IDX file of unsigned bytes and checks its header against `magic` and `dims`."""
    if not os.path.isfile(path):
        raise PipelineError(f"missing data file {path}: {HOW_TO_GET}")
    header_size = 4 * (1 + len(dims))
    expected = header_size + int(np.prod(dims))
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(expected + 1)  # no more: a file that inflates past its size is not the data set
    except (OSError, EOFError, zlib.error) as e:
        raise PipelineError(f"corrupt data file {path} ({e}): {HOW_TO_GET}") from None
    if len(raw) < header_size:
        raise PipelineError(f"corrupt data file {path} (too short for an IDX header): {HOW_TO_GET}")
    header = np.frombuffer(raw[:header_size], dtype=">u4")
    if header[0] != magic:
        raise PipelineError(f"corrupt data file {path} (IDX magic {header[0]}, expected {magic}): {HOW_TO_GET}")
    if tuple(header[1:]) != dims:
        raise PipelineError(
            f"corrupt data file {path} (shape {tuple(int(d) for d in header[1:])}, expected {dims}): {HOW_TO_GET}")
    body = raw[header_size:]
    if len(body) != int(np.prod(dims)):
        raise PipelineError(
            f"corrupt data file {path} ({len(body)} data bytes, expected {int(np.prod(dims))}): {HOW_TO_GET}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load_idx_split(idx_dir: str, split: str) -> dict[str, np.ndarray]:
    """Returns one split as TFDS-shaped features: `image` uint8 [N, 28, 28, 1] and `label` int64 [N]."""
    images_file, labels_file, count = FILES[split]
    images = _read_idx(os.path.join(idx_dir, images_file), IMAGE_MAGIC, (count, IMAGE_SIZE, IMAGE_SIZE))
    labels_path = os.path.join(idx_dir, labels_file)
    labels = _read_idx(labels_path, LABEL_MAGIC, (count,))
    if labels.max() >= NUM_CLASSES:
        raise PipelineError(
            f"corrupt data file {labels_path} (label {labels.max()} outside 0..{NUM_CLASSES - 1}): {HOW_TO_GET}")
    return {"image": images[..., np.newaxis], "label": labels.astype(np.int64)}
