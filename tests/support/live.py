"""Helpers for tests of the live state through a real collector: a webhook receiver, scripted
conversations, and reading the live API."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

from support.capture import CollectorProcess, wait_for

TOKEN = "s3cret"


class WebhookReceiver:
    """Records every POST (headers, JSON body, arrival time); answers from ``statuses`` in turn, then 200,
    ``delay`` seconds after the request arrived (connections kept alive)."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.requests: list[dict] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the name http.server dispatches to
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append({"headers": dict(self.headers), "body": json.loads(body),
                                          "status": status, "at": time.time()})
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict]:
        return [request for request in self.requests if request["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def get(collector: CollectorProcess, path: str) -> tuple[int, dict]:
    request = urllib.request.Request(collector.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Script:
    """Events of one conversation, timestamps one second apart."""

    def __init__(self, conversation_id: str, start: datetime | None = None) -> None:
        self.conversation_id = conversation_id
        self.at = start or datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=5)
        self.number = 0

    def event(self, event_type: str, content: str | None = None, **properties) -> dict:
        self.number += 1
        self.at += timedelta(seconds=1)
        if content is not None:
            properties["content"] = content
        return {"event_id": f"{self.conversation_id}-{self.number:03d}", "conversation_id": self.conversation_id,
                "user_id": "u-1", "event_type": event_type, "timestamp": self.at.isoformat() + "Z",
                "channel": "web", "properties": properties}


def send(collector: CollectorProcess, *events: dict) -> None:
    status, answer, _ = collector.post("/v1/events", json.dumps(list(events)).encode(), TOKEN)
    assert status == 200 and answer["accepted"] + answer["duplicate"] == len(events), answer


def applied(collector: CollectorProcess, conversation_id: str, messages: int) -> dict:
    """The live state of the conversation once it holds ``messages`` messages."""
    found = {}

    def has_them() -> bool:
        status, answer = get(collector, f"/v1/conversations/{conversation_id}")
        found.update(answer if status == 200 else {})
        return status == 200 and answer["messages"] >= messages

    wait_for(has_them, 15, f"{conversation_id} with {messages} messages in the live state")
    return found


def rule_scripts() -> dict[str, list[dict]]:
    """One conversation per shipped rule, each making only that rule hold."""
    scripts = {}
    script = Script("c-problem")
    scripts["problem_not_identified"] = [
        script.event("user_message", "hi"),
        script.event("agent_message", "Hello!"),
        script.event("user_message", "it does the thing again"),
        script.event("agent_message", "Hello, welcome to our shop."),
        script.event("user_message", "the thing, again"),
        script.event("agent_message", "Good morning!"),
    ]
    script = Script("c-human")
    scripts["user_asked_for_human"] = [
        script.event("user_message", "I want to speak to a real person"),
        script.event("agent_message", "Hello, let me check that for you."),
    ]
    script = Script("c-negative")
    scripts["negative_sentiment_twice"] = [
        script.event("user_message", "this is terrible"),
        script.event("agent_message", "Hello, sorry to hear that. What is your order number?"),
        script.event("user_message", "awful service, useless"),
    ]
    script = Script("c-fallback")
    scripts["fallback_twice_in_a_row"] = [
        script.event("user_message", "blorp"),
        script.event("fallback_triggered", topic="unknown"),
        script.event("agent_message", "Hello! Sorry, I did not get that."),
        script.event("user_message", "blorp blorp"),
        script.event("fallback_triggered", topic="unknown"),
    ]
    return scripts
