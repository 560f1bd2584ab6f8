"""Training killed with SIGKILL mid-run continues from the last completed epoch when the same command is re-run,
and starts over, saying so, when the command changed."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, cli_in_process


def test_killed_training_resumes_from_the_last_completed_epoch_and_a_changed_command_starts_over(tmp_path):
    args = ["--task=dense", "--stages=train", "--epochs=4", "--max_train_examples=10000", "--batch_size=16",
            f"--output_dir={tmp_path}"]
    log = tmp_path / "killed.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "pipelines", *args], cwd=ROOT, stdout=output,
                                   stderr=subprocess.STDOUT)
        checkpoints = tmp_path / "dense" / "checkpoints"
        deadline = time.time() + 300
        while (time.time() < deadline and process.poll() is None
               and not (checkpoints / "epoch_002.weights.h5").exists()):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # in epoch 3, before its end
        process.wait(30)
    done = sorted(p.name for p in checkpoints.iterdir()) if checkpoints.exists() else []
    assert done[:2] == ["epoch_001.weights.h5", "epoch_002.weights.h5"] and len(done) < 4, log.read_text()[-2000:]
    assert not (tmp_path / "dense" / "model.keras").exists()
    first = (checkpoints / "epoch_001.weights.h5").stat().st_mtime_ns

    # The same folder, as the kill left it, re-run with another learning rate: the old state is not continued.
    changed_dir = tmp_path / "changed"
    shutil.copytree(tmp_path / "dense", changed_dir / "dense")
    changed = cli_in_process(*args[:-1], "--epochs=2", "--learning_rate=0.002", f"--output_dir={changed_dir}")
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "starting training over: the interrupted run in" in changed.stdout
    assert "--epochs 4 → 2, --learning_rate 0.003 → 0.002" in changed.stdout
    assert re.findall(r"^Epoch (\d+)/2", changed.stdout, flags=re.M) == ["1", "2"]
    assert sorted(p.name for p in (changed_dir / "dense" / "checkpoints").iterdir()) == [
        "epoch_001.weights.h5", "epoch_002.weights.h5"]  # the killed run's epochs are gone with its state

    result = cli_in_process(*args)  # Keras' "Epoch n/N" lines land in the captured stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming the interrupted training after epoch" in result.stdout
    epochs_run = [int(n) for n in re.findall(r"^Epoch (\d+)/4", result.stdout, flags=re.M)]
    assert epochs_run == list(range(len(done) + 1, 5))  # only the epochs the killed run had not finished
    assert sorted(p.name for p in checkpoints.iterdir()) == [f"epoch_00{i}.weights.h5" for i in range(1, 5)]
    assert (checkpoints / "epoch_001.weights.h5").stat().st_mtime_ns == first
    assert (tmp_path / "dense" / "model.keras").exists()
    assert not (tmp_path / "dense" / "backup").exists()  # BackupAndRestore clears its state once training ends
    assert len(json.loads((tmp_path / "dense" / "history.json").read_text())["loss"]) == 4  # every epoch's curve
