"""The prepared-example cache: a data set decoded or parsed once, kept on disk, read by every later epoch, run and
stage.

A folder's images are decoded and resized, a CSV's cells parsed, once; the examples go to TFRecord shards (the
format TFDS prepares into, read by tf.data's C++ reader in parallel, with a CRC per record), each split in shards
of about SHARD_BYTES, under `<cache dir>/<key>/`, where the key hashes everything that changes the bytes (the
data's hash, the image size and colour, the reading rule's version; a CSV's hash is of its bytes, a folder's of
each file's size, modification and change times and file number, folders.file_identity, which no rewrite keeps).
`manifest.json`, written last, lists the schema and every shard with its example count, size and SHA-256, and
`manifest.sha256` beside it holds the manifest's own SHA-256: a cache without them, whose manifest differs from its
hash (a count or a shape edited) or whose shards differ from the manifest (truncated, edited), is damaged: it is
rebuilt, and said so in one line. Opening a cache reads every shard once to hash it. A cache is written under a
temporary name and renamed into place whole, with a lock held per key, so a second process waits for the first and
then reads what it wrote, never half of it.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import shutil
from typing import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf

from pipelines.artifacts import file_sha256
from pipelines.errors import PipelineError

MANIFEST = "manifest.json"
MANIFEST_SHA256 = "manifest.sha256"  # the manifest's own hash, written after it
SHARD_BYTES = 32 << 20  # a shard's target size: big enough to read fast, small enough to shuffle and split by
MAX_SHARD_EXAMPLES = 8192


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of every example: a fixed-shape tensor (its dtype a NumPy name) or a string."""
    dtype: str            # uint8, int64, float32, string
    shape: tuple[int, ...] = ()

    def encode(self, value) -> tf.train.Feature:
        if self.dtype == "uint8":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[np.asarray(value, np.uint8).tobytes()]))
        if self.dtype == "string":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value if isinstance(value, bytes)
                                                                         else str(value).encode()]))
        flat = np.asarray(value).reshape(-1)
        if self.dtype == "int64":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=flat.astype(np.int64)))
        return tf.train.Feature(float_list=tf.train.FloatList(value=flat.astype(np.float32)))

    def parse_spec(self):
        if self.dtype in ("uint8", "string"):
            return tf.io.FixedLenFeature([], tf.string)
        return tf.io.FixedLenFeature(self.shape, tf.int64 if self.dtype == "int64" else tf.float32)

    def decoded(self, value: tf.Tensor) -> tf.Tensor:
        if self.dtype == "uint8":
            return tf.reshape(tf.io.decode_raw(value, tf.uint8), self.shape)
        return value

    @property
    def nbytes(self) -> int:
        """Bytes of one value in memory (a string's: a guess of a short text)."""
        size = {"uint8": 1, "int64": 8, "float32": 4, "string": 256}[self.dtype]
        return size * int(np.prod(self.shape)) if self.shape else size


Schema = dict[str, Feature]


@dataclasses.dataclass(frozen=True)
class Shard:
    path: str
    count: int


