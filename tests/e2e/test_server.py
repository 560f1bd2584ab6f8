"""dlpipe-serve: the real server on 127.0.0.1, a free port, called with a plain HTTP client (urllib) as any client
would: TF Serving's REST API, answers equal to the SavedModel's, label names, base64 images, a forecaster's window,
400 for every bad request with a message naming the field, 405 for a known path's wrong method, a 413 every client
reads, status, health and metrics."""

import base64
import http.client
import io
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pipelines import runner
from tests import series as made
from tests.loopback import serving
from tests.conftest import config_from_flags


def call(url: str, body=None, raw: bytes | None = None):
    """(status, JSON answer) of a GET, or a POST of `body` as JSON (or `raw` bytes)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if "json" in response.headers["Content-Type"] else text
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A dense, a GAN and a small forecaster (conv on a monthly series, 24-month window, 3 ahead) run exported into one
    --output_dir, and a fourth folder whose SavedModel is damaged, served by one dlpipe-serve process that reads a
    body for at most 3 seconds."""
    import shutil
    output_dir = tmp_path_factory.mktemp("runs")
    series = made.monthly_csv(output_dir / "monthly.csv", made.seasonal(120))
    for flags in (("--task=dense", "--hidden_units=16"),
                  ("--task=gan", "--passes_per_epoch=1", "--batch_size=64", "--noise_dim=8", "--generator_widths=16,8",
                   "--discriminator_widths=8,16"),
                  ("--task=conv", f"--dataset={series}", "--time_column=month", "--label_column=passengers",
                   "--horizon=3", "--conv_filters=8,16", "--dense_units=16")):
        runner.run(config_from_flags(*flags, "--max_train_examples=600", "--max_test_examples=100", "--epochs=1",
                                     "--stages=train,export", "--tflite_variants=float32", "--noonnx",
                                     f"--output_dir={output_dir}"))
    shutil.copytree(output_dir / "dense" / "saved_model", output_dir / "broken" / "saved_model")
    (output_dir / "broken" / "saved_model" / "saved_model.pb").write_bytes(b"not a graph")
    with serving(output_dir, "--read_timeout=3") as base:
        yield base, output_dir


def images(count: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)


def test_predictions_equal_the_saved_models_with_label_names_and_probabilities(server):
    base, output_dir = server
    x = images(5)
    status, answer = call(f"{base}/v1/models/dense:predict", {"instances": x.tolist()})
    assert status == 200, answer
    expected = tf.saved_model.load(str(output_dir / "dense" / "saved_model")).signatures["serving_default"](
        image=tf.constant(x))["logits"].numpy()
    np.testing.assert_allclose(answer["predictions"], expected, atol=1e-5)
    labels = (output_dir / "dense" / "labels.txt").read_text().splitlines()
    for row, classification in zip(expected, answer["classifications"]):
        assert classification["label"] == labels[row.argmax()]
        assert abs(sum(classification["probabilities"].values()) - 1) < 1e-5
    status, columns = call(f"{base}/v1/models/dense:predict", {"inputs": {"image": x.tolist()}})
    np.testing.assert_allclose(columns["outputs"], expected, atol=1e-5)


def test_base64_png_and_jpeg_images_are_decoded_as_tf_serving_does(server):
    base, _ = server
    x = images(1)
    png, jpeg = io.BytesIO(), io.BytesIO()
    Image.fromarray(x[0, ..., 0]).save(png, format="PNG")
    Image.fromarray(x[0, ..., 0]).convert("RGB").save(jpeg, format="JPEG")
    _, raw = call(f"{base}/v1/models/dense:predict", {"instances": x.tolist()})
    _, encoded = call(f"{base}/v1/models/dense:predict",
                      {"instances": [{"b64": base64.b64encode(png.getvalue()).decode()}]})
    assert encoded["predictions"] == raw["predictions"]  # PNG is lossless: the same pixels
    status, answer = call(f"{base}/v1/models/dense:predict",
                          {"instances": [{"b64": base64.b64encode(jpeg.getvalue()).decode()}]})
    assert status == 200 and len(answer["predictions"][0]) == 10


