"""Hugging Face Datasets in: `--dataset=hf:<path or name>`, a `datasets` Dataset or DatasetDict written with
`save_to_disk`, or a Hub data set already in the local Hugging Face cache (offline: one line when it is not).

The data set's features say what it is, and it is written once, a batch of rows at a time, into the layout the
package's own readers take, in the run's data cache; those readers then stream it as they stream any folder or
table (memory: a batch):

    an Image column and a ClassLabel      → <split>/<class name>/<row>.<png|jpg>   (a folder of images)
    a string Value column and a ClassLabel → <split>/<class name>/<row>.txt         (a folder of texts)
    anything else                         → train.parquet, the ClassLabel as its names (a table)

The data set's own train and test splits are kept (a "validation" split is the test split when there is no
"test"); without a test split the readers carve one (--test_split). What the data are is the data set's own
fingerprints, one per split (`datasets` changes them whenever the data change).
"""

import hashlib
import json
import os

from pipelines import artifacts
from pipelines.errors import PipelineError
from pipelines.upstream import datasets as upstream

PREFIX = "hf:"
BATCH = 1000           # rows converted at a time
COMPLETE = ".complete"  # written last: a half-written copy is rebuilt, never read


def is_hugging_face(name: str) -> bool:
    return name.startswith(PREFIX) and not name.startswith("hf://")  # hf:// names a KerasHub preset


def open_splits(name: str) -> dict:
    """split → datasets.Dataset, from a save_to_disk folder or the local cache; one line when neither has it."""
    import datasets
    where = name.removeprefix(PREFIX)
    try:
        if os.path.isdir(where):
            found = datasets.load_from_disk(where)
        else:
            with upstream.offline_unless_reachable():
                found = datasets.load_dataset(where)
    except FileNotFoundError as e:
        raise PipelineError(f"--dataset={name}: {where} is not a data set save_to_disk wrote "
                            f"({str(e).splitlines()[0][:160]}): give its folder") from None
    except Exception as e:  # offline and not cached, or no such data set: datasets raises assorted errors
        raise PipelineError(f"--dataset={name}: {where} is neither a folder save_to_disk wrote nor a data set in "
                            f"the local Hugging Face cache ({type(e).__name__}): load it once where the Hub is "
                            "reachable, or save_to_disk it and give the folder") from None
    return dict(found) if isinstance(found, datasets.DatasetDict) else {"train": found}


def fingerprint(name: str) -> str:
    return _fingerprint(open_splits(name))


def _fingerprint(splits: dict) -> str:
    """The splits' own fingerprints as one hash."""
    found = {split: upstream.fingerprint(data) for split, data in sorted(splits.items())}
    return hashlib.sha256(json.dumps(found).encode()).hexdigest()


def _label_column(features, label_column: str | None) -> str:
    import datasets
    if label_column:
        if label_column not in features:
            raise PipelineError(f"--label_column={label_column}: the data set has no such column (its columns: "
                                f"{', '.join(features)})")
        return label_column
    labels = [c for c, f in features.items() if isinstance(f, datasets.ClassLabel)]
    if len(labels) != 1:
        raise PipelineError(f"--label_column is required: the data set's columns are {', '.join(features)} "
                            "(a single ClassLabel column would be taken as the label)")
    return labels[0]


def kind_of(features, label: str) -> str:
    """What the data set holds: images, texts or a table, from its features."""
    import datasets
    others = {c: f for c, f in features.items() if c != label}
    if isinstance(features[label], datasets.ClassLabel) and len(others) == 1:
        (feature,) = others.values()
        if isinstance(feature, datasets.Image):
            return "image"
        if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
            return "text"
    return "table"


def prepare(name: str, label_column: str | None, cache_dir: str) -> tuple[str, str, str]:
    """The data set written once into `cache_dir` as a folder or a Parquet file; returns (what the package's reader
    reads, its kind, the label column)."""
    splits = open_splits(name)
    features = next(iter(splits.values())).features
    label = _label_column(features, label_column)
    kind = kind_of(features, label)
    root = os.path.join(cache_dir, f"hf-{_fingerprint(splits)[:16]}-{kind}")
    target = root if kind != "table" else os.path.join(root, "train.parquet")
    if os.path.exists(os.path.join(root, COMPLETE)):
        return target, kind, label
    artifacts.remove(root)
    os.makedirs(root)
    test = "test" if "test" in splits else "validation" if "validation" in splits else None
    if kind == "table":
        _write_table(splits["train"], label, target)
    elif test:  # the folder reader's layout for a given test split: train/<class>/, test/<class>/
        for split, folder in (("train", "train"), (test, "test")):
            _write_folder(splits[split], label, kind, os.path.join(root, folder))
    else:  # one split: <class>/, and the reader carves the test split
        _write_folder(splits["train"], label, kind, root)
    open(os.path.join(root, COMPLETE), "w").close()
    return target, kind, label


def _write_folder(data, label: str, kind: str, folder: str) -> None:
    import datasets
    names = data.features[label].names
    (column,) = [c for c in data.column_names if c != label]
    if kind == "image":
        data = data.cast_column(column, datasets.Image(decode=False))  # the file's own bytes, not decoded pixels
    for name in names:
        os.makedirs(os.path.join(folder, name.replace(os.sep, "_")), exist_ok=True)
    for start in range(0, len(data), BATCH):
        batch = data[start:start + BATCH]
        for i, (value, y) in enumerate(zip(batch[column], batch[label]), start):
            where = os.path.join(folder, names[y].replace(os.sep, "_"), f"{i:07d}")
            if kind == "text":
                with open(f"{where}.txt", "w", encoding="utf-8") as f:
                    f.write(value)
            else:
                content = value["bytes"] if value.get("bytes") else open(value["path"], "rb").read()
                with open(where + (".jpg" if content[:2] == b"\xff\xd8" else ".png"), "wb") as f:
                    f.write(content)


def _write_table(data, label: str, path: str) -> None:
    """The split as Parquet, a ClassLabel column as its class names, BATCH rows a row group."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    names = data.features[label].names if isinstance(data.features[label], datasets.ClassLabel) else None
    writer = None
    try:
        for batch in data.data.to_batches(max_chunksize=BATCH):
            table = pa.Table.from_batches([batch])
            if names is not None:
                table = table.set_column(table.column_names.index(label), label,
                                         pa.array([names[v] if v is not None else None
                                                   for v in table.column(label).to_pylist()]))
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
