"""Reference implementation of the event contract and ``marts.fct_conversations``.

Implemented from the contract text alone (``events.md``, ``marts.md``), with
Python's own parsers (``json``, ``csv``, ``gzip``, ``pyarrow``), and without
importing anything from ``convo_warehouse``. It is deliberately slow and
literal: one conversation at a time, one rule per function, so a mismatch
against the warehouse can be traced to a sentence of the contract.

Where the contract leaves a choice open, the reading taken here is written next
to the code (search for "Reading:").

Entry point::

    store = RawStore()
    store.load(landing_dir, loaded_at)      # after each warehouse loader run
    ref = build_reference(store)
    ref.staging.staged / .quarantined / .duplicates / .reasons, ref.facts
    sales_step_rates(ref.staging.staged, ref.facts)   # v1.2 metrics, long format
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet", ".csv")

CANONICAL_TYPES = frozenset(
    {
        "interaction_initialized",
        "conversation_started",
        "user_message",
        "agent_message",
        "tool_called",
        "fallback_triggered",
        "handoff_requested",
        "feedback_received",
        "conversion",
        "stage_reached",
        "experiment_exposure",
        "button_clicked",
        "flow_started",
        "flow_completed",
        "flow_abandoned",
        "conversation_completed",
        "conversation_abandoned",
        "conversation_ended",
    }
)

# events.md, "Aliases seen in the wild".
ALIASES = {
    "started": "conversation_started",
    "session_start": "conversation_started",
    "message_sent": "user_message",
    "message_received": "agent_message",
    "agent_response": "agent_message",
    "escalation_requested": "handoff_requested",
    "feedback_submitted": "feedback_received",
    "completed": "conversation_completed",
    "abandoned": "conversation_abandoned",
    "session_end": "conversation_ended",
    "ab_exposure": "experiment_exposure",
    # events.md v1.1: "A meeting_booked event is a stage_reached event".
    "meeting_booked": "stage_reached",
}

# events.md, "Field names seen in the wild (v1.1)": alias -> canonical field.
FIELD_ALIASES = {"id": "event_id", "message_id": "event_id", "metadata": "properties"}
# events.md v1.1: a sender on message_received / agent_message decides the side.
USER_SENDERS = frozenset({"prospect", "user", "customer", "visitor", "lead"})
# events.md v1.1: meeting_booked is stage_reached with these properties.
MEETING_BOOKED = {"funnel": "sales", "stage": "booked"}

# Rejection reasons (names as the reference spells them; the test maps them).
UNREADABLE = "unreadable_line"
MISSING = "missing_required_field"
UNPARSEABLE_TS = "unparseable_timestamp"
FUTURE_TS = "future_timestamp"
PROPS_NOT_OBJECT = "properties_not_object"
INVALID_TYPE = "invalid_field_type"

EPOCH = datetime(1970, 1, 1)

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|[+-]\d{2}:\d{2}|[+-]\d{4})?$"
)
_DIGITS = re.compile(r"^[0-9]+$")
_WORD = re.compile(r"[a-z0-9']+")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class LoadRun:
    """One loader run: every file under ``landing_dir`` not loaded before."""

    landing_dir: Path
    loaded_at: datetime  # naive UTC


@dataclass
class RawRow:
    load_id: int
    loaded_at: datetime
    source_file: str
    row_number: int
    record: dict[str, Any] | None  # None when the line could not be read
    error: str | None = None
    raw_text: str | None = None  # the line as text (JSONL), for reports


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _json_loads(text: str) -> Any:
    """Strict JSON: NaN / Infinity are not JSON."""
    return json.loads(text, parse_constant=_reject_constant)


def discover(landing_dir: Path) -> list[Path]:
    files = [
        path
        for path in Path(landing_dir).rglob("*")
        if path.is_file() and path.name.lower().endswith(SUFFIXES)
    ]
    return sorted(files, key=lambda path: path.relative_to(landing_dir).as_posix())


def _read_jsonl(data: bytes) -> list[tuple[int, dict | None, str | None, str | None]]:
    rows = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        # Blank lines are skipped and not counted as rows (events.md).
        if not line.strip():
            continue
        text = line.decode("utf-8", errors="replace")
        try:
            value = _json_loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            rows.append((number, None, f"bad JSON: {error}", text))
            continue
        # Reading: a line that is valid JSON but not an object is an unreadable line
        # (the format is "one JSON object per line").
        if not isinstance(value, dict):
            rows.append((number, None, "JSON value is not an object", text))
            continue
        rows.append((number, value, None, text))
    return rows


def _read_csv(data: bytes) -> list[tuple[int, dict | None, str | None, str | None]]:
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    header = None
    previous_end = 0
    for values in reader:
        # Row number: the file line where the record starts (a quoted field may
        # span lines); only its order matters for dedupe.
        number, previous_end = previous_end + 1, reader.line_num
        if header is None:
            header = values
            continue
        if not values:
            continue  # a blank line
        if len(values) != len(header):
            # Reading: a CSV record with the wrong number of fields is unreadable.
            rows.append((number, None, "wrong number of fields", None))
            continue
        # An empty CSV field is null (events.md).
        record = {name: (value if value != "" else None) for name, value in zip(header, values)}
        rows.append((number, record, None, None))
    return rows


def _read_parquet(path: Path) -> list[tuple[int, dict | None, str | None, str | None]]:
    table = pq.read_table(path)
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            column = column.cast(pa.timestamp("us", tz=column.type.tz))
        values = column.to_pylist()
        if pa.types.is_map(column.type):
            values = [dict(value) if value is not None else None for value in values]
        columns[name] = values
    rows = []
    for index in range(table.num_rows):
        record = {name: values[index] for name, values in columns.items()}
        rows.append((index + 1, record, None, None))
    return rows


def read_file(path: Path) -> list[tuple[int, dict | None, str | None, str | None]]:
    """(row number, record or None, read error, raw line text) per row."""
    name = path.name.lower()
    if name.endswith(".jsonl.gz"):
        with gzip.open(path, "rb") as handle:
            return _read_jsonl(handle.read())
    if name.endswith(".jsonl"):
        return _read_jsonl(path.read_bytes())
    if name.endswith(".csv"):
        return _read_csv(path.read_bytes())
    if name.endswith(".parquet"):
        return _read_parquet(path)
    raise ValueError(f"unsupported file {path}")


class RawStore:
    """The reference's raw.events: rows of every file loaded, run after run.

    Call ``load`` right after each warehouse loader run, so a file changed in
    place between runs is read as it was then.
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.rows: list[RawRow] = []
        self.runs = 0

    def load(self, landing_dir: Path, loaded_at: datetime) -> list[str]:
        """Load every file whose content was not loaded before; returns their paths."""
        self.runs += 1
        landing = Path(landing_dir)
        loaded = []
        for path in discover(landing):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in self.seen:
                continue  # same content (any path) is not loaded again
            self.seen.add(digest)
            relative = path.relative_to(landing).as_posix()
            loaded.append(relative)
            for number, record, error, text in read_file(path):
                self.rows.append(RawRow(self.runs, loaded_at, relative, number, record, error, text))
        return loaded


