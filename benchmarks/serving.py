"""dlpipe-serve under load, bounded: a dense model exported here, served on 127.0.0.1, and a fixed number of
predict requests (one image each) from a few concurrent clients: requests per second, p50 and p99 latency, errors;
and the same images through the SavedModel called in this process, as the ratio of the two per-request times.
Run by `make bench` (benchmarks/run.py) or alone: `python -m benchmarks.serving`."""

import concurrent.futures
import json
import os
import tempfile
import time
import urllib.request

import numpy as np
import tensorflow as tf

from tests.loopback import serving
from pipelines import runner
from benchmarks import config_of as config_from_args

CLIENTS = 4
REQUESTS = 2000  # in all, split among the clients


def _post(url: str, body: bytes) -> tuple[int, float]:
    start = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.perf_counter() - start


def load_test() -> dict:
    images = np.random.default_rng(0).integers(0, 256, (REQUESTS, 28, 28, 1), dtype=np.uint8)
    bodies = [json.dumps({"instances": [image.tolist()]}).encode() for image in images]
    with tempfile.TemporaryDirectory() as output_dir:
        runner.run(config_from_args("--task=dense", "--epochs=1", "--max_train_examples=2000", "--stages=train,export",
                                    "--tflite_variants=float32", "--noonnx", f"--output_dir={output_dir}"))
        with serving(output_dir) as base:
            url = f"{base}/v1/models/dense:predict"
            _post(url, bodies[0])  # the first call traces the model
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                results = list(pool.map(lambda body: _post(url, body), bodies))
            served = time.perf_counter() - start
        function = tf.saved_model.load(os.path.join(output_dir, "dense", "saved_model")).signatures["serving_default"]
        function(image=tf.constant(images[:1]))
        start = time.perf_counter()
        for image in images:
            function(image=tf.constant(image[None]))
        in_process = time.perf_counter() - start
    latencies = sorted(seconds for _, seconds in results)
    return {"requests": REQUESTS, "clients": CLIENTS, "errors": sum(status != 200 for status, _ in results),
            "requests_per_second": REQUESTS / served, "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "in_process_calls_per_second": REQUESTS / in_process,
            "server_over_in_process_time_per_request": (served / REQUESTS) / (in_process / REQUESTS)}


if __name__ == "__main__":
    print(json.dumps(load_test(), indent=2))