def test_the_gan_returns_pixels_an_app_can_encode_as_png(server):
    base, _ = server
    status, metadata = call(f"{base}/v1/models/gan/metadata")
    inputs = metadata["metadata"]["signature_def"]["serving_default"]["inputs"]
    (name, spec), = inputs.items()
    noise = np.random.default_rng(1).standard_normal((2, spec["shape"][1])).tolist()
    status, answer = call(f"{base}/v1/models/gan:predict", {"instances": noise})
    assert status == 200, answer
    pixels = np.asarray(answer["predictions"])
    assert pixels.shape == (2, 28, 28, 1) and pixels.min() >= 0 and pixels.max() <= 255
    assert (pixels == np.round(pixels)).all()
    Image.fromarray(pixels[0, ..., 0].astype(np.uint8)).save(io.BytesIO(), format="PNG")
    assert "classifications" not in answer


@pytest.mark.parametrize("path,body,fragment", [
    ("dense:predict", [1, 2], "JSON object"),
    ("dense:predict", {}, '"instances"'),
    ("dense:predict", {"instances": [], }, "non-empty list"),
    ("dense:predict", {"instances": "x"}, "non-empty list"),
    ("dense:predict", {"instances": [[1, 2, 3]]}, "instances[*].image has shape 1x3"),
    ("dense:predict", {"instances": np.zeros((1, 28, 28)).tolist()}, "the model takes Nx28x28x1"),
    ("dense:predict", {"instances": np.full((1, 28, 28, 1), 300).tolist()}, "whole numbers from 0 to 255"),
    ("dense:predict", {"instances": np.full((1, 28, 28, 1), -1).tolist()}, "whole numbers from 0 to 255"),
    ("dense:predict", {"instances": np.full((1, 28, 28, 1), 0.5).tolist()}, "whole numbers from 0 to 255"),
    ("dense:predict", {"instances": [[["a"] * 28] * 28]}, "must be numbers"),
    ("dense:predict", {"instances": [np.zeros((28, 28, 1)).tolist(), [[0]]]}, "nested lists of one shape"),
    ("dense:predict", {"instances": [{"b64": "not base64!"}]}, "not a base64-encoded PNG or JPEG"),
    ("dense:predict", {"instances": [{"b64": base64.b64encode(b"plain text").decode()}]}, "PNG or JPEG"),
    ("dense:predict", {"instances": [{"pixels": [1]}]}, "must be an object with the inputs image"),
    ("dense:predict", {"inputs": {"wrong": [1]}}, '"inputs" must be an object with the inputs image'),
    ("dense:predict", {"inputs": []}, "at least one example"),
    ("dense:predict", {"instances": [[1]], "inputs": [[1]]}, '"instances"'),
    ("dense:predict", {"instances": np.zeros((1025, 1)).tolist()}, "at most 1024"),
    ("dense:predict", {"inputs": {"image": np.zeros((1025, 1)).tolist()}}, "has 1025 examples; at most 1024"),
    ("dense:predict", {"instances": [[[[True]] * 28] * 28]}, "true and false are not"),
    ("dense:predict", {"instances": [[[["100"]] * 28] * 28]}, "not text"),
    ("gan:predict", {"instances": [[1e39] * 8]}, "too large for float32"),
    ("dense:classify", {"instances": [[1]]}, "unknown method 'classify'"),
    ("gan:predict", {"instances": [[float("nan")] * 8]}, "not finite"),
    ("gan:predict", {"instances": [[0.0] * 7]}, "has shape 1x7"),
    ("gan:predict", {"instances": [{"b64": "AAAA"}]}, "b64 is for image inputs"),
])
def test_a_bad_request_is_400_naming_the_problem(server, path, body, fragment):
    base, _ = server
    raw = json.dumps(body).replace("NaN", "NaN").encode()
    status, answer = call(f"{base}/v1/models/{path}", raw=raw)
    assert status == 400, answer
    assert fragment in answer["error"], answer["error"]


def test_a_body_that_is_not_json_and_an_unknown_model(server):
    base, _ = server
    status, answer = call(f"{base}/v1/models/dense:predict", raw=b"{not json")
    assert status == 400 and "not JSON" in answer["error"]
    status, answer = call(f"{base}/v1/models/nope:predict", {"instances": [[1]]})
    assert status == 404 and "no model 'nope'" in answer["error"] and "dense" in answer["error"]


