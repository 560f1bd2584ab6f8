"""A disk that fills: training and export stop with one line naming the full disk (training once ended in a
segfault inside h5py, export was reported as out of memory), and what was written before stays."""

import subprocess

import pytest

from pipelines import artifacts
from tests.conftest import REAL_IDX_DIR, assert_one_line_error, cli_in_process, run_cli

QUICK = ("--task=dense", "--max_train_examples=600", "--max_test_examples=200", "--epochs=1", "--noonnx",
         f"--idx_dir={REAL_IDX_DIR}", "--tflite_variants=float32")


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MB file system of its own (tmpfs), so the test fills it and nothing else."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48M", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk, leave_mb: float) -> None:
    free = artifacts.free_bytes(str(disk))
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - int(leave_mb * 2**20)))


def test_training_on_a_disk_too_small_for_its_backups_is_one_line(small_disk):
    # 784 → 1024 → 1024 → 10: 7.4 MB of weights, 22 MB with Adam's moments; a backup and a checkpoint do not fit
    result = run_cli(*QUICK, "--hidden_units=1024,1024", f"--output_dir={small_disk}", "--stages=train")
    assert_one_line_error(result, f"the disk holding {small_disk}/dense is full", "backing up epoch 1",
                          "free disk space or choose another --output_dir")
    assert result.returncode == 1  # not a crash (139)


def test_export_on_a_full_disk_is_one_line_and_the_earlier_export_stays(small_disk):
    setup = cli_in_process(*QUICK, "--hidden_units=16", f"--output_dir={small_disk}", "--stages=train,export")
    assert setup.returncode == 0, setup.stderr[-2000:]
    saved = artifacts.content_hash(str(small_disk / "dense" / "saved_model"))
    fill(small_disk, leave_mb=2)
    result = cli_in_process(*QUICK, "--hidden_units=16", f"--output_dir={small_disk}", "--stages=export", "--force")
    assert_one_line_error(result, f"the disk holding {small_disk}/dense is full", "exporting the model")
    assert artifacts.content_hash(str(small_disk / "dense" / "saved_model")) == saved
