"""``live_event`` stages an accepted event as the real ``stg_events`` does (types, ids, time, content, sentiment)."""

from __future__ import annotations

import json

from convo_warehouse.lib.event_validation import validate_event
from convo_warehouse.lib.live.events import live_event


def event(number: int, **fields):
    base = {"event_id": f"e{number}", "conversation_id": "c", "event_type": "user_message",
            "timestamp": "2026-01-05T10:00:00Z"}
    return {**base, **fields}


# Each entry: one accepted event with what makes it interesting.
CORPUS = [
    event(1, properties={"content": "plain"}),
    event(2, event_type="agent_message", properties={"content": "reply"}),
    event(3, event_type="message_sent", properties={"content": "alias of user_message"}),
    event(4, event_type=" Message_Received ", properties={"content": "alias, any case, spaces"}),
    event(5, event_type="message_received", properties={"sender": " Customer ", "content": "user by sender"}),
    event(6, event_type="agent_message", properties={"sender": "bot", "content": "agent sender"}),
    event(7, event_type="agent_message", properties={"sender": "LEAD"}),  # user side, no content
    event(8, event_type="agent_response", properties={"sender": "user"}),  # alias then sender
    event(9, event_type="COMPLETED"),  # alias of conversation_completed
    event(10, event_type="no_such_type"),  # unknown: flagged
    event(11, event_type="Fallback_Triggered"),  # canonical name in another case
    event(12, properties={"content": 42}),  # content as a number
    event(13, properties={"content": {"a": [1, "é"]}}),  # content as an object
    event(14, properties={"content": True}),  # content as a boolean
    event(15, properties={"content": "ünïcode ✓", "sentiment": -0.4}),
    event(16, properties={"sentiment": "0.25"}),  # sentiment as text
    event(17, properties={"sentiment": "very bad"}),  # not a number
    event(18, properties={"sentiment": 3}),  # out of -1..1 (kept; resolution ignores it)
    event(19, properties={"sentiment": True}),  # boolean
    event(20, properties='{"content": "double-encoded"}'),
    {"id": "e21", "session_id": 77, "customer_id": 5.0, "event_type": "user_message",
     "timestamp": 1767607200000, "metadata": {"content": "v1.1 names"}},
    event(22, timestamp="2026-01-05T10:00:00.123456789+05:30", channel=" web "),
    event(23, conversation_id=123.0, user_id="  u-1  "),
    event(24, event_type="meeting_booked"),  # alias of stage_reached
]


def test_live_events_equal_staging(warehouse):
    assert all(validate_event(value).accepted for value in CORPUS)
    (warehouse.landing / "corpus.jsonl").write_text("\n".join(json.dumps(value) for value in CORPUS) + "\n")
    warehouse.load()
    warehouse.build("+stg_events")
    staged = {
        row[0]: row[1:]
        for row in warehouse.query(
            "select event_id, conversation_id, user_id, event_type, is_known_type, event_at, channel, content, "
            "sentiment from staging.stg_events"
        )
    }
    live = {}
    for value in CORPUS:
        item = live_event(value)
        live[item.event_id] = (item.conversation_id, item.user_id, item.event_type, item.is_known_type,
                               item.event_at, item.channel, item.content, item.sentiment)
    assert live == staged
    assert live["e5"][2] == "user_message" and live["e10"][3] is False
