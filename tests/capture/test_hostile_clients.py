"""Clients a collector on the internet meets, with real sockets on 127.0.0.1 (issue 47, items 1, 6, 8):
idle and dripping connections, too many connections or requests from one address, huge heads, bodies
held across clients, over-long identifiers, and answers that must encode whatever was sent.

Other clients connect from other loopback addresses (127.0.0.2, ...), so per-client limits tell them
apart from the legitimate client on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from datetime import UTC, datetime

import pytest
from support.capture import CollectorProcess, connect_from, wait_for

TOKEN = "hostile-token"


def event(event_id: str, conversation_id: str = "c-1", **fields) -> dict:
    return {"event_id": event_id, "conversation_id": conversation_id, "event_type": "user_message",
            "timestamp": datetime.now(UTC).isoformat(), "properties": {"content": "hi"}, **fields}


def post(collector: CollectorProcess, events: list[dict], source: str | None = None,
         timeout: float = 10) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    try:
        connection.request("POST", "/v1/events", body=json.dumps({"events": events}).encode(),
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        answer = connection.getresponse()
        raw = answer.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")}
        return answer.status, body, dict(answer.headers)
    finally:
        connection.close()


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing ``sock`` within ``seconds``; None if it stayed open."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    return None


@pytest.fixture
def plain_collector(tmp_path):
    """The defaults (no live state)."""
    process = CollectorProcess(tmp_path / "landing", None, TOKEN, "--no-live").start()
    yield process
    process.stop()


@pytest.fixture
def collector(tmp_path):
    process = CollectorProcess(tmp_path / "landing", None, TOKEN, "--no-live", "--header-timeout", "1").start()
    yield process
    process.stop()


def test_idle_connections_never_shut_out_a_client(tmp_path):
    # the defaults (a 5 s head deadline): 257 connections that never send a byte made every
    # request 503 before, for as long as they stayed open
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--no-live").start()
    idle = [connect_from(f"127.0.0.{2 + number % 5}", collector.port) for number in range(257)]
    try:
        time.sleep(0.2)
        started = time.monotonic()
        status, answer, _ = post(collector, [event("after-idle")])
        assert status == 200 and answer["accepted"] == 1
        assert time.monotonic() - started < 1.0
        # and each idle one is answered 408 and closed once the head deadline passes
        sent = closed_within(idle[0], 8)
        assert sent is not None and sent.startswith(b"HTTP/1.1 408"), sent
        assert all(closed_within(sock, 3) is not None for sock in idle[1:20])
    finally:
        for sock in idle:
            sock.close()
        collector.stop()


def test_a_head_dripped_byte_by_byte_is_closed_at_the_deadline(collector):
    import select

    head = (b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nX-Padding: " + b"a" * 100)
    drippers = [connect_from(f"127.0.0.{2 + number % 4}", collector.port) for number in range(20)]
    answers: dict[socket.socket, bytes] = {}
    try:
        started = time.monotonic()
        for position in range(15):  # one byte each every 0.2 s: never idle, never done (3 s unless closed)
            readable, _, _ = select.select([sock for sock in drippers if sock not in answers], [], [], 0)
            for sock in readable:
                answers[sock] = sock.recv(4096)
            for sock in drippers:
                if sock not in answers:
                    sock.sendall(head[position:position + 1])
            if position == 3:
                assert post(collector, [event("while-dripping")])[0] == 200
            if len(answers) == len(drippers):
                break
            time.sleep(0.2)
        assert len(answers) == len(drippers), f"{len(drippers) - len(answers)} dripping clients still connected"
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers.values())
        assert time.monotonic() - started < 2.5
    finally:
        for sock in drippers:
            sock.close()


def test_connections_and_requests_per_client_are_capped(tmp_path):
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--no-live", "--max-connections-per-client",
                                 "8", "--max-requests-per-second", "5").start()
    held = []
    try:
        held = [connect_from("127.0.0.2", collector.port) for _ in range(8)]
        refused = connect_from("127.0.0.2", collector.port)
        sent = closed_within(refused, 3)
        assert sent is not None and sent.startswith(b"HTTP/1.1 503") and b"too many connections" in sent
        assert post(collector, [event("other-client")])[0] == 200  # 127.0.0.1 is another client
        # ten requests at once from one address: the burst (10 = twice the rate) passes, then 429
        statuses = [post(collector, [event(f"burst-{number}")], source="127.0.0.3") for number in range(14)]
        codes = [status for status, _, _ in statuses]
        assert codes.count(429) >= 3 and codes[:9] == [200] * 9, codes
        limited = next(headers for status, _, headers in statuses if status == 429)
        assert int(limited["retry-after"]) >= 1
        assert post(collector, [event("still-served")], source="127.0.0.4")[0] == 200
    finally:
        for sock in held:
            sock.close()
        collector.stop()


def test_at_the_total_limit_a_new_connection_replaces_an_idle_one(tmp_path):
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--no-live", "--max-connections", "20").start()
    idle = []
    try:
        idle = [connect_from(f"127.0.0.{2 + number % 3}", collector.port) for number in range(20)]
        time.sleep(0.2)
        status, answer, _ = post(collector, [event("replaces-idle")])
        assert status == 200 and answer["accepted"] == 1
        assert closed_within(idle[0], 3) == b""  # the oldest idle one made room, without a word
    finally:
        for sock in idle:
            sock.close()
        collector.stop()


def test_an_oversized_head_is_431(collector):
    sock = socket.create_connection(("127.0.0.1", collector.port), timeout=10)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(80):  # 80 KiB of header lines, faster than the deadline
            sock.sendall(b"X-Filler: " + b"b" * 1012 + b"\r\n")
        sent = closed_within(sock, 3)
        assert sent is not None and sent.startswith(b"HTTP/1.1 431")
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed while still sending: what a client of such a head may see
    finally:
        sock.close()


def test_body_bytes_held_across_clients_are_bounded_before_buffering(tmp_path):
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--no-live", "--max-body-mb-in-flight",
                                 "1", "--body-timeout", "5").start()
    slow = []
    try:
        head = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Length: {700 * 1024}\r\n\r\n").encode()
        first = connect_from("127.0.0.2", collector.port)
        first.sendall(head + b'{"events": [')  # holds 700 KiB of the 1 MiB budget while it sends slowly
        slow.append(first)
        time.sleep(0.3)
        second = connect_from("127.0.0.3", collector.port)
        slow.append(second)
        second.sendall(head)  # would need 700 KiB more: refused before a byte of its body is read
        sent = closed_within(second, 3)
        assert sent is not None and sent.startswith(b"HTTP/1.1 503"), sent
        assert b"retry-after: 1" in sent.lower() and b"bytes of request bodies" in sent
        assert post(collector, [event("small-body")])[0] == 200  # small bodies still fit
        first.close()
        wait_for(lambda: json.loads(_get(collector, "/healthz"))["body_bytes_held"] == 0, 10, "the budget back")
    finally:
        for sock in slow:
            sock.close()
        collector.stop()


def _get(collector: CollectorProcess, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        return connection.getresponse().read()
    finally:
        connection.close()


def test_over_long_identifiers_and_strings_are_rejected_one_by_one(plain_collector):
    long_id = "c" * 2_000_000
    status, answer, _ = post(plain_collector, [
        event("long-conversation", conversation_id=long_id),
        event("x" * 300),
        event("long-type", event_type="t" * 300),
        event("long-content", properties={"content": "y" * 70_000}),
        event("long-nested", properties={"tool": {"args": ["z" * 70_000]}}),
        event("fine-long-content", properties={"content": "w" * 60_000}),
        event("ok-1"),
    ])
    assert status == 200
    results = answer["results"]
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("rejected", "too_long"), ("rejected", "too_long"), ("rejected", "too_long"), ("rejected", "too_long"),
        ("rejected", "too_long"), ("accepted", None), ("accepted", None)]
    assert results[0]["detail"] == "conversation_id is 2,000,000 characters long; at most 256"
    assert results[1]["event_id"] is None  # the 300-character id is not echoed back
    assert results[4]["detail"] == "properties.tool.args[0] is 70,000 characters long; at most 65,536"


def test_a_lone_surrogate_is_echoed_and_the_retry_is_a_duplicate(plain_collector):
    collector = plain_collector
    body = b'{"events": [' + json.dumps(event("PLACEHOLDER")).replace(
        '"PLACEHOLDER"', '"e-\\ud800-lone"').encode() + b"]}"
    for expected in ("accepted", "duplicate"):
        connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
        connection.request("POST", "/v1/events", body=body,
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        answer = connection.getresponse()
        raw = answer.read()
        connection.close()
        assert answer.status == 200, raw
        result = json.loads(raw)["results"][0]
        assert result["status"] == expected and result["event_id"] == "e-\ud800-lone"
