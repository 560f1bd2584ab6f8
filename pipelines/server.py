"""dlpipe-serve: a run's SavedModels over HTTP, speaking TF Serving's REST API, so a client can move to TF Serving
unchanged.

    dlpipe-serve --output_dir=runs --port=8501
    POST /v1/models/<task>:predict   {"instances": [...]} (one per example) or {"inputs": ...} (columns)
    GET  /v1/models/<task>           status, as TF Serving gives it;  GET /v1/models/<task>/metadata: the signature
    GET  /healthz                    GET /metrics (Prometheus: requests, errors, latency)

Every task folder under --output_dir with a saved_model/ is served under the task's name. Inputs are checked
against the serving signature (names, dtype, shape, value range) before the model sees them: a bad request is HTTP
400 with {"error": "..."} naming the field. Image inputs take nested lists of uint8 pixels or {"b64": <PNG or
JPEG>} as TF Serving does; a classifier's answer adds its label names and probabilities beside the logits.

Its flags are this second program's own (dlpipe's are in flags.py): it shares no setting with a run.
"""

import base64
import binascii
import dataclasses
import os
import sys
import threading
import time

from absl import app, flags, logging

PORT = flags.DEFINE_integer("port", 8501, "Port to listen on (TF Serving's REST port by default).", lower_bound=0,
                            upper_bound=65535)
HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; 0.0.0.0 for every interface.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", "runs", "The --output_dir of dlpipe runs: each <task>/saved_model "
                                 "in it is served as /v1/models/<task>.")

MAX_INSTANCES = 1024  # per request: a bound on what one request makes the server hold
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class BadRequest(ValueError):
    """A request the model cannot take: HTTP 400, its message naming the field."""


@dataclasses.dataclass
class ServedModel:
    name: str
    function: object                   # the SavedModel's serving_default concrete function
    inputs: dict[str, object]          # input name → tf.TensorSpec
    outputs: dict[str, object]         # output name → tf.TensorSpec
    labels: list[str] | None           # a classifier's class names (labels.txt), in output order

    def metadata(self) -> dict:
        def spec(s):
            return {"dtype": s.dtype.name, "shape": [-1 if d is None else d for d in s.shape.as_list()]}
        return {"model_spec": {"name": self.name, "version": "1"},
                "metadata": {"signature_def": {"serving_default": {
                    "inputs": {n: spec(s) for n, s in self.inputs.items()},
                    "outputs": {n: spec(s) for n, s in self.outputs.items()}}}}}


def load_models(output_dir: str) -> dict[str, ServedModel]:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops a KerasHub preset's tokenizer runs in its SavedModel)
    models = {}
    for name in sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []:
        path = os.path.join(output_dir, name, "saved_model")
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            continue
        function = tf.saved_model.load(path).signatures["serving_default"]
        labels_path = os.path.join(output_dir, name, "labels.txt")
        labels = open(labels_path).read().splitlines() if os.path.isfile(labels_path) else None
        models[name] = ServedModel(name, function, dict(function.structured_input_signature[1]),
                                   dict(function.structured_outputs), labels)
    return models


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


def _tensor(value, spec, where: str):
    """One input's batched value as a NumPy array of the spec's dtype and shape, or BadRequest."""
    import numpy as np
    dtype = spec.dtype
    if dtype.name == "string":
        array = np.asarray(value, dtype=object)
        if not all(isinstance(v, str) for v in array.reshape(-1)):
            raise BadRequest(f"{where} must be text")
        array = array.astype(bytes)
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise BadRequest(f"{where} must be numbers in nested lists of one shape") from None
        if not np.isfinite(array).all():
            raise BadRequest(f"{where} has values that are not finite numbers")
        if dtype.is_integer:
            low, high = dtype.min, dtype.max
            if (array != np.round(array)).any() or array.min(initial=low) < low or array.max(initial=high) > high:
                raise BadRequest(f"{where} must be whole numbers from {low} to {high} ({dtype.name})")
        array = array.astype(dtype.as_numpy_dtype)
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
        if len(instances) > MAX_INSTANCES:
            raise BadRequest(f'"instances" has {len(instances)} entries; at most {MAX_INSTANCES} per request')
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
        return {n: _tensor(columns[n], model.inputs[n], f"instances[*].{n}") for n in names}, True
    inputs = body["inputs"]
    if len(names) == 1 and not isinstance(inputs, dict):
        inputs = {names[0]: inputs}
    if not isinstance(inputs, dict) or set(inputs) != set(names):
        raise BadRequest(f'"inputs" must be an object with the inputs {", ".join(names)}')
    if any(isinstance(v, list) and not v for v in inputs.values()):
        raise BadRequest('"inputs" must hold at least one example for every input')
    arrays = {n: _tensor([_instance_value(v, model.inputs[n], f"inputs.{n}[{i}]") for i, v in enumerate(inputs[n])]
                         if isinstance(inputs[n], list) else inputs[n], model.inputs[n], f"inputs.{n}")
              for n in names}
    if len({len(a) for a in arrays.values()}) != 1:
        raise BadRequest('"inputs" must hold the same number of examples for every input')
    return arrays, False