def read_runs(runs: list[LoadRun]) -> list[RawRow]:
    """Every raw row of every run (files read now)."""
    store = RawStore()
    for run in runs:
        store.load(run.landing_dir, run.loaded_at)
    return store.rows


# --------------------------------------------------------------------------- validating


def _text(value: Any) -> str | None:
    """A scalar field as text (numbers keep their JSON spelling)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _present(value: Any) -> bool:
    """Required-field presence: null and the empty string are missing."""
    return value is not None and value != ""


def parse_timestamp(value: Any) -> datetime | None:
    """Contract timestamp -> naive UTC datetime, or None when unparseable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return None  # a date alone
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return _from_epoch_ms(value)
    if not isinstance(value, str):
        return None
    if _DIGITS.match(value):
        return _from_epoch_ms(int(value))
    match = _ISO.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # Reading: more than 6 fraction digits are truncated to microseconds.
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    except ValueError:
        return None
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        moment = moment - sign * timedelta(hours=hours, minutes=minutes)
    return moment


def _from_epoch_ms(ms: int | float) -> datetime | None:
    try:
        if isinstance(ms, int):
            return EPOCH + timedelta(microseconds=ms * 1000)
        return EPOCH + timedelta(microseconds=round(ms * 1000))
    except OverflowError:
        return None


def parse_properties(value: Any) -> tuple[bool, dict | None]:
    """(ok, object). Null is fine (no properties); a string holding an object is decoded."""
    if value is None:
        return True, None
    if isinstance(value, dict):
        return True, value
    if isinstance(value, str):
        try:
            decoded = _json_loads(value)
        except ValueError:
            return False, None
        if isinstance(decoded, dict):
            return True, decoded
        # Double-encoded: a JSON string holding a JSON object.
        if isinstance(decoded, str):
            try:
                twice = _json_loads(decoded)
            except ValueError:
                return False, None
            if isinstance(twice, dict):
                return True, twice
        return False, None
    return False, None


@dataclass
class Event:
    event_id: str
    conversation_id: str
    user_id: str | None
    event_type: str
    raw_event_type: str
    is_known_type: bool
    event_at: datetime
    channel: str | None
    properties: dict
    load_id: int
    source_file: str
    row_number: int


@dataclass
class Rejection:
    source_file: str
    row_number: int
    load_id: int
    reason: str
    row: RawRow | None = None


def _with_field_aliases(rec: dict[str, Any]) -> dict[str, Any]:
    """v1.1 field names read as their canonical field; the canonical name wins when both are present.

    Reading: "present" is the required-field reading (not null, not an empty
    string); among several aliases of one field, the first by name (`id`
    before `message_id`).
    """
    rec = dict(rec)
    for alias in sorted(FIELD_ALIASES):
        canonical = FIELD_ALIASES[alias]
        if alias in rec and not _present(rec.get(canonical)) and _present(rec[alias]):
            rec[canonical] = rec[alias]
    return rec


def _identifier(value: Any) -> tuple[bool, str | None]:
    """(valid type, text). events.md: an object, array or boolean is invalid; a number is its
    decimal text, an integer as `123`, not `123.0`.

    Reading: a number with an integral value (`123.0`) is an integer; a fractional one keeps
    Python's shortest text (`12.5`).
    """
    if value is None or isinstance(value, str):
        return True, value
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        return False, None
    if isinstance(value, int):
        return True, str(value)
    if isinstance(value, float) and math.isfinite(value):
        return True, str(int(value)) if value.is_integer() else repr(value)
    return True, _text(value)


