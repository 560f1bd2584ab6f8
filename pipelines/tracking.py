"""Experiment tracking, `--track=mlflow` or `--track=wandb`: the run in MLflow or Weights & Biases, beside the
TensorBoard logs train always writes. A tracked run holds the settings as params (as given, then what train resolved
them to), each epoch's curves as it ends, the test metrics, every file the run's stages wrote (report.md, the
exported files, the pictures) as artifacts, the SavedModel as a model, and a sweep's trials as child runs.

A tracker is one record in TRACKERS: the package it needs and how it starts a run (a TrackedRun). Tracking never
fails a run: its first failure is one warning line, and the run goes on untracked (Tracking).
"""

import contextlib
import dataclasses
import json
import math
import numbers
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Protocol

import keras

from pipelines import artifacts
from pipelines.config import RunConfig

# What a tracker records of the run: the settings, as given and as resolved; "explicit" only says how they came, and
# a tracking URI may hold credentials (http://user:password@host).
UNTRACKED_SETTINGS = frozenset({"explicit", "tracking_uri"})
HEALTH_TIMEOUT = 5.0  # seconds an MLflow server has to answer before the run goes on untracked
# MLflow's client retries a failed request 7 times with backoff, 120 s each (about 4 minutes): a server that dies
# mid-run would hold training that long before tracking gives up. Unless the user set them: 2 retries, 10 s.
MLFLOW_PATIENCE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                   # The client prints each run's URL as it ends (every trial's too): the line below says where.
                   "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


class TrackedRun(Protocol):
    """One run in a tracker, as its client sees it."""

    def params(self, values: dict[str, str]) -> None: ...   # settings: each key logged once
    def metrics(self, values: dict[str, float], step: int | None) -> None: ...  # step None: the run's final values
    def files(self, paths: list[str]) -> None: ...
    def model(self, saved_model: str) -> None: ...
    def trial(self, name: str, params: dict[str, str], metrics: dict[str, float], completed: bool) -> None: ...
    def end(self, failed: bool) -> None: ...


@dataclasses.dataclass(frozen=True)
class Tracker:
    name: str
    package: str                                  # what `--track=<name>` imports (dlpipe[tracking] installs it)
    start: Callable[[RunConfig], TrackedRun]


def _without_password(uri: str) -> str:
    """The URI as it may be printed: a password in it replaced by ***."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _key(name: str) -> str:
    """A metric or param name MLflow takes: letters, digits, _ - . / and spaces."""
    return re.sub(r"[^\w\-./ ]", "_", name)


class MLflowRun:
    """A run through MLflow's client (`--tracking_uri`: a server or a local store; else MLflow's own default, its
    MLFLOW_TRACKING_URI), in the experiment `--tracking_project`; trials are runs whose parent is this one."""

    MAX_PARAM = 6000  # characters of a param's value MLflow keeps

    def __init__(self, config: RunConfig):
        import mlflow
        uri = config.tracking_uri or mlflow.get_tracking_uri()
        if uri.startswith(("http://", "https://")):  # the client would retry for minutes: ask once, briefly
            try:
                urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT).close()
            except urllib.error.HTTPError:  # it answered (an auth proxy, a server without /health): go on
                pass
            except (OSError, ValueError) as e:
                raise ConnectionError(f"{_without_password(uri)} does not answer ({getattr(e, 'reason', e)}): start "
                                      "the server or fix --tracking_uri") from None
        for name, value in MLFLOW_PATIENCE.items():  # read by the client at each request
            os.environ.setdefault(name, value)
        self.client = mlflow.MlflowClient(uri)
        found = self.client.get_experiment_by_name(config.tracking_project)
        self.experiment = found.experiment_id if found else self.client.create_experiment(config.tracking_project)
        self.run_id = self.client.create_run(self.experiment, run_name=config.task, tags=_tags(config)).info.run_id
        print(f"  tracked in MLflow at {_without_password(uri)}: experiment {config.tracking_project}, run "
              f"{self.run_id}", flush=True)

    def _log(self, run_id: str, params: dict[str, str] | None = None, metrics: dict[str, float] | None = None,
             step: int = 0) -> None:
        from mlflow.entities import Metric, Param
        now = int(time.time() * 1000)
        items = [Param(_key(k), v[:self.MAX_PARAM]) for k, v in (params or {}).items()]
        for i in range(0, len(items), 100):  # MLflow's limit of params per batch
            self.client.log_batch(run_id, params=items[i:i + 100])
        points = [Metric(_key(k), v, now, step) for k, v in (metrics or {}).items()]
        for i in range(0, len(points), 1000):
            self.client.log_batch(run_id, metrics=points[i:i + 1000])

    def params(self, values):
        self._log(self.run_id, params=values)

    def metrics(self, values, step):
        self._log(self.run_id, metrics=values, step=step or 0)

    def files(self, paths):
        for path in paths:
            self.client.log_artifact(self.run_id, path)

    def model(self, saved_model):
        """The SavedModel as an MLflow model under the run's `model/` (MLflow's tensorflow flavour, with its
        signature): `mlflow.tensorflow.load_model(uri).signatures["serving_default"]` runs it."""
        import tempfile

        import mlflow.tensorflow
        import numpy as np
        import tensorflow as tf
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec
        module, serve = _callable_saved_model(saved_model)

        def schema(specs: dict) -> Schema:
            return Schema([TensorSpec(np.dtype(object if s.dtype == tf.string else s.dtype.as_numpy_dtype),
                                      tuple(-1 if d is None else d for d in s.shape), name)
                           for name, s in specs.items()])
        signature = ModelSignature(schema(serve.structured_input_signature[1]), schema(serve.structured_outputs))
        with tempfile.TemporaryDirectory(prefix="dlpipe-mlflow-") as scratch:
            local = os.path.join(scratch, "model")
            mlflow.tensorflow.save_model(module, local, saved_model_kwargs={"signatures": {"serving_default": serve}},
                                         signature=signature, pip_requirements=[f"tensorflow=={tf.__version__}"])
            self.client.log_artifacts(self.run_id, local, "model")

    def trial(self, name, params, metrics, completed):
        run_id = self.client.create_run(self.experiment, run_name=name,
                                        tags={"mlflow.parentRunId": self.run_id}).info.run_id
        self._log(run_id, params, metrics)
        self.client.set_terminated(run_id, "FINISHED" if completed else "FAILED")

    def end(self, failed):
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


def _callable_saved_model(path: str):
    """The SavedModel at `path` as a module MLflow can save, its serving signature kept; one that reads one input is
    also callable with it, as `mlflow.pyfunc` calls a model (a table's several inputs: through the signature)."""
    import tensorflow as tf
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]
    module = tf.Module()
    module.saved_model = loaded
    specs = serve.structured_input_signature[1]
    if len(specs) == 1:
        (name, spec), = specs.items()
        spec = tf.TensorSpec(spec.shape, spec.dtype)
        module.__call__ = tf.function(lambda x: serve(**{name: x}), input_signature=[spec])
    return module, serve


