"""--track with the real clients: a table run with a two-trial sweep tracked by W&B (offline: no account, no
network), then the same command tracked by a real `mlflow server` on 127.0.0.1 with SQLite behind it (its stages
reused: the curves come from history.json). What each holds is read back as a user would: MLflow through its REST
API and its own model loader, W&B from the run files it wrote."""

import contextlib
import csv
import glob
import json
import os
import sys
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from pipelines import artifacts, runner, tracking
from tests.conftest import config_from_flags
from tests.e2e.test_sagemaker import people_csv
from tests.loopback import answering, free_ports


@contextlib.contextmanager
def mlflow_server(root):
    """`mlflow server` on a free port of 127.0.0.1 (SQLite store, artifacts proxied into `root`), started at once;
    yields its URL and a function that waits until it answers."""
    port, = free_ports()
    url = f"http://127.0.0.1:{port}"
    with answering([os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--host", "127.0.0.1",
                    "--port", str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
                    "--artifacts-destination", str(root / "artifacts")], f"{url}/health", "mlflow server",
                   # Its job runner (eight more processes, each importing mlflow) serves features not used here.
                   env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}) as ready:
        yield url, ready


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking")
    flags = [f"--dataset={people_csv(root / 'people.csv')}", "--label_column=survived",
             "--stages=tune,train,evaluate,export,verify,report", "--tuner=random", "--max_trials=2",
             "--tuning_epochs=1", "--epochs=2", "--tflite_variants=float32", "--noonnx",
             f"--output_dir={root / 'out'}"]
    with pytest.MonkeyPatch.context() as env, mlflow_server(root / "mlflow") as (url, ready):
        env.setenv("WANDB_MODE", "offline")
        env.setenv("WANDB_DIR", str(root))
        env.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        for name, value in tracking.MLFLOW_PATIENCE.items():  # what MLflowRun sets, restored after
            env.setenv(name, value)
        runner.run(config_from_flags(*flags, "--track=wandb"))  # while the server starts
        ready()
        summary = runner.run(config_from_flags(*flags, "--track=mlflow", f"--tracking_uri={url}"))
        assert {record.result for record in summary} == {"reused"}
        yield root, url, root / "out" / "dense"
    import wandb
    wandb.teardown()  # the service process wandb.init started would outlive the module (idle, 0.4% of a core)


def rest(url: str, path: str, **query):
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}", timeout=30) as r:
        return json.loads(r.read())


def search(url: str, filter: str) -> list[dict]:
    body = json.dumps({"experiment_ids": [rest(url, "experiments/get-by-name", experiment_name="dlpipe")[
        "experiment"]["experiment_id"]], "filter": filter}).encode()
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read()).get("runs", [])


def test_mlflow_holds_the_settings_curves_test_metrics_files_and_trials(tracked):
    root, url, task_dir = tracked
    run, = search(url, "attributes.run_name = 'dense'")
    run_id, data = run["info"]["run_id"], run["data"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in data["params"]}
    best = json.loads((task_dir / artifacts.BEST_HPARAMS).read_text())
    assert params["label_column"] == "survived" and params["tuner"] == "random"
    assert json.loads(params["resolved.hparams.hidden_units"]) == best["hparams"]["hidden_units"]
    history = json.loads((task_dir / artifacts.HISTORY).read_text())
    points = rest(url, "metrics/get-history", run_id=run_id, metric_key="val_accuracy")["metrics"]
    assert [p["step"] for p in points] == list(range(len(history["val_accuracy"])))
    assert [p["value"] for p in points] == pytest.approx(history["val_accuracy"])
    metrics = {m["key"]: m["value"] for m in data["metrics"]}
    test = json.loads((task_dir / artifacts.METRICS).read_text())
    assert metrics["test_accuracy"] == pytest.approx(test["test_accuracy"])
    assert metrics["baseline_gradient_boosting_accuracy"] == pytest.approx(test["baseline_gradient_boosting_accuracy"])
    files = {f["path"] for f in rest(url, "artifacts/list", run_id=run_id)["files"]}
    assert {artifacts.REPORT, "model.tflite", artifacts.VERIFY, artifacts.LABELS, artifacts.METRICS, "model"} <= files
    with open(task_dir / artifacts.TRIALS_CSV, newline="") as f:
        rows = {f"trial {row['trial_id']}": row for row in csv.DictReader(f)}
    trials = search(url, f"tags.mlflow.parentRunId = '{run_id}'")
    assert {t["info"]["run_name"] for t in trials} == set(rows) and len(rows) == 2
    for trial in trials:
        row = rows[trial["info"]["run_name"]]
        params = {p["key"]: json.loads(p["value"]) for p in trial["data"]["params"]}
        assert params == json.loads(row["hparams"])