def validate(row: RawRow, aliases: dict[str, str]) -> Event | Rejection:
    """One raw row -> a candidate event or a rejection (first failing rule wins).

    Reading: when a row breaks several rules, the order is unreadable, missing
    required field, identifier of an invalid type, unparseable timestamp,
    future timestamp, properties not an object (the contract does not rank them).
    """
    if row.record is None:
        return Rejection(row.source_file, row.row_number, row.load_id, UNREADABLE, row)
    rec = _with_field_aliases(row.record)
    # Both present: conversation_id wins; reading: an empty conversation_id is
    # missing, so session_id is used.
    conversation_id = rec.get("conversation_id")
    if not _present(conversation_id):
        conversation_id = rec.get("session_id")
    user_id = rec.get("user_id")
    if user_id is None:
        user_id = rec.get("customer_id")
    event_id, event_type, timestamp = rec.get("event_id"), rec.get("event_type"), rec.get("timestamp")
    if not all(_present(value) for value in (event_id, conversation_id, event_type, timestamp)):
        return Rejection(row.source_file, row.row_number, row.load_id, MISSING, row)
    identifiers = [_identifier(value) for value in (event_id, conversation_id, user_id)]
    if not all(valid for valid, _ in identifiers):
        return Rejection(row.source_file, row.row_number, row.load_id, INVALID_TYPE, row)
    (_, event_id), (_, conversation_id), (_, user_id) = identifiers
    event_at = parse_timestamp(timestamp)
    if event_at is None:
        return Rejection(row.source_file, row.row_number, row.load_id, UNPARSEABLE_TS, row)
    if event_at > row.loaded_at + timedelta(days=1):
        return Rejection(row.source_file, row.row_number, row.load_id, FUTURE_TS, row)
    ok, properties = parse_properties(rec.get("properties"))
    if not ok:
        return Rejection(row.source_file, row.row_number, row.load_id, PROPS_NOT_OBJECT, row)
    properties = properties or {}
    raw_type = _text(event_type)
    canonical = aliases.get(raw_type, raw_type)
    if canonical == "agent_message" and str(properties.get("sender") or "").strip().lower() in USER_SENDERS:
        canonical = "user_message"
    if raw_type == "meeting_booked":
        properties = {**properties, **MEETING_BOOKED}
    return Event(
        event_id=event_id,
        conversation_id=conversation_id,
        user_id=user_id,
        event_type=canonical,
        raw_event_type=raw_type,
        is_known_type=canonical in CANONICAL_TYPES,
        event_at=event_at,
        channel=_text(rec.get("channel")),
        properties=properties,
        load_id=row.load_id,
        source_file=row.source_file,
        row_number=row.row_number,
    )


@dataclass
class Staging:
    raw_rows: int
    staged: list[Event]
    quarantined: list[Rejection]
    duplicates: list[Event]

    @property
    def reasons(self) -> Counter:
        return Counter(rejection.reason for rejection in self.quarantined)


def stage(raw: list[RawRow], aliases: dict[str, str] | None = None) -> Staging:
    """Validate, then dedupe by event_id (first delivered: load run, file path, row)."""
    aliases = ALIASES if aliases is None else aliases
    valid: list[Event] = []
    quarantined: list[Rejection] = []
    for row in raw:
        result = validate(row, aliases)
        (valid if isinstance(result, Event) else quarantined).append(result)
    valid.sort(key=lambda event: (event.load_id, event.source_file, event.row_number))
    winners: dict[str, Event] = {}
    duplicates: list[Event] = []
    for event in valid:
        if event.event_id in winners:
            duplicates.append(event)
        else:
            winners[event.event_id] = event
    return Staging(len(raw), list(winners.values()), quarantined, duplicates)


# --------------------------------------------------------------------------- fct_conversations


def _order(event: Event) -> tuple:
    return (event.event_at, event.event_id)


def _prop(event: Event, key: str) -> Any:
    return event.properties.get(key)


def rating_value(rating: Any) -> float | None:
    """positive/negative (any case) -> 1/0; integer 1..5 or its digit string -> (r-1)/4."""
    if isinstance(rating, bool) or rating is None:
        return None
    if isinstance(rating, str):
        if rating.lower() == "positive":
            return 1.0
        if rating.lower() == "negative":
            return 0.0
        if _DIGITS.match(rating):
            rating = int(rating)
        else:
            return None
    # Reading: a JSON float such as 4.0 is not an integer rating.
    if isinstance(rating, int) and 1 <= rating <= 5:
        return (rating - 1) / 4
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    return None


def word_set(content: Any) -> set[str]:
    if not isinstance(content, str):
        content = _text(content) or ""
    return set(_WORD.findall(content.lower()))


def is_rephrase(first: set[str], second: set[str], threshold: float) -> bool:
    if not first or not second:
        return False
    return len(first & second) / len(first | second) >= threshold


def satisfaction(feedback: list[float], was_completed: bool, had_handoff: bool, user_turns: int) -> float:
    signals = list(feedback)
    if was_completed and user_turns <= 3:
        signals.append(0.9)
    elif had_handoff:
        signals.append(0.3)
    elif not was_completed:
        signals.append(0.1)
    if user_turns > 2:
        signals.append(max(0.0, 0.8 - 0.1 * max(0, user_turns - 3)))
    return sum(signals) / len(signals) if signals else 0.5


def _first_non_null(events: list[Event], getter) -> Any:
    for event in events:  # already ordered by (event_at, event_id)
        value = getter(event)
        if value is not None:
            return value
    return None


