"""The intervention webhook's sender threads (collector/webhook.py), against a slow local receiver."""

from __future__ import annotations

import http.server
import threading
import time

from convo_warehouse.collector.webhook import WebhookSender, WebhookSettings


class SlowReceiver:
    """Answers 200 after ``delay`` seconds; records when each request arrived and its idempotency key."""

    def __init__(self, delay: float) -> None:
        self.arrivals: list[tuple[float, str]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the name http.server dispatches to
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrivals.append((time.monotonic(), self.headers["Idempotency-Key"]))
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_slow_receiver_does_not_hold_every_later_intervention_back():
    receiver = SlowReceiver(delay=0.5)
    sender = WebhookSender(WebhookSettings(url=receiver.url, senders=4))
    try:
        started = time.monotonic()
        for number in range(4):
            sender.submit({"idempotency_key": f"k{number}", "rule": "r"})
        deadline = time.monotonic() + 10
        while len(receiver.arrivals) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        # one sender would deliver the 4th after 3 answers of 0.5 s (1.5 s); four deliver them
        # together (the bound leaves a busy machine room, and still fails for one sender)
        assert sorted(key for _, key in receiver.arrivals) == ["k0", "k1", "k2", "k3"]
        assert max(at for at, _ in receiver.arrivals) - started < 1.0
    finally:
        sender.close(timeout=5)
        receiver.server.shutdown()
    assert sender.counts == {"sent": 4, "failed": 0, "retried": 0, "dropped": 0}


def test_every_payload_is_sent_once_by_the_sender_threads():
    receiver = SlowReceiver(delay=0.0)
    sender = WebhookSender(WebhookSettings(url=receiver.url, senders=3))
    try:
        for number in range(60):
            sender.submit({"idempotency_key": f"k{number}", "rule": "r"})
        sender.close(timeout=10)
    finally:
        receiver.server.shutdown()
    assert sorted(key for _, key in receiver.arrivals) == sorted(f"k{number}" for number in range(60))
    assert sender.counts["sent"] == 60
