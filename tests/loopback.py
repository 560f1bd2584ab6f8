"""What the tests (and the benchmarks) run on 127.0.0.1: free ports, and dlpipe-serve in a child process."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(count: int = 1) -> list[int]:
    """Ports nothing listens on now, on 127.0.0.1, all bound at once so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextlib.contextmanager
def answering(command: list[str], url: str, name: str, timeout: float = 120, env: dict | None = None):
    """`command` started at once (with `env`, else this process' environment): yields a function that waits until
    `url` answers, or raises RuntimeError with what the process printed (kept in a file, not a pipe, which a long
    run's log could fill and block) when it exits or `timeout` seconds pass; the process is stopped on exit."""
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)

        def ready():
            deadline = time.time() + timeout
            while True:
                try:
                    urllib.request.urlopen(url, timeout=1).read()
                    return
                except OSError:
                    if process.poll() is not None or time.time() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"{name} did not start:\n{log.read()}") from None
                    time.sleep(0.2)
        try:
            yield ready
        finally:
            process.terminate()
            process.wait(30)


@contextlib.contextmanager
def serving(output_dir, *flags: str, timeout: float = 120):
    """`python -m pipelines.server` over `output_dir` on a free port, once its /healthz answers: yields the base
    URL, and stops the server on exit; `flags` are more of its flags (answering: how it is started and awaited)."""
    (port,) = free_ports()
    base = f"http://127.0.0.1:{port}"
    with answering([sys.executable, "-m", "pipelines.server", f"--output_dir={output_dir}", f"--port={port}", *flags],
                   f"{base}/healthz", "dlpipe-serve", timeout) as ready:
        ready()
        yield base
