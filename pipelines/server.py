"""dlpipe-serve: a run's SavedModels over HTTP, speaking TF Serving's REST API, so a client can move to TF Serving
unchanged.

    dlpipe-serve --output_dir=runs --port=8501
    POST /v1/models/<task>:predict   {"instances": [...]} (one per example) or {"inputs": ...} (columns)
    GET  /v1/models/<task>           status, as TF Serving gives it;  GET /v1/models/<task>/metadata: the signature
    GET  /healthz                    GET /metrics (Prometheus: requests, errors, latency)

Every task folder under --output_dir with a saved_model/ is served under the task's name; one that cannot be
loaded is reported (in the log and on /v1/models/<task>) and the others are served. Inputs are checked against the
serving signature (names, dtype, shape, value range) before the model sees them: a bad request is HTTP 400 naming
the field. Numbers must be JSON numbers (not true/false, not text) that fit the input's type. Image inputs take
nested lists of uint8 pixels or {"b64": <PNG or JPEG>} as TF Serving does; a classifier's answer adds its label
names and probabilities beside the logits. Every error answer, whatever its status, is {"error": "..."}.

What one request can cost is bounded: a body of at most --max_body_mb (413 past it, once the body has been read and
discarded, so that a client that sends its whole body before reading sees the answer), read within --read_timeout
seconds (408), at most MAX_INSTANCES examples in either form, and the JSON parsed and the model run off the event
loop, so /healthz answers while a large request is being worked on. A known path asked with the wrong method is 405
with an Allow header.

With --sagemaker it speaks SageMaker's inference contract instead, for one model (what SageMaker unpacked a run's
model.tar.gz into, --model_dir; pipelines/sagemaker.py), on port 8080 unless --port says otherwise:

    GET  /ping                       200 once the model is loaded
    POST /invocations                a JSON body as :predict takes it, or text/csv: one example a row (a header row
                                     naming the inputs when the model has several, as a table's columns)

Its flags are this second program's own (dlpipe's are in flags.py): it shares no setting with a run.
"""

import asyncio
import base64
import io
import binascii
import dataclasses
import json
import os
import re
import socket
import sys
import threading
import time

from absl import app, flags, logging

PORT = flags.DEFINE_integer("port", 8501, "Port to listen on (TF Serving's REST port by default).", lower_bound=0,
                            upper_bound=65535)
HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; 0.0.0.0 for every interface.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", "runs", "The --output_dir of dlpipe runs: each <task>/saved_model "
                                 "in it is served as /v1/models/<task>.")
SAGEMAKER = flags.DEFINE_bool("sagemaker", False, "Serve one model as SageMaker's containers do: GET /ping, POST "
                              "/invocations (JSON or CSV), port 8080 unless --port is given; the model in --model_dir.")
MODEL_DIR = flags.DEFINE_string("model_dir", "/opt/ml/model", "With --sagemaker: the folder model.tar.gz was unpacked "
                                "into (SageMaker's /opt/ml/model), or a dlpipe task folder.")
SAGEMAKER_PORT = 8080  # the port SageMaker sends requests to
MAX_BODY_MB = flags.DEFINE_float("max_body_mb", 16.0, "The largest request body accepted, in MB (HTTP 413 past it).",
                                 lower_bound=0.001, upper_bound=4096)
READ_TIMEOUT = flags.DEFINE_float("read_timeout", 30.0, "Seconds a client has to send a request's body (HTTP 408 "
                                  "after).", lower_bound=0.1, upper_bound=3600)

MAX_INSTANCES = 1024  # per request, in either form: a bound on what one request makes the server hold
# A body over --max_body_mb is read and thrown away up to this many times the limit before the 413: a client that
# sends its whole body before it reads the answer (urllib, requests) otherwise meets a reset connection, not the 413.
DRAIN_FACTOR = 4
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNKNOWN_MODEL = "(unknown)"  # the /metrics label of a request for a model this server does not have


