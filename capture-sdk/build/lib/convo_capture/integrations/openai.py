"""Record an ``openai`` client's calls as conversation events.

``instrument_openai(client)`` wraps ``client.chat.completions.create`` and
``client.responses.create`` of that client (sync or async). Each call inside
a conversation (``tracker.conversation(...)`` or ``with_conversation``)
records the last user message it sends (when the user wrote it, not after a
tool result), then the answer as an ``agent_message`` with ``model``,
``input_tokens``, ``output_tokens``, ``latency_ms`` (and cached / reasoning
tokens when the API reports them), and one ``tool_called`` per tool the model
asked for. A call outside any conversation is passed through unrecorded;
streaming calls (``stream=True``) too. A failed call records an
``agent_message`` with an ``error`` property, then re-raises.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Dict, List, Optional

from convo_capture.tracker import Conversation, current_conversation


def instrument_openai(client: Any) -> Any:
    """Wrap ``client`` in place (and return it)."""
    chat = getattr(getattr(client, "chat", None), "completions", None)
    if chat is not None and hasattr(chat, "create"):
        chat.create = _wrap(chat.create, _chat_input, _chat_output)
    responses = getattr(client, "responses", None)
    if responses is not None and hasattr(responses, "create"):
        responses.create = _wrap(responses.create, _responses_input, _responses_output)
    return client


def _wrap(create, read_input, read_output):
    if getattr(create, "_convo_capture", False):
        return create
    if inspect.iscoroutinefunction(create):
        async def create_async(*args, **kwargs):
            convo = current_conversation()
            if convo is None or kwargs.get("stream"):
                return await create(*args, **kwargs)
            _record_input(convo, read_input(kwargs))
            started = time.perf_counter()
            try:
                response = await create(*args, **kwargs)
            except Exception as error:
                _record_error(convo, kwargs, started, error)
                raise
            _record_output(convo, read_output(response), started)
            return response

        create_async._convo_capture = True
        return create_async

    def create_sync(*args, **kwargs):
        convo = current_conversation()
        if convo is None or kwargs.get("stream"):
            return create(*args, **kwargs)
        _record_input(convo, read_input(kwargs))
        started = time.perf_counter()
        try:
            response = create(*args, **kwargs)
        except Exception as error:
            _record_error(convo, kwargs, started, error)
            raise
        _record_output(convo, read_output(response), started)
        return response

    create_sync._convo_capture = True
    return create_sync


def _record_input(convo: Conversation, user_text: Optional[str]) -> None:
    if user_text is not None:
        convo.user_message(user_text)


def _record_output(convo: Conversation, output: Dict[str, Any], started: float) -> None:
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    for tool in output.pop("tools"):
        convo.tool_called(tool)
    if output["content"] or not output.pop("only_tools"):
        convo.agent_message(output.pop("content"), latency_ms=latency_ms, **output)


def _record_error(convo: Conversation, kwargs: Dict[str, Any], started: float, error: Exception) -> None:
    convo.agent_message(None, model=kwargs.get("model"), latency_ms=round((time.perf_counter() - started) * 1000, 3),
                        error=type(error).__name__)


def _text(content: Any) -> Optional[str]:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("text")]
        return "\n".join(texts) or None
    return None


def _chat_input(kwargs: Dict[str, Any]) -> Optional[str]:
    messages = kwargs.get("messages") or []
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "user":
        return _text(last.get("content"))
    return None


def _usage(usage: Any, *names: str) -> Optional[int]:
    value: Any = usage
    for name in names:
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


def _chat_output(response: Any) -> Dict[str, Any]:
    choice = (getattr(response, "choices", None) or [None])[0]
    message = getattr(choice, "message", None)
    tools: List[str] = [call.function.name for call in (getattr(message, "tool_calls", None) or [])
                        if getattr(call, "function", None) is not None]
    usage = getattr(response, "usage", None)
    return {
        "content": getattr(message, "content", None),
        "model": getattr(response, "model", None),
        "input_tokens": _usage(usage, "prompt_tokens"),
        "output_tokens": _usage(usage, "completion_tokens"),
        "cache_read_input_tokens": _usage(usage, "prompt_tokens_details", "cached_tokens"),
        "reasoning_tokens": _usage(usage, "completion_tokens_details", "reasoning_tokens"),
        "tools": tools,
        "only_tools": bool(tools),
    }


def _responses_input(kwargs: Dict[str, Any]) -> Optional[str]:
    given = kwargs.get("input")
    if isinstance(given, str):
        return given
    if isinstance(given, list) and given:
        last = given[-1]
        if isinstance(last, dict) and last.get("role") == "user":
            return _text(last.get("content"))
    return None


def _responses_output(response: Any) -> Dict[str, Any]:
    tools = [item.name for item in (getattr(response, "output", None) or [])
             if getattr(item, "type", None) == "function_call"]
    usage = getattr(response, "usage", None)
    return {
        "content": getattr(response, "output_text", None) or None,
        "model": getattr(response, "model", None),
        "input_tokens": _usage(usage, "input_tokens"),
        "output_tokens": _usage(usage, "output_tokens"),
        "cache_read_input_tokens": _usage(usage, "input_tokens_details", "cached_tokens"),
        "reasoning_tokens": _usage(usage, "output_tokens_details", "reasoning_tokens"),
        "tools": tools,
        "only_tools": bool(tools),
    }