class WandbRun:
    """A run through the wandb client, in the project `--tracking_project` (W&B's own settings, such as WANDB_MODE
    and WANDB_DIR, apply); a sweep's trials are runs in the same group."""

    QUIET = {"console": "off", "silent": True}  # our output stays ours: no wrapped stdout, no banner

    def __init__(self, config: RunConfig):
        import wandb
        self.wandb, self.project, self.task = wandb, config.tracking_project, config.task
        self.run = wandb.init(project=self.project, name=config.task, job_type="train", reinit="create_new",
                              group=f"{config.task}-{uuid.uuid4().hex[:8]}", tags=[config.task],
                              settings=wandb.Settings(**self.QUIET))
        print(f"  tracked in W&B: project {self.project}, run {self.run.id} ({self.run.settings.mode})", flush=True)

    def params(self, values):
        self.run.config.update(values, allow_val_change=True)

    def metrics(self, values, step):
        if step is None:
            self.run.summary.update(values)
        else:
            self.run.log(values, step=step)

    def files(self, paths):
        artifact = self.wandb.Artifact(f"{self.task}-files", type="run-files")
        for path in paths:
            artifact.add_file(path)
        self.run.log_artifact(artifact)

    def model(self, saved_model):
        artifact = self.wandb.Artifact(f"{self.task}-saved_model", type="model")
        for folder, _, names in os.walk(saved_model):
            for name in names:
                path = os.path.join(folder, name)
                artifact.add_file(path, name=os.path.relpath(path, saved_model))
        self.run.log_artifact(artifact)

    def trial(self, name, params, metrics, completed):
        run = self.wandb.init(project=self.project, name=name, job_type="trial", group=self.run.group,
                              reinit="create_new", config=params, settings=self.wandb.Settings(**self.QUIET))
        try:
            run.summary.update(metrics)
        finally:
            run.finish(exit_code=0 if completed else 1)

    def end(self, failed):
        self.run.finish(exit_code=1 if failed else 0)


TRACKERS = {t.name: t for t in (Tracker("mlflow", "mlflow", MLflowRun), Tracker("wandb", "wandb", WandbRun))}


def _tags(config: RunConfig) -> dict[str, str]:
    return {"dlpipe.task": config.task, "dlpipe.dataset": config.dataset}


def settings(config: RunConfig) -> dict[str, str]:
    """The config as a tracker's params: one string per setting, a builder argument as `hparams.<name>`, unset ones
    left out."""
    values = {}
    for name, value in dataclasses.asdict(config).items():
        if name in UNTRACKED_SETTINGS or value is None:
            continue
        if isinstance(value, dict):
            values.update({f"{name}.{k}": json.dumps(v, default=list) for k, v in value.items()})
        else:
            values[name] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return values


def finite_numbers(values: dict) -> dict[str, float]:
    """The finite numbers among `values` (a metrics.json, an epoch's logs), as floats."""
    return {k: float(v) for k, v in values.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)}


ENDING = "ending the run"


