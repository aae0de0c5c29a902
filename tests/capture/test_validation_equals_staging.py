"""The collector's validator gives exactly the verdicts of the real dbt staging.

Every rule lives in staging (base_events_parsed); ``lib/event_validation.py``
mirrors it so the collector can answer before landing. This test feeds one
corpus of edge-case rows through both and requires identical verdicts and
reasons, so a rule changed on one side only fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from convo_warehouse.lib.event_validation import parse_timestamp, validate_event

NOW = datetime.now(UTC).replace(tzinfo=None)
SOON = (NOW + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
LATE = (NOW + timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(**fields):
    base = {"event_id": "e", "conversation_id": "c", "event_type": "user_message",
            "timestamp": "2026-01-05T10:00:00Z"}
    return {**base, **fields}


# Each entry: one raw JSON value as it may arrive, with its defect (if any) commented.
CORPUS = [
    row(),
    row(event_id=" "),  # blank id: missing
    row(event_id=None),  # null id: missing
    row(event_id=123),  # number id: its decimal text
    row(event_id=1.5),  # fractional number id
    row(event_id=True),  # boolean id
    row(event_id={"a": 1}),  # object id
    row(conversation_id=None, session_id="s-1"),  # alias for conversation_id
    row(conversation_id="", session_id=""),  # both blank: missing
    row(conversation_id="  "),  # spaces only: missing
    row(event_type=""),  # missing type
    row(event_type="no_such_type"),  # unknown type: staged (flagged), not rejected
    {"event_id": "x"},  # several required fields missing
    row(timestamp=None),  # missing timestamp
    row(timestamp=""),  # empty timestamp
    row(timestamp=1767607200000),  # epoch ms number
    row(timestamp=1767607200000.5),  # fractional epoch ms
    row(timestamp="1767607200000"),  # epoch ms digits
    row(timestamp="-1000"),  # negative epoch ms
    row(timestamp="1234567890123456"),  # 16 digits: not accepted
    row(timestamp="2026-01-05"),  # a date alone
    row(timestamp="now"),  # words
    row(timestamp="2026-01-05 10:00"),  # space, no seconds
    row(timestamp="2026-01-05t10:00:00z"),  # lower-case t and z
    row(timestamp="2026-01-05T10:00:00.123456789+05:30"),  # nanoseconds and an offset
    row(timestamp="2026-01-05T10:00:00+0530"),  # offset without colon
    row(timestamp="2026-01-05T10:00:00-03"),  # hour-only offset
    row(timestamp="2026-13-05T10:00:00Z"),  # month 13
    row(timestamp="2026-02-30T10:00:00Z"),  # 30 February
    row(timestamp="2026-01-05T25:00:00Z"),  # hour 25
    row(timestamp="2026-01-05 24:00"),  # 24:00 is midnight of the next day
    row(timestamp="2026-01-05 24:30:00"),  # past 24:00
    row(timestamp="9999-12-31T24:00:00"),  # 24:00 on the last day there is: past year 9999
    row(timestamp="9999-12-31T23:30:00-01:00"),  # past year 9999 once in UTC
    row(timestamp="0001-01-01T00:30:00+01:00"),  # before year 1 once in UTC
    row(timestamp="2026-01-05T10:00:60Z"),  # second 60
    row(timestamp="2026-01-05T10:00:00+10:75"),  # offset minutes over 59
    row(timestamp="2026-01-05T10:00:00.1234567Z"),  # seven fraction digits
    row(timestamp="2026-01-05T10:00:00.5+05:30"),  # one fraction digit and an offset
    row(timestamp="2026-01-05T24:00:00Z"),  # 24:00 in the common form
    row(timestamp="2026-01-05T10:00:00+24:00"),  # a 24-hour offset
    row(timestamp="2026-02-30T10:00:00.000000Z"),  # 30 February in the common form
    row(timestamp=" 2026-01-05T10:00:00Z "),  # surrounding spaces
    row(timestamp=True),  # boolean timestamp
    row(timestamp=SOON),  # ahead of load time, within 24 h
    row(timestamp=LATE),  # more than 24 h ahead of load time
    row(properties=None),  # null properties: empty object
    row(properties={"content": "hi"}),  # object
    row(properties=["a"]),  # array
    row(properties="text"),  # plain string
    row(properties='{"content": "double-encoded"}'),  # a string holding an object
    row(properties='["x"]'),  # a string holding an array
    row(properties=5),  # number
    row(user_id=True),  # boolean user id
    row(user_id=None, customer_id=[1]),  # array user id under its v1 alias
    row(conversation_id=None, session_id={"s": 1}),  # object conversation id under its v1 alias
    row(event_id=10**16),  # a large integer id
    row(event_id=1e16),  # an integral number written as a double
    row(event_id=123.0),  # an integral number with a fraction
    # contract v1.1 field names (seeds/field_aliases.csv)
    {**row(), "event_id": None, "id": "v11-id"},  # id for event_id
    {**row(), "event_id": None, "message_id": 42},  # message_id, a number
    {**row(), "id": "ignored"},  # the canonical name wins
    {**row(), "event_id": "  ", "id": "v11-blank"},  # a blank canonical value does not win
    {**row(), "event_id": None, "id": {"x": 1}},  # an object under an alias
    {**row(), "event_id": None, "id": None, "message_id": None},  # every name null: missing
    {**row(), "metadata": {"content": "hi"}},  # metadata for properties
    {**row(), "metadata": ["x"]},  # metadata that is not an object
    {**row(), "properties": {"a": 1}, "metadata": "junk"},  # properties wins over metadata
    {**row(), "properties": None, "metadata": '{"a": 1}'},  # double-encoded metadata
    [1, 2],  # not an object at all
    "a string",  # not an object at all
    7,  # not an object at all
]


def staging_verdicts(warehouse, corpus) -> tuple[dict[int, str | None], datetime]:
    (warehouse.landing / "corpus.jsonl").write_text("\n".join(json.dumps(value) for value in corpus) + "\n")
    warehouse.load()
    warehouse.build("+base_events_parsed")
    rows = warehouse.query("select row_number, rejection_reason from staging.base_events_parsed")
    loaded_at = warehouse.scalar("select max(loaded_at) from raw.loaded_files")
    return {row_number: reason for row_number, reason in rows}, loaded_at


def test_collector_validator_matches_staging(warehouse):
    staged, loaded_at = staging_verdicts(warehouse, CORPUS)
    mismatches = []
    for line_number, value in enumerate(CORPUS, start=1):
        verdict = validate_event(value, loaded_at)
        if verdict.reason != staged[line_number]:
            mismatches.append(f"line {line_number} {value!r}: collector {verdict.reason}, staging {staged[line_number]}")
    assert not mismatches, "\n".join(mismatches)
    assert set(staged.values()) >= {None, "missing_required_field", "unparseable_timestamp", "future_timestamp",
                                    "properties_not_object", "unreadable_line", "invalid_field_type"}


def test_timestamps_parse_to_the_same_instant_as_staging(warehouse):
    texts = ["2026-01-05T10:00:00.123456789+05:30", "2026-01-05 10:00", "1767607200000", "-1000",
             "2026-01-05 24:00", "2026-01-05T10:00:00+10:75", "2026-01-05T10:00:00.1234567Z",
             "2026-01-05T10:00:00.5+05:30", "2026-01-05T24:00:00Z", "2026-01-05T10:00:00+24:00",
             "2026-01-05T10:00:00.123456Z",
             "2026-01-05T10:00:00-03", "2026-01-05T10:00:00+0530"]
    values = [row(event_id=f"t{i}", timestamp=text) for i, text in enumerate(texts)]
    (warehouse.landing / "stamps.jsonl").write_text("\n".join(json.dumps(v) for v in values) + "\n")
    warehouse.load()
    warehouse.build("+base_events_parsed")
    staged = dict(warehouse.query("select event_id, event_at from staging.base_events_parsed"))
    assert {f"t{i}": parse_timestamp(text) for i, text in enumerate(texts)} == staged