class BadRequest(ValueError):
    """A request the model cannot take: HTTP 400 (or `status`, with `headers`), its message naming the field."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers


@dataclasses.dataclass
class ServedModel:
    name: str
    function: object                   # the SavedModel's serving_default concrete function
    inputs: dict[str, object]          # input name → tf.TensorSpec
    outputs: dict[str, object]         # output name → tf.TensorSpec
    labels: list[str] | None           # a classifier's class names (labels.txt), in output order
    # A forecaster's intervals (its run's metrics.json, measured on the held-out windows: what dlpipe-predict
    # --interval adds), as forecaster.Intervals.
    intervals: object | None = None
    # Whether its float inputs take NaN: past a shorter series' end, for a model that reads missing values there
    # (its run's trained_on.padding, data/sequences.py); every other model refuses a value that is not finite.
    missing: bool = False

    def metadata(self) -> dict:
        def spec(s):
            return {"dtype": s.dtype.name, "shape": [-1 if d is None else d for d in s.shape.as_list()]}
        return {"model_spec": {"name": self.name, "version": "1"},
                "metadata": {"signature_def": {"serving_default": {
                    "inputs": {n: spec(s) for n, s in self.inputs.items()},
                    "outputs": {n: spec(s) for n, s in self.outputs.items()}}}}}

    @property
    def numeric(self) -> bool:
        return all(s.dtype.name != "string" for s in self.inputs.values())


def load_model(name: str, path: str, labels_path: str | None, run_folder: str | None = None) -> ServedModel:
    """One SavedModel's serving signature, and its class names when a labels file is given, and its intervals when
    `run_folder` (the dlpipe run that exported it) measured them."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops a KerasHub preset's tokenizer runs in its SavedModel)
    function = tf.saved_model.load(path).signatures["serving_default"]
    labels = open(labels_path).read().splitlines() if labels_path and os.path.isfile(labels_path) else None
    record = _record(run_folder)
    trained_on = record.get("trained_on")
    missing = isinstance(trained_on, dict) and trained_on.get("padding") == "missing"  # NaN past a series' end
    return ServedModel(name, function, dict(function.structured_input_signature[1]),
                       dict(function.structured_outputs), labels, _intervals(run_folder, record), missing)


def _record(run_folder: str | None) -> dict:
    """The run's config.json ({} without a run, or when it cannot be read: served without what it records)."""
    from pipelines import artifacts
    try:
        record = artifacts.read_json(os.path.join(run_folder, artifacts.CONFIG))
    except (TypeError, OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _intervals(run_folder: str | None, record: dict):
    """The intervals the run's family reads from its metrics.json (Family.intervals: a forecaster's); None when
    its family has none, the run measured none, or its files cannot be read: the answers are served without
    bounds."""
    from pipelines import artifacts
    from pipelines.errors import PipelineError
    from pipelines.prediction import recorded_family
    if not record:
        return None
    try:
        family = recorded_family(record, record["task"])
        if family.intervals is None:
            return None
        return family.intervals(artifacts.read_json(os.path.join(run_folder, artifacts.METRICS)))
    except (KeyError, TypeError, OSError, ValueError, PipelineError):
        return None


def _unloadable(path: str, e: Exception) -> str:
    first = (str(e).strip().splitlines() or [""])[0][:200]
    return f"{path} cannot be loaded ({type(e).__name__}: {first}): run its export stage again"


def load_models(output_dir: str) -> tuple[dict[str, ServedModel], dict[str, str]]:
    """The models that load, by name, and the ones that do not, with why: one damaged SavedModel must not take the
    others down."""
    models, damaged = {}, {}
    for name in sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []:
        path = os.path.join(output_dir, name, "saved_model")
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            continue
        try:
            models[name] = load_model(name, path, os.path.join(output_dir, name, "labels.txt"),
                                      os.path.join(output_dir, name))
        except Exception as e:  # TensorFlow raises many types for a damaged SavedModel
            damaged[name] = _unloadable(path, e)
    return models, damaged


def csv_request(body: bytes, model: ServedModel) -> dict:
    """A text/csv body as the JSON request it stands for: each row one example, its values in the order of the
    input's elements (one input); with several inputs, a first row naming them (a table's columns) and each row's
    cells under those names. Empty lines are skipped."""
    import csv

    import numpy as np
    try:
        rows = [row for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))) if row]
    except (UnicodeDecodeError, csv.Error) as e:
        raise BadRequest(f"the CSV body cannot be read ({e})") from None
    if len(model.inputs) == 1:
        (name, spec), = model.inputs.items()
        shape = [d for d in spec.shape.as_list()[1:]]

        def value(cell, i, j):
            try:
                return float(cell) if spec.dtype.is_floating else int(cell)
            except ValueError:
                raise BadRequest(f"CSV row {i}, cell {j}: {cell!r} is not a number") from None
        instances = [np.reshape([value(c, i, j) for j, c in enumerate(row, 1)], shape).tolist()
                     if None not in shape else [value(c, i, j) for j, c in enumerate(row, 1)]
                     for i, row in enumerate(rows, 1)]
        return {"instances": instances}
    header, *data = rows or [[]]
    unknown = sorted(set(header) - set(model.inputs))
    if unknown or not data:
        raise BadRequest(f"a CSV body for this model starts with a row naming its inputs ({', '.join(model.inputs)})"
                         + (f": {', '.join(unknown)} are not among them" if unknown else ", then one row an example"))

    def cell(name, text):
        if model.inputs[name].dtype.name == "string":
            return text
        try:
            return float(text)
        except ValueError:
            raise BadRequest(f"CSV column {name}: {text!r} is not a number") from None
    return {"instances": [{name: cell(name, text) for name, text in zip(header, row)} for row in data]}


