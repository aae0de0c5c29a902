"""convo-capture: record an AI agent's conversation events and deliver them to convo-warehouse.

Standard library only, Python 3.9 or newer::

    from convo_capture import Tracker

    tracker = Tracker("http://127.0.0.1:8765", token="...")
    with tracker.conversation(user_id="u-1", channel="web") as convo:
        convo.user_message("Where is my order?")
        convo.agent_message("It ships today.", model="gpt-4o", input_tokens=812, output_tokens=9)
        convo.completed()

Drop-in instrumentation (each needs its library): ``convo_capture.integrations.openai``
(``instrument_openai``) and ``convo_capture.integrations.langchain``
(``ConvoCallbackHandler``); ``with_conversation`` carries the conversation of a
stateless handler. See docs/capture.md in the convo-warehouse repository.
"""

from convo_capture.context import with_conversation
from convo_capture.delivery import CaptureCounters
from convo_capture.ids import utc_timestamp, uuid7
from convo_capture.tracker import Conversation, Tracker, current_conversation

__version__ = "0.2.0"

__all__ = ["CaptureCounters", "Conversation", "Tracker", "current_conversation", "utc_timestamp", "uuid7",
           "with_conversation"]
