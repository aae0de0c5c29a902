"""The staging validation rules, in Python, for the HTTP collector's answers.

The rules themselves live in dbt (``models/staging/events/base_events_parsed.sql``,
``stg_events.sql``, macro ``parse_event_timestamp``): that is where every
landed row is judged. The collector must tell a client *before* landing
whether an event will be staged, so this module mirrors those rules for one
JSON event, and ``tests/capture/test_validation_equals_staging.py`` feeds a corpus of edge-case
rows through both this module and the real dbt staging and proves the verdicts
(and reasons) identical. Change a rule in staging and that test fails until
this mirror follows.

Configuration is read from the dbt project, not repeated: ``max_future_hours``
from ``dbt_project.yml`` vars; contract v1.1 field names from
``seeds/field_aliases.csv`` through ``convo_warehouse.lib.field_aliases``
(the helper staging's own test checks).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[3]

# The regexes of macros/portability/parse_event_timestamp.sql.
_EPOCH_MS = re.compile(r"-?[0-9]{1,15}")
_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.]([0-9]{1,9}))?)?"
    r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_COMMON = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.][0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})")
_REQUIRED = ("event_id", "conversation_id", "event_type", "timestamp")


class Verdict(NamedTuple):
    """What staging will do with one event: stage it (``reason`` None) or quarantine it."""

    event_id: str | None
    reason: str | None = None
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


@lru_cache(maxsize=1)
def max_future_hours() -> float:
    """The ``max_future_hours`` var of dbt_project.yml (the one place it is set)."""
    import yaml

    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    return float(project["vars"]["max_future_hours"])


@lru_cache(maxsize=1)
def _max_future() -> timedelta:
    return timedelta(hours=max_future_hours())


def field_text(value: Any) -> str | None:
    """A JSON value as the loader stores it (DuckDB ``json_extract_string``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _clean(value: Any) -> str | None:
    """``nullif(trim(x), '')``: DuckDB's trim removes spaces only."""
    if type(value) is str:  # the common case, first
        return value.strip(" ") or None
    text = field_text(value)
    if text is None:
        return None
    text = text.strip(" ")
    return text or None


def parse_timestamp(value: Any) -> datetime | None:
    """A contract timestamp as naive UTC, or None when staging cannot parse it."""
    if isinstance(value, float):
        # the loader writes a fractional JSON number as epoch milliseconds
        try:
            return datetime(1970, 1, 1) + timedelta(microseconds=round(value * 1000))
        except OverflowError:
            return None
    return _parse_timestamp_text(_clean(value))


def _parse_timestamp_text(text: str | None) -> datetime | None:
    if text is None:
        return None
    if _COMMON.fullmatch(text):
        # the usual form (the SDK writes it): the standard library reads it
        # exactly as the general rule below would, several times faster
        try:
            if text.endswith("Z"):  # UTC already: read without the zone, nothing to convert
                return datetime.fromisoformat(text[:-1])
            return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            pass  # e.g. 24:00 or 30 February, or past year 9999 in UTC: the general rule decides
    if _EPOCH_MS.fullmatch(text):
        try:
            return datetime(1970, 1, 1) + timedelta(milliseconds=int(text))
        except OverflowError:
            return None
    match = _ISO.fullmatch(text)
    if not match:
        return None
    if "t" in text or "z" in text:
        return None  # DuckDB's cast wants an upper-case T and Z
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # DuckDB reads 24:00 (exactly) as midnight of the next day
    next_day = hour == "24" and int(minute) == 0 and int(second or 0) == 0 and not (fraction or "").strip("0")
    try:
        moment = datetime(
            int(year), int(month), int(day), 0 if next_day else int(hour), int(minute), int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
    except ValueError:
        return None
    try:
        if next_day:
            moment += timedelta(days=1)
        if offset and offset != "Z":
            sign = 1 if offset[0] == "+" else -1
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            moment -= sign * delta
    except OverflowError:
        # past year 9999 or before year 1 once in UTC: Python's datetime ends
        # there, DuckDB's does not (it stages the early one, and the late one
        # is in the future); the nearest representable instant keeps the verdict
        return datetime.max if moment.year == 9999 else datetime.min
    return moment


def _properties_object(record: dict) -> bool:
    """Whether ``properties`` is absent/null, an object, or a string holding an object."""
    value = record.get("properties")
    if value is None or type(value) is dict:
        return True
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return False
        return isinstance(decoded, dict)
    return False


@lru_cache(maxsize=1)
def _field_aliases() -> dict[str, str]:
    from convo_warehouse.lib.field_aliases import read_field_aliases

    return read_field_aliases()


def _identifier(record: dict, names: tuple[str, ...], sent_as: dict[str, str]) -> tuple[str | None, str | None]:
    """(text, type error) of an identifier: the first of ``names`` present.

    A number is its decimal text; an object, array or boolean is an error
    naming the field and, for a v1.1 alias, the name it was sent under.
    """
    for name in names:
        value = record.get(name)
        text = _clean(value)
        if text is None:
            continue
        if type(value) is str:
            return text, None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _number_text(value), None
        kind = "boolean" if isinstance(value, bool) else ("object" if isinstance(value, dict) else "array")
        field = names[0]
        alias = name if name != field else sent_as.get(field)
        return text, f"{field} (sent as {alias}) is a JSON {kind}" if alias else f"{field} is a JSON {kind}"
    return None, None


def _number_text(value: int | float) -> str:
    """A JSON number as staging's decimal text (macro ``json_number_text``)."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 9.2e18:
        return str(int(value))
    return repr(value)


def validate_event(record: Any, received_at: datetime | None = None) -> Verdict:
    """The verdict staging gives this JSON value, as if loaded at ``received_at`` (naive UTC)."""
    if type(record) is not dict:
        kind = _json_kind(record)
        return Verdict(None, "unreadable_line", f"unreadable line: JSON {kind}, not an object")
    aliases = _field_aliases()
    sent_as: dict[str, str] = {}
    if not aliases.keys().isdisjoint(record):
        # contract v1.1 names (seeds/field_aliases.csv), by the shared helper
        from convo_warehouse.lib.field_aliases import apply_field_aliases

        mapped = apply_field_aliases(record, aliases)
        sent_as = {aliases[name]: name for name in sorted(aliases, reverse=True)
                   if name in record and mapped.get(aliases[name]) is record[name]}
        record = mapped
    event_id, event_id_error = _identifier(record, ("event_id",), sent_as)
    conversation_id, conversation_id_error = _identifier(record, ("conversation_id", "session_id"), sent_as)
    user_id_error = _identifier(record, ("user_id", "customer_id"), sent_as)[1]
    get = record.get
    event_type = _clean(get("event_type"))
    raw_timestamp = get("timestamp")
    timestamp = _clean(raw_timestamp)
    if event_id is None or conversation_id is None or event_type is None or timestamp is None:
        values = (event_id, conversation_id, event_type, timestamp)
        missing = [name for name, value in zip(_REQUIRED, values) if value is None]
        return Verdict(event_id, "missing_required_field", "missing required field(s): " + ", ".join(missing))
    errors = [error for error in (event_id_error, conversation_id_error, user_id_error) if error]
    if errors:
        return Verdict(event_id, "invalid_field_type", "identifier not text or a number: " + ", ".join(errors))
    event_at = (parse_timestamp(raw_timestamp) if isinstance(raw_timestamp, float)
                else _parse_timestamp_text(timestamp))
    if event_at is None:
        return Verdict(event_id, "unparseable_timestamp", f"unparseable timestamp: {timestamp}")
    received_at = received_at or datetime.now(UTC).replace(tzinfo=None)
    if event_at > received_at + _max_future():
        return Verdict(
            event_id,
            "future_timestamp",
            f"timestamp {timestamp} is more than {max_future_hours():g} hours after load time {received_at}",
        )
    if not _properties_object(record):
        return Verdict(event_id, "properties_not_object", "properties is not a JSON object")
    return Verdict(event_id)


class StagedFields(NamedTuple):
    """The fields staging gives an event it stages (``validate_event`` accepted it)."""

    event_id: str
    conversation_id: str
    user_id: str | None
    raw_event_type: str
    event_at: datetime
    channel: str | None
    properties: dict


def staged_fields(record: dict) -> StagedFields:
    """The staged values of an event ``validate_event`` accepts (v1.1 names mapped, ids as text,
    the timestamp in naive UTC, properties decoded). For the collector's live state;
    ``tests/live/test_live_event_staging.py`` compares them with ``staging.stg_events``."""
    aliases = _field_aliases()
    if not aliases.keys().isdisjoint(record):
        from convo_warehouse.lib.field_aliases import apply_field_aliases

        record = apply_field_aliases(record, aliases)
    event_id = _identifier(record, ("event_id",), {})[0]
    conversation_id = _identifier(record, ("conversation_id", "session_id"), {})[0]
    user_id = _identifier(record, ("user_id", "customer_id"), {})[0]
    raw_timestamp = record.get("timestamp")
    event_at = (parse_timestamp(raw_timestamp) if isinstance(raw_timestamp, float)
                else _parse_timestamp_text(_clean(raw_timestamp)))
    properties = record.get("properties")
    if isinstance(properties, str):
        properties = json.loads(properties)
    return StagedFields(event_id, conversation_id, user_id, _clean(record.get("event_type")), event_at,
                        _clean(record.get("channel")), properties if isinstance(properties, dict) else {})


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "varchar"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "ubigint" if value >= 0 else "bigint"
    if isinstance(value, float):
        return "double"
    return "null"
