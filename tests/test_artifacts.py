import os

import pytest

from pipelines import artifacts


def test_write_json_replaces_the_file_whole(tmp_path):
    path = str(tmp_path / "metrics.json")
    artifacts.write_json(path, {"a": 1})
    artifacts.write_json(path, {"a": 2})
    assert artifacts.read_json(path) == {"a": 2}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = str(tmp_path / "model.tflite")
    with open(path, "wb") as f:
        f.write(b"good")
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(b"half")
            raise RuntimeError("converter crashed")
    assert open(path, "rb").read() == b"good"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_a_folder_artifact_is_swapped_whole(tmp_path):
    path = str(tmp_path / "saved_model")
    for version in ("old", "new"):
        with artifacts.atomic_path(path) as tmp:
            os.makedirs(tmp)
            open(os.path.join(tmp, version), "w").close()
    assert os.listdir(path) == ["new"]
    assert os.listdir(tmp_path) == ["saved_model"]