def _decode_image(value: dict, spec, where: str):
    """{"b64": PNG or JPEG} → uint8 pixels of the input's height, width and channels."""
    import numpy as np
    import tensorflow as tf
    try:
        data = base64.b64decode(value["b64"], validate=True)
        image = tf.io.decode_image(data, channels=spec.shape[-1], expand_animations=False).numpy()
    except (binascii.Error, TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
        raise BadRequest(f"{where}: b64 is not a base64-encoded PNG or JPEG image ({type(e).__name__})") from None
    want = tuple(spec.shape[1:3])
    if image.shape[:2] != want:
        raise BadRequest(f"{where}: the image is {image.shape[0]}x{image.shape[1]}, the model takes "
                         f"{want[0]}x{want[1]}")
    return np.asarray(image, np.uint8)


def _tensor(value, spec, where: str, missing: bool = False):
    """One input's batched value as a NumPy array of the spec's dtype and shape, or BadRequest. Numbers must be
    JSON numbers (NumPy would take true as 1 and "100" as 100) that fit the dtype after the cast (1e39 does not fit
    float32); finite, or NaN where the model reads `missing` values."""
    import numpy as np
    dtype = spec.dtype
    if dtype.name == "string":
        array = np.asarray(value, dtype=object)
        if not all(isinstance(v, str) for v in array.reshape(-1)):
            raise BadRequest(f"{where} must be text")
        array = array.astype(bytes)
    else:
        try:
            raw = np.asarray(value)
        except ValueError:
            raw = np.asarray([], dtype=object)
        if raw.dtype.kind not in "iuf":
            problem = "true or false" if raw.dtype.kind == "b" else "text" if raw.dtype.kind in "US" else \
                "lists of different lengths or other values"
            raise BadRequest(f"{where} must be numbers in nested lists of one shape, not {problem}")
        if raw.dtype.kind == "f" and not (np.isfinite(raw) | (missing & np.isnan(raw))).all():
            raise BadRequest(f"{where} has values that are not finite numbers" + (
                " (NaN is for the steps past a shorter series' end)" if missing else ""))
        if dtype.is_integer:
            low, high = dtype.min, dtype.max
            if (raw != np.round(raw)).any() or raw.min(initial=low) < low or raw.max(initial=high) > high:
                raise BadRequest(f"{where} must be whole numbers from {low} to {high} ({dtype.name})")
        with np.errstate(over="ignore"):
            array = raw.astype(dtype.as_numpy_dtype)
        if array.dtype.kind == "f" and not (np.isfinite(array) | np.isnan(raw)).all():
            raise BadRequest(f"{where} has values too large for {dtype.name} (at most "
                             f"±{np.finfo(array.dtype).max:.3g})")
    expected = spec.shape.as_list()
    if len(array.shape) != len(expected) or any(e is not None and e != a for e, a in zip(expected, array.shape)):
        shape = "x".join("N" if d is None else str(d) for d in expected)
        raise BadRequest(f"{where} has shape {'x'.join(map(str, array.shape))}, the model takes {shape} "
                         "(N examples)")
    return array


def _instance_value(value, spec, where: str):
    is_image = spec.dtype.name == "uint8" and len(spec.shape) == 4
    if isinstance(value, dict) and "b64" in value:
        if not is_image:
            raise BadRequest(f"{where}: b64 is for image inputs")
        return _decode_image(value, spec, where)
    return value


def _examples(value, where: str) -> None:
    if isinstance(value, list) and len(value) > MAX_INSTANCES:
        raise BadRequest(f"{where} has {len(value)} examples; at most {MAX_INSTANCES} per request")


def parse_request(body, model: ServedModel) -> tuple[dict, bool]:
    """The request's inputs as arrays by name, and whether it came as rows ("instances"), in TF Serving's two
    formats: "instances" (a list, one entry per example) or "inputs" (one batched value per input)."""
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise BadRequest('the body must be a JSON object with "instances" (a list, one per example) or "inputs"')
    names = list(model.inputs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRequest('"instances" must be a non-empty list, one entry per example')
        _examples(instances, '"instances"')
        columns = {n: [] for n in names}
        for i, instance in enumerate(instances):
            if len(names) > 1 or (isinstance(instance, dict) and "b64" not in instance):
                if not isinstance(instance, dict) or set(instance) != set(names):
                    raise BadRequest(f"instances[{i}] must be an object with the inputs {', '.join(names)}")
                items = instance
            else:
                items = {names[0]: instance}
            for n in names:
                value = _instance_value(items[n], model.inputs[n], f"instances[{i}].{n}")
                columns[n].append(value)
        return {n: _tensor(columns[n], model.inputs[n], f"instances[*].{n}", model.missing) for n in names}, True
    inputs = body["inputs"]
    if len(names) == 1 and not isinstance(inputs, dict):
        inputs = {names[0]: inputs}
    if not isinstance(inputs, dict) or set(inputs) != set(names):
        raise BadRequest(f'"inputs" must be an object with the inputs {", ".join(names)}')
    if any(isinstance(v, list) and not v for v in inputs.values()):
        raise BadRequest('"inputs" must hold at least one example for every input')
    for n in names:
        _examples(inputs[n], f'"inputs".{n}')
    arrays = {n: _tensor([_instance_value(v, model.inputs[n], f"inputs.{n}[{i}]") for i, v in enumerate(inputs[n])]
                         if isinstance(inputs[n], list) else inputs[n], model.inputs[n], f"inputs.{n}",
                         model.missing)
              for n in names}
    if len({len(a) for a in arrays.values()}) != 1:
        raise BadRequest('"inputs" must hold the same number of examples for every input')
    return arrays, False


# JSON's true and false outside strings: numbers a numeric model's inputs must not take (NumPy reads true as 1).
_STRINGS, _BOOLS = re.compile(rb'"(?:[^"\\]|\\.)*"'), re.compile(rb"\b(?:true|false)\b")


def decode(body: bytes, model: ServedModel):
    """The body as JSON, or BadRequest: empty, not JSON, nested past Python's limit, or true/false for a number."""
    if not body.strip():
        raise BadRequest('the body is empty: send a JSON object with "instances" (a list, one per example) or '
                         '"inputs"')
    try:
        decoded = json.loads(body)
    except RecursionError:
        raise BadRequest("the body is nested too deeply to be an input") from None
    except ValueError as e:
        raise BadRequest(f"the body is not JSON ({e})") from None
    if model.numeric and _BOOLS.search(_STRINGS.sub(b'""', body)):
        raise BadRequest("the inputs must be numbers: true and false are not")
    return decoded


def predict(model: ServedModel, arrays: dict, rows: bool) -> dict:
    """TF Serving's answer ("predictions" per example, or "outputs" by name); a classifier's adds each example's
    label and probabilities by class name, a forecaster's each example's interval bounds at every level its run
    measured."""
    import numpy as np

    from pipelines.exported import softmax
    outputs = {n: np.asarray(v) for n, v in model.function(**arrays).items()}
    if rows:
        names = list(outputs)
        count = len(next(iter(outputs.values())))
        answer = {"predictions": [outputs[names[0]][i].tolist() if len(names) == 1
                                  else {n: outputs[n][i].tolist() for n in names} for i in range(count)]}
    else:
        answer = {"outputs": {n: v.tolist() for n, v in outputs.items()} if len(outputs) > 1
                  else next(iter(outputs.values())).tolist()}
    forecast = outputs.get("forecast")
    if model.intervals and forecast is not None and forecast.ndim == 2:
        inputs = {name: np.asarray(value) for name, value in arrays.items()}
        widths = {level: model.intervals.halfwidths(inputs, level) for level in model.intervals.multiples}
        answer["intervals"] = [{level: {"lower": (f - w[i]).tolist(), "upper": (f + w[i]).tolist()}
                                for level, w in widths.items() if w.shape[1] == len(f)} for i, f in enumerate(forecast)]
    logits = outputs.get("logits")
    if model.labels and logits is not None and logits.ndim == 2 and logits.shape[1] == len(model.labels):
        probabilities = softmax(logits)
        answer["classifications"] = [
            {"label": model.labels[int(p.argmax())], "score": float(p.max()),
             "probabilities": {label: float(q) for label, q in zip(model.labels, p)}} for p in probabilities]
    return answer


def _label(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped, as its text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts by model and status, and a latency histogram, in Prometheus' text format. Model labels are
    the served names (and UNKNOWN_MODEL), so a client cannot grow the page with names of its own."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def observe(self, model: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(model, status)] = self.requests.get((model, status), 0) + 1
            self.buckets[next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b), len(LATENCY_BUCKETS))] += 1
            self.latency_sum += seconds

    def text(self) -> str:
        with self.lock:
            lines = ["# TYPE dlpipe_requests_total counter"]
            lines += [f'dlpipe_requests_total{{model="{_label(m)}",code="{c}"}} {n}'
                      for (m, c), n in sorted(self.requests.items())]
            lines.append("# TYPE dlpipe_request_errors_total counter")
            errors = sum(n for (_, c), n in self.requests.items() if c >= 400)
            lines.append(f"dlpipe_request_errors_total {errors}")
            lines.append("# TYPE dlpipe_request_latency_seconds histogram")
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), self.buckets):
                cumulative += count
                lines.append(f'dlpipe_request_latency_seconds_bucket{{le="{bound}"}} {cumulative}')
            lines.append(f"dlpipe_request_latency_seconds_sum {self.latency_sum}")
            lines.append(f"dlpipe_request_latency_seconds_count {cumulative}")
        return "\n".join(lines) + "\n"


