"""``benchmarks/bench_capture.py``'s OTLP and integrations parts, run tiny: the counts they report are what landed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from convo_warehouse.lib.otel_genai import map_export_request, parse_export

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_capture  # noqa: E402


def test_otlp_bodies_map_to_the_same_events_in_both_encodings():
    for request in bench_capture.make_otlp_requests(16, 8):
        mapped = [map_export_request(parse_export(bench_capture.encode_otlp(request, content_type), content_type,
                                                  "traces")).events
                  for content_type in bench_capture.OTLP_CONTENT_TYPES]
        assert mapped[0] == mapped[1] == map_export_request(request).events
        assert len(mapped[0]) == 8  # 2 turns: conversation_started, user, tool and agent messages each
        assert len(request.resource_spans[0].scope_spans[0].spans) == 8


@pytest.mark.parametrize("content_type", ["application/x-protobuf", "application/json"])
def test_otlp_benchmark_counts_the_events_the_collector_mapped_and_landed(content_type: str):
    result = bench_capture.bench_otlp(48, 16, 2, content_type)
    # the mapping of the same requests, one conversation_started per conversation (the collector de-duplicates)
    mapped = {event["event_id"] for request in bench_capture.make_otlp_requests(48, 16)
              for event in map_export_request(request).events}
    assert result["spans"] == 48 and result["requests"] == 3
    assert result["events"] == len(mapped) == 12 * 3 + 3  # 12 turns of 3 events, conversations of 5 turns
    # the rates are of those landed events (CPU time is counted in 10 ms ticks: a tiny run may read 0)
    assert result["events_per_second"] == result["events"] / result["seconds"]


def test_openai_integration_benchmark_delivers_every_wrapped_call():
    result = bench_capture.bench_openai_integration(6)
    # conversation_started, then a user and an agent message per wrapped call; the plain client records nothing
    assert result["wrapped_calls"] == bench_capture.WARM_UP_CALLS + 6
    assert result["delivered"] == result["landed"] == 1 + 2 * result["wrapped_calls"]
    assert result["wrapped_us"] > 0 and result["plain_us"] > 0


def test_langchain_integration_benchmark_delivers_every_wrapped_call():
    pytest.importorskip("langchain_core", reason="the LangChain part runs only when langchain-core is installed")
    result = bench_capture.bench_langchain_integration(6)
    assert result["delivered"] == result["landed"] == 1 + 2 * result["wrapped_calls"]
    assert result["wrapped_us"] > 0 and result["plain_us"] > 0
