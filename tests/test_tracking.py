"""Tracking (pipelines/tracking.py) with a recording tracker in place of MLflow's and W&B's clients: what a run
logs and when, and a tracker's failure turned into one warning while the run goes on. The real clients, against a
real MLflow server and an offline W&B run, are in tests/e2e/test_tracking.py."""

import json
import os
import time

import pytest

from pipelines import artifacts, tracking
from pipelines.tracking import Tracker, Tracking
from tests.conftest import config_from_flags
from tests.loopback import free_ports


class Recorded:
    """A TrackedRun that keeps what it is given; `fail_on` names the call that raises."""

    def __init__(self, config, fail_on: str = ""):
        if fail_on == "start":
            raise ConnectionError("nobody answers")
        self.fail_on, self.calls = fail_on, []

    def _keep(self, name, *args):
        if name == self.fail_on:
            raise RuntimeError(f"{name} broke\nsecond line of the client's message")
        self.calls.append((name, *args))

    def params(self, values):
        self._keep("params", values)

    def metrics(self, values, step):
        self._keep("metrics", values, step)

    def files(self, paths):
        self._keep("files", paths)

    def model(self, saved_model):
        self._keep("model", saved_model)

    def trial(self, name, params, metrics, completed):
        self._keep("trial", name, params, metrics, completed)

    def end(self, failed):
        self._keep("end", failed)


@pytest.fixture
def recorder(monkeypatch):
    """--track=mlflow's record replaced by one whose runs are kept in the returned list."""
    runs = []

    def start(config, fail_on=""):
        runs.append(Recorded(config, fail_on))
        return runs[-1]
    monkeypatch.setitem(tracking.TRACKERS, "mlflow", Tracker("mlflow", "mlflow", start))
    return runs


def test_settings_are_strings_with_builder_arguments_by_name_and_unset_ones_left_out():
    config = config_from_flags("--hidden_units=64,32", "--tflite_variants=float32,int8", "--epochs=3")
    values = tracking.settings(config)
    assert values["hparams.hidden_units"] == "[64, 32]" and values["tflite_variants"] == "float32,int8"
    assert values["epochs"] == "3" and "explicit" not in values and "predict_input" not in values
    assert all(isinstance(v, str) for v in values.values())


def test_untracked_runs_call_nothing():
    untracked = Tracking(config_from_flags())
    assert untracked.run is None and untracked.callbacks() == []
    untracked.finish(config_from_flags(), [artifacts.METRICS])
    untracked.end(failed=False)


def test_settings_are_logged_once_and_what_train_resolved_beside_them(recorder):
    given = config_from_flags("--track=mlflow", "--epochs=3")
    tracked = Tracking(given)
    resolved = config_from_flags("--track=mlflow", "--epochs=5")
    tracked.params(resolved)
    tracked.params(resolved)  # nothing new: nothing logged
    logged = [call[1] for call in recorder[0].calls if call[0] == "params"]
    assert len(logged) == 2 and logged[0]["epochs"] == "3" and logged[1] == {"resolved.epochs": "5"}


def test_the_finished_run_logs_curves_test_metrics_trials_files_and_model(recorder, tmp_path):
    config = config_from_flags("--track=mlflow", f"--output_dir={tmp_path}")
    task_dir = tmp_path / config.task
    task_dir.mkdir()
    artifacts.write_json(str(task_dir / artifacts.HISTORY), {"loss": [0.9, 0.5], "val_accuracy": [0.6, 0.8]})
    artifacts.write_json(str(task_dir / artifacts.METRICS), {"test_accuracy": 0.75, "verdict": "words",
                                                             "flag": True, "test_loss": float("nan")})
    (task_dir / artifacts.TRIALS_CSV).write_text(
        "trial_id,status,objective,epochs,seconds,hparams\n"
        '0,COMPLETED,0.7,2,1.5,"{""dropout"": 0.1, ""learning_rate"": 0.001}"\n'
        '1,FAILED,,2,,"{""dropout"": 0.5, ""learning_rate"": 0.01}"\n')
    (task_dir / artifacts.SAVED_MODEL).mkdir()
    tracked = Tracking(config)
    tracked.finish(config, [artifacts.HISTORY, artifacts.METRICS, artifacts.TRIALS_CSV, artifacts.SAVED_MODEL,
                            artifacts.REPORT])  # no report.md was written: it is not logged
    calls = recorder[0].calls
    assert [c[1:] for c in calls if c[0] == "metrics"] == [
        ({"loss": 0.9, "val_accuracy": 0.6}, 0), ({"loss": 0.5, "val_accuracy": 0.8}, 1),
        ({"test_accuracy": 0.75}, None)]
    trials = [c[1:] for c in calls if c[0] == "trial"]
    assert trials == [("trial 0", {"dropout": "0.1", "learning_rate": "0.001"},
                       {"objective": 0.7, "epochs": 2.0, "seconds": 1.5}, True),
                      ("trial 1", {"dropout": "0.5", "learning_rate": "0.01"}, {"epochs": 2.0}, False)]
    files = next(c[1] for c in calls if c[0] == "files")
    assert sorted(p.rsplit("/", 1)[1] for p in files) == [artifacts.HISTORY, artifacts.METRICS, artifacts.TRIALS_CSV]
    assert calls[-1] == ("model", str(task_dir / artifacts.SAVED_MODEL))


