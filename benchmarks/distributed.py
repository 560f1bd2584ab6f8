"""Scaling on loopback: two multi-worker processes, each pinned to one core, against one process on one core.

The same command (conv defaults but the data and epochs below), the same global batch: the ratio of the training
speeds the chief logs (history.json's examples/s, epochs after the first) and the two test accuracies. Run by
`make bench` (benchmarks/run.py) or alone: `python -m benchmarks.distributed`.
"""

import json
import os
import subprocess
import sys
import tempfile

from tests.loopback import free_ports
from pipelines import artifacts
from pipelines.flops import sustained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ("--task=conv", "--stages=train,evaluate", "--epochs=3", "--max_train_examples=20000",
         "--max_test_examples=5000")


def _run(output_dir: str, workers: int) -> dict:
    ports = free_ports(workers)
    processes = []
    for index in range(workers):
        env = dict(os.environ)
        flags = [*FLAGS, f"--output_dir={output_dir}"]
        if workers > 1:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                           "task": {"type": "worker", "index": index}})
            flags.append("--distribute=multi_worker")
        processes.append(subprocess.Popen(["taskset", "-c", str(index), sys.executable, "-m", "pipelines", *flags],
                                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))
    for p in processes:
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(err[-2000:])
    task_dir = os.path.join(output_dir, "conv")
    history = artifacts.read_json(os.path.join(task_dir, artifacts.HISTORY))
    metrics = artifacts.read_json(os.path.join(task_dir, artifacts.METRICS))
    return {"examples_per_second": sustained(history["examples_per_second"]),
            "test_accuracy": metrics["test_accuracy"]}


def scaling() -> dict:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        single, double = _run(one, 1), _run(two, 2)
    return {"one_worker": single, "two_workers": double,
            "speed_ratio": double["examples_per_second"] / single["examples_per_second"],
            "accuracy_difference": double["test_accuracy"] - single["test_accuracy"]}


if __name__ == "__main__":
    print(json.dumps(scaling(), indent=2))
