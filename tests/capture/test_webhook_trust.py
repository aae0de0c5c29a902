"""Intervention webhooks a receiver can trust (issue 47, items 4 and 5): signed with HMAC-SHA256 over a
timestamp and the body, checked by a real receiver on 127.0.0.1 with its own code; evidence masked by
default; an Authorization header or user:password@ in the URL sent; a URL that cannot work refused when
`collect` starts, with its credentials redacted in every message."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import subprocess
import sys
import threading
import time

import pytest
from support.capture import REPO_ROOT, CollectorProcess, free_port, wait_for
from support.live import TOKEN, Script, send

from convo_warehouse.collector.webhook import check_webhook_url, redact_url, sign, verify_signature

SECRET = "whsec-test-4f1c"


class VerifyingReceiver:
    """A webhook receiver that checks each request's signature as a customer would write it:
    HMAC-SHA256(secret, "<t>." + raw body), hex, compared in constant time, t within 5 minutes."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the name http.server dispatches to
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get("Convo-Signature", "")
                fields = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
                signed = fields.get("t", "").encode() + b"." + body
                expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
                genuine = (hmac.compare_digest(expected, fields.get("v1", ""))
                           and abs(time.time() - int(fields.get("t", "0"))) < 300)
                receiver.requests.append({"headers": dict(self.headers), "body": body, "genuine": genuine})
                self.send_response(200 if genuine else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = VerifyingReceiver()
    yield server
    server.close()


def fire(tmp_path, receiver: VerifyingReceiver, url: str, *extra: str, env: dict | None = None) -> dict:
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--webhook-url", url, *extra,
                                 env={"CONVO_INTERVENTION_WEBHOOK_SECRET": SECRET, **(env or {})}).start()
    try:
        script = Script("c-hook")
        send(collector, script.event("user_message", "Hi, my name is Dana Whitfield, dana.w@example.com"),
             script.event("agent_message", "Hello Dana! How can I help?"),
             script.event("user_message", "Dana here again: I want to talk to a real person, call 07700 900123"))
        wait_for(lambda: receiver.requests, 20, "the intervention webhook")
    finally:
        collector.stop()
    return receiver.requests[0]


def test_the_receiver_verifies_the_signature_and_sees_no_personal_data(tmp_path, receiver):
    request = fire(tmp_path, receiver, f"http://127.0.0.1:{receiver.port}/hook",
                   env={"CONVO_INTERVENTION_WEBHOOK_AUTHORIZATION": "Bearer receiver-secret"})
    assert request["genuine"], request["headers"]
    assert request["headers"]["Authorization"] == "Bearer receiver-secret"
    payload = json.loads(request["body"])
    texts = [item["text"] for item in payload["evidence"]]
    sent = request["body"].decode()
    for secret in ("Dana", "Whitfield", "dana.w@example.com", "900123"):
        assert secret not in sent, texts
    assert any("#NAME#" in text and "#PHONENUMBER#" in text for text in texts), texts
    # a forged or replayed body fails the same check
    header = request["headers"]["Convo-Signature"]
    assert verify_signature(SECRET, header, request["body"])
    assert not verify_signature(SECRET, header, request["body"].replace(b"c-hook", b"c-evil"))
    assert not verify_signature("another-secret", header, request["body"])
    assert not verify_signature(SECRET, header, request["body"], now=time.time() + 3600)


def test_raw_text_only_when_asked_and_basic_auth_from_the_url(tmp_path, receiver):
    request = fire(tmp_path, receiver, f"http://hook-user:hook%20pass@127.0.0.1:{receiver.port}/hook",
                   "--webhook-raw-text")
    assert request["genuine"]
    import base64

    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"hook-user:hook pass").decode()
    assert "Dana here again" in request["body"].decode()


def test_signature_covers_every_secret_while_rotating():
    body = b'{"rule": "r"}'
    header = sign(["old-secret", "new-secret"], body, int(time.time()))
    assert verify_signature("old-secret", header, body) and verify_signature("new-secret", header, body)


@pytest.mark.parametrize(
    ("url", "extra", "message"),
    [
        ("http://ops:hunter2@hooks.example.com:notaport/in?token=abc123", (), "cannot be read"),
        ("ftp://ops:hunter2@hooks.example.com/in?token=abc123", (), "must be https"),
        ("http://ops:hunter2@hooks.example.com/in?token=abc123", (), "plain http"),
    ],
    ids=["bad-port", "bad-scheme", "plain-http-beyond-loopback"],
)
def test_a_webhook_url_that_cannot_work_stops_collect_without_showing_its_secrets(tmp_path, url, extra, message):
    result = subprocess.run(
        [sys.executable, "-m", "convo_warehouse.cli", "collect", "--port", str(free_port()), "--landing",
         str(tmp_path / "landing"), "--keys-file", str(tmp_path / "keys.json"), "--webhook-url", url, *extra],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output and "--webhook-url" in output
    assert "hunter2" not in output and "abc123" not in output and "Traceback" not in output


def test_plain_http_beyond_loopback_only_when_allowed_and_redaction():
    with pytest.raises(ValueError):
        check_webhook_url("http://hooks.example.com/in")
    assert check_webhook_url("http://hooks.example.com/in", allow_http=True).hostname == "hooks.example.com"
    assert check_webhook_url("https://hooks.example.com/in").scheme == "https"
    assert redact_url("https://ops:hunter2@h.example/p?token=abc&x=1") == "https://ops:***@h.example/p?token=***&x=***"
