"""The optional real-time LLM check (CONVO_LIVE_LLM=1): confirms or declines `llm: confirm` rules,
falls back to the rules when the endpoint fails or is slow, never delays an acknowledgement."""

from __future__ import annotations

import json
import time

import pytest

from support.capture import CollectorProcess, wait_for
from convo_warehouse.lib.classify.stages import STAGES
from support.fake_llm_server import FakeLLMServer
from support.live import TOKEN, WebhookReceiver, get, rule_scripts, send


def run(tmp_path, monkeypatch, llm: FakeLLMServer, timeout: str = "10") -> tuple[WebhookReceiver, dict, list[float]]:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    monkeypatch.setenv("CONVO_LIVE_LLM_TIMEOUT", timeout)
    receiver = WebhookReceiver()
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--webhook-url", receiver.url, "--live-llm").start()
    timings = []
    try:
        for event in rule_scripts()["problem_not_identified"] + rule_scripts()["user_asked_for_human"]:
            started = time.perf_counter()
            send(collector, event)
            timings.append(time.perf_counter() - started)
        wait_for(lambda: get(collector, "/v1/live")[1]["llm"]["checked"] >= 1, 30, "the LLM check")
        wait_for(lambda: get(collector, "/v1/live")[1]["webhook"]["sent"] >= 1, 30, "the webhooks")
        time.sleep(0.5)
        stats = get(collector, "/v1/live")[1]
    finally:
        collector.stop()
        receiver.close()
    return receiver, stats, timings


def test_the_llm_declines_a_rule_its_stages_do_not_support(tmp_path, monkeypatch):
    # the LLM reads the problem as identified: problem_not_identified does not fire
    with FakeLLMServer(default=lambda body: {"kind": "ok", "content": json.dumps({s: True for s in STAGES})}) as llm:
        receiver, stats, _ = run(tmp_path, monkeypatch, llm)
    rules = [request["body"]["rule"] for request in receiver.delivered()]
    assert rules == ["user_asked_for_human"]  # no llm: confirm on that rule: never sent to the LLM
    assert stats["llm"] == {"checked": 1, "confirmed": 0, "declined": 1, "fallback": 0}
    assert llm.calls == 1


def test_the_llm_confirms_a_rule(tmp_path, monkeypatch):
    with FakeLLMServer(default=lambda body: {"kind": "ok", "content": json.dumps({s: s == "greeted" for s in STAGES})}) as llm:
        receiver, stats, _ = run(tmp_path, monkeypatch, llm)
    bodies = {request["body"]["rule"]: request["body"] for request in receiver.delivered()}
    assert bodies["problem_not_identified"]["classifier"] == "llm"
    assert stats["llm"]["confirmed"] == 1


@pytest.mark.parametrize("behaviour", [{"kind": "status", "code": 500}, {"kind": "sleep", "seconds": 5}])
def test_a_failing_or_slow_llm_falls_back_to_the_rules(tmp_path, monkeypatch, behaviour):
    with FakeLLMServer(default=lambda body: behaviour) as llm:
        receiver, stats, timings = run(tmp_path, monkeypatch, llm, timeout="1")
    bodies = {request["body"]["rule"]: request["body"] for request in receiver.delivered()}
    assert bodies["problem_not_identified"]["classifier"] == "rules"
    assert bodies["problem_not_identified"]["fallback_reason"].startswith("llm_failed")
    assert stats["llm"]["fallback"] == 1
    assert max(timings) < 2.0, timings  # the acknowledgement never waits for the LLM