@dataclasses.dataclass
class _Received:
    """What has come of a body so far: the chunks kept (none past the limit), its size, and whether it ended."""
    chunks: list[bytes] = dataclasses.field(default_factory=list)
    size: int = 0
    ended: bool = False


async def _receive(request, limit: int, received: _Received) -> None:
    """Reads the body into `received`, keeping it up to `limit` bytes and discarding the rest up to DRAIN_FACTOR
    times the limit (memory stays bounded by the limit)."""
    async for chunk in request.stream():
        received.size += len(chunk)
        if received.size <= limit:
            received.chunks.append(chunk)
        else:
            received.chunks.clear()
            if received.size > DRAIN_FACTOR * limit:
                return
    received.ended = True


def _too_large(size: int | None, limit: int, ended: bool) -> BadRequest:
    """The 413 for a body of `size` bytes (None: not known, over the limit); a connection whose body was not read to
    its end is closed after it (nobody will read the rest)."""
    what = f"{size:,} bytes; at most {limit:,}" if size is not None else f"over {limit:,} bytes"
    return BadRequest(f"the body is {what} (--max_body_mb): send fewer examples per request", 413,
                      None if ended else {"Connection": "close"})


async def read_body(request, limit: int, timeout: float) -> bytes:
    """The request's body, or BadRequest: over `limit` bytes (413), not sent within `timeout` seconds (408).

    A body declared over the limit is answered at once when its client waits for the answer before sending it
    (Expect: 100-continue, as curl does) or when it is too large to throw away (DRAIN_FACTOR); otherwise it is read
    to its end and thrown away first, so that a client that writes the whole body before reading (urllib, requests)
    reads the 413 rather than a reset connection."""
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else None
    waits = request.headers.get("expect", "").lower() == "100-continue"
    if size is not None and size > limit and (waits or size > DRAIN_FACTOR * limit):
        raise _too_large(size, limit, ended=False)
    received = _Received()
    try:
        await asyncio.wait_for(_receive(request, limit, received), timeout)
    except asyncio.TimeoutError:
        if received.size > limit or (size or 0) > limit:  # too large, and slow too: the 413 says more
            raise _too_large(size, limit, ended=False) from None
        raise BadRequest(f"the body did not arrive within {timeout:g} s (--read_timeout)", 408,
                         {"Connection": "close"}) from None
    if received.size > limit:
        raise _too_large(received.size if received.ended else None, limit, ended=received.ended)
    return b"".join(received.chunks)