def test_json_nested_past_pythons_limit_and_an_empty_body_are_400(server):
    base, _ = server
    status, answer = call(f"{base}/v1/models/dense:predict", raw=b"[" * 10_000 + b"]" * 10_000)
    assert status == 400 and "nested too deeply" in answer["error"]
    status, answer = call(f"{base}/v1/models/dense:predict", raw=b"")
    assert status == 400 and answer["error"].startswith('the body is empty: send a JSON object with "instances"')


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/v1/models/dense:predict", "POST"),
    ("PUT", "/v1/models/dense:predict", "POST"),
    ("GET", "/v1/models/nope:classify", "POST"),
    ("POST", "/v1/models/dense", "GET, HEAD"),
    ("POST", "/v1/models/dense/metadata", "GET, HEAD"),
    ("DELETE", "/v1/models/dense/metadata", "GET, HEAD"),
    ("POST", "/healthz", "GET, HEAD"),
    ("PUT", "/metrics", "GET, HEAD"),
    ("OPTIONS", "/healthz", "GET, HEAD"),
])
def test_a_known_path_asked_with_another_method_is_405_naming_the_ones_it_takes(server, method, path, allow):
    base, _ = server
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(base + path, method=method, data=b"{}" if method != "GET"
                                                      else None), timeout=10)
    assert e.value.code == 405 and set(e.value.headers["Allow"].split(", ")) == set(allow.split(", "))
    (message,) = json.loads(e.value.read()).values()
    assert message == f"{method} {path}: Method Not Allowed: use {' or '.join(sorted(allow.split(', ')))}"


def test_an_unknown_path_is_404_listing_the_paths_and_head_reads_what_get_does(server):
    base, _ = server
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{base}/v2/nothing", timeout=10)
    (message,) = json.loads(e.value.read()).values()
    assert e.value.code == 404 and message.startswith("GET /v2/nothing: Not Found: this server answers POST "
                                                      "/v1/models/{name}:{verb}, GET/HEAD /v1/models/{name}")
    for path in ("/healthz", "/metrics", "/v1/models/dense", "/v1/models/dense/metadata"):
        with urllib.request.urlopen(urllib.request.Request(base + path, method="HEAD"), timeout=10) as response:
            assert response.status == 200 and response.read() == b""


def reply_on(client: socket.socket) -> str:
    """The whole reply on a socket (its body may come in a later packet than its head)."""
    reply = client.recv(4096).decode()
    length = int(re.search(r"content-length: (\d+)", reply, re.I).group(1))
    while len(reply.encode()) < reply.index("\r\n\r\n") + 4 + length:
        reply += client.recv(4096).decode()
    return reply


