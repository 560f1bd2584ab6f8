"""A trained model.keras read as it was recorded: the file is read once, and its bytes are what is hashed and what
is loaded, so a model replaced meanwhile (another run, a copy) is refused instead of used under this run's name."""

import hashlib
import os
import tempfile

import keras

from models import pretrained
from pipelines.errors import PipelineError


def load(path: str, expected_sha256: str | None = None) -> tuple[keras.Model, str]:
    """The model at `path`, uncompiled, and its bytes' SHA-256; one line naming the stage to re-run when the file is
    missing, damaged, or not the one expected."""
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError as e:
        raise PipelineError(f"cannot read {path} ({e.strerror}): run --stages=train again") from None
    sha256 = hashlib.sha256(content).hexdigest()
    if expected_sha256 and expected_sha256 != sha256:
        raise PipelineError(f"{path} was replaced while this run read it (another run or a copy wrote it), or is "
                            "not the model its train stage recorded: nothing was written from it; run the command "
                            "again, or --stages=train again")
    with tempfile.TemporaryDirectory(prefix="dlpipe-model-") as private:
        copy = os.path.join(private, os.path.basename(path))
        with open(copy, "wb") as f:
            f.write(content)
        try:
            return pretrained.load_model(copy), sha256
        except Exception as e:  # Keras raises ValueError, OSError, zipfile errors … for a damaged file
            raise PipelineError(f"cannot load {path} ({type(e).__name__}): it is damaged; run --stages=train "
                                "again") from None