def conversation_facts(
    events: list[Event],
    newest_event_at: datetime,
    abandon_after_minutes: float = 30,
    rephrase_threshold: float = 0.5,
) -> dict[str, Any]:
    """One fct_conversations row from one conversation's known-type events."""
    events = sorted(events, key=_order)
    by_type: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_type[event.event_type].append(event)

    def first_at(event_type: str) -> datetime | None:
        return by_type[event_type][0].event_at if by_type[event_type] else None

    setup = [e for e in events if e.event_type in ("conversation_started", "interaction_initialized")]
    first_event_at = events[0].event_at
    last_event_at = max(event.event_at for event in events)
    started_candidates = [
        e.event_at for e in events if e.event_type not in ("interaction_initialized", "experiment_exposure")
    ]
    started_at = min(started_candidates) if started_candidates else None
    user_messages = by_type["user_message"]
    agent_messages = by_type["agent_message"]
    user_turns = len(user_messages)
    engaged = user_turns > 0
    had_handoff = bool(by_type["handoff_requested"])
    was_completed = bool(by_type["conversation_completed"])
    converted = bool(by_type["conversion"])

    explicit_abandon = bool(by_type["conversation_abandoned"])
    silence = newest_event_at - last_event_at
    inferred_abandon = (
        engaged
        and not was_completed
        and not had_handoff
        and not converted
        and silence > timedelta(minutes=abandon_after_minutes)
    )
    was_abandoned = explicit_abandon or inferred_abandon
    abandoned_at_turn = None
    if was_abandoned:
        turn = None
        if explicit_abandon:
            # Several abandon events: the first one's abandoned_at_turn.
            turn = _as_int(_prop(by_type["conversation_abandoned"][0], "abandoned_at_turn"))
        abandoned_at_turn = turn if turn is not None else user_turns

    feedback = [
        value
        for value in (rating_value(_prop(e, "rating")) for e in by_type["feedback_received"])
        if value is not None
    ]
    feedback_score = sum(feedback) / len(feedback) if feedback else None

    first_response_ms = None
    if user_messages:
        first_user = user_messages[0].event_at
        replies = [e.event_at for e in agent_messages if e.event_at >= first_user]
        if replies:
            first_response_ms = (min(replies) - first_user) / timedelta(milliseconds=1)

    word_sets = [word_set(_prop(e, "content")) for e in user_messages]
    rephrase_count = sum(
        is_rephrase(a, b, rephrase_threshold) for a, b in zip(word_sets, word_sets[1:])
    )

    if converted:
        outcome = "converted"
    elif had_handoff:
        outcome = "escalated"
    elif was_completed:
        outcome = "completed"
    elif was_abandoned:
        outcome = "abandoned"
    elif not engaged:
        outcome = "not_engaged"
    else:
        outcome = "in_progress"

    return {
        "conversation_id": events[0].conversation_id,
        "user_id": _first_non_null(events, lambda e: e.user_id),
        "channel": _first_non_null(events, lambda e: e.channel),
        "agent_id": _first_non_null(setup, lambda e: _text(_prop(e, "agent_id"))),
        "device": _first_non_null(setup, lambda e: _text(_prop(e, "device"))),
        "source": _first_non_null(setup, lambda e: _text(_prop(e, "source"))),
        "language": _first_non_null(setup, lambda e: _text(_prop(e, "language"))),
        "environment": _first_non_null(setup, lambda e: _text(_prop(e, "environment"))),
        "first_event_at": first_event_at,
        "conversation_date": first_event_at.date(),
        "initialized": bool(by_type["interaction_initialized"]),
        "started_at": started_at,
        "started": started_at is not None,
        "last_event_at": last_event_at,
        "duration_seconds": (
            (last_event_at - started_at) / timedelta(seconds=1) if started_at is not None else None
        ),
        "engaged": engaged,
        "user_turns": user_turns,
        "agent_messages": len(agent_messages),
        "tool_calls": len(by_type["tool_called"]),
        "fallback_count": len(by_type["fallback_triggered"]),
        "had_handoff": had_handoff,
        "was_completed": was_completed,
        "was_abandoned": was_abandoned,
        "abandoned_at_turn": abandoned_at_turn,
        "converted": converted,
        "feedback_score": feedback_score,
        "first_response_ms": first_response_ms,
        "satisfaction_score": (
            satisfaction(feedback, was_completed, had_handoff, user_turns)
            if started_at is not None
            else None
        ),
        "rephrase_count": rephrase_count,
        "outcome": outcome,
        # Extra columns the warehouse adds (COMMON.md).
        "initialized_at": first_at("interaction_initialized"),
        "first_user_message_at": first_at("user_message"),
        "first_agent_message_at": first_at("agent_message"),
        "completed_at": first_at("conversation_completed"),
        "converted_at": first_at("conversion"),
        "last_user_message": _text(_prop(user_messages[-1], "content")) if user_messages else None,
    }


def fct_conversations(
    staged: list[Event],
    abandon_after_minutes: float = 30,
    rephrase_threshold: float = 0.5,
    newest_from_known_only: bool = False,
) -> dict[str, dict[str, Any]]:
    """conversation_id -> fct row.

    Reading: unknown event types take part in no metric, so a conversation is
    built from its known-type events only (one with none has no row). "The
    newest event in the warehouse is the newest staged event timestamp":
    staged events include unknown types, so by default they count for the
    inferred-abandonment clock (``newest_from_known_only`` gives the other
    reading).
    """
    known = [event for event in staged if event.is_known_type]
    clock_events = known if newest_from_known_only else staged
    if not clock_events:
        return {}
    newest = max(event.event_at for event in clock_events)
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in known:
        grouped[event.conversation_id].append(event)
    return {
        conversation_id: conversation_facts(events, newest, abandon_after_minutes, rephrase_threshold)
        for conversation_id, events in grouped.items()
    }


@dataclass
class Reference:
    staging: Staging
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: list[RawRow] = field(default_factory=list)


