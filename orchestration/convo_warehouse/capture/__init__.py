"""Capture SDK: record contract events in an application and deliver them.

Standard library only (plus ``convo_warehouse.lib.assignment``), so an
agent can import it without Dagster, dbt or DuckDB::

    from convo_warehouse.capture import Tracker

    tracker = Tracker("http://127.0.0.1:8765", token="...")
    with tracker.conversation(user_id="u-1", channel="web") as convo:
        convo.user_message("Where is my order?")
        convo.agent_message("It ships today.", model="gpt-4o", input_tokens=812, output_tokens=9)
        convo.completed()

See docs/capture.md.
"""

from convo_warehouse.capture.ids import utc_timestamp, uuid7
from convo_warehouse.capture.tracker import CaptureCounters, Conversation, Tracker

__all__ = ["CaptureCounters", "Conversation", "Tracker", "utc_timestamp", "uuid7"]
