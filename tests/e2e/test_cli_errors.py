"""Bad input at the command line: one `error:` line naming the problem and the fix, a non-zero exit, no traceback."""

import shutil

from tests.conftest import assert_one_line_error, run_cli


def test_value_out_of_range():
    assert_one_line_error(run_cli("--epochs=0"), "--epochs", "see --helpshort")


def test_unknown_task():
    assert_one_line_error(run_cli("--task=transformer"), "--task", "dense")


def test_flagfile_that_does_not_exist(tmp_path):
    assert_one_line_error(run_cli(f"--flagfile={tmp_path}/nope.flags"), "nope.flags")


def test_stray_argument():
    assert_one_line_error(run_cli("epochs=3"), "epochs=3", "--name=value")


def test_export_with_no_trained_model(tmp_path):
    assert_one_line_error(run_cli(f"--output_dir={tmp_path}", "--stages=export"),
                          "needs model.keras", "--stages=train")


def test_output_dir_not_writable(tmp_path):
    (tmp_path / "file").write_text("")
    assert_one_line_error(run_cli(f"--output_dir={tmp_path}/file/runs", "--stages=train"),
                          "cannot write to output dir", "--output_dir")


def test_corrupt_data_file_names_the_file(tmp_path, fake_idx_dir):
    folder = tmp_path / "idx"
    shutil.copytree(fake_idx_dir, folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    result = run_cli(f"--output_dir={tmp_path}/runs", f"--idx_dir={folder}", "--stages=train")
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "apt-get install dataset-fashion-mnist")