class Tracking:
    """The run's tracker, guarded: a call that fails prints one warning, marks the tracked run failed where it still
    can, and ends tracking; the run goes on. Without --track, every call does nothing."""

    def __init__(self, config: RunConfig | None = None):
        self.tracker = TRACKERS[config.track] if config is not None and config.track else None
        self.run: TrackedRun | None = None
        self.logged: dict[str, str] = {}
        self.epochs: set[int] = set()  # the epochs logged as they ended
        if self.tracker:
            self.run = self._call("starting the run", lambda: self.tracker.start(config), starting=True)
            self.params(config)

    def _call(self, doing: str, call: Callable[[], object], starting: bool = False):
        if self.run is None and not starting:
            return None
        try:
            return call()
        except Exception as e:  # a tracker's client and server fail in their own ways; none may fail the run
            first = (str(e).strip().splitlines() or [""])[0][:300]
            print(f"warning: {self.tracker.name} tracking failed {doing} ({type(e).__name__}: {first}); the run goes "
                  "on untracked", file=sys.stderr, flush=True)
            run, self.run = self.run, None
            if run is not None and doing != ENDING:  # marked failed where it can be, not left running
                with contextlib.suppress(Exception):
                    run.end(True)
            return None

    def params(self, config: RunConfig) -> None:
        """The settings not logged yet; one that changed since (what train resolved) as `resolved.<name>`."""
        fresh = {}
        for name, value in settings(config).items():
            if name not in self.logged:
                fresh[name] = value
            elif self.logged[name] != value and self.logged.get(f"resolved.{name}") != value:
                fresh[f"resolved.{name}"] = value
        if fresh and self.run is not None:
            self._call("logging the settings", lambda: self.run.params(fresh))
            self.logged.update(fresh)

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """What train adds to fit: each epoch's logs, as the epoch ends."""
        return [EpochMetrics(self)] if self.run is not None else []

    def epoch(self, epoch: int, logs: dict) -> None:
        self.epochs.add(epoch)
        self._call(f"logging epoch {epoch + 1}", lambda: self.run.metrics(finite_numbers(logs), epoch))

    def finish(self, config: RunConfig, outputs: list[str]) -> None:
        """What the run made: the resolved settings, the curves (from history.json when train was reused), the
        test metrics, the files among `outputs` (the stages' artifacts), a sweep's trials and the SavedModel."""
        if self.run is None:
            return
        self.params(config)
        task_dir = config.task_dir
        found = {name for name in outputs if os.path.exists(os.path.join(task_dir, name))}
        if artifacts.HISTORY in found:  # what was not logged as it ended: a reused train's, a resumed one's start
            self._call("reading history.json", lambda: self._history(os.path.join(task_dir, artifacts.HISTORY)))
        if artifacts.METRICS in found:
            self._call("logging the test metrics", lambda: self.run.metrics(
                finite_numbers(artifacts.read_json(os.path.join(task_dir, artifacts.METRICS))), None))
        if artifacts.TRIALS_CSV in found:
            self._call("reading trials.csv", lambda: self._trials(os.path.join(task_dir, artifacts.TRIALS_CSV)))
        files = sorted(os.path.join(task_dir, name) for name in found
                       if os.path.isfile(os.path.join(task_dir, name)))
        self._call("logging the files", lambda: self.run.files(files))
        if artifacts.SAVED_MODEL in found:
            self._call("logging the model", lambda: self.run.model(os.path.join(task_dir, artifacts.SAVED_MODEL)))

    def _history(self, path: str) -> None:
        for epoch, logs in enumerate(_epochs(artifacts.read_json(path))):
            if epoch not in self.epochs:
                self.epoch(epoch, logs)

    def _trials(self, path: str) -> None:
        import csv
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                params = {k: json.dumps(v) for k, v in json.loads(row["hparams"]).items()}
                scores = finite_numbers({name: _float(row[name]) for name in ("objective", "epochs", "seconds")})
                self._call(f"logging trial {row['trial_id']}", lambda: self.run.trial(
                    f"trial {row['trial_id']}", params, scores, row["status"] == "COMPLETED"))

    def end(self, failed: bool) -> None:
        self._call(ENDING, lambda: self.run.end(failed))
        self.run = None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _epochs(history: dict[str, list[float]]) -> Iterator[dict[str, float]]:
    """history.json's curves, one dict per epoch."""
    count = max((len(values) for values in history.values()), default=0)
    for i in range(count):
        yield {name: values[i] for name, values in history.items() if i < len(values)}


class EpochMetrics(keras.callbacks.Callback):
    def __init__(self, tracking: Tracking):
        super().__init__()
        self.tracking = tracking

    def on_epoch_end(self, epoch, logs=None):
        self.tracking.epoch(epoch, logs or {})


@contextlib.contextmanager
def tracked(config: RunConfig) -> Iterator[Tracking]:
    """The run's Tracking, ended as failed when the stages raise."""
    tracking = Tracking(config)
    try:
        yield tracking
    except BaseException:
        tracking.end(failed=True)
        raise
    tracking.end(failed=False)