def build_reference(runs: list[LoadRun] | RawStore, **options: Any) -> Reference:
    rows = runs.rows if isinstance(runs, RawStore) else read_runs(runs)
    staging = stage(rows)
    return Reference(staging, fct_conversations(staging.staged, **options), rows)


# --------------------------------------------------------------------------- v1.2: the sales step rates


SALES_STAGES = ("started", "responded", "qualified", "booked", "attended", "converted")
SALES_STEP_RATES = (
    # (metric_name, numerator stage, denominator stage); sales_response_rate's
    # numerator is "started and reached responded in order" over "started".
    ("sales_response_rate", "responded", "started"),
    ("qualification_rate", "qualified", "responded"),
    ("booking_rate", "booked", "qualified"),
    ("show_rate", "attended", "booked"),
    ("sales_conversion_rate", "converted", "attended"),
)
# v1.3 adds environment
SEGMENT_ATTRIBUTES = ("channel", "agent_id", "device", "source", "language", "environment")


def sales_stage_times(events: list[Event], fact: dict[str, Any]) -> dict[str, datetime]:
    """marts.md: when a conversation reached each `sales` stage (absent: not reached).

    started: started_at; responded: the first user_message strictly after the
    first agent_message; qualified, booked, attended: stage_reached events;
    converted: the first conversion or stage_reached converted. "A
    stage_reached event with funnel F and stage S always counts for (F, S)",
    so every stage also takes its earliest such event; a stage reached several
    ways is reached at the earliest.
    """
    events = sorted((e for e in events if e.is_known_type), key=_order)
    times: dict[str, list[datetime]] = defaultdict(list)
    if fact["started_at"] is not None:
        times["started"].append(fact["started_at"])
    agents = [e.event_at for e in events if e.event_type == "agent_message"]
    if agents:
        first_agent = min(agents)
        replies = [e.event_at for e in events if e.event_type == "user_message" and e.event_at > first_agent]
        if replies:
            times["responded"].append(min(replies))
    times["converted"].extend(e.event_at for e in events if e.event_type == "conversion")
    for event in events:
        if event.event_type == "stage_reached" and _text(_prop(event, "funnel")) == "sales":
            stage = _text(_prop(event, "stage"))
            if stage in SALES_STAGES:
                times[stage].append(event.event_at)
    return {stage: min(found) for stage, found in times.items() if found}


def reached_in_order(times: dict[str, datetime]) -> dict[str, bool]:
    """marts.md: reached this stage and every earlier one, each not later than the next
    (all sales stage times are known, so every consecutive pair is compared)."""
    result, chain, previous = {}, True, None
    for stage in SALES_STAGES:
        at = times.get(stage)
        chain = chain and at is not None and (previous is None or previous <= at)
        result[stage] = chain
        previous = at
    return result


def experiment_segments(staged: list[Event]) -> dict[str, list[tuple[str, str]]]:
    """conversation_id -> [(segment_type, variant)] of the tests it was exposed to once.

    marts.md: the variant of the first exposure (timestamp, then event_id);
    conversations that saw more than one variant of a test are left out of
    that test's segment. Reading: an exposure without test_name or variant
    says nothing about a test and is ignored.
    """
    exposures: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in staged:
        if event.is_known_type and event.event_type == "experiment_exposure":
            test, variant = _text(_prop(event, "test_name")), _text(_prop(event, "variant"))
            if test is not None and variant is not None:
                exposures[(event.conversation_id, test)].append(event)
    segments: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (conversation_id, test), seen in exposures.items():
        if len({_text(_prop(e, "variant")) for e in seen}) == 1:
            first = min(seen, key=_order)
            segments[conversation_id].append((f"experiment:{test}", _text(_prop(first, "variant"))))
    return segments


def sales_step_rates(staged: list[Event], facts: dict[str, dict[str, Any]], grain: str = "day") -> dict:
    """(period, metric_name, segment_type, segment_value) -> (numerator, denominator, value) of the
    five v1.2 metrics, as metrics_daily (grain "day": the UTC date of first_event_at) or
    metrics_hourly (grain "hour": its truncated hour) hold them. A period and segment whose
    denominator is 0 has no row."""
    by_conversation: dict[str, list[Event]] = defaultdict(list)
    for event in staged:
        by_conversation[event.conversation_id].append(event)
    experiments = experiment_segments(staged)
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for conversation_id, fact in facts.items():
        in_order = reached_in_order(sales_stage_times(by_conversation[conversation_id], fact))
        period = fact["conversation_date"] if grain == "day" else fact["first_event_at"].replace(
            minute=0, second=0, microsecond=0)
        segments = [("all", "all")]
        segments += [(name, fact[name] if fact[name] is not None else "unknown") for name in SEGMENT_ATTRIBUTES]
        segments += experiments.get(conversation_id, [])
        for metric, stage, previous in SALES_STEP_RATES:
            if metric == "sales_response_rate":
                numerator, denominator = fact["started"] and in_order["responded"], fact["started"]
            else:
                numerator, denominator = in_order[stage], in_order[previous]
            for segment_type, segment_value in segments:
                totals = sums[(period, metric, segment_type, segment_value)]
                totals[0] += int(numerator)
                totals[1] += int(denominator)
    return {
        key: (numerator, denominator, numerator / denominator)
        for key, (numerator, denominator) in sums.items()
        if denominator
    }


# --------------------------------------------------------------------------- v1.2: funnel_summary's nested reading