def raw_reply(base: str, head: str) -> str:
    """The whole reply to `head` (a request's first lines, no body) sent on a socket."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(head.encode())
        return reply_on(client)


def test_a_body_over_the_limit_is_413_read_by_a_client_that_sends_the_whole_body_before_reading(server):
    base, _ = server
    start = time.perf_counter()
    status, answer = call(f"{base}/v1/models/dense:predict", raw=b" " * (27 << 20))  # urllib, as requests does
    assert status == 413 and answer == {"error": "the body is 28,311,552 bytes; at most 16,777,216 (--max_body_mb): "
                                                 "send fewer examples per request"}
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)  # no Content-Length: chunks, then the reply
    connection.request("POST", "/v1/models/dense:predict", body=(b" " * (1 << 20) for _ in range(20)),
                       encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and b"the body is 20,971,520 bytes" in response.read()
    connection.request("GET", "/healthz")  # the body was read to its end: the connection serves the next request
    assert connection.getresponse().status == 200
    connection.close()
    assert time.perf_counter() - start < 2  # 47 MB read and thrown away, none of it kept


@pytest.mark.parametrize("declared,expect", [(17 << 20, "Expect: 100-continue\r\n"), (1 << 30, "")])
def test_a_body_declared_over_the_limit_is_413_at_once_when_its_client_waits_or_it_is_too_large_to_discard(
        server, declared, expect):
    base, _ = server
    start = time.perf_counter()  # curl waits for 100-continue; past 4 times the limit, nothing is read
    reply = raw_reply(base, f"POST /v1/models/dense:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n"
                            f"{expect}\r\n")
    assert reply.startswith("HTTP/1.1 413") and f"the body is {declared:,} bytes; at most 16,777,216" in reply
    assert "connection: close" in reply.lower() and time.perf_counter() - start < 1


def test_the_server_answers_others_while_it_parses_a_large_body(server):
    import threading
    base, _ = server
    large = json.dumps({"instances": np.zeros((1000, 28, 28, 1), np.uint8).tolist()}).encode()  # 6 MB
    finished = {}

    def predict_large():
        call(f"{base}/v1/models/dense:predict", raw=large)
        finished["large"] = time.perf_counter()

    thread = threading.Thread(target=predict_large)
    thread.start()
    time.sleep(0.05)  # the large body is on its way
    assert call(f"{base}/healthz")[0] == 200
    answered = time.perf_counter()
    thread.join()
    assert answered < finished["large"]  # a 40 MB body once froze the server for 12.7 s: healthz waited for it


def test_a_body_that_never_arrives_is_408_or_413_if_too_large_too_and_a_client_that_leaves_is_no_error(server):
    base, _ = server
    host, port = base.removeprefix("http://").split(":")
    head = (f"POST /v1/models/dense:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: {}\r\n\r\n{{\"instances\"")
    with socket.create_connection((host, int(port)), timeout=10) as slow, \
            socket.create_connection((host, int(port)), timeout=10) as slow_and_large:
        slow.sendall(head.format(100).encode())
        slow_and_large.sendall(head.format(17 << 20).encode())  # within what the server would read and discard
        start = time.perf_counter()
        reply, large_reply = reply_on(slow), reply_on(slow_and_large)
    assert reply.startswith("HTTP/1.1 408") and 2.5 < time.perf_counter() - start < 8
    assert large_reply.startswith("HTTP/1.1 413") and "the body is 17,825,792 bytes" in large_reply
    with socket.create_connection((host, int(port)), timeout=10) as leaving:
        leaving.sendall(head.format(100).encode())
    time.sleep(0.5)
    _, text = call(f"{base}/metrics")
    assert 'code="500"' not in text


def test_a_forecaster_forecasts_a_window_whose_values_are_all_equal(server):
    """'The label is 7 at every step: there is nothing to forecast' is a rule for a training series only."""
    base, output_dir = server
    windows = np.array([np.full((24, 1), level, np.float32) for level in (0.0, 150.0, -3.5e4)])
    status, answer = call(f"{base}/v1/models/conv:predict", {"instances": windows.tolist()})
    assert status == 200, answer
    forecasts = np.array(answer["predictions"])
    expected = tf.saved_model.load(str(output_dir / "conv" / "saved_model")).signatures["serving_default"](
        window=tf.constant(windows))["forecast"].numpy()
    assert forecasts.shape == (3, 3) and np.isfinite(forecasts).all()
    np.testing.assert_allclose(forecasts, expected, rtol=1e-5)


def test_a_damaged_saved_model_is_reported_and_the_others_served(server):
    base, _ = server
    status, answer = call(f"{base}/v1/models/broken")
    (version,) = answer["model_version_status"]
    assert status == 200 and version["state"] == "END" and "broken/saved_model cannot be loaded" in \
        version["status"]["error_message"]
    status, answer = call(f"{base}/v1/models/broken:predict", {"instances": [[1]]})
    assert status == 503 and "export stage again" in answer["error"]
    assert call(f"{base}/healthz")[1]["unavailable"] == ["broken"]


def test_metrics_labels_are_the_served_names_escaped_however_many_names_are_asked(server):
    base, _ = server
    for i in range(50):
        name = urllib.parse.quote(f'x{i}"}}\n')  # a quote, a brace and a newline in the URL's model name
        call(f"{base}/v1/models/{name}:predict", {"instances": [[1]]})
    _, text = call(f"{base}/metrics")
    unknown = [line for line in text.splitlines() if line.startswith("dlpipe_requests_total") and "(unknown)" in line]
    assert len(unknown) == 1 and int(unknown[0].split()[-1]) >= 50
    assert all(line.count('"') % 2 == 0 for line in text.splitlines())


def test_a_taken_port_is_one_line(server, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, assert_one_line_error
    _, output_dir = server
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run([sys.executable, "-m", "pipelines.server", f"--output_dir={output_dir}",
                                 f"--port={taken.getsockname()[1]}"], cwd=ROOT, capture_output=True, text=True,
                                timeout=120)
    assert_one_line_error(result, "cannot listen on 127.0.0.1", "Address already in use", "choose another --port")


def test_status_health_and_metrics_after_the_bad_requests(server):
    base, _ = server
    assert call(f"{base}/v1/models/dense") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    assert call(f"{base}/healthz") == (200, {"status": "ok", "models": ["conv", "dense", "gan"],
                                             "unavailable": ["broken"]})
    status, text = call(f"{base}/metrics")
    assert status == 200
    assert 'dlpipe_requests_total{model="dense",code="200"}' in text
    assert 'dlpipe_request_latency_seconds_bucket{le="+Inf"}' in text
    counts = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if not line.startswith("#")}
    assert counts["dlpipe_request_errors_total"] >= 1