def test_curves_logged_as_epochs_end_are_not_logged_again_from_history(recorder, tmp_path):
    config = config_from_flags("--track=mlflow", f"--output_dir={tmp_path}")
    (tmp_path / config.task).mkdir()
    artifacts.write_json(str(tmp_path / config.task / artifacts.HISTORY), {"loss": [0.9]})
    tracked = Tracking(config)
    callback, = tracked.callbacks()
    callback.on_epoch_end(0, {"loss": 0.9, "val_loss": 1.1})
    tracked.finish(config, [artifacts.HISTORY])
    assert [c[1:] for c in recorder[0].calls if c[0] == "metrics"] == [({"loss": 0.9, "val_loss": 1.1}, 0)]


@pytest.mark.parametrize("fail_on", ["start", "metrics"])
def test_a_failing_tracker_warns_once_and_the_run_goes_on_untracked(recorder, monkeypatch, capsys, tmp_path,
                                                                    fail_on):
    start = tracking.TRACKERS["mlflow"].start
    monkeypatch.setitem(tracking.TRACKERS, "mlflow", Tracker("mlflow", "mlflow", lambda c: start(c, fail_on)))
    config = config_from_flags("--track=mlflow", f"--output_dir={tmp_path}")
    with tracking.tracked(config) as tracked:
        for epoch, callback in enumerate(tracked.callbacks() * 3):
            callback.on_epoch_end(epoch, {"loss": 1.0})
        tracked.finish(config, [])
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: mlflow tracking failed")
    assert "the run goes on untracked" in warnings[0] and "second line" not in warnings[0]
    assert tracked.run is None
    if fail_on == "metrics":  # nothing after the failure but the tracked run marked failed
        assert recorder[0].calls[1:] == [("end", True)] and recorder[0].calls[0][0] == "params"


def test_epochs_a_resumed_train_logged_before_its_restart_come_from_history(recorder, tmp_path):
    config = config_from_flags("--track=mlflow", f"--output_dir={tmp_path}")
    (tmp_path / config.task).mkdir()
    artifacts.write_json(str(tmp_path / config.task / artifacts.HISTORY), {"loss": [0.9, 0.7, 0.5]})
    tracked = Tracking(config)
    tracked.epoch(2, {"loss": 0.5})  # the epoch this process trained; 0 and 1 were trained before the restart
    tracked.finish(config, [artifacts.HISTORY])
    assert sorted(c[2] for c in recorder[0].calls if c[0] == "metrics") == [0, 1, 2]


def test_a_damaged_history_is_one_warning_not_a_failed_run(recorder, tmp_path, capsys):
    config = config_from_flags("--track=mlflow", f"--output_dir={tmp_path}")
    (tmp_path / config.task).mkdir()
    (tmp_path / config.task / artifacts.HISTORY).write_text("{not json")
    Tracking(config).finish(config, [artifacts.HISTORY])
    assert "tracking failed reading history.json" in capsys.readouterr().err
    assert recorder[0].calls[-1] == ("end", True)


def test_settings_leave_out_the_tracking_uri_which_may_hold_a_password():
    config = config_from_flags("--track=mlflow", "--tracking_uri=http://me:secret@127.0.0.1:1")
    assert "tracking_uri" not in tracking.settings(config)
    assert tracking._without_password("http://me:secret@host:5000/x") == "http://me:***@host:5000/x"


def test_a_stage_that_raises_ends_the_tracked_run_as_failed(recorder):
    with pytest.raises(ValueError):
        with tracking.tracked(config_from_flags("--track=mlflow")):
            raise ValueError("a stage failed")
    assert recorder[0].calls[-1] == ("end", True)


def test_an_mlflow_server_that_does_not_answer_is_one_warning_within_seconds(capsys, monkeypatch):
    for name in tracking.MLFLOW_PATIENCE:
        monkeypatch.delenv(name, raising=False)
    port, = free_ports()
    start = time.perf_counter()
    tracked = Tracking(config_from_flags("--track=mlflow", f"--tracking_uri=http://127.0.0.1:{port}"))
    assert tracked.run is None and time.perf_counter() - start < 10 + tracking.HEALTH_TIMEOUT
    warning, = capsys.readouterr().err.strip().splitlines()
    assert not any(name in os.environ for name in tracking.MLFLOW_PATIENCE)  # nothing set: no server, no client
    assert f"127.0.0.1:{port} does not answer" in warning and "start the server or fix --tracking_uri" in warning


def test_trial_params_keep_the_sweeps_values(recorder, tmp_path):
    config = config_from_flags("--track=mlflow", f"--output_dir={tmp_path}")
    (tmp_path / config.task).mkdir()
    (tmp_path / config.task / artifacts.TRIALS_CSV).write_text(
        'trial_id,status,objective,epochs,seconds,hparams\n0,COMPLETED,0.5,1,1,"{""units"": [64, 32]}"\n')
    Tracking(config).finish(config, [artifacts.TRIALS_CSV])
    trial, = [c for c in recorder[0].calls if c[0] == "trial"]
    assert json.loads(trial[2]["units"]) == [64, 32]
