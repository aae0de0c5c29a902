"""A LangChain callback handler that records a run's messages and tools (needs ``langchain-core``).

    handler = ConvoCallbackHandler(tracker)
    with tracker.conversation("c-1") as convo:
        chain.invoke({"question": "..."}, config={"callbacks": [handler]})

Chat model runs record the last user (human) message they were given and the
answer as an ``agent_message`` with the model name, token usage and latency;
tool runs record ``tool_called``; a failed model or tool run records its
event with an ``error`` property. Events go to the current conversation
(``tracker.conversation`` / ``with_conversation``), or to the conversation
named by ``conversation_id`` in the run's metadata.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from convo_capture.tracker import Conversation, Tracker, current_conversation


class ConvoCallbackHandler(BaseCallbackHandler):
    """Records chat model and tool runs into the current conversation."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self._runs: Dict[UUID, Dict[str, Any]] = {}

    def _conversation(self, metadata: Optional[Dict[str, Any]]) -> Optional[Conversation]:
        convo = current_conversation()
        if convo is None and metadata and metadata.get("conversation_id"):
            convo = Conversation(self.tracker, str(metadata["conversation_id"]), metadata.get("user_id"), None)
        return convo

    def on_chat_model_start(self, serialized: Dict[str, Any], messages: List[List[Any]], *, run_id: UUID,
                            metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        convo = self._conversation(metadata)
        if convo is None:
            return
        history = messages[0] if messages else []
        if history and getattr(history[-1], "type", None) == "human":
            content = history[-1].content
            convo.user_message(content if isinstance(content, str) else str(content))
        model = (kwargs.get("invocation_params") or {}).get("model") or (metadata or {}).get("ls_model_name")
        self._runs[run_id] = {"convo": convo, "started": time.perf_counter(), "model": model}

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        message = getattr(generation, "message", None)
        usage = getattr(message, "usage_metadata", None) or {}
        # a tool the model asks for is recorded when it runs (on_tool_end)
        tools = getattr(message, "tool_calls", None) or []
        text = getattr(generation, "text", None) or None
        if text or not tools:
            model = ((getattr(message, "response_metadata", None) or {}).get("model_name") or run["model"])
            run["convo"].agent_message(
                text, model=model, latency_ms=round((time.perf_counter() - run["started"]) * 1000, 3),
                input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None:
            run["convo"].agent_message(None, model=run["model"], error=type(error).__name__,
                                       latency_ms=round((time.perf_counter() - run["started"]) * 1000, 3))

    def on_tool_start(self, serialized: Dict[str, Any], input_str: str, *, run_id: UUID,
                      metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        convo = self._conversation(metadata)
        if convo is not None:
            self._runs[run_id] = {"convo": convo, "tool": (serialized or {}).get("name") or kwargs.get("name")}

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None:
            run["convo"].tool_called(run["tool"])

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None:
            run["convo"].tool_called(run["tool"], error=type(error).__name__)
