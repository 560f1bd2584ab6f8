"""Bad input at the command line: one `error:` line naming the problem and the fix, a non-zero exit, no traceback.

Most go through the console script's own functions in this process (parse_cli: flag parsing; cli_in_process:
parsing, then main); the ones that need a process of their own (Ctrl-C and SIGTERM) and one flag error run
`python -m pipelines` as a user would.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, assert_one_line_error, cli_in_process, parse_cli, run_cli


def test_value_out_of_range():
    result = run_cli("--epochs=0")
    assert_one_line_error(result, "--epochs", "see --helpshort")
    assert result.returncode == 2


@pytest.mark.parametrize("args,fragments", [
    (["--task=perceptron"], ["--task", "dense"]),
    (["--flagfile=/nonexistent/nope.flags"], ["nope.flags"]),
    (["--dataset=coco"], ["--dataset", "fashion_mnist"]),
    (["--stages=train,deploy"], ["--stages", "tune,train,evaluate,export,verify"]),
    (["--stages=export,train"], ["in that order"]),
    (["--task=conv", "--dataset=imdb_reviews"], ["does not fit this --task", "conv takes fashion_mnist,mnist,cifar10"]),
    (["--task=dense", "--cell=gru"], ["does not apply to this --task", "recurrent takes --cell"]),
    (["--tflite_variants=float32,int4"], ["--tflite_variants"]),
    (["--hparams_file=/nonexistent/best.json"], ["--hparams_file does not exist"]),
    (["--validation_split=nan"], ["--validation_split must be a finite number"]),
    (["--dropout=nan"], ["--dropout must be a finite number"]),
    (["--hidden_units=100000000"], ["--hidden_units", "integers from 1 to 16384"]),
])
def test_a_flag_value_rejected_at_parse_time(args, fragments):
    result = parse_cli(*args)
    assert_one_line_error(result, *fragments)
    assert result.returncode == 2


def test_stray_argument():
    assert_one_line_error(cli_in_process("epochs=3"), "epochs=3", "--name=value")


def test_export_with_no_trained_model(tmp_path):
    assert_one_line_error(cli_in_process(f"--output_dir={tmp_path}", "--stages=export"),
                          "needs model.keras", "--stages=train")


def test_output_dir_not_writable(tmp_path):
    (tmp_path / "file").write_text("")
    assert_one_line_error(cli_in_process(f"--output_dir={tmp_path}/file/runs", "--stages=train"),
                          "cannot write to output dir", "--output_dir")


def test_corrupt_data_file_names_the_file(tmp_path, fake_idx_dir):
    folder = tmp_path / "idx"
    shutil.copytree(fake_idx_dir, folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    result = cli_in_process(f"--output_dir={tmp_path}/runs", f"--idx_dir={folder}", "--stages=train")
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "apt-get install dataset-fashion-mnist")


def test_hparams_file_with_keys_the_task_does_not_take(tmp_path):
    (tmp_path / "best.json").write_text('{"hparams": {"cell": "gru"}, "learning_rate": 0.01}')
    result = cli_in_process(f"--hparams_file={tmp_path}/best.json", f"--output_dir={tmp_path}/runs", "--stages=train")
    assert_one_line_error(result, "does not take: cell", "it takes hidden_units, dropout")


def test_verify_with_no_export(tmp_path):
    (tmp_path / "dense").mkdir()
    (tmp_path / "dense" / "model.keras").write_text("")
    (tmp_path / "dense" / "config.json").write_text("{}")
    assert_one_line_error(cli_in_process(f"--output_dir={tmp_path}", "--stages=verify"),
                          "needs saved_model", "--stages=export")


def test_missing_data_file_names_it_and_the_debian_package(tmp_path, fake_idx_dir):
    folder = tmp_path / "idx"
    shutil.copytree(fake_idx_dir, folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    result = cli_in_process(f"--output_dir={tmp_path}/runs", f"--idx_dir={folder}", "--stages=train")
    assert_one_line_error(result, "missing data file", "t10k-labels-idx1-ubyte.gz", "dataset-fashion-mnist")


def test_truncated_data_file_names_it(tmp_path, fake_idx_dir):
    folder = tmp_path / "idx"
    shutil.copytree(fake_idx_dir, folder)
    labels = folder / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-100])
    result = cli_in_process(f"--output_dir={tmp_path}/runs", f"--idx_dir={folder}", "--stages=train")
    assert_one_line_error(result, "corrupt data file", "train-labels-idx1-ubyte.gz")


@pytest.mark.parametrize("objective,fragment", [
    ("val_fooness", "KerasTuner cannot tell whether to minimize or maximize it"),  # refused before any trial
    ("val_auc", "is not a metric the trials log"),  # a known metric the task does not log: after one epoch
])
def test_an_objective_no_trial_reports(tmp_path, objective, fragment):
    result = cli_in_process(f"--output_dir={tmp_path}", "--stages=tune", f"--objective={objective}",
                            "--tuner=random", "--max_trials=2", "--tuning_epochs=1", "--max_train_examples=300",
                            "--max_test_examples=50")
    assert_one_line_error(result, f"--objective={objective}", fragment, "val_accuracy")


@pytest.mark.parametrize("stage", ["train", "tune"])
def test_more_conv_blocks_than_the_image_can_halve(tmp_path, stage):
    result = cli_in_process(f"--output_dir={tmp_path}", "--task=conv", "--conv_filters=8,8,8,8,8",
                            f"--stages={stage}", "--max_train_examples=300", "--max_test_examples=50")
    assert_one_line_error(result, "cannot build the conv model from --conv_filters", "at most 4 widths")


QUICK = ("--max_train_examples=300", "--max_test_examples=200", "--epochs=1", "--tflite_variants=float32",
         "--noonnx")


@pytest.mark.parametrize("args,fragments", [
    (["--max_train_examples=1", "--stages=train"], ["1 train examples", "leave none to train on", "at least 2"]),
    (["--task=gan", "--generator_widths=64,32,16", "--stages=train"],
     ["cannot build the gan model from --generator_widths", "takes 2 stride-2 blocks", "give at most 2"]),
])
def test_inputs_that_once_ended_in_a_traceback(tmp_path, args, fragments):
    assert_one_line_error(cli_in_process(f"--output_dir={tmp_path}", "--max_test_examples=200", *args), *fragments)


def test_an_idx_dir_typo_is_named_at_once_instead_of_a_download(tmp_path):
    start = time.perf_counter()
    result = cli_in_process(f"--output_dir={tmp_path}", f"--idx_dir={tmp_path}/fashon-mnist", "--stages=train")
    assert_one_line_error(result, f"--idx_dir={tmp_path}/fashon-mnist is not a folder")
    assert time.perf_counter() - start < 60  # no download attempt (it took 3½ minutes)


def test_a_second_run_in_the_same_folder_fails_at_once_naming_the_first(tmp_path):
    from pipelines.artifacts import TaskLock
    (tmp_path / "dense").mkdir()
    with TaskLock(str(tmp_path / "dense")):  # this test process is the first run; flock locks conflict in one process
        result = cli_in_process(f"--output_dir={tmp_path}", *QUICK)
    assert_one_line_error(result, "is in use by another dlpipe run", f"pid {os.getpid()}", "--output_dir")
    assert not (tmp_path / "dense" / "model.keras").exists()


@pytest.mark.parametrize("stop,code,said", [(signal.SIGINT, 130, "interrupted"),
                                            (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_ctrl_c_and_sigterm_are_one_line_saying_how_to_resume(tmp_path, stop, code, said):
    # As from a terminal: a shell that starts the suite in the background hands its children SIGINT ignored, and
    # Python then leaves it ignored.
    process = subprocess.Popen([sys.executable, "-m", "pipelines", f"--output_dir={tmp_path}", "--stages=train",
                                "--max_train_examples=20000", "--epochs=5"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoints = tmp_path / "dense" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not checkpoints.exists():
        time.sleep(0.05)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == code
    assert_one_line_error(result, said, "the same command resumes")