def predict(model: ServedModel, arrays: dict, rows: bool) -> dict:
    """TF Serving's answer ("predictions" per example, or "outputs" by name); a classifier's adds each example's
    label and probabilities by class name."""
    import numpy as np
    outputs = {n: np.asarray(v) for n, v in model.function(**arrays).items()}
    if rows:
        names = list(outputs)
        count = len(next(iter(outputs.values())))
        answer = {"predictions": [outputs[names[0]][i].tolist() if len(names) == 1
                                  else {n: outputs[n][i].tolist() for n in names} for i in range(count)]}
    else:
        answer = {"outputs": {n: v.tolist() for n, v in outputs.items()} if len(outputs) > 1
                  else next(iter(outputs.values())).tolist()}
    logits = outputs.get("logits")
    if model.labels and logits is not None and logits.ndim == 2 and logits.shape[1] == len(model.labels):
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        answer["classifications"] = [
            {"label": model.labels[int(p.argmax())], "score": float(p.max()),
             "probabilities": {label: float(q) for label, q in zip(model.labels, p)}} for p in probabilities]
    return answer


class Metrics:
    """Request counts by model and status, and a latency histogram, in Prometheus' text format."""

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
            lines += [f'dlpipe_requests_total{{model="{m}",code="{c}"}} {n}'
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


def make_app(models: dict[str, ServedModel]):
    """The FastAPI application over `models` (name → ServedModel)."""
    import json

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    api = FastAPI(title="dlpipe-serve", docs_url=None, redoc_url=None)
    metrics = Metrics()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def served(name: str) -> ServedModel:
        if name not in models:
            raise LookupError(f"no model {name!r}: this server has {', '.join(models) or 'none'}")
        return models[name]

    @api.get("/healthz")
    def healthz():
        return {"status": "ok", "models": list(models)}

    @api.get("/metrics", response_class=PlainTextResponse)
    def prometheus():
        return metrics.text()

    @api.get("/v1/models/{name}")
    def status(name: str):
        try:
            served(name)
        except LookupError as e:
            return error(404, str(e))
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    @api.get("/v1/models/{name}/metadata")
    def metadata(name: str):
        try:
            return served(name).metadata()
        except LookupError as e:
            return error(404, str(e))

    @api.post("/v1/models/{target}")
    async def post(target: str, request: Request):
        start = time.perf_counter()
        name, _, verb = target.partition(":")
        code, answer = 200, None
        try:
            model = served(name)
            if verb != "predict":
                raise BadRequest(f"unknown method {verb!r}: use /v1/models/{name}:predict")
            try:
                body = json.loads(await request.body())
            except ValueError as e:
                raise BadRequest(f"the body is not JSON ({e})") from None
            arrays, rows = parse_request(body, model)
            answer = predict(model, arrays, rows)
        except LookupError as e:
            code, answer = 404, {"error": str(e)}
        except BadRequest as e:
            code, answer = 400, {"error": str(e)}
        except Exception as e:  # the model failed on inputs that passed the checks: say so, not a traceback
            logging.exception("prediction failed")
            code, answer = 500, {"error": f"the model failed on this request ({type(e).__name__})"}
        metrics.observe(name, code, time.perf_counter() - start)
        return JSONResponse(answer, status_code=code)

    return api


def main(argv) -> None:
    if len(argv) > 1:
        print(f"error: unexpected arguments {' '.join(argv[1:])}: flags are written --name=value", file=sys.stderr)
        sys.exit(2)
    models = load_models(OUTPUT_DIR.value)
    if not models:
        print(f"error: no exported model in {OUTPUT_DIR.value}: run dlpipe with the export stage first (each "
              "<task>/saved_model is served)", file=sys.stderr)
        sys.exit(1)
    import uvicorn
    print(f"serving {', '.join(models)} from {OUTPUT_DIR.value} on http://{HOST.value}:{PORT.value}/v1/models/",
          flush=True)
    try:
        uvicorn.run(make_app(models), host=HOST.value, port=PORT.value, log_level="warning")
    except OSError as e:  # the port is taken, the address is not this machine's
        print(f"error: cannot listen on {HOST.value}:{PORT.value} ({e.strerror}): choose another --port or --host",
              file=sys.stderr)
        sys.exit(1)


def run() -> None:
    from pipelines import console
    console.start_tensorflow()
    app.run(main)


if __name__ == "__main__":
    run()
