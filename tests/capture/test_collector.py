"""The HTTP collector on 127.0.0.1: answers, durability files, auth and limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.capture import CollectorProcess, connect_from

from convo_warehouse.lib.landing import discover_files

TOKEN = "test-token-1"


def event(event_id: str, **fields) -> dict:
    return {"event_id": event_id, "conversation_id": "c-1", "event_type": "user_message",
            "timestamp": datetime.now(UTC).isoformat(), "properties": {"content": "hi"}, **fields}


def landed_events(landing: Path) -> list[dict]:
    return [json.loads(line) for path in discover_files(landing) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    landing = tmp_path_factory.mktemp("collector") / "landing"
    process = CollectorProcess(landing, None, f"other-token,{TOKEN}", "--rotate-seconds", "0.5").start()
    yield process
    process.stop()


def post_events(collector: CollectorProcess, events, token: str | None = TOKEN):
    return collector.post("/v1/events", json.dumps({"events": events}).encode(), token)


def test_healthz_needs_no_token(collector):
    import urllib.request

    with urllib.request.urlopen(collector.url + "/healthz", timeout=5) as answer:
        body = json.loads(answer.read())
    assert answer.status == 200 and body["status"] == "ok" and body["auth"] is True


def test_per_event_answers_and_durable_landing(collector):
    batch = [
        event("e-ok-1"),
        event("e-ok-1"),  # same id again in the batch: duplicate
        event("e-no-time", timestamp=None),  # missing timestamp
        event("e-bad-time", timestamp="yesterday"),  # not a timestamp
        event("e-future", timestamp="2999-01-01T00:00:00Z"),  # far in the future
        event("e-props", properties=["not", "an", "object"]),  # properties must be an object
        "just a string",  # not an event object
        {"session_id": "s-9", "event_id": 17, "event_type": "started", "timestamp": 1767225600000},  # aliases
        event("e-typed", user_id={"id": 1}),  # an identifier that is an object
        {**event(None), "message_id": "v11-msg", "metadata": {"content": "hi"}},  # contract v1.1 names
    ]
    status, body, _ = post_events(collector, batch)
    assert status == 200
    statuses = [(r["status"], r.get("reason")) for r in body["results"]]
    assert statuses == [
        ("accepted", None), ("duplicate", None), ("rejected", "missing_required_field"),
        ("rejected", "unparseable_timestamp"), ("rejected", "future_timestamp"),
        ("rejected", "properties_not_object"), ("rejected", "unreadable_line"), ("accepted", None),
        ("rejected", "invalid_field_type"), ("accepted", None),
    ]
    assert body["results"][9]["event_id"] == "v11-msg"
    assert body["results"][2]["detail"] == "missing required field(s): timestamp"
    # the same id in a later request is a duplicate too (the recent window)
    status, body, _ = post_events(collector, [event("e-ok-1")])
    assert body["results"][0]["status"] == "duplicate"

    landing = collector.landing
    from support.capture import wait_for

    wait_for(lambda: len(landed_events(landing)) >= 2, 10, "the landing file to be rotated into place")
    landed = {str(e.get("event_id")): e for e in landed_events(landing)}
    assert set(landed) >= {"e-ok-1", "17"} and "e-no-time" not in landed
    assert all(path.relative_to(landing).parts[0] == "collector" for path in discover_files(landing))

    def rejects() -> list[dict]:
        return [json.loads(line) for path in (landing / ".rejected" / "collector").rglob("*.jsonl")
                for line in path.read_text().splitlines()]

    wait_for(lambda: len(rejects()) >= 5, 10, "the rejects file to be rotated into place")
    rejects = rejects()
    assert {r["reason"] for r in rejects} >= {"missing_required_field", "future_timestamp", "unreadable_line"}
    assert any(r["event"] == "just a string" for r in rejects)


@pytest.mark.parametrize(
    ("token", "body", "status", "message"),
    [
        (None, b'{"events": []}', 401, "unknown key"),
        ("wrong", b'{"events": []}', 401, "unknown key"),
        (TOKEN, b'{"events": [', 400, "not valid JSON"),
        (TOKEN, b'{"events": [{"a": NaN}]}', 400, "not valid JSON"),
        (TOKEN, b'{"events": {"event_id": "x"}}', 400, "expected a JSON array"),
        (TOKEN, b"\xff\xfe", 400, "not valid JSON"),
    ],
)
def test_bad_requests_get_clear_answers(collector, token, body, status, message):
    answer_status, answer, headers = collector.post("/v1/events", body, token)
    assert answer_status == status
    assert message in answer["error"]
    if status == 401:
        assert "Bearer" in headers.get("www-authenticate", headers.get("WWW-Authenticate", ""))


def test_oversized_body_is_413(collector):
    body = b'{"events": [' + b",".join([json.dumps(event(f"big-{i}", properties={"content": "x" * 2000})).encode()
                                         for i in range(6000)]) + b"]}"
    assert len(body) > 10 * 1024 * 1024
    status, answer, _ = collector.post("/v1/events", body, TOKEN)
    assert status == 413 and "limit" in answer["error"]


def test_ten_thousand_events_in_one_batch(collector):
    batch = [event(f"bulk-{i:05d}") for i in range(10_000)]
    status, answer, _ = post_events(collector, batch)
    assert status == 200 and answer["accepted"] == 10_000
    status, answer, _ = post_events(collector, [*batch, event("one-too-many")])
    assert status == 413 and "at most 10000" in answer["error"]


def test_unknown_content_type_is_415(collector):
    status, answer, _ = collector.post("/v1/traces", b"\x0a\x00", TOKEN, headers={"Content-Type": "text/xml"})
    assert status == 415 and "application/x-protobuf" in answer["error"]


def test_oversized_chunked_body_is_413(collector):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=30)
    chunk = b" " * (1024 * 1024)
    connection.request("POST", "/v1/events", body=iter([b'{"events": ['] + [chunk] * 11 + [b"]}"]),
                       headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                       encode_chunked=True)
    answer = connection.getresponse()
    assert answer.status == 413 and b"limit" in answer.read()


def test_gzip_bodies_are_read_and_bounded(collector):
    import gzip

    body = gzip.compress(json.dumps({"events": [event("gz-1")]}).encode())
    status, answer, _ = collector.post("/v1/events", body, TOKEN, headers={"Content-Encoding": "gzip"})
    assert status == 200 and answer["accepted"] == 1
    bomb = gzip.compress(b'{"events": [' + b" " * (11 * 1024 * 1024) + b"]}")
    status, answer, _ = collector.post("/v1/events", bomb, TOKEN, headers={"Content-Encoding": "gzip"})
    assert status == 413 and "inflates" in answer["error"]
    status, answer, _ = collector.post("/v1/events", b"not gzip", TOKEN, headers={"Content-Encoding": "gzip"})
    assert status == 400 and "gzip" in answer["error"]


def test_poison_events_are_rejected_one_by_one_and_the_rest_stored(collector):
    deep = "x"
    body = ('{"events": [' + json.dumps(event("poison-ok-1")) + ","
            + json.dumps(event("poison-date", timestamp="9999-12-31T24:00:00")) + ","  # past year 9999
            + '{"event_id": "poison-deep", "properties": ' + '{"a": ' * 5000 + json.dumps(deep) + "}" * 5000 + "},"
            + json.dumps(event("poison-ok-2")) + "]}").encode()
    status, answer, _ = collector.post("/v1/events", body, TOKEN)
    assert status == 200, answer
    assert [(r["status"], r.get("reason")) for r in answer["results"]] == [
        ("accepted", None), ("rejected", "future_timestamp"), ("rejected", "unreadable_line"), ("accepted", None)]
    assert "nested deeper" in answer["results"][2]["detail"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/events", b"[" * 100_000, "not valid JSON"),  # never closed, and deeper than any reader
        ("/v1/events", b'{"events": [' + b"[" * 100_000 + b"]", "not valid JSON"),
        ("/v1/traces", b"[" * 100_000, "nested deeper"),
        ("/v1/traces", b'{"resourceSpans": "x"}', "resourceSpans"),
    ],
    ids=["events-brackets", "events-open-array", "traces-brackets", "traces-wrong-shape"],
)
def test_unreadable_bodies_are_400_never_500(collector, path, body, message):
    status, answer, _ = collector.post(path, body, TOKEN)
    assert status == 400 and message in answer["error"], answer
    status, _, _ = post_events(collector, [event("after-poison")])
    assert status == 200, "the collector keeps serving"


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"Content-Type": "text/plain", "Origin": "https://evil.example"}, 403, "origin"),  # a cross-site form
        ({"Content-Type": "application/json", "Origin": "https://evil.example"}, 403, "origin"),
        ({"Content-Type": "text/plain"}, 415, "application/json"),  # what a form can send without a preflight
        ({"Content-Type": ""}, 415, "application/json"),
        ({"Content-Type": "application/json", "Host": "attacker.example:8765"}, 400, None),  # DNS rebinding
    ],
    ids=["form-with-origin", "json-with-origin", "text-plain", "no-type", "foreign-host"],
)
def test_cross_site_writes_are_refused(tmp_path: Path, headers, status, message):
    landing = tmp_path / "landing"
    collector = CollectorProcess(landing, None, "").start()  # no tokens: loopback only
    try:
        answer_status, answer, _ = collector.post("/v1/events", json.dumps({"events": [event("x-site")]}).encode(),
                                                  None, headers=headers) if status != 400 else _raw_post(
            collector, headers)
        assert answer_status == status
        if message:
            assert message in answer["error"]
        ok, answer, _ = collector.post("/v1/events", json.dumps({"events": [event("same-site")]}).encode())
        assert ok == 200 and answer["accepted"] == 1, "an SDK (no Origin, JSON, loopback Host) still writes"
    finally:
        collector.stop()


def _raw_post(collector: CollectorProcess, headers: dict) -> tuple[int, dict, dict]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
    connection.putrequest("POST", "/v1/events", skip_host=True)
    body = json.dumps({"events": [event("x-host")]}).encode()
    for name, value in {**headers, "Content-Length": str(len(body))}.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    answer = connection.getresponse()
    return answer.status, {"error": answer.read().decode()}, dict(answer.headers)


def test_slow_clients_never_hold_the_slots_of_others(tmp_path: Path):
    import socket
    import time

    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--body-timeout", "2").start()
    slow = []
    try:
        for number in range(70):  # more than the 64 processing slots, from two other clients
            sock = connect_from(f"127.0.0.{2 + number % 2}", collector.port)
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
            slow.append(sock)
        time.sleep(0.3)
        started = time.monotonic()
        status, answer, _ = post_events(collector, [event("while-slow")])
        assert status == 200 and answer["accepted"] == 1
        assert time.monotonic() - started < 1.5, "a legitimate client waited for the slow ones"
        # each slow client is answered 408 once its body deadline passes
        slow[0].settimeout(10)
        assert slow[0].recv(200).startswith(b"HTTP/1.1 408")
    finally:
        for sock in slow:
            sock.close()
        collector.stop()
