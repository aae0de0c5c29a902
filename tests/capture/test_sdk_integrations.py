"""Drop-in instrumentation: the real ``openai`` client against a local fake server, LangChain callbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.fake_llm_server import FakeLLMServer

from convo_capture import Tracker, with_conversation
from convo_warehouse.lib.landing import discover_files


def landed(landing: Path) -> list[dict]:
    return [json.loads(line) for path in discover_files(landing) for line in path.read_text().splitlines()]


def test_openai_wrapper_records_user_and_agent_messages_with_model_tokens_and_latency(tmp_path: Path):
    import openai

    from convo_capture.integrations.openai import instrument_openai

    tracker = Tracker(landing_dir=tmp_path, register_atexit=False)
    with FakeLLMServer(default=lambda body: {"kind": "ok", "content": "It shipped today."}) as server:
        client = instrument_openai(openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0))

        @with_conversation(tracker, lambda session, text: session, user_id="u-9")
        def handle(session: str, text: str) -> str:
            answer = client.chat.completions.create(model="gpt-4o-mini", messages=[
                {"role": "system", "content": "You are a support agent."}, {"role": "user", "content": text}])
            return answer.choices[0].message.content

        assert handle("c-openai", "Where is my order?") == "It shipped today."
        handle("c-openai", "Thanks!")
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "outside"}])  # not recorded
        server.script.append({"kind": "status", "code": 500, "retry_after": 0})
        with pytest.raises(openai.InternalServerError):
            handle("c-openai", "And now?")
    tracker.close()
    events = landed(tmp_path)
    assert [(e["event_type"], e.get("properties", {}).get("turn")) for e in events] == [
        ("conversation_started", None), ("user_message", 1), ("agent_message", 1), ("user_message", 2),
        ("agent_message", 2), ("user_message", 3), ("agent_message", 3)]
    assert {e["conversation_id"] for e in events} == {"c-openai"} and {e["user_id"] for e in events} == {"u-9"}
    reply = events[2]["properties"]
    assert reply["content"] == "It shipped today." and reply["model"] == "gpt-4o-mini"
    assert reply["input_tokens"] > 0 and reply["output_tokens"] == len("It shipped today.") // 4
    assert reply["latency_ms"] > 0
    assert events[6]["properties"]["error"] == "InternalServerError"


def test_langchain_handler_records_model_and_tool_runs(tmp_path: Path):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.tools import tool

    from convo_capture.integrations.langchain import ConvoCallbackHandler

    @tool
    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        return "shipped"

    @tool
    def broken(order_id: str) -> str:
        """Always fails."""
        raise RuntimeError("down")

    tracker = Tracker(landing_dir=tmp_path, register_atexit=False)
    handler = ConvoCallbackHandler(tracker)
    model = FakeListChatModel(responses=["Let me check.", "It shipped."])
    with tracker.conversation("c-lc", user_id="u-1"):
        model.invoke([SystemMessage("be brief"), HumanMessage("Where is order 42?")], config={"callbacks": [handler]})
        lookup_order.invoke({"order_id": "42"}, config={"callbacks": [handler]})
        with pytest.raises(RuntimeError):
            broken.invoke({"order_id": "42"}, config={"callbacks": [handler]})
    # outside a conversation, the run's metadata names it
    model.invoke([HumanMessage("Thanks")], config={"callbacks": [handler], "metadata": {"conversation_id": "c-lc"}})
    tracker.close()
    events = landed(tmp_path)
    assert [e["event_type"] for e in events] == [
        "conversation_started", "user_message", "agent_message", "tool_called", "tool_called", "user_message",
        "agent_message"]
    assert events[2]["properties"]["content"] == "Let me check." and events[2]["properties"]["latency_ms"] >= 0
    assert events[3]["properties"]["tool_name"] == "lookup_order"
    assert events[4]["properties"] == {"tool_name": "broken", "turn": 1, "error": "RuntimeError"}
    assert events[5]["properties"]["turn"] == 2, "the metadata route continues the conversation's turns"