@dataclasses.dataclass(frozen=True)
class Split:
    """One split's examples on disk: its shards in order and the schema of every example."""
    shards: tuple[Shard, ...]
    schema: Schema

    @property
    def count(self) -> int:
        return sum(s.count for s in self.shards)

    def pieces(self, start: int, stop: int) -> list[tuple[str, int, int]]:
        """(shard path, examples to skip, examples to take) covering examples [start, stop) in order."""
        pieces, offset = [], 0
        for shard in self.shards:
            low, high = max(start, offset), min(stop, offset + shard.count)
            if low < high:
                pieces.append((shard.path, low - offset, high - low))
            offset += shard.count
        return pieces

    def read(self, start: int = 0, stop: int | None = None, shuffle_seed: int | None = None,
             worker: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
        """Examples [start, stop) as feature dicts: in order, or with `shuffle_seed` from the pieces in a new order
        each pass, several read at once (the order then also depends on which is read faster: a bounded shuffle
        buffer after it mixes the examples). `worker` (index, count): this worker's share of the pieces only."""
        pieces = self.pieces(start, self.count if stop is None else stop)
        if worker[1] > 1:  # pieces small enough that every worker gets its share, even of a one-shard split
            most = math.ceil(sum(take for _, _, take in pieces) / (4 * worker[1]))
            pieces = _finer(pieces, most)[worker[0]::worker[1]]
        if not pieces:
            return tf.data.Dataset.from_tensors(self._empty()).take(0)
        paths, skips, takes = (list(column) for column in zip(*pieces))
        ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(skips, tf.int64), tf.constant(takes, tf.int64)))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(pieces), seed=shuffle_seed, reshuffle_each_iteration=True)
        records = ds.interleave(lambda path, skip, take: tf.data.TFRecordDataset(path).skip(skip).take(take),
                                cycle_length=min(8, len(pieces)) if shuffle_seed is not None else 1,
                                num_parallel_calls=tf.data.AUTOTUNE, deterministic=shuffle_seed is None)
        specs = {name: feature.parse_spec() for name, feature in self.schema.items()}
        schema = self.schema

        def parse(record):
            parsed = tf.io.parse_single_example(record, specs)
            return {name: feature.decoded(parsed[name]) for name, feature in schema.items()}
        # The count stated: Keras reads a split of unknown length as endless, and would not start it again each epoch.
        records = records.apply(tf.data.experimental.assert_cardinality(sum(takes)))
        return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)

    def _empty(self) -> dict:
        return {name: tf.zeros(f.shape, tf.string if f.dtype == "string" else f.dtype)
                for name, f in self.schema.items()}


def _finer(pieces: list[tuple[str, int, int]], most: int) -> list[tuple[str, int, int]]:
    """The same examples in pieces of at most `most` examples each."""
    return [(path, skip + begin, min(most, take - begin)) for path, skip, take in pieces
            for begin in range(0, take, max(1, most))]


