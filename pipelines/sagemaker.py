"""The SageMaker layout, in one place: what export packs (`--sagemaker`), what verify unpacks and runs, and what
`dlpipe-serve --sagemaker` loads.

    model.tar.gz
        1/saved_model.pb, 1/variables/…   the SavedModel, under a version number (SageMaker's TensorFlow Serving
                                          container serves <version>/ of what it unpacks into /opt/ml/model)
        labels.txt                        a classifier's class names (ignored by that container; read by ours)

docs/deploy.md has the steps: upload the archive to S3, create a model from it with the TensorFlow Serving image
(or the Dockerfile there, which runs `dlpipe-serve --sagemaker`), deploy an endpoint.
"""

import io
import os
import tarfile

from pipelines.errors import PipelineError

ARCHIVE = "model.tar.gz"
VERSION = "1"
LABELS = "labels.txt"


def archive(saved_model_dir: str, labels: str | None) -> bytes:
    """The SavedModel under VERSION/ (and the labels at the top), as gzip-compressed tar bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(saved_model_dir, arcname=VERSION)
        if labels is not None:
            data = labels.encode()
            info = tarfile.TarInfo(LABELS)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack(path: str, into: str) -> str:
    """The archive at `path` unpacked into the folder `into` (only regular files and folders inside it: no links,
    no path that leaves it); returns `into`. A damaged archive is one line."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(into, filter="data")
    except (OSError, tarfile.TarError) as e:
        raise PipelineError(f"cannot unpack {path} ({e}): export it again (--sagemaker)") from None
    return into


def saved_model_in(model_dir: str) -> tuple[str, str | None]:
    """The SavedModel a SageMaker container would serve from `model_dir` (what it unpacked model.tar.gz into: the
    highest numbered version folder; or a dlpipe task folder's saved_model/, or a SavedModel itself), and the
    labels file beside it, if any; one line naming what is there otherwise."""
    def labels(folder):
        path = os.path.join(folder, LABELS)
        return path if os.path.isfile(path) else None
    if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        return model_dir, labels(model_dir)
    if os.path.isfile(os.path.join(model_dir, "saved_model", "saved_model.pb")):
        return os.path.join(model_dir, "saved_model"), labels(model_dir)
    versions = sorted((int(name) for name in (os.listdir(model_dir) if os.path.isdir(model_dir) else [])
                       if name.isdigit() and os.path.isfile(os.path.join(model_dir, name, "saved_model.pb"))))
    if versions:
        return os.path.join(model_dir, str(versions[-1])), labels(model_dir)
    raise PipelineError(f"--model_dir={model_dir} holds no SavedModel: give the folder {ARCHIVE} was unpacked into "
                        "(it holds 1/saved_model.pb), or a dlpipe task folder")
