"""The capture SDK, for code written against ``convo_warehouse.capture``.

The SDK is its own distribution, ``convo-capture`` (``capture-sdk/`` in this
repository, installed with the warehouse): import ``convo_capture`` in new
code. This module only re-exports its public names.
"""

from convo_capture import CaptureCounters, Conversation, Tracker, current_conversation, utc_timestamp, uuid7

__all__ = ["CaptureCounters", "Conversation", "Tracker", "current_conversation", "utc_timestamp", "uuid7"]