class ShardWriter:
    """Examples into each split's TFRecord shards, in the order they come."""

    def __init__(self, folder: str, schema: Schema):
        self.folder, self.schema = folder, schema
        self.per_shard = max(1, min(MAX_SHARD_EXAMPLES, SHARD_BYTES // max(1, sum(f.nbytes for f in schema.values()))))
        self.shards: dict[str, list[dict]] = {}
        self._open: dict[str, tuple] = {}  # split → (writer, examples in its current shard)

    def add(self, split: str, example: dict) -> None:
        writer, count = self._open.get(split, (None, 0))
        if writer is None or count == self.per_shard:
            if writer is not None:
                self._close(split)
            shards = self.shards.setdefault(split, [])
            shards.append({"file": f"{split}-{len(shards):05d}.tfrecord"})
            writer, count = tf.io.TFRecordWriter(os.path.join(self.folder, shards[-1]["file"])), 0
        features = {name: feature.encode(example[name]) for name, feature in self.schema.items()}
        writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
        self._open[split] = (writer, count + 1)

    def _close(self, split: str) -> None:
        writer, count = self._open.pop(split)
        writer.close()
        shard = self.shards[split][-1]
        path = os.path.join(self.folder, shard["file"])
        shard.update(count=count, bytes=os.path.getsize(path), sha256=file_sha256(path))

    def close(self, splits: Iterable[str]) -> dict:
        for split in list(self._open):
            self._close(split)
        return {split: {"shards": self.shards.get(split, [])} for split in splits}


class _Damaged(Exception):
    """What is wrong with a cache folder: said in the note that it is prepared again."""


def _manifest(folder: str) -> dict:
    """The manifest, when its bytes are the ones written: their SHA-256 is the one in MANIFEST_SHA256."""
    try:
        with open(os.path.join(folder, MANIFEST), "rb") as f:
            text = f.read()
        with open(os.path.join(folder, MANIFEST_SHA256)) as f:
            written = f.read().strip()
    except OSError as e:
        raise _Damaged(f"{os.path.basename(e.filename or MANIFEST)} is missing or unreadable") from None
    # The shards' hashes do not cover the counts and shapes they are read by: an edited count read fewer examples or
    # failed in TensorFlow mid-epoch, an edited shape read the bytes wrongly or failed. The manifest's hash covers them.
    if hashlib.sha256(text).hexdigest() != written:
        raise _Damaged(f"{MANIFEST} is not the file written (its SHA-256 differs)")
    try:
        return json.loads(text)
    except ValueError:
        raise _Damaged(f"{MANIFEST} is unreadable") from None


def _opened(folder: str, manifest: dict) -> tuple[dict[str, Split], dict]:
    """The splits and info a manifest describes."""
    try:
        schema = {name: Feature(f["dtype"], tuple(f["shape"])) for name, f in manifest["schema"].items()}
        splits = {name: Split(tuple(Shard(os.path.join(folder, s["file"]), s["count"]) for s in split["shards"]),
                              schema) for name, split in manifest["splits"].items()}
    except (KeyError, TypeError, AttributeError, ValueError):
        raise _Damaged(f"{MANIFEST} is not a cache's manifest") from None
    return splits, manifest.get("info", {})


def _checked(folder: str) -> tuple[dict[str, Split], dict]:
    """The splits and info of a cache folder whose manifest and shards are the ones written; _Damaged otherwise."""
    manifest = _manifest(folder)
    opened = _opened(folder, manifest)
    for shard in (s for split in manifest["splits"].values() for s in split["shards"]):
        try:
            problem = _shard_problem(folder, shard)
        except (KeyError, TypeError):
            problem = f"{MANIFEST} is not a cache's manifest"
        except OSError as e:
            problem = f"{shard['file']} is unreadable ({e.strerror})"
        if problem:
            raise _Damaged(problem)
    return opened


def _shard_problem(folder: str, shard: dict) -> str | None:
    """What is wrong with a shard: missing, or not the bytes the manifest recorded; None when it is whole."""
    path = os.path.join(folder, shard["file"])
    if not os.path.isfile(path):
        return f"{shard['file']} is missing"
    if os.path.getsize(path) != shard["bytes"]:
        return f"{shard['file']} is {os.path.getsize(path)} bytes, not the {shard['bytes']} written"
    if file_sha256(path) != shard["sha256"]:
        return f"{shard['file']} is not the file written (its SHA-256 differs)"
    return None


def _write_manifest(folder: str, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1).encode()
    with open(os.path.join(folder, MANIFEST), "wb") as f:
        f.write(text)
    with open(os.path.join(folder, MANIFEST_SHA256), "w") as f:
        f.write(hashlib.sha256(text).hexdigest() + "\n")


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive lock on `path` (a second process preparing the same key waits here)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# prepare(start) → (split names, info): it calls start(schema) once for a ShardWriter, adds every example to it, and
# returns the splits it wrote and an info dict kept in the manifest (what reading the data learned: class names,
# sizes, columns). It may raise PipelineError (a bad file): nothing is then kept.
Prepare = Callable[[Callable[[Schema], ShardWriter]], tuple[tuple[str, ...], dict]]


def prepared(cache_dir: str, key: str, prepare: Prepare, what: str) -> tuple[dict[str, Split], dict]:
    """The splits cached under `key`, written first by `prepare` if there are none or they are damaged."""
    folder = os.path.join(cache_dir, key)
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise PipelineError(f"cannot write the data cache in {cache_dir} ({e.strerror}): choose a writable "
                            "--cache_dir (or --output_dir)") from None
    with _locked(os.path.join(cache_dir, f".{key}.lock")):
        if os.path.isdir(folder):
            try:
                return _checked(folder)
            except _Damaged as problem:
                print(f"note: the cache of {what} in {folder} is damaged ({problem}): preparing it again", flush=True)
            shutil.rmtree(folder)
        tmp = f"{folder}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        writers = []

        def start(schema: Schema) -> ShardWriter:
            writers.append(ShardWriter(tmp, schema))
            return writers[-1]
        try:
            names, info = prepare(start)
            (writer,) = writers
            manifest = {"schema": {name: {"dtype": f.dtype, "shape": list(f.shape)}
                                   for name, f in writer.schema.items()},
                        "splits": writer.close(names), "info": info}
            _write_manifest(tmp, manifest)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return _opened(folder, _manifest(folder))