def test_the_mlflow_model_answers_as_the_saved_model(tracked):
    import mlflow.artifacts
    import mlflow.tensorflow
    root, url, task_dir = tracked
    run, = search(url, "attributes.run_name = 'dense'")
    local = mlflow.artifacts.download_artifacts(run_id=run["info"]["run_id"], artifact_path="model",
                                                tracking_uri=url, dst_path=str(root / "downloaded"))
    rows = dict(age=tf.constant([30.0, 61.0]), fare=tf.constant([12.5, 80.0]), sex=tf.constant(["female", "male"]))
    theirs = mlflow.tensorflow.load_model(local).signatures["serving_default"](**rows)["logits"].numpy()
    ours = tf.saved_model.load(str(task_dir / artifacts.SAVED_MODEL)).signatures["serving_default"](**rows)
    np.testing.assert_allclose(theirs, ours["logits"].numpy(), atol=1e-6)


def wandb_records(run_dir: str) -> list:
    """The records of an offline W&B run's log (its .wandb file: LevelDB's log format, 32 KiB blocks of records
    each with a 7-byte header, after the file's own 7-byte header)."""
    from wandb.proto import wandb_internal_pb2
    data, records, pending, position, block = b"", [], b"", 7, 32768
    data = open(glob.glob(os.path.join(run_dir, "run-*.wandb"))[0], "rb").read()
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length, kind = int.from_bytes(data[position + 4:position + 6], "little"), data[position + 6]
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def key(item) -> str:
    """A logged item's name: W&B writes it as `key`, or as `nested_key`'s parts."""
    return item.key or "/".join(item.nested_key)


def test_the_offline_wandb_run_holds_the_curves_test_metrics_files_and_trials(tracked):
    root, _, task_dir = tracked
    runs = {}
    for run_dir in glob.glob(str(root / "wandb" / "offline-run-*")):
        records = wandb_records(run_dir)
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        runs[run.display_name] = (run, records)
    assert set(runs) == {"dense", "trial 0", "trial 1"}
    run, records = runs["dense"]
    assert {runs[name][0].run_group for name in ("trial 0", "trial 1")} == {run.run_group}
    history = [{key(item): json.loads(item.value_json) for item in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    curves = json.loads((task_dir / artifacts.HISTORY).read_text())
    assert [h["val_accuracy"] for h in history] == pytest.approx(curves["val_accuracy"])
    summary = {key(item): json.loads(item.value_json) for r in records if r.WhichOneof("record_type") == "summary"
               for item in r.summary.update}
    assert summary["test_accuracy"] == pytest.approx(json.loads((task_dir / artifacts.METRICS).read_text())[
        "test_accuracy"])
    logged = {r.artifact.name: {m.path for m in r.artifact.manifest.contents}
              for r in records if r.WhichOneof("record_type") == "artifact"}
    assert {artifacts.REPORT, "model.tflite", artifacts.METRICS} <= logged["dense-files"]
    assert "saved_model.pb" in logged["dense-saved_model"]
    config = {key(item): item.value_json for r in records if r.WhichOneof("record_type") == "config"
              for item in r.config.update}
    config.update({key(item): item.value_json for item in run.config.update})
    assert json.loads(config["label_column"]) == "survived"
