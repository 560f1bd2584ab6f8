"""--distribute: two real worker processes on 127.0.0.1 train one model (dense, conv), the chief alone owns the
artifacts, a killed worker fails the job cleanly and the same command resumes it, the GAN under mirrored on two
logical CPUs, and every bad cluster is one line."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import pytest

from pipelines import distribution
from pipelines.errors import PipelineError
from tests.conftest import ROOT, assert_one_line_error, free_ports, parse_cli

SMALL = ("--max_train_examples=1200", "--max_test_examples=200", "--noonnx", "--tflite_variants=float32")


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def start_workers(args, log_dir, ports) -> list[subprocess.Popen]:
    """The same command on every worker, each told its place by TF_CONFIG."""
    processes = []
    scratch = log_dir / "tmp"  # where a worker's scratch folder goes
    scratch.mkdir(exist_ok=True)
    for index in range(len(ports)):
        env = {**os.environ, "TF_CONFIG": tf_config(ports, index), "TMPDIR": str(scratch)}
        log = open(log_dir / f"worker{index}.log", "w")
        processes.append(subprocess.Popen([sys.executable, "-m", "pipelines", *args], cwd=ROOT, env=env,
                                          stdout=log, stderr=subprocess.STDOUT))
    return processes


def wait_all(processes, timeout=400) -> list[int]:
    deadline = time.time() + timeout
    codes = []
    for p in processes:
        try:
            codes.append(p.wait(max(1, deadline - time.time())))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes


def digests(log_dir, count) -> list[str]:
    return [re.findall(r"^worker \d: trained weights (\w+)$", (log_dir / f"worker{i}.log").read_text(), re.M)
            for i in range(count)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """1,200 Fashion-MNIST images as a folder of PNG files: read from the prepared cache's shards."""
    import numpy as np
    from PIL import Image

    from pipelines.data import idx
    from tests.conftest import REAL_IDX_DIR
    root = tmp_path_factory.mktemp("photos")
    train = idx.load_idx_split(REAL_IDX_DIR, "test")
    for i in range(1400):
        folder = root / f"class{train['label'][i]}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(train["image"][i, ..., 0])).save(folder / f"{i:05d}.png")
    return root


@pytest.mark.parametrize("task,flags", [("dense", ("--hidden_units=32", "photos")),
                                        ("conv", ("--conv_filters=8,16", "--dense_units=16"))])
def test_two_workers_train_one_model_and_only_the_chief_writes(tmp_path, photos, task, flags):
    """The dense case reads a folder: its prepared shards divided among the workers, and runs every stage; the conv
    case trains only."""
    out = tmp_path / "out"
    flags = [f"--dataset={photos}" if flag == "photos" else flag for flag in flags]
    stages = [] if task == "dense" else ["--stages=train"]
    args = [f"--task={task}", *SMALL, *flags, *stages, "--epochs=1", "--distribute=multi_worker",
            f"--output_dir={out}"]
    codes = wait_all(start_workers(args, tmp_path, free_ports(2)))
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    chief, worker = digests(tmp_path, 2)
    assert len(chief) == 1 and chief == worker  # both trained the same weights
    model = keras.models.load_model(out / task / "model.keras", compile=False)
    assert distribution.weights_digest(model) == chief[0]  # and the chief saved them
    assert "worker 1: trained beside the chief" in logs[1]
    if task == "dense":
        assert "1 exports passed" in logs[0] and "export_report.json" in os.listdir(out / task)
    # the worker wrote nothing beside the chief's folder and the data cache they shared …
    assert sorted(os.listdir(out)) == sorted([task] + (["cache"] if task == "dense" else []))
    assert "── [" in logs[0] and "── [" not in logs[1]  # stages ran on the chief only
    assert not [p for p in os.listdir(tmp_path / "tmp") if p.startswith("dlpipe-worker-")]  # … nor kept its scratch


