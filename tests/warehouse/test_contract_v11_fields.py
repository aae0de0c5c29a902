"""Contract v1.1 field names and identifier types, through the real loader and dbt.

Each format (JSONL, CSV, Parquet) must keep what staging needs: fields the
loader has no column for (``id``, ``message_id``, ``metadata``) and the JSON
type of an identifier (``123`` vs ``"123"`` vs ``{"id": 1}``).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from convo_warehouse.lib.field_aliases import apply_field_aliases, read_field_aliases
from support.warehouse import STAGED


def write_jsonl(path: Path, rows: list[dict | str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n")


def staged(warehouse, columns: str = "event_id, conversation_id, user_id, event_type") -> list[tuple]:
    return warehouse.query(f"select {columns} from staging.stg_events order by event_id")


def rejected(warehouse) -> list[tuple]:
    return warehouse.query(
        "select source_file, row_number, reason, reason_detail from quarantine.rejected_events order by 1, 2"
    )


def test_identifier_types_in_jsonl_and_parquet(warehouse):
    ts = "2024-03-01T10:00:00Z"
    write_jsonl(
        warehouse.landing / "ids.jsonl",
        [
            {"event_id": {"id": 1}, "conversation_id": "c1", "event_type": "user_message", "timestamp": ts},  # object
            {"event_id": "j-2", "conversation_id": ["c1"], "event_type": "user_message", "timestamp": ts},  # array
            {"event_id": "j-3", "conversation_id": "c1", "user_id": False, "event_type": "user_message", "timestamp": ts},  # boolean
            {"event_id": 123, "conversation_id": 7, "event_type": "user_message", "timestamp": ts},  # numbers: valid
            {"event_id": 124.0, "conversation_id": "c1", "event_type": "user_message", "timestamp": ts},  # integral: '124'
            {"event_id": 12.5, "conversation_id": "c1", "event_type": "user_message", "timestamp": ts},  # fraction: '12.5'
            {"event_id": "true", "conversation_id": "c1", "event_type": "user_message", "timestamp": ts},  # text: valid
        ],
    )
    pq.write_table(
        pa.table(
            {
                "event_id": pa.array([1001, 1002, 1003], pa.int64()),  # integer column: decimal text
                "conversation_id": pa.array([{"a": 1}, None, None]),  # struct: an object
                "session_id": [None, "s-1", "s-1"],
                "user_id": pa.array([None, True, None]),  # boolean column
                "event_type": ["user_message"] * 3,
                "timestamp": [ts] * 3,
            }
        ),
        warehouse.landing / "ids.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "event_id": pa.array([2001.0], pa.float64()),  # float column, integral value
                "conversation_id": pa.array([[1, 2]], pa.list_(pa.int64())),  # list: an array
                "event_type": ["user_message"],
                "timestamp": [ts],
            }
        ),
        warehouse.landing / "ids-float.parquet",
    )
    warehouse.load()
    warehouse.build(STAGED)

    assert staged(warehouse) == [
        ("1003", "s-1", None, "user_message"),
        ("12.5", "c1", None, "user_message"),
        ("123", "7", None, "user_message"),
        ("124", "c1", None, "user_message"),
        ("true", "c1", None, "user_message"),
    ]
    assert rejected(warehouse) == [
        ("ids-float.parquet", 1, "invalid_field_type",
         "identifier not text or a number: conversation_id is a JSON array"),
        ("ids.jsonl", 1, "invalid_field_type", "identifier not text or a number: event_id is a JSON object"),
        ("ids.jsonl", 2, "invalid_field_type", "identifier not text or a number: conversation_id is a JSON array"),
        ("ids.jsonl", 3, "invalid_field_type", "identifier not text or a number: user_id is a JSON boolean"),
        ("ids.parquet", 1, "invalid_field_type", "identifier not text or a number: conversation_id is a JSON object"),
        ("ids.parquet", 2, "invalid_field_type", "identifier not text or a number: user_id is a JSON boolean"),
    ]  # fmt: skip
    # The quarantined row shows the identifier as it was sent.
    raw = json.loads(warehouse.scalar(
        "select raw_record from quarantine.rejected_events where source_file = 'ids.jsonl' and row_number = 1"
    ))  # fmt: skip
    assert raw["event_id"] == {"id": 1}


V11_EVENTS = [
    # v1.1 names: id for event_id, metadata for properties
    {"id": "v-1", "conversation_id": "cv", "event_type": "conversation_started",
     "timestamp": "2024-03-01T10:00:00Z", "metadata": {"device": "mobile"}},
    # message_id for event_id; the sender decides the side
    {"message_id": "v-2", "conversation_id": "cv", "event_type": "message_received",
     "timestamp": "2024-03-01T10:00:01Z", "properties": {"sender": " Prospect", "content": "hi"}},
    {"message_id": "v-3", "conversation_id": "cv", "event_type": "message_received",
     "timestamp": "2024-03-01T10:00:02Z", "properties": {"sender": "bot", "content": "hello"}},
    {"id": "v-4", "conversation_id": "cv", "event_type": "message_received",
     "timestamp": "2024-03-01T10:00:03Z", "properties": {"content": "no sender: the agent"}},
    # canonical name wins over its alias
    {"event_id": "v-5", "id": "ignored", "conversation_id": "cv", "event_type": "message_received",
     "timestamp": "2024-03-01T10:00:04Z", "properties": {"sender": "customer"}, "metadata": {"sender": "agent"}},
    {"id": "v-6", "conversation_id": "cv", "event_type": "meeting_booked", "timestamp": "2024-03-01T10:00:05Z"},
]  # fmt: skip


def test_v1_1_field_names_in_every_format_and_meeting_booked_counts_in_sales(warehouse):
    write_jsonl(warehouse.landing / "v11.jsonl", V11_EVENTS)
    (warehouse.landing / "v11.csv").write_text(
        textwrap.dedent(
            """\
            id,conversation_id,event_type,timestamp,metadata
            vc-1,cc,conversation_started,2024-03-01 10:00:00,"{""device"": ""web""}"
            vc-2,cc,message_received,2024-03-01 10:00:01,"{""sender"": ""lead""}"
            """
        )
    )
    pq.write_table(
        pa.table(
            {
                "message_id": ["vp-1", "vp-2"],
                "conversation_id": ["cp", "cp"],
                "event_type": ["conversation_started", "meeting_booked"],
                "timestamp": pa.array([1709287200000, 1709287201000], pa.int64()),
                "metadata": pa.array([{"device": "tablet"}, {"device": None}]),
            }
        ),
        warehouse.landing / "v11.parquet",
    )
    warehouse.load()
    warehouse.build(select="+fct_conversations +reconciliation +funnel_summary")

    assert staged(warehouse, "event_id, event_type, raw_event_type, device, funnel, stage") == [
        ("v-1", "conversation_started", "conversation_started", "mobile", None, None),
        ("v-2", "user_message", "message_received", None, None, None),
        ("v-3", "agent_message", "message_received", None, None, None),
        ("v-4", "agent_message", "message_received", None, None, None),
        ("v-5", "user_message", "message_received", None, None, None),
        ("v-6", "stage_reached", "meeting_booked", None, "sales", "booked"),
        ("vc-1", "conversation_started", "conversation_started", "web", None, None),
        ("vc-2", "user_message", "message_received", None, None, None),
        ("vp-1", "conversation_started", "conversation_started", "tablet", None, None),
        ("vp-2", "stage_reached", "meeting_booked", None, "sales", "booked"),
    ]
    assert rejected(warehouse) == []
    # The collector's Python reading of the seed agrees with staging.
    python = [apply_field_aliases(event, read_field_aliases()) for event in V11_EVENTS]
    assert [event["event_id"] for event in python] == [
        event_id for (event_id,) in warehouse.query(
            "select event_id from staging.stg_events where source_file = 'v11.jsonl' order by row_number"
        )
    ]  # fmt: skip
    # meeting_booked reaches the sales funnel's booked stage
    assert warehouse.scalar(
        "select reached from marts.funnel_summary where funnel_name = 'sales' and stage = 'booked'"
    ) == 2


def test_a_field_alias_added_later_remaps_rows_loaded_before(warehouse):
    write_jsonl(
        warehouse.landing / "uuid.jsonl",
        [{"uuid": "u-1", "conversation_id": "cu", "event_type": "conversation_started",
          "timestamp": "2024-03-01T10:00:00Z"}],
    )  # fmt: skip
    warehouse.load()
    warehouse.build(STAGED)
    assert rejected(warehouse) == [
        ("uuid.jsonl", 1, "missing_required_field", "missing required field(s): event_id")
    ]

    # The user extends seeds/field_aliases.csv (here: the seed table) and re-runs.
    warehouse.query("insert into seeds.field_aliases values ('uuid', 'event_id')")
    warehouse.build("+fct_conversations +reconciliation", "--exclude", "resource_type:seed")
    assert rejected(warehouse) == []
    assert staged(warehouse, "event_id, conversation_id") == [("u-1", "cu")]
    assert warehouse.scalar("select sum(raw_rows - staged_rows) from audit.reconciliation") == 0


def test_python_field_aliases_match_staging(tmp_path):
    """The collector's pure-Python reading of the seed maps like staging does."""
    aliases = read_field_aliases()
    assert aliases == {"id": "event_id", "message_id": "event_id", "metadata": "properties"}
    mapped = [apply_field_aliases(dict(event), aliases) for event in V11_EVENTS]
    assert [event["event_id"] for event in mapped] == ["v-1", "v-2", "v-3", "v-4", "v-5", "v-6"]
    assert mapped[0]["properties"] == {"device": "mobile"}
    assert mapped[4]["properties"] == {"sender": "customer"}  # canonical wins
    assert "id" not in mapped[0] and "metadata" not in mapped[0]
