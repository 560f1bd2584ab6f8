"""A plain install, as a user gets it: a wheel built from the repository's files alone (no make step, no flatc), put
in a fresh virtualenv, runs the dense pipeline through verify from a folder outside the repository."""

import glob
import json
import os
import shutil
import site
import subprocess
import sys

import pytest

from tests.conftest import REAL_IDX_DIR, ROOT


def _tracked_files(destination) -> None:
    """The repository as a fresh clone of this working tree would hold it: its tracked and untracked-but-not-ignored
    files, none of what a set-up or an earlier build left (build/, *.egg-info, .venv)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = os.path.join(ROOT, name)
        if os.path.isfile(source):
            os.makedirs(os.path.join(destination, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(source, os.path.join(destination, name))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the repository's files")
    clone, dist = tmp_path_factory.mktemp("clone"), tmp_path_factory.mktemp("dist")
    _tracked_files(clone)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(clone)], check=True, capture_output=True)
    (path,) = glob.glob(str(dist / "dlpipe-*.whl"))
    return path


def test_a_wheel_holds_the_metadata_code_and_no_test_or_benchmark_code(wheel):
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipelines/metadata/generated/metadata_schema_generated.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]


def test_a_wheel_in_a_fresh_venv_trains_exports_and_verifies(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", wheel], check=True, capture_output=True)
    # The dependencies are this environment's (installing TensorFlow again would cost minutes and a download):
    # its site-packages joins the new venv's path as a plain entry, so its editable install of dlpipe is not seen.
    (fresh_site,) = glob.glob(str(venv / "lib" / "python3.*" / "site-packages"))
    with open(os.path.join(fresh_site, "dependencies.pth"), "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")
    where = tmp_path / "elsewhere"
    where.mkdir()
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pipelines, sys; print(pipelines.__file__)"],
        cwd=where, capture_output=True, text=True, check=True)
    assert result.stdout.startswith(fresh_site), result.stdout  # the wheel's copy, not the repository's
    result = subprocess.run([str(venv / "bin" / "dlpipe"), "--task=dense", "--epochs=1", "--max_train_examples=2000",
                             "--max_test_examples=300", f"--idx_dir={REAL_IDX_DIR}", "--output_dir=runs"],
                            cwd=where, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((where / "runs" / "dense" / "export_report.json").read_text())
    assert report["passed"] and {"float32", "int8", "onnx"} <= set(report["exports"])
