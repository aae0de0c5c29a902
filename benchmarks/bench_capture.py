"""Benchmark capture: collector throughput with durable writes, and the SDK's cost on the caller's thread.

    .venv/bin/python benchmarks/bench_capture.py
    .venv/bin/python benchmarks/bench_capture.py --events 400000 --batch 1000 --clients 2

Collector: ``convo-warehouse collect`` runs in its own process (uvicorn, one
worker) on 127.0.0.1 writing into a temporary landing folder, every request
fsynced before its answer. Client threads post pre-encoded batches of unique,
valid contract events (about 250 bytes each) over kept-alive connections, so
the client costs little; the figure is events acknowledged as ``accepted``
per second of wall time, checked against the lines landed.

SDK: ``Tracker.track`` called in a tight loop on the main thread (the queue
is large enough not to fill; the sender thread delivers to a landing folder
meanwhile), reported as the mean and the 99th percentile per call.

Live state (issue 29, ``--live-only`` to run just this part): the collector
with its live state worker and a webhook receiver in this process; client
threads post paced batches of conversations' events at ``--rate`` (5,000)
events/s for ``--seconds``; reported: p50/p95/p99 from an event's
acknowledgement to its conversation's updated stages (the worker's own
measure over every event, and as a client sees it: a probe conversation
posting a message and polling ``GET /v1/conversations/{id}`` until it shows),
and from a rule's condition (the acknowledgement of the event that made it
hold) to the webhook request arriving at the receiver; the collector's
throughput with the live state on and off (unpaced, as above); and the live
worker's memory holding ``--conversations`` (100,000) conversations, and with
a cap below that.

OTLP (issue 28, ``--otlp-only``): the same collector, ``POST /v1/traces`` with
bodies as real exporters send them: ``ExportTraceServiceRequest`` messages
built with opentelemetry-proto, one agent turn per trace (``invoke_agent`` ->
``chat`` asking for a tool -> ``execute_tool`` -> ``chat`` answering, with
``gen_ai.*`` attributes, messages and token counts; ``--otlp-spans`` spans per
request), the same content encoded as ``application/x-protobuf`` and as
``application/json``. Events are the contract events the collector maps the
spans to, counted from the lines landed; fsync before every answer as above.

Integrations (issue 28, ``--integrations-only``): the caller thread's CPU per
wrapped call, for the ``openai`` client (``instrument_openai``) calling a local
fake OpenAI-compatible server on 127.0.0.1 (it runs on its own thread, so its
CPU is not counted), and for a LangChain chat model with the
``ConvoCallbackHandler`` (when langchain-core is installed). Each is timed
against the same call unwrapped (for LangChain: with a do-nothing handler, so
LangChain's own callback dispatch is not counted), in alternating rounds, so
the difference is what the integration and ``Tracker.track`` cost the
application.

Targets (issue 13): collector >= 20,000 events/s; SDK < 50 µs per call.
Targets (issue 29): both p95 <= 50 ms; throughput with live state >= 80% of without.
Both are reported in wall time and in CPU time (the collector process's
user + system time; the caller thread's own CPU time), because on a shared
machine wall time mostly measures how busy the other processes are: the load
average is printed next to the numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.capture import CollectorProcess  # noqa: E402

from convo_capture import Tracker  # noqa: E402

OTLP_CONTENT_TYPES = ("application/x-protobuf", "application/json")

COLLECTOR_TARGET = 20_000
SDK_TARGET_US = 50.0


def make_bodies(events: int, batch: int) -> list[bytes]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    bodies = []
    for start in range(0, events, batch):
        items = [
            {"event_id": str(uuid.uuid4()), "conversation_id": f"bench-{n // 10}", "user_id": f"u-{n // 10}",
             "event_type": "user_message" if n % 2 else "agent_message", "timestamp": now, "channel": "web",
             "properties": {"content": "Where is my order? It has not arrived yet.", "turn": n % 10}}
            for n in range(start, min(events, start + batch))
        ]
        bodies.append(json.dumps({"events": items}).encode())
    return bodies


def bench_collector(events: int, batch: int, clients: int, live: bool = False) -> dict:
    bodies = make_bodies(events, batch)
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as root:
        landing = Path(root) / "landing"
        landing.mkdir()
        collector = CollectorProcess(landing, None, "bench-token", *([] if live else ["--no-live"])).start()
        accepted = [0] * clients
        errors: list[str] = []

        def client(index: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=60)
            headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-token"}
            for body in bodies[index::clients]:
                connection.request("POST", "/v1/events", body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                if answer.status != 200:
                    errors.append(f"HTTP {answer.status}: {payload[:200]!r}")
                    return
                accepted[index] += json.loads(payload)["accepted"]

        try:
            # warm-up request (imports, first file)
            collector.post("/v1/events", make_bodies(10, 10)[0], "bench-token")
            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            cpu_before = process_cpu_seconds(collector.process.pid)
            workers = child_pids(collector.process.pid)
            workers_before = sum(process_cpu_seconds(pid) for pid in workers)
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            cpu_seconds = process_cpu_seconds(collector.process.pid) - cpu_before
            if live:
                wait_live_idle(collector)
            worker_cpu = sum(process_cpu_seconds(pid) for pid in workers) - workers_before
            live_elapsed = time.perf_counter() - started
        finally:
            collector.stop()
        if errors:
            raise SystemExit(f"collector benchmark failed: {errors[0]}")
        landed = sum(sum(1 for _ in path.open("rb")) for path in (landing / "collector").rglob("*.jsonl"))
    total = sum(accepted)
    return {"events": total, "landed_lines": landed, "seconds": elapsed, "events_per_second": total / elapsed,
            "cpu_seconds": cpu_seconds, "events_per_cpu_second": total / cpu_seconds,
            "batch": batch, "clients": clients, "worker_cpu_seconds": worker_cpu,
            "live_caught_up_seconds": live_elapsed}


# --- OTLP bodies as exporters send them ----------------------------------------------------

def _span(request_spans, trace_id: bytes, span_id: int, parent: int, name: str, start: int, end: int,
          attributes: dict):
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    span = request_spans.add(trace_id=trace_id, span_id=span_id.to_bytes(8, "big"), name=name, kind=3,
                              start_time_unix_nano=start, end_time_unix_nano=end)
    if parent:
        span.parent_span_id = parent.to_bytes(8, "big")
    for key, value in attributes.items():
        if isinstance(value, int):
            span.attributes.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        elif isinstance(value, list):
            item = KeyValue(key=key)
            item.value.array_value.values.extend(AnyValue(string_value=v) for v in value)
            span.attributes.append(item)
        else:
            span.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))


def make_otlp_requests(spans: int, per_request: int, salt: str = "") -> list:
    """``ExportTraceServiceRequest`` messages of GenAI agent turns (4 spans each), unique ids throughout.

    A conversation has 5 turns; each turn maps to 3 events (user message, tool call, agent message) and
    ``conversation_started`` (which the collector keeps once per conversation: its id is the conversation's).
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    second = 10**9
    start = time.time_ns() - (spans // 4 + 1) * 10 * second  # turns 10 s apart, all in the past
    question = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is my order 4411? "
                                                       "It was due on Monday and has not arrived."}]}])
    after_tool = json.dumps(json.loads(question) + [
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "lookup_order", "id": "call-1"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call-1", "response": "left the depot"}]}])
    answer = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Sorry for the wait: order "
                                                          "4411 left the depot this morning, it arrives tomorrow."}],
                          "finish_reason": "stop"}])
    requests = []
    turn = 0
    for first in range(0, spans, per_request):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend([
            KeyValue(key="service.name", value=AnyValue(string_value="support-bot")),
            KeyValue(key="deployment.environment.name", value=AnyValue(string_value="bench"))])
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "bench"
        for _ in range(max(1, min(per_request, spans - first) // 4)):
            turn += 1
            trace_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{salt}{turn}").bytes
            at = start + turn * 10 * second
            base = turn * 8
            _span(scope.spans, trace_id, base + 1, 0, "invoke_agent support", at, at + 5 * second, {
                "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": f"otlp-{salt}{turn // 5}",
                "gen_ai.agent.id": "agent-7", "user.id": f"u-{turn // 5}"})
            _span(scope.spans, trace_id, base + 2, base + 1, "chat gpt-4o", at + second // 10, at + 2 * second, {
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.input.messages": question, "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 12, "gen_ai.response.finish_reasons": ["tool_calls"]})
            _span(scope.spans, trace_id, base + 3, base + 1, "execute_tool lookup_order", at + 2 * second,
                  at + 3 * second, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order"})
            _span(scope.spans, trace_id, base + 4, base + 1, "chat gpt-4o", at + 3 * second, at + 4 * second, {
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.input.messages": after_tool, "gen_ai.output.messages": answer,
                "gen_ai.usage.input_tokens": 160, "gen_ai.usage.output_tokens": 24,
                "gen_ai.response.finish_reasons": ["stop"]})
        requests.append(request)
    return requests


def encode_otlp(request, content_type: str) -> bytes:
    """The body an OTLP/HTTP exporter sends: protobuf bytes, or OTLP/JSON (ids in hex, not proto3's base64)."""
    import base64

    from google.protobuf import json_format

    if content_type == "application/x-protobuf":
        return request.SerializeToString()
    value = json_format.MessageToDict(request)
    for resource_spans in value["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(value, separators=(",", ":")).encode()


def landed_events(landing: Path, skip_prefix: str) -> int:
    """Lines landed (after the collector stopped: its open file is only named ``*.jsonl`` when closed),
    leaving out the warm-up's, whose conversation ids start with ``skip_prefix``."""
    return sum(not json.loads(line)["conversation_id"].startswith(skip_prefix)
               for path in (landing / "collector").rglob("*.jsonl") for line in path.open("rb"))


def bench_otlp(spans: int, per_request: int, clients: int, content_type: str) -> dict:
    """The collector's throughput on ``POST /v1/traces`` bodies of one encoding; events counted from the landing."""
    requests = make_otlp_requests(spans, per_request)
    bodies = [encode_otlp(request, content_type) for request in requests]
    span_count = sum(len(r.resource_spans[0].scope_spans[0].spans) for r in requests)
    with tempfile.TemporaryDirectory(prefix="bench-otlp-") as root:
        landing = Path(root) / "landing"
        landing.mkdir()
        collector = CollectorProcess(landing, None, "bench-token", "--no-live").start()
        errors: list[str] = []

        def client(index: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=60)
            headers = {"Content-Type": content_type, "Authorization": "Bearer bench-token"}
            for body in bodies[index::clients]:
                connection.request("POST", "/v1/traces", body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                # an OTLP answer names rejected spans in partial_success; a full success is an empty message
                if answer.status != 200 or payload not in (b"", b"{}"):
                    errors.append(f"HTTP {answer.status}: {payload[:200]!r}")
                    return

        try:
            warm = encode_otlp(make_otlp_requests(8, 8, salt="warm-")[0], content_type)
            status, _, _ = collector.post("/v1/traces", warm, "bench-token", headers={"Content-Type": content_type})
            if status != 200:
                raise SystemExit(f"OTLP warm-up request failed: HTTP {status}")
            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            cpu_before = process_cpu_seconds(collector.process.pid)
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            cpu_seconds = process_cpu_seconds(collector.process.pid) - cpu_before
        finally:
            collector.stop()
        if errors:
            raise SystemExit(f"OTLP benchmark ({content_type}) failed: {errors[0]}")
        events = landed_events(landing, "otlp-warm-")
    return {"content_type": content_type, "requests": len(bodies), "spans": span_count, "events": events,
            "bytes_per_request": sum(map(len, bodies)) / len(bodies), "seconds": elapsed,
            "events_per_second": events / elapsed, "cpu_seconds": cpu_seconds,
            "events_per_cpu_second": events / cpu_seconds if cpu_seconds else float("inf"),
            "spans_per_second": span_count / elapsed}


def child_pids(pid: int) -> list[int]:
    """Processes started by ``pid`` (the live state worker, and multiprocessing's resource tracker)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(item) for item in text]
    return children


def get_json(collector: CollectorProcess, path: str, token: str = "bench-token") -> dict:
    import urllib.request

    request = urllib.request.Request(collector.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def wait_live_idle(collector: CollectorProcess, timeout: float = 600) -> dict:
    import urllib.error

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stats = get_json(collector, "/v1/live")
        except urllib.error.HTTPError as error:  # 503 while the worker holds a long batch
            if error.code != 503:
                raise
            continue
        if not stats["rebuilding"] and stats["applied_batches"] == stats["submitted_batches"]:
            return stats
        time.sleep(0.1)
    raise SystemExit("the live state did not catch up")


# --- the live state: latencies at a sustained rate, memory ---------------------------------

USER_LINES = ["Hi, my order 4411 has not arrived", "It was due on Monday", "ok thanks", "that's all, thank you",
              "still nothing", "can you check again?"]
AGENT_LINES = ["Hello! Sorry to hear that. Let me check order 4411 for you.", "I can see it left the depot.",
               "I can send a replacement today, would that work?", "Done, the replacement has been shipped.",
               "Anything else?"]


def conversation_events(number: int) -> list[tuple[str, dict]]:
    """(event_type, properties) of one benchmark conversation; some make a shipped rule hold."""
    steps = [("conversation_started", {})]
    for turn in range(4):
        if number % 10 == 3 and turn == 1:
            steps.append(("user_message", {"content": "this is useless, can I talk to a human?"}))
        elif number % 10 == 7:
            steps.append(("user_message", {"content": "terrible, awful service"}))
        else:
            steps.append(("user_message", {"content": USER_LINES[(number + turn) % len(USER_LINES)]}))
        if number % 10 == 5:
            steps.append(("fallback_triggered", {"topic": "unknown"}))
        steps.append(("agent_message", {"content": AGENT_LINES[(number + turn) % len(AGENT_LINES)]}))
    return steps


class Receiver:
    """The webhook receiver: when each intervention arrived, against its condition time."""

    def __init__(self) -> None:
        import http.server

        self.latencies: list[float] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the name http.server dispatches to
                arrived = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.latencies.append(arrived - body["condition_met_at"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"count": 0}
    ordered = sorted(samples)
    at = lambda share: ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000  # noqa: E731
    return {"count": len(ordered), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def bench_live(rate: int, seconds: float, clients: int, batch: int) -> dict:
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as root:
        landing = Path(root) / "landing"
        landing.mkdir()
        collector = CollectorProcess(landing, None, "bench-token", "--webhook-url", receiver.url).start()
        wait_live_idle(collector)
        stop_at = time.perf_counter() + seconds
        sent = [0] * clients
        errors: list[str] = []

        def client(index: int) -> None:
            from collections import deque

            connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=60)
            headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-token"}
            active: deque = deque()
            next_number = index
            interval = batch / (rate / clients)
            due = time.perf_counter()
            while due < stop_at:
                items = []
                # every request carries `batch` events: a finished conversation
                # makes room for a new one rather than a shorter batch
                while len(items) < batch:
                    while len(active) < 400:
                        active.append((next_number, iter(conversation_events(next_number)), [0]))
                        next_number += clients
                    number, steps, position = active.popleft()
                    step = next(steps, None)
                    if step is None:
                        continue
                    position[0] += 1
                    event_type, properties = step
                    items.append({"event_id": f"b{number}-{position[0]}", "conversation_id": f"bench-{number}",
                                  "user_id": f"u-{number}", "event_type": event_type,
                                  "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                                  "channel": "web", "properties": properties})
                    active.append((number, steps, position))
                connection.request("POST", "/v1/events", body=json.dumps(items).encode(), headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                if answer.status != 200:
                    errors.append(f"HTTP {answer.status}: {payload[:200]!r}")
                    return
                sent[index] += len(items)
                due += interval
                time.sleep(max(0.0, due - time.perf_counter()))

        probe_latencies: list[float] = []

        def probe() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=60)
            headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-token"}
            number = 0
            while time.perf_counter() < stop_at - 0.5:
                number += 1
                event = {"event_id": f"probe-{number}", "conversation_id": "probe", "event_type": "user_message",
                         "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                         "properties": {"content": f"probe {number}"}}
                connection.request("POST", "/v1/events", body=json.dumps([event]).encode(), headers=headers)
                answer = connection.getresponse()
                answer.read()
                acknowledged = time.perf_counter()
                while time.perf_counter() - acknowledged < 5:
                    connection.request("GET", "/v1/conversations/probe", headers=headers)
                    reply = connection.getresponse()
                    state = json.loads(reply.read())
                    if reply.status == 200 and state["messages"] >= number:
                        probe_latencies.append(time.perf_counter() - acknowledged)
                        break
                time.sleep(0.1)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        threads.append(threading.Thread(target=probe))
        try:
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            stats = wait_live_idle(collector)
            time.sleep(1.0)  # the last webhooks
            stats = get_json(collector, "/v1/live")
        finally:
            collector.stop()
            receiver.server.shutdown()
        if errors:
            raise SystemExit(f"live benchmark failed: {errors[0]}")
    return {"events": sum(sent), "seconds": elapsed, "rate": sum(sent) / elapsed, "stats": stats,
            "probe": percentiles(probe_latencies), "webhook": percentiles(receiver.latencies)}


def bench_memory(conversations: int, cap: int | None) -> dict:
    bodies = []
    batch: list[dict] = []
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for number in range(conversations):
        for position, (event_type, properties) in enumerate(conversation_events(number * 10)[:5]):
            batch.append({"event_id": f"m{number}-{position}", "conversation_id": f"mem-{number}",
                          "user_id": f"u-{number}", "event_type": event_type, "timestamp": stamp,
                          "channel": "web", "properties": properties})
            if len(batch) == 1000:
                bodies.append(json.dumps(batch).encode())
                batch = []
    if batch:
        bodies.append(json.dumps(batch).encode())
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as root:
        landing = Path(root) / "landing"
        landing.mkdir()
        extra = ["--live-max-conversations", str(cap)] if cap else []
        collector = CollectorProcess(landing, None, "bench-token", *extra).start()
        try:
            baseline = wait_live_idle(collector)["rss_bytes"]
            connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=120)
            headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-token"}
            started = time.perf_counter()
            for body in bodies:
                connection.request("POST", "/v1/events", body=body, headers=headers)
                connection.getresponse().read()
            stats = wait_live_idle(collector)
            elapsed = time.perf_counter() - started
        finally:
            collector.stop()
    return {"conversations_sent": conversations, "events": sum(body.count(b'"event_id"') for body in bodies),
            "kept": stats["conversations"], "evicted": stats["conversations_evicted"],
            "rss_mib": stats["rss_bytes"] / 2**20, "baseline_mib": baseline / 2**20, "seconds": elapsed}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to tell our cost from the machine's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_sdk(calls: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-sdk-") as root:
        tracker = Tracker(landing_dir=root, queue_size=calls + 10, batch_size=5000, register_atexit=False)
        properties = {"content": "Where is my order?", "turn": 1}
        for _ in range(2000):  # warm-up
            tracker.track("user_message", "c-warm", properties)
        samples = []
        clock = time.perf_counter_ns
        cpu_started = time.thread_time_ns()
        started = clock()
        for _ in range(calls):
            before = clock()
            tracker.track("user_message", "c-1", properties, user_id="u-1")
            samples.append(clock() - before)
        total_ns = clock() - started
        # the caller thread's own CPU time (the timing loop included): what
        # track() costs the application, whatever else runs on the machine
        cpu_ns = time.thread_time_ns() - cpu_started
        counters = tracker.close(timeout=60)
    samples.sort()
    return {
        "calls": calls,
        "cpu_us": cpu_ns / calls / 1000,
        "mean_us": total_ns / calls / 1000,
        "median_us": statistics.median(samples) / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
        "delivered": counters.sent,
    }


# --- the SDK's integrations: CPU of the caller thread per wrapped call ---------------------

WARM_UP_CALLS = 20


def _thread_cpu_per_call(call, calls: int) -> float:
    started = time.thread_time_ns()
    for _ in range(calls):
        call()
    return (time.thread_time_ns() - started) / calls / 1000


def compare_calls(plain, wrapped, calls: int, rounds: int = 3) -> dict:
    """Caller-thread CPU µs per call, unwrapped and wrapped: the lowest of ``rounds`` alternating rounds
    of ``calls // rounds`` calls each (alternating, so a burst of load on the machine hits both alike)."""
    for _ in range(WARM_UP_CALLS):  # imports, the connection, caches
        plain()
        wrapped()
    per_round = max(1, calls // rounds)
    plain_us, wrapped_us = [], []
    for _ in range(rounds):
        plain_us.append(_thread_cpu_per_call(plain, per_round))
        wrapped_us.append(_thread_cpu_per_call(wrapped, per_round))
    return {"plain_us": min(plain_us), "wrapped_us": min(wrapped_us), "overhead_us": min(wrapped_us) - min(plain_us),
            "wrapped_calls": WARM_UP_CALLS + rounds * per_round}


def bench_openai_integration(calls: int) -> dict:
    """``instrument_openai``: the same chat completion unwrapped and wrapped inside a conversation."""
    import openai
    from support.fake_llm_server import FakeLLMServer

    from convo_capture.integrations.openai import instrument_openai

    messages = [{"role": "system", "content": "You are a support agent."},
                {"role": "user", "content": "Where is my order 4411?"}]
    with tempfile.TemporaryDirectory(prefix="bench-openai-") as root, \
            FakeLLMServer(default=lambda body: {"kind": "ok", "content": "It left the depot today."}) as server:
        plain = openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0)
        wrapped = instrument_openai(openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0))
        tracker = Tracker(landing_dir=root, queue_size=4 * calls + 1000, register_atexit=False)
        with tracker.conversation("bench-openai", user_id="u-1"):  # the plain client records nothing
            timing = compare_calls(
                lambda: plain.chat.completions.create(model="gpt-4o-mini", messages=messages),
                lambda: wrapped.chat.completions.create(model="gpt-4o-mini", messages=messages), calls)
        counters = tracker.close(timeout=60)
        events = sum(sum(1 for _ in path.open("rb")) for path in Path(root).rglob("*.jsonl"))
    return {"integration": "openai", **timing, "delivered": counters.sent, "landed": events}


def bench_langchain_integration(calls: int) -> dict | None:
    """``ConvoCallbackHandler`` on a LangChain fake chat model; None when langchain-core is not installed."""
    try:
        from langchain_core.callbacks import BaseCallbackHandler
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from langchain_core.messages import HumanMessage, SystemMessage
    except ImportError:
        return None
    from convo_capture.integrations.langchain import ConvoCallbackHandler

    messages = [SystemMessage("You are a support agent."), HumanMessage("Where is my order 4411?")]
    model = FakeListChatModel(responses=["It left the depot today."])
    with tempfile.TemporaryDirectory(prefix="bench-langchain-") as root:
        tracker = Tracker(landing_dir=root, queue_size=4 * calls + 1000, register_atexit=False)
        handler = ConvoCallbackHandler(tracker)
        # against a handler that does nothing: LangChain's own callback dispatch is not the integration's cost
        silent = BaseCallbackHandler()
        with tracker.conversation("bench-langchain", user_id="u-1"):  # without our handler nothing is recorded
            timing = compare_calls(lambda: model.invoke(messages, config={"callbacks": [silent]}),
                                   lambda: model.invoke(messages, config={"callbacks": [handler]}), calls)
            timing["bare_us"] = _thread_cpu_per_call(lambda: model.invoke(messages), max(1, calls // 3))
        counters = tracker.close(timeout=60)
        events = sum(sum(1 for _ in path.open("rb")) for path in Path(root).rglob("*.jsonl"))
    return {"integration": "langchain", **timing, "delivered": counters.sent, "landed": events}


def report_otlp(args) -> None:
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for content_type in OTLP_CONTENT_TYPES:
        result = bench_otlp(args.otlp_spans_total, args.otlp_spans, args.clients, content_type)
        verdict = "meets" if result["events_per_second"] >= COLLECTOR_TARGET else "MISSES"
        cpu_verdict = "meets" if result["events_per_cpu_second"] >= COLLECTOR_TARGET else "MISSES"
        print(f"collector OTLP {content_type}: {result['spans']:,} spans in {result['requests']:,} requests "
              f"(~{result['bytes_per_request'] / 1024:,.0f} KiB each) -> {result['events']:,} events landed in "
              f"{result['seconds']:.2f} s = {result['events_per_second']:,.0f} events/s with fsync (wall {verdict} "
              f"the target); {result['cpu_seconds']:.2f} CPU s = {result['events_per_cpu_second']:,.0f} events per "
              f"CPU second ({cpu_verdict} the {COLLECTOR_TARGET:,}/s target)")


def report_integrations(args) -> None:
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for result in (bench_openai_integration(args.integration_calls),
                   bench_langchain_integration(args.integration_calls)):
        if result is None:
            print("langchain: langchain-core is not installed, skipped")
            continue
        baseline = ("unwrapped" if "bare_us" not in result else
                    f"with a do-nothing callback handler ({result['bare_us']:.0f} µs without any)")
        print(f"{result['integration']}: {result['wrapped_calls']:,} wrapped calls, caller-thread CPU per call: "
              f"{result['plain_us']:.0f} µs {baseline}, {result['wrapped_us']:.0f} µs wrapped -> the integration "
              f"and Tracker.track add {result['overhead_us']:.0f} µs per call ({result['delivered']:,} events "
              f"delivered, {result['landed']:,} landed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events posted to the collector")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client connections")
    parser.add_argument("--sdk-calls", type=int, default=200_000, help="Tracker.track calls timed")
    parser.add_argument("--rate", type=int, default=5_000, help="live benchmark: events/s sustained")
    parser.add_argument("--seconds", type=float, default=20.0, help="live benchmark: seconds at that rate")
    parser.add_argument("--live-clients", type=int, default=4, help="live benchmark: client threads")
    parser.add_argument("--live-batch", type=int, default=25, help="live benchmark: events per request")
    parser.add_argument("--conversations", type=int, default=100_000,
                        help="live benchmark: conversations held for the memory figure")
    parser.add_argument("--otlp-spans", type=int, default=400, help="OTLP benchmark: spans per request")
    parser.add_argument("--otlp-spans-total", type=int, default=200_000, help="OTLP benchmark: spans posted")
    parser.add_argument("--integration-calls", type=int, default=2_000,
                        help="integrations benchmark: wrapped calls timed per integration")
    parser.add_argument("--live-only", action="store_true", help="only the live state benchmark")
    parser.add_argument("--otlp-only", action="store_true", help="only the OTLP (protobuf and JSON) benchmark")
    parser.add_argument("--integrations-only", action="store_true",
                        help="only the SDK integrations benchmark (openai, LangChain)")
    parser.add_argument("--skip-memory", action="store_true", help="of the live state benchmark, no memory figure")
    parser.add_argument("--latency-only", action="store_true",
                        help="of the live state benchmark, only the latencies at --rate (no throughput, no memory)")
    args = parser.parse_args()
    only = [args.live_only, args.otlp_only, args.integrations_only]
    if sum(only) > 1:
        parser.error("--live-only, --otlp-only and --integrations-only exclude each other: pick one")
    if not any(only):
        bench_throughput_and_sdk(args)
    if args.otlp_only or not any(only):
        report_otlp(args)
    if args.integrations_only or not any(only):
        report_integrations(args)
    if args.live_only or not any(only):
        report_live(args)


def report_live(args) -> None:
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not args.latency_only:
        off = bench_collector(args.events, args.batch, args.clients, live=False)
        on = bench_collector(args.events, args.batch, args.clients, live=True)
        share = on["events_per_second"] / off["events_per_second"]
        cpu_share = off["cpu_seconds"] / on["cpu_seconds"]
        print(f"throughput, live state off: {off['events_per_second']:,.0f} events/s "
              f"({off['cpu_seconds']:.2f} CPU s in the collector)")
        print(f"throughput, live state on:  {on['events_per_second']:,.0f} events/s ({on['cpu_seconds']:.2f} CPU s in "
              f"the collector, {on['worker_cpu_seconds']:.2f} CPU s = "
              f"{on['worker_cpu_seconds'] / on['events'] * 1e6:.0f} µs per event in the live worker; it caught up "
              f"{on['live_caught_up_seconds'] - on['seconds']:.2f} s after the last answer) -> wall {share:.0%} of off "
              f"({'meets' if share >= 0.8 else 'MISSES'} the 80% target); the collector's own CPU per event: "
              f"{cpu_share:.0%} of off's throughput per CPU second")
    live = bench_live(args.rate, args.seconds, args.live_clients, args.live_batch)
    stats = live["stats"]
    update, probe, webhook = stats["update_latency"], live["probe"], live["webhook"]
    print(f"live: {live['events']:,} events in {live['seconds']:.1f} s = {live['rate']:,.0f} events/s from "
          f"{args.live_clients} clients (batches of {args.live_batch}); dropped from the live state: "
          f"{stats['dropped_events']}; interventions fired {stats['interventions_fired']:,}")
    for name, numbers in (("ack -> stages updated (worker, every event)", update),
                          ("ack -> stages visible to a client (probe, polling GET)", probe),
                          ("rule condition -> webhook request at the receiver", webhook)):
        verdict = "meets" if numbers.get("p95_ms", 1e9) <= 50 else "MISSES"
        print(f"  {name}: n={numbers['count']:,} p50 {numbers.get('p50_ms', 0):.1f} ms, "
              f"p95 {numbers.get('p95_ms', 0):.1f} ms, p99 {numbers.get('p99_ms', 0):.1f} ms -> {verdict} p95 <= 50 ms")
    if args.latency_only or args.skip_memory:
        return
    for cap in (None, args.conversations // 4):
        memory = bench_memory(args.conversations, cap)
        print(f"memory: {memory['conversations_sent']:,} conversations ({memory['events']:,} events) "
              f"{'with --live-max-conversations ' + format(cap, ',') if cap else 'with the default caps'}: "
              f"live worker {memory['rss_mib']:,.0f} MiB (empty: {memory['baseline_mib']:,.0f} MiB), "
              f"{memory['kept']:,} kept, {memory['evicted']:,} evicted; applied in {memory['seconds']:.1f} s")


def bench_throughput_and_sdk(args) -> None:
    collector = bench_collector(args.events, args.batch, args.clients)
    verdict = "meets" if collector["events_per_second"] >= COLLECTOR_TARGET else "MISSES"
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"collector: {collector['events']:,} events in {collector['seconds']:.2f} s = "
          f"{collector['events_per_second']:,.0f} events/s accepted with fsync "
          f"(batches of {args.batch}, {args.clients} clients; {collector['landed_lines']:,} lines landed) "
          f"-> wall {verdict} the {COLLECTOR_TARGET:,}/s target")
    cpu_verdict = "meets" if collector["events_per_cpu_second"] >= COLLECTOR_TARGET else "MISSES"
    print(f"collector CPU: {collector['cpu_seconds']:.2f} CPU s = {collector['events_per_cpu_second']:,.0f} "
          f"events per CPU second -> with one core of its own it {cpu_verdict} the target")
    if collector["landed_lines"] != collector["events"] + 10:
        raise SystemExit("landed lines do not match accepted events")

    sdk = bench_sdk(args.sdk_calls)
    verdict = "meets" if sdk["mean_us"] < SDK_TARGET_US else "MISSES"
    cpu_verdict = "meets" if sdk["cpu_us"] < SDK_TARGET_US else "MISSES"
    print(f"sdk: Tracker.track over {sdk['calls']:,} calls ({sdk['delivered']:,} delivered): caller-thread CPU "
          f"{sdk['cpu_us']:.1f} µs per call -> {cpu_verdict} the {SDK_TARGET_US:.0f} µs target; wall median "
          f"{sdk['median_us']:.1f} µs, p99 {sdk['p99_us']:.1f} µs, mean {sdk['mean_us']:.1f} µs "
          f"(mean -> {verdict}; it includes time the process waits for a CPU or the GIL)")


if __name__ == "__main__":
    main()
