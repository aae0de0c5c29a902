"""``with_conversation``: run a function inside a conversation (for stateless handlers).

A web handler called once per user message knows the conversation only by an
id in the request. Decorated, each call runs inside
``tracker.conversation(<id>)``: the first call records ``conversation_started``,
later calls continue the turn count, and code below it (the OpenAI wrapper,
the LangChain handler, ``current_conversation()``) records into the right
conversation without passing it around::

    @with_conversation(tracker, lambda request: request.json["session_id"], channel="web")
    def reply(request):
        ...
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Union

from convo_capture.tracker import Tracker


def with_conversation(tracker: Tracker, conversation_id: Union[str, Callable[..., str]], **options: Any):
    """Decorate a function (sync or async) to run inside the conversation ``conversation_id``.

    ``conversation_id``: an id, or a function of the decorated function's
    arguments returning it. ``options`` go to ``tracker.conversation``
    (``user_id``, ``channel``, ``start``, started properties).
    """

    def conversation_for(args, kwargs):
        return conversation_id(*args, **kwargs) if callable(conversation_id) else conversation_id

    def decorate(function):
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def run_async(*args, **kwargs):
                with tracker.conversation(conversation_for(args, kwargs), **options):
                    return await function(*args, **kwargs)

            return run_async

        @functools.wraps(function)
        def run(*args, **kwargs):
            with tracker.conversation(conversation_for(args, kwargs), **options):
                return function(*args, **kwargs)

        return run

    return decorate
