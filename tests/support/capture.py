"""Real servers on 127.0.0.1 for the capture tests: the collector (a subprocess) and small fakes."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CollectorProcess:
    """``convo-warehouse collect`` in a subprocess, started and stopped by its PID."""

    def __init__(self, landing: Path, port: int | None = None, tokens: str = "", *extra: str,
                 keys_file: Path | None = None, env: dict | None = None) -> None:
        self.landing = landing
        self.port = port or free_port()
        self.tokens = tokens
        self.extra = extra
        # the test's own keys file (none unless a test writes it): never the repository's data/
        self.keys_file = keys_file or landing.parent / f"keys-{self.port}.json"
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.log = landing.parent / f"collector-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> CollectorProcess:
        env = {**os.environ, "CONVO_COLLECTOR_TOKENS": self.tokens, "CONVO_COLLECTOR_KEYS_FILE": str(self.keys_file),
               **self.env}
        self.landing.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "convo_warehouse.cli", "collect", "--port", str(self.port),
                 "--landing", str(self.landing), *self.extra],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"collector exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"collector did not answer within {timeout} s: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM: uvicorn's graceful shutdown finishes the open landing file."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def post(self, path: str, body: bytes, token: str | None = None,
             headers: dict | None = None) -> tuple[int, dict, dict]:
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **(headers or {})})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"{}"), dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering POSTs from a list of (status, headers, body) in turn.

    Records each request body and when it arrived. After the script, answers
    every event ``accepted``.
    """

    def __init__(self, script: list[tuple[int, dict, bytes | None]], port: int | None = None) -> None:
        self.script = list(script)
        self.requests: list[tuple[float, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server dispatches to
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((time.monotonic(), body))
                if outer.script:
                    status, headers, answer = outer.script.pop(0)
                else:
                    events = json.loads(body)["events"]
                    status, headers = 200, {}
                    answer = json.dumps({"results": [
                        {"index": i, "event_id": e.get("event_id"), "status": "accepted"}
                        for i, e in enumerate(events)]}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                answer = answer if answer is not None else b"{}"
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events_received(self) -> list[dict]:
        return [event for _, body in self.requests for event in json.loads(body)["events"]]

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class AnswerDroppingProxy:
    """A TCP proxy to the collector that forwards the first request but never returns its answer.

    The client sees the connection close (a lost answer) and retries; the
    collector has already stored the batch.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.dropped = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        drop = self.dropped == 0
        self.dropped += 1 if drop else 0

        def forward(source: socket.socket, sink: socket.socket, is_answer: bool) -> None:
            try:
                while data := source.recv(65536):
                    if is_answer and drop:
                        return  # the answer is lost on the way back (both sockets close below)
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (client, upstream):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)  # wakes the other direction's recv
                        sock.close()
                    except OSError:
                        pass

        threading.Thread(target=forward, args=(upstream, client, True), daemon=True).start()
        forward(client, upstream, False)

    def __enter__(self) -> AnswerDroppingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()


def connect_from(source: str, port: int, timeout: float = 10) -> socket.socket:
    """A TCP connection to the collector on 127.0.0.1 from another loopback address (127.0.0.2, ...):
    another client, as far as per-client limits can tell."""
    sock = socket.socket()
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