ENGAGEMENT_STAGES = ("initialized", "engaged", "completed")
# The funnels whose stages come from events alone (support's come from the
# stage classifier, which the contract does not define).
EVENT_FUNNELS = {"sales": SALES_STAGES, "engagement": ENGAGEMENT_STAGES}


def engagement_stage_times(events: list[Event]) -> dict[str, datetime]:
    """marts.md: initialized = the first interaction_initialized, engaged = the first
    user_message, completed = the first conversation_completed; a stage_reached event with
    funnel engagement and one of these stages counts too (the earliest way wins)."""
    events = [e for e in events if e.is_known_type]
    times: dict[str, list[datetime]] = defaultdict(list)
    first_of = {"interaction_initialized": "initialized", "user_message": "engaged",
                "conversation_completed": "completed"}
    for event in events:
        if event.event_type in first_of:
            times[first_of[event.event_type]].append(event.event_at)
        elif event.event_type == "stage_reached" and _text(_prop(event, "funnel")) == "engagement":
            stage = _text(_prop(event, "stage"))
            if stage in ENGAGEMENT_STAGES:
                times[stage].append(event.event_at)
    return {stage: min(found) for stage, found in times.items() if found}


def chain_in_order(stages: tuple[str, ...], times: dict[str, datetime]) -> dict[str, bool]:
    """Reached this stage and every earlier one, each not later than the next."""
    result, chain, previous = {}, True, None
    for stage in stages:
        at = times.get(stage)
        chain = chain and at is not None and (previous is None or previous <= at)
        result[stage] = chain
        previous = at
    return result