class Routes:
    """The handlers of one server over `models` (name → ServedModel); `damaged` (name → why) are reported, not
    served."""

    def __init__(self, models: dict[str, ServedModel], damaged: dict[str, str], max_body: int, read_timeout: float):
        self.models, self.damaged = models, damaged
        self.max_body, self.read_timeout = max_body, read_timeout
        self.metrics = Metrics()

    def served(self, name: str) -> ServedModel:
        if name in self.damaged:
            raise BadRequest(f"the model {name!r} is not available: {self.damaged[name]}", 503)
        if name not in self.models:
            raise BadRequest(f"no model {name!r}: this server has {', '.join(self.models) or 'none'}", 404)
        return self.models[name]

    def answer(self, name: str, verb: str, body: bytes) -> dict:
        model = self.served(name)
        if verb != "predict":
            raise BadRequest(f"unknown method {verb!r}: use /v1/models/{name}:predict")
        return predict(model, *parse_request(decode(body, model), model))

    def healthz(self):
        return {"status": "ok", "models": list(self.models),
                **({"unavailable": list(self.damaged)} if self.damaged else {})}

    def prometheus(self):
        from fastapi.responses import PlainTextResponse
        return PlainTextResponse(self.metrics.text())

    def status(self, name: str):
        if name in self.damaged:
            return {"model_version_status": [{"version": "1", "state": "END", "status": {
                "error_code": "UNKNOWN", "error_message": self.damaged[name]}}]}
        try:
            self.served(name)
        except BadRequest as e:
            return error(e.status, str(e))
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self, name: str):
        try:
            return self.served(name).metadata()
        except BadRequest as e:
            return error(e.status, str(e))

    def invoke(self, name: str, body: bytes, csv: bool) -> dict:
        """SageMaker's /invocations: the one model on a JSON body as :predict takes it, or a CSV one."""
        model = self.served(name)
        return predict(model, *parse_request(csv_request(body, model) if csv else decode(body, model), model))

    def ping(self):
        return {"status": "ok", "model": next(iter(self.models))}

    async def invocations(self, request):
        csv = request.headers.get("content-type", "").split(";")[0].strip().lower() == "text/csv"
        name = next(iter(self.models))
        return await self.post(name, "invocations", request, lambda body: self.invoke(name, body, csv))

    async def post(self, name: str, verb: str, request, answer=None):
        from fastapi.responses import JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import ClientDisconnect
        start = time.perf_counter()
        label = name if name in self.models or name in self.damaged else UNKNOWN_MODEL
        try:
            body = await read_body(request, self.max_body, self.read_timeout)
            # Parsing and the model run on a worker thread: the event loop keeps answering others meanwhile.
            response = JSONResponse(await run_in_threadpool(answer or (lambda b: self.answer(name, verb, b)), body))
        except ClientDisconnect:  # the client left before sending its body: nobody to answer
            response = Response(status_code=499)
        except BadRequest as e:
            response = error(e.status, str(e), e.headers)
        except Exception as e:  # the model failed on inputs that passed the checks: say so, not a traceback
            logging.error("prediction failed on /v1/models/%s:%s: %s: %s", name, verb, type(e).__name__, e)
            response = error(500, f"the model failed on this request ({type(e).__name__})")
        self.metrics.observe(label, response.status_code, time.perf_counter() - start)
        return response


