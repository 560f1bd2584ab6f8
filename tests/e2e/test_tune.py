"""The tune stage on a small subset of offline Fashion-MNIST: results, tune → train, resume, distributed."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipelines import runner
from tests.conftest import ROOT, config_from_flags, free_ports, run_cli

SMALL = ("--task=dense", "--max_train_examples=1000", "--max_test_examples=200", "--tuning_epochs=1",
         "--tuner=random", "--batch_size=64")


def rows(task_dir):
    with open(task_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def timing(task_dir, trial_id):
    return task_dir / "tuning" / "random" / "timings" / f"{trial_id}.json"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("tune")
    runner.run(config_from_flags(*SMALL, "--max_trials=3", "--epochs=1", f"--output_dir={output_dir}",
                                 "--stages=tune,train"))
    return output_dir


def test_sweep_writes_the_trial_table_plot_and_best_hparams(sweep):
    task_dir = sweep / "dense"
    table = rows(task_dir)
    assert [r["trial_id"] for r in table] == ["0", "1", "2"]
    # The first trial is the control: the model --task=dense trains unflagged.
    assert json.loads(table[0]["hparams"]) == {"dropout": 0.0, "hidden_units": [128], "learning_rate": 0.003}
    assert all(r["status"] == "COMPLETED" and r["epochs"] == "1" and float(r["seconds"]) > 0 for r in table)
    assert (task_dir / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((task_dir / "best_hparams.json").read_text())
    assert best["score"] == max(float(r["objective"]) for r in table)
    assert json.loads(next(r for r in table if r["trial_id"] == best["trial_id"])["hparams"])[
        "hidden_units"] == best["hparams"]["hidden_units"]


def test_train_after_tune_builds_the_best_trials_model(sweep):
    import keras
    best = json.loads((sweep / "dense" / "best_hparams.json").read_text())
    model = keras.models.load_model(sweep / "dense" / "model.keras", compile=False)
    units = [layer.units for layer in model.layers if layer.name.startswith("hidden_")]
    assert units == best["hparams"]["hidden_units"]


def test_rerunning_the_sweep_continues_it_and_fresh_starts_over(sweep):
    first = timing(sweep / "dense", "0").stat().st_mtime_ns
    runner.run(config_from_flags(*SMALL, "--max_trials=4", f"--output_dir={sweep}", "--stages=tune"))
    assert len(rows(sweep / "dense")) == 4
    assert timing(sweep / "dense", "0").stat().st_mtime_ns == first  # trial 0 was not redone
    runner.run(config_from_flags(*SMALL, "--max_trials=1", f"--output_dir={sweep}", "--stages=tune", "--fresh"))
    assert len(rows(sweep / "dense")) == 1
    assert timing(sweep / "dense", "0").stat().st_mtime_ns != first


def test_a_sweep_with_other_data_or_objective_is_refused_not_mixed(sweep):
    from pipelines.errors import PipelineError
    for changed, shown in (("--max_train_examples=800", "--max_train_examples 1000 → 800"),
                           ("--objective=val_loss", "--objective \\(default\\) → val_loss")):
        with pytest.raises(PipelineError, match=f"sweep in .* was made with other settings \\({shown}\\): add "
                                                "--fresh"):
            runner.run(config_from_flags(*SMALL, "--max_trials=3", changed, f"--output_dir={sweep}",
                                         "--stages=tune"))


def test_train_alone_says_it_does_not_use_the_sweep_beside_it(sweep, capsys):
    runner.run(config_from_flags(*SMALL, "--epochs=1", "--hidden_units=8", f"--output_dir={sweep}",
                                 "--stages=train"))
    assert f"not training with the sweep's {sweep / 'dense' / 'best_hparams.json'}" in capsys.readouterr().out


def test_hparams_file_lets_a_later_run_reuse_a_sweep(sweep, tmp_path):
    import keras
    best = sweep / "dense" / "best_hparams.json"
    runner.run(config_from_flags("--task=dense", "--max_train_examples=500", "--epochs=1", "--stages=train",
                                 f"--output_dir={tmp_path}", f"--hparams_file={best}"))
    model = keras.models.load_model(tmp_path / "dense" / "model.keras", compile=False)
    units = [layer.units for layer in model.layers if layer.name.startswith("hidden_")]
    assert units == json.loads(best.read_text())["hparams"]["hidden_units"]


def test_hyperband_sweeps_with_its_own_epoch_budget_and_promoted_trials_continue_their_optimizer(tmp_path, capsys):
    runner.run(config_from_flags(*SMALL[:-2], "--tuner=hyperband", "--tuning_epochs=3", "--stages=tune",
                                 f"--output_dir={tmp_path}", "--hidden_units=32"))
    steps = [int(s) for s in re.findall(r"continuing trial \d+'s model and optimizer from step (\d+)",
                                        capsys.readouterr().out)]
    assert steps and all(s > 0 for s in steps)  # Adam's moments and the schedule go on, not from step 0
    table = rows(tmp_path / "dense")
    assert len(table) >= 3 and {r["epochs"] for r in table} >= {"1", "2"}
    assert all(json.loads(r["hparams"])["hidden_units"] == [32] for r in table)  # fixed by its flag


def test_bayesian_sweep_starts_from_the_default_model(tmp_path):
    runner.run(config_from_flags(*SMALL[:-2], "--tuner=bayesian", "--max_trials=2", "--stages=tune",
                                 f"--output_dir={tmp_path}"))
    with open(tmp_path / "dense" / "trials.csv") as f:  # its own project folder: tuning/bayesian
        table = list(csv.DictReader(f))
    assert [r["status"] for r in table] == ["COMPLETED", "COMPLETED"]
    assert json.loads(table[0]["hparams"]) == {"dropout": 0.0, "hidden_units": [128], "learning_rate": 0.003}
    assert json.loads(table[1]["hparams"]) != json.loads(table[0]["hparams"])


def test_trials_that_keep_failing_end_the_sweep_in_one_line(tmp_path, monkeypatch, capsys):
    from pipelines.errors import PipelineError
    from tuning.hypermodel import TaskHyperModel
    build, calls = TaskHyperModel.build, []

    def build_then_fail(self, hp):  # the tuner's first build (to learn the space) works, the trials' do not
        calls.append(hp)
        if len(calls) > 1:
            raise ValueError("no model today")
        return build(self, hp)

    monkeypatch.setattr(TaskHyperModel, "build", build_then_fail)
    with pytest.raises(PipelineError, match="tuning stopped: .*ValueError: no model today.*trials' tracebacks") as e:
        runner.run(config_from_flags(*SMALL, "--max_trials=5", "--stages=tune", f"--output_dir={tmp_path}"))
    assert len(calls) == 4  # KerasTuner gives up after 3 failed trials in a row
    assert "\n" not in str(e.value)
    output = capsys.readouterr()
    assert "Traceback" not in output.out + output.err
    assert output.out.count("failed with ValueError: no model today; its traceback is in") == 3


def test_a_sweep_whose_trials_all_failed_names_no_best(tmp_path, monkeypatch):
    from pipelines.errors import PipelineError
    from tuning.hypermodel import TaskHyperModel
    build, calls = TaskHyperModel.build, []

    def build_then_fail(self, hp):
        calls.append(hp)
        if len(calls) > 1:
            raise ValueError("no model today")
        return build(self, hp)

    monkeypatch.setattr(TaskHyperModel, "build", build_then_fail)
    with pytest.raises(PipelineError, match="no trial of the sweep completed .* so there is no best model"):
        runner.run(config_from_flags(*SMALL, "--max_trials=2", "--stages=tune", f"--output_dir={tmp_path}"))
    assert not (tmp_path / "dense" / "best_hparams.json").exists()


def test_killed_sweep_resumes_without_redoing_finished_trials(tmp_path):
    args = [*SMALL, "--max_trials=3", "--tuning_epochs=2", f"--output_dir={tmp_path}", "--stages=tune"]
    process = subprocess.Popen([sys.executable, "-m", "pipelines", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    first = timing(tmp_path / "dense", "0")
    deadline = time.time() + 240
    while not first.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert first.exists(), "the first trial never finished"
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert not (tmp_path / "dense" / "trials.csv").exists()  # killed before the sweep ended
    finished = first.stat().st_mtime_ns

    result = run_cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    table = rows(tmp_path / "dense")
    assert len(table) == 3 and all(r["status"] == "COMPLETED" for r in table)
    assert first.stat().st_mtime_ns == finished


def _wait_for_port(port: int, process, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the chief's oracle never listened")


def test_chief_and_two_workers_share_the_trials_and_only_the_chief_trains(tmp_path):
    (port,) = free_ports()
    args = [sys.executable, "-m", "pipelines", *SMALL, "--max_trials=4", "--epochs=1", f"--output_dir={tmp_path}",
            "--stages=tune,train"]
    env = dict(os.environ, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("chief", "tuner0", "tuner1")}
    processes = {}
    try:
        for name in logs:
            processes[name] = subprocess.Popen(args, cwd=ROOT, env=dict(env, KERASTUNER_TUNER_ID=name),
                                               stdout=logs[name], stderr=subprocess.STDOUT)
            if name == "chief":
                _wait_for_port(port, processes[name])  # the oracle serves before the workers ask it for trials
        codes = {name: p.wait(timeout=420) for name, p in processes.items()}
    finally:
        for p in processes.values():
            if p.poll() is None:
                p.kill()
        for f in logs.values():
            f.close()
    assert codes == {"chief": 0, "tuner0": 0, "tuner1": 0}, (tmp_path / "chief.log").read_text()[-2000:]
    table = rows(tmp_path / "dense")
    assert len(table) == 4 and all(r["status"] == "COMPLETED" for r in table)
    assert {r["tuner_id"] for r in table} == {"tuner0", "tuner1"}
    for worker in ("tuner0", "tuner1"):  # workers run trials and stop: the folder's files are the chief's
        assert f"worker {worker}: train left to the chief" in (tmp_path / f"{worker}.log").read_text()
    assert "[2/2] train" in (tmp_path / "chief.log").read_text() and (tmp_path / "dense" / "model.keras").exists()


def test_gan_sweep_minimizes_the_frechet_distance_and_trains_the_best_generator(tmp_path):
    import keras
    runner.run(config_from_flags("--task=gan", "--passes_per_epoch=1", "--batch_size=64", "--max_train_examples=320",
                                 "--max_test_examples=200", "--tuning_epochs=1", "--tuner=random", "--max_trials=2",
                                 "--epochs=1", f"--output_dir={tmp_path}", "--stages=tune,train"))
    task_dir = tmp_path / "gan"
    table = rows(task_dir)
    assert len(table) == 2 and all(float(r["objective"]) > 0 for r in table)
    best = json.loads((task_dir / "best_hparams.json").read_text())
    assert best["objective"] == "val_frechet_distance"
    assert best["score"] == min(float(r["objective"]) for r in table)  # a distance: lower is better
    gan = keras.models.load_model(task_dir / "model.keras", compile=False)
    assert gan.noise_dim == best["hparams"]["noise_dim"]
    assert [gan.generator.get_layer(f"up{i}_conv").filters for i in range(2)] == best["hparams"]["generator_widths"]


def test_every_trial_is_in_tensorboards_hparams_dashboard(sweep):
    import tensorflow as tf
    logs = sweep / "dense" / "tuning" / "tensorboard"
    trials = sorted(p.name for p in logs.iterdir())
    assert trials == sorted(r["trial_id"] for r in rows(sweep / "dense")) and trials  # the sweep as it now stands
    for trial in trials:
        plugins = {value.metadata.plugin_data.plugin_name
                   for path in (logs / trial).rglob("events.out.tfevents.*")
                   for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
        assert "hparams" in plugins, trial