def funnel_stage_counts(staged: list[Event], facts: dict[str, dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    """(funnel, stage) -> [reached, reached_in_order] over the conversations of ``facts``, for the
    event funnels (sales, engagement)."""
    by_conversation: dict[str, list[Event]] = defaultdict(list)
    for event in staged:
        by_conversation[event.conversation_id].append(event)
    counts: dict[tuple[str, str], list[int]] = {
        (funnel, stage): [0, 0] for funnel, stages in EVENT_FUNNELS.items() for stage in stages
    }
    for conversation_id, fact in facts.items():
        events = by_conversation[conversation_id]
        for funnel, stages in EVENT_FUNNELS.items():
            times = sales_stage_times(events, fact) if funnel == "sales" else engagement_stage_times(events)
            in_order = chain_in_order(stages, times)
            for stage in stages:
                counts[(funnel, stage)][0] += stage in times
                counts[(funnel, stage)][1] += in_order[stage]
    return counts


def funnel_summary_rows(
    counts: dict[tuple[str, str], list[int]], all_conversations: int, funnels: dict[str, tuple[str, ...]] | None = None
) -> dict[tuple[str, str], dict]:
    """marts.md's funnel_summary for ``funnels`` (default: the event funnels) from the stage counts:
    reached, conversion_rate, conversion_from_start, drop_off and v1.2's reached_in_order,
    conversion_rate_in_order, drop_off_in_order (a rate with a 0 denominator is None)."""

    def ratio(numerator: int, denominator: int) -> float | None:
        return numerator / denominator if denominator else None

    rows = {}
    for funnel, stages in (funnels or EVENT_FUNNELS).items():
        first_reached = counts[(funnel, stages[0])][0]
        for index, stage in enumerate(stages):
            reached, reached_in_order = counts[(funnel, stage)]
            if index == 0:
                rows[(funnel, stage)] = {
                    "reached": reached, "reached_in_order": reached_in_order,
                    "conversion_rate": ratio(reached, all_conversations),
                    "conversion_from_start": ratio(reached, first_reached), "drop_off": 0,
                    "conversion_rate_in_order": ratio(reached, all_conversations), "drop_off_in_order": 0,
                }
                continue
            previous, previous_in_order = counts[(funnel, stages[index - 1])]
            rows[(funnel, stage)] = {
                "reached": reached, "reached_in_order": reached_in_order,
                "conversion_rate": ratio(reached, previous),
                "conversion_from_start": ratio(reached, first_reached), "drop_off": previous - reached,
                "conversion_rate_in_order": ratio(reached_in_order, previous_in_order),
                "drop_off_in_order": previous_in_order - reached_in_order,
            }
    return rows


# --------------------------------------------------------------------------- v1.3: the sentiment trend as a number


def message_sentiment(event: Event, lexicon: dict[str, float]) -> float | None:
    """A user message's sentiment: its `sentiment` property (events.md: -1..1) when that is a number
    in -1..1, else the offline model's score of the message (``lexicon``: event_id -> score, what
    the classifier wrote; the model is not in the contract), else None (not scored).

    Reading: a numeric string is a number (JSON text is read as text); a boolean is not."""
    value = _prop(event, "sentiment")
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is not None and -1 <= number <= 1:
        return number
    return lexicon.get(event.event_id)


def conversation_sentiment(
    staged: list[Event], facts: dict[str, dict[str, Any]], lexicon: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """marts.md v1.3, ``fct_conversation_quality``: conversation_id -> sentiment_start,
    sentiment_end, sentiment_trend (= end - start) and the number of scored user messages, for
    every started conversation with at least one scored user message.

    Reading (the contract leaves n < 3 open): over the n scored user messages in time order (then
    event_id), k = max(1, floor(n / 3)); start = mean of the first k, end = mean of the last k, so
    one message is both start and end (trend 0) and two are the first and the second."""
    scored: dict[str, list[tuple[tuple, float]]] = defaultdict(list)
    for event in staged:
        if event.is_known_type and event.event_type == "user_message":
            value = message_sentiment(event, lexicon)
            if value is not None:
                scored[event.conversation_id].append((_order(event), value))
    result = {}
    for conversation_id, fact in facts.items():
        values = [value for _, value in sorted(scored.get(conversation_id, []))]
        if not fact["started"] or not values:
            continue
        n = len(values)
        k = max(1, n // 3)
        start, end = math.fsum(values[:k]) / k, math.fsum(values[n - k:]) / k
        result[conversation_id] = {
            "sentiment_messages": n, "sentiment_start": start, "sentiment_end": end, "sentiment_trend": end - start,
        }
    return result


# --------------------------------------------------------------------------- v1.3: segment_comparison


# marts.md's proportion metrics (a count of conversations out of a count of conversations):
# metric -> (numerator, denominator) of one conversation, from its facts and its sales stages in order.
CONTRACT_PROPORTIONS = {
    "interaction_rate": lambda f, s: (f["initialized"] and f["engaged"], f["initialized"]),
    "completion_rate": lambda f, s: (f["was_completed"], f["started"]),
    "abandonment_rate": lambda f, s: (f["was_abandoned"], f["started"]),
    "handoff_rate": lambda f, s: (f["had_handoff"], f["started"]),
    "resolution_rate": lambda f, s: (f["was_completed"] and not f["had_handoff"], f["started"]),
    "conversion_rate": lambda f, s: (f["converted"], f["started"]),
    "feedback_rate": lambda f, s: (f["started"] and f["feedback_score"] is not None, f["started"]),
    "positive_feedback_rate": lambda f, s: (
        f["feedback_score"] is not None and f["feedback_score"] >= 0.5, f["feedback_score"] is not None),
    "rephrase_rate": lambda f, s: (f["started"] and f["rephrase_count"] > 0, f["started"]),
    "sales_response_rate": lambda f, s: (f["started"] and s["responded"], f["started"]),
    "qualification_rate": lambda f, s: (s["qualified"], s["responded"]),
    "booking_rate": lambda f, s: (s["booked"], s["qualified"]),
    "show_rate": lambda f, s: (s["attended"], s["booked"]),
    "sales_conversion_rate": lambda f, s: (s["converted"], s["attended"]),
}
# Reading: the task names abandonment, handoff and rephrase as the rates where lower is better;
# every other proportion is better higher.
LOWER_IS_BETTER = frozenset({"abandonment_rate", "handoff_rate", "rephrase_rate"})
Z_95 = 1.959964


def proportion_contributions(staged: list[Event], facts: dict[str, dict[str, Any]]) -> dict[str, dict[str, tuple[int, int]]]:
    """conversation_id -> metric -> (numerator, denominator) it adds, for CONTRACT_PROPORTIONS."""
    by_conversation: dict[str, list[Event]] = defaultdict(list)
    for event in staged:
        by_conversation[event.conversation_id].append(event)
    result = {}
    for conversation_id, fact in facts.items():
        in_order = reached_in_order(sales_stage_times(by_conversation[conversation_id], fact))
        result[conversation_id] = {
            metric: (int(bool(numerator)), int(bool(denominator)))
            for metric, rule in CONTRACT_PROPORTIONS.items()
            for numerator, denominator in [rule(fact, in_order)]
        }
    return result


def conversation_segments(staged: list[Event], facts: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """conversation_id -> its segments of the long metric tables other than all/all."""
    experiments = experiment_segments(staged)
    return {
        conversation_id: [(name, fact[name] if fact[name] is not None else "unknown") for name in SEGMENT_ATTRIBUTES]
        + experiments.get(conversation_id, [])
        for conversation_id, fact in facts.items()
    }


def _wilson(rate: float, n: float) -> tuple[float, float]:
    centre = rate + Z_95 * Z_95 / (2 * n)
    half = Z_95 * math.sqrt(rate * (1 - rate) / n + Z_95 * Z_95 / (4 * n * n))
    scale = 1 + Z_95 * Z_95 / n
    return max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale)


def benjamini_hochberg(p_values: dict[Any, float]) -> dict[Any, float]:
    """Each key's Benjamini-Hochberg adjusted p-value: for the i-th smallest of m, min over j >= i of
    m * p_(j) / j, at most 1."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ordered)
    adjusted, running = {}, 1.0
    for rank in range(m, 0, -1):
        key, p_value = ordered[rank - 1]
        running = min(running, m * p_value / rank)
        adjusted[key] = running
    return adjusted


def segment_comparison(
    contributions: dict[str, dict[str, tuple[float, float]]],
    segments: dict[str, list[tuple[str, str]]],
    days: dict[str, date],
    min_sample: int = 30,
    significance_level: float = 0.05,
) -> tuple[tuple[date, date] | None, dict[tuple[str, str, str], dict[str, Any]]]:
    """marts.md v1.3, ``segment_comparison`` over the whole history: (period, rows keyed by metric,
    segment type and value). Each value of a segment type is compared with the rest of that segment
    type's population (the other values together): sample_size and rate from summed numerators and
    denominators, Wilson 95% interval, rest_rate, difference_from_rest, a pooled two-proportion
    z-test whose two-sided p-value is adjusted within metric and segment type (Benjamini-Hochberg,
    the project's documented choice), is_significant (adjusted p < level), is_best.

    Readings: a value is a row when its summed denominator is positive (metrics_daily has no row
    otherwise); no rest or a pooled rate of 0 or 1 gives no test (null p-value, not counted in the
    adjustment); is_best marks every value tied for the best rate among those with sample_size >=
    min_sample, false elsewhere; the period runs from the first to the last day of a conversation
    counted in some row."""
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    counted_days = set()
    for conversation_id, metrics in contributions.items():
        for metric, (numerator, denominator) in metrics.items():
            if not denominator:
                continue
            counted_days.add(days[conversation_id])
            for segment_type, segment_value in segments.get(conversation_id, []):
                totals = sums[(metric, segment_type, segment_value)]
                totals[0] += numerator
                totals[1] += denominator
    families: dict[tuple[str, str], dict[str, tuple[float, float]]] = defaultdict(dict)
    for (metric, segment_type, segment_value), (x, n) in sums.items():
        families[(metric, segment_type)][segment_value] = (x, n)
    rows = {}
    for (metric, segment_type), values in families.items():
        x_all, n_all = sum(x for x, _ in values.values()), sum(n for _, n in values.values())
        raw = {}
        for value, (x, n) in values.items():
            x_rest, n_rest = x_all - x, n_all - n
            rate = x / n
            rest_rate = x_rest / n_rest if n_rest else None
            z = None
            if n_rest:
                pooled = (x + x_rest) / (n + n_rest)
                if 0 < pooled < 1:
                    z = (rate - rest_rate) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_rest))
                    raw[value] = math.erfc(abs(z) / math.sqrt(2))
            low, high = _wilson(rate, n)
            rows[(metric, segment_type, value)] = {
                "numerator": x, "sample_size": n, "rate": rate, "ci_low": low, "ci_high": high,
                "rest_rate": rest_rate, "difference_from_rest": None if rest_rate is None else rate - rest_rate,
                "z_score": z, "unadjusted_p_value": raw.get(value),
            }
        adjusted = benjamini_hochberg(raw)
        sign = -1 if metric in LOWER_IS_BETTER else 1
        eligible = [sign * x / n for x, n in values.values() if n >= min_sample]
        for value, (x, n) in values.items():
            row = rows[(metric, segment_type, value)]
            row["p_value"] = adjusted.get(value)
            row["is_significant"] = None if row["p_value"] is None else row["p_value"] < significance_level
            row["is_best"] = n >= min_sample and sign * x / n == max(eligible)
    period = (min(counted_days), max(counted_days)) if counted_days else None
    return period, rows


# --------------------------------------------------------------------------- v1.3: classified stages have times


SUPPORT_STAGES = ("initiated", "greeted", "problem_identified", "solution_proposed", "solution_accepted", "resolved")
MESSAGE_TYPES = frozenset({"user_message", "agent_message"})


def support_stage_reaches(
    events: list[Event], fact: dict[str, Any], classified: dict[str, tuple[str, str | None]]
) -> dict[str, tuple[str, datetime | None]]:
    """marts.md, the `support` funnel of one conversation: stage -> (source, reached_at) for each
    stage reached. initiated: started_at; resolved: the first conversation_completed; any stage: a
    stage_reached event with funnel support (source `event`, the earliest such time). A stage the
    stage classifier says was reached (``classified``: stage -> (classifier, the event_id of the
    message it names or None), its newest answer: an input, the classifier is not in the contract)
    and reached by no event has the classifier as source and, v1.3, the timestamp of the named
    message, None when it names none.

    Reading: a named event that is not a user_message or agent_message of this conversation names
    no message."""
    events = sorted((e for e in events if e.is_known_type), key=_order)
    found: dict[str, list[datetime]] = defaultdict(list)
    if fact["started_at"] is not None:
        found["initiated"].append(fact["started_at"])
    found["resolved"].extend(e.event_at for e in events if e.event_type == "conversation_completed")
    for event in events:
        if event.event_type == "stage_reached" and _text(_prop(event, "funnel")) == "support":
            stage = _text(_prop(event, "stage"))
            if stage in SUPPORT_STAGES:
                found[stage].append(event.event_at)
    reaches = {stage: ("event", min(times)) for stage, times in found.items() if times}
    messages = {e.event_id: e.event_at for e in events if e.event_type in MESSAGE_TYPES}
    for stage, (classifier, message_event_id) in classified.items():
        if stage in SUPPORT_STAGES[1:] and stage not in reaches:
            reaches[stage] = (classifier, messages.get(message_event_id))
    return reaches


def in_order_where_known(stages: tuple[str, ...], reached: dict[str, datetime | None]) -> dict[str, bool]:
    """marts.md: reached this stage and every earlier one, each not later than the next where both
    times are known (a stage reached without a time is reached; its pairs are not compared)."""
    result, chain, previous = {}, True, None
    for index, stage in enumerate(stages):
        if stage not in reached:
            chain = False
        elif index and previous is not None and reached[stage] is not None and previous > reached[stage]:
            chain = False
        result[stage] = chain
        previous = reached.get(stage)
    return result


def stage_seconds(stages: tuple[str, ...], reached: dict[str, datetime | None]) -> dict[str, tuple[float | None, float | None]]:
    """Per reached stage after the first: (seconds from the previous stage, from the first stage), each
    when both are reached with known times and this one is not earlier."""
    def between(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None or start > end:
            return None
        return (end - start) / timedelta(milliseconds=1) / 1000.0

    result = {}
    for index, stage in enumerate(stages[1:], start=1):
        if stage in reached:
            previous = stages[index - 1]
            result[stage] = (between(reached.get(previous), reached[stage]) if previous in reached else None,
                             between(reached.get(stages[0]), reached[stage]) if stages[0] in reached else None)
    return result


def median(values: list[float]) -> float | None:
    """The interpolated median (the mean of the two middle values of an even count)."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