def error(status: int, message: str, headers: dict[str, str] | None = None):
    from fastapi.responses import JSONResponse
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _register_model_names() -> None:
    """{name:model} in a path: a model's name, which holds no ':' (it starts the verb), so GET
    /v1/models/dense:predict is the predict path asked with the wrong method (405), not a model "dense:predict"."""
    from starlette.convertors import StringConvertor, register_url_convertor

    class ModelName(StringConvertor):
        regex = "[^/:]+"
    register_url_convertor("model", ModelName())


def _http_error_message(request, e) -> str:
    """FastAPI's own 404 and 405 as one line that names the fix: the paths there are, or the method to use."""
    problem = f"{request.method} {request.url.path}: {e.detail}"
    if e.status_code == 405 and e.headers and "Allow" in e.headers:
        return f"{problem}: use {' or '.join(sorted(e.headers['Allow'].split(', ')))}"
    if e.status_code == 404:
        paths = [f"{'/'.join(sorted(r.methods))} {r.path_format}" for r in request.app.routes if hasattr(r, "methods")]
        return f"{problem}: this server answers {', '.join(paths)}"
    return problem


def make_app(models: dict[str, ServedModel], damaged: dict[str, str] | None = None, max_body: int = 16 << 20,
             read_timeout: float = 30.0, sagemaker: bool = False):
    """The FastAPI application over `models`; every error answer, FastAPI's own included, is {"error": ...}, and a
    known path asked with another method is 405 with the Allow header."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    _register_model_names()
    routes = Routes(models, damaged or {}, max_body, read_timeout)
    api = FastAPI(title="dlpipe-serve", docs_url=None, redoc_url=None, openapi_url=None)

    @api.exception_handler(HTTPException)
    async def http_error(request, e):  # an unknown path (404), a wrong method (405)
        return error(e.status_code, _http_error_message(request, e), e.headers)

    @api.exception_handler(RequestValidationError)
    async def validation_error(request, e):
        return error(400, f"{request.url.path}: {e.errors()[0].get('msg', 'a bad request') if e.errors() else e}")

    async def post(name: str, verb: str, request: Request):
        return await routes.post(name, verb, request)
    read = ["GET", "HEAD"]  # HTTP asks both of a path that can be read
    api.add_api_route("/v1/models/{name:model}:{verb}", post, methods=["POST"])
    api.add_api_route("/v1/models/{name:model}", routes.status, methods=read)
    api.add_api_route("/v1/models/{name:model}/metadata", routes.metadata, methods=read)
    api.add_api_route("/healthz", routes.healthz, methods=read)
    api.add_api_route("/metrics", routes.prometheus, methods=read)
    if sagemaker:  # SageMaker's container contract, for the one model served
        async def invocations(request: Request):
            return await routes.invocations(request)
        api.add_api_route("/ping", routes.ping, methods=read)
        api.add_api_route("/invocations", invocations, methods=["POST"])
    return api


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and listening, or one line saying why not (bound here, before uvicorn starts,
    so a taken port is this program's error, not uvicorn's log)."""
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(address[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address[4])
        sock.listen(2048)
        return sock
    except OSError as e:
        print(f"error: cannot listen on {host}:{port} ({e.strerror or e}): choose another --port or --host",
              file=sys.stderr)
        sys.exit(1)


def sagemaker_model(model_dir: str) -> dict[str, ServedModel]:
    """The one model of --sagemaker, named "model" (SageMaker's name for it) under /v1/models/ too; one line and exit 1
    when --model_dir holds none or it cannot be loaded."""
    from pipelines import sagemaker
    from pipelines.errors import PipelineError
    try:
        path, labels = sagemaker.saved_model_in(model_dir)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    try:
        return {"model": load_model("model", path, labels)}
    except Exception as e:  # TensorFlow raises many types for a damaged SavedModel
        print(f"error: {_unloadable(path, e)}", file=sys.stderr)
        sys.exit(1)


def main(argv) -> None:
    if SAGEMAKER.value and argv[1:] == ["serve"]:  # how SageMaker starts a container: `docker run <image> serve`
        argv = argv[:1]
    if len(argv) > 1:
        print(f"error: unexpected arguments {' '.join(argv[1:])}: flags are written --name=value", file=sys.stderr)
        sys.exit(2)
    if SAGEMAKER.value:
        models, damaged = sagemaker_model(MODEL_DIR.value), {}
        port = PORT.value if flags.FLAGS["port"].present else SAGEMAKER_PORT
    else:
        models, damaged = load_models(OUTPUT_DIR.value)
        port = PORT.value
    for why in damaged.values():
        print(f"warning: {why}", file=sys.stderr, flush=True)
    if not models:
        print(f"error: no model to serve in {OUTPUT_DIR.value}: run dlpipe with the export stage first (each "
              "<task>/saved_model is served)", file=sys.stderr)
        sys.exit(1)
    import uvicorn
    sock = listen(HOST.value, port)
    where = (f"{MODEL_DIR.value} on http://{HOST.value}:{port}/invocations" if SAGEMAKER.value else
             f"{OUTPUT_DIR.value} on http://{HOST.value}:{port}/v1/models/")
    print(f"serving {', '.join(models)} from {where}", flush=True)
    config = uvicorn.Config(make_app(models, damaged, int(MAX_BODY_MB.value * (1 << 20)), READ_TIMEOUT.value,
                                     sagemaker=SAGEMAKER.value), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def run() -> None:
    from pipelines import console
    console.start_tensorflow()
    app.run(main)


if __name__ == "__main__":
    run()