def test_a_killed_worker_fails_the_job_cleanly_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "out"
    args = ["--task=dense", "--max_train_examples=2000", "--batch_size=32", "--hidden_units=16", "--epochs=4",
            "--stages=train", "--distribute=multi_worker", f"--output_dir={out}"]
    ports = free_ports(2)
    processes = start_workers(args, tmp_path, ports)
    checkpoint = out / "dense" / "checkpoints" / "epoch_002.weights.h5"
    deadline = time.time() + 300
    while time.time() < deadline and not checkpoint.exists() and all(p.poll() is None for p in processes):
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)  # the worker dies in epoch 3
    killed = time.time()
    assert processes[0].wait(120) == 1
    assert time.time() - killed < 60  # the chief did not hang
    chief_log = (tmp_path / "worker0.log").read_text()
    errors = [line for line in chief_log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lost the cluster during training" in errors[0], chief_log[-3000:]
    assert "Traceback" not in chief_log
    done = sorted(os.listdir(out / "dense" / "checkpoints"))
    assert 2 <= len(done) < 4

    processes = start_workers(args, tmp_path, free_ports(2))  # the cluster manager restarts every worker
    codes = wait_all(processes)
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    for log in logs:
        assert "resuming the interrupted training after epoch" in log
        assert [int(n) for n in re.findall(r"^Epoch (\d+)/4", log, re.M)] == list(range(len(done) + 1, 5))
    chief, worker = digests(tmp_path, 2)
    assert chief == worker
    assert len(json.loads((out / "dense" / "history.json").read_text())["loss"]) == 4


def test_the_gan_trains_under_mirrored_on_two_logical_cpus(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "--task=gan", *SMALL[:2], "--epochs=1", "--passes_per_epoch=1",
         "--batch_size=64", "--generator_widths=16,8", "--discriminator_widths=8,16", "--noise_dim=8",
         "--distribute=mirrored", "--cpu_replicas=2", "--stages=train", f"--output_dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replicas of 32 examples (--distribute=mirrored)" in result.stdout
    history = json.loads((tmp_path / "gan" / "history.json").read_text())
    assert all(0 < loss < 10 for loss in history["d_loss"] + history["g_loss"])
    assert (tmp_path / "gan" / "model.keras").exists()


def test_a_worker_whose_peer_never_starts_names_it_and_stops(tmp_path):
    ports = free_ports(2)
    env = {**os.environ, "TF_CONFIG": tf_config(ports, 0)}
    start = time.time()
    result = subprocess.run([sys.executable, "-m", "pipelines", "--task=dense", "--distribute=multi_worker",
                             "--cluster_timeout=3", f"--output_dir={tmp_path}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert time.time() - start < 60
    assert_one_line_error(result, "worker 0 waited 3 s for the cluster", f"127.0.0.1:{ports[1]} did not join")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("text,fragment", [
    (None, "TF_CONFIG, which is not set"),
    ("{not json", "TF_CONFIG is malformed"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "TF_CONFIG is malformed"),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 2}}',
     "task index 2 is out of range: cluster.worker has 2 addresses (index 0 to 1)"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "'localhost' is not host:port"),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}',
     "jobs ['ps', 'worker']"),
])
def test_a_bad_tf_config_is_one_line(text, fragment):
    with pytest.raises(PipelineError, match=re.escape(fragment)):
        distribution.read_tf_config(text)


def test_the_chief_is_worker_0_unless_the_cluster_has_one():
    workers = {"worker": ("h:1", "h:2")}
    assert distribution.Cluster(workers, "worker", 0).is_chief
    assert not distribution.Cluster(workers, "worker", 1).is_chief
    assert not distribution.Cluster({**workers, "chief": ("h:0",)}, "worker", 0).is_chief
    assert distribution.Cluster({**workers, "chief": ("h:0",)}, "chief", 0).is_chief


def test_a_distributed_sweep_is_one_line_at_parse_time():
    assert_one_line_error(parse_cli("--stages=tune", "--distribute=mirrored"), "KerasTuner's own workers")
