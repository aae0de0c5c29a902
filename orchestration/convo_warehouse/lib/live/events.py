"""Accepted events as staging will stage them, for the collector's live state.

Staging (``stg_events``) maps event-type aliases (``seeds/event_type_aliases.csv``,
matched ignoring case and surrounding spaces), turns an ``agent_message``
whose ``sender`` names the user's side (dbt var ``user_message_senders``) into
a ``user_message``, flags types outside ``seeds/event_types.csv`` and reads
``content`` and ``sentiment`` from the properties. ``live_event`` does the same
for one event, reading the same seeds and var; ``tests/live/test_live_event_staging.py``
compares it with the real ``stg_events`` on a corpus of aliases, senders and
property kinds.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import yaml

from convo_warehouse.lib.event_validation import field_text, staged_fields
from convo_warehouse.lib.warehouse import REPO_ROOT

SEEDS = REPO_ROOT / "seeds"
MESSAGE_TYPES = ("user_message", "agent_message")


_ROLES = {"user_message": "user", "agent_message": "agent"}


class LiveEvent(NamedTuple):
    """One staged event: what the live state, the stage rules and the intervention rules read
    (immutable: a NamedTuple, since one is built per event and a frozen dataclass's constructor
    sets each field through ``object.__setattr__``)."""

    event_id: str
    conversation_id: str
    user_id: str | None
    event_type: str
    is_known_type: bool
    event_at: datetime
    channel: str | None
    properties: dict
    content: str | None
    sentiment: float | None  # the event's own `sentiment` property, as staging casts it

    @property
    def key(self) -> tuple[datetime, str]:
        """The order of a conversation's events everywhere in the warehouse: time, then id."""
        return (self.event_at, self.event_id)

    @property
    def role(self) -> str | None:
        return _ROLES.get(self.event_type)


@lru_cache(maxsize=1)
def event_type_vocabulary() -> tuple[frozenset[str], dict[str, str], tuple[str, ...]]:
    """(known types, {alias: canonical type}, user-side senders) from the seeds and dbt_project.yml."""
    with open(SEEDS / "event_types.csv", newline="", encoding="utf-8") as handle:
        known = frozenset(row["event_type"] for row in csv.DictReader(handle))
    with open(SEEDS / "event_type_aliases.csv", newline="", encoding="utf-8") as handle:
        aliases = {}
        for row in csv.DictReader(handle):
            alias = (row.get("alias") or "").strip(" ").lower()
            if alias and alias not in aliases:
                aliases[alias] = row["event_type"]
    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    senders = tuple(str(sender) for sender in project["vars"]["user_message_senders"])
    return known, aliases, senders


def property_text(properties: dict, name: str) -> str | None:
    """A property as text, as staging's ``json_transform`` to VARCHAR reads it."""
    return field_text(properties.get(name))


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)\s*", re.IGNORECASE)


def property_number(properties: dict, name: str) -> float | None:
    """A property as a double, as staging's ``try_cast`` reads it (null when it is not a number)."""
    value = properties.get(name)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    return None


def live_event(record: dict) -> LiveEvent:
    """The staged form of an event the collector accepted (``validate_event`` said staged)."""
    fields = staged_fields(record)
    known, aliases, senders = event_type_vocabulary()
    raw_type = fields.raw_event_type.lower()
    event_type = aliases.get(raw_type, raw_type)
    properties = fields.properties
    if event_type == "agent_message":
        sender = property_text(properties, "sender")
        if sender is not None and sender.strip(" ").lower() in senders:
            event_type = "user_message"
    sentiment = property_number(properties, "sentiment")
    return LiveEvent(
        event_id=fields.event_id,
        conversation_id=fields.conversation_id,
        user_id=fields.user_id,
        event_type=event_type,
        is_known_type=event_type in known,
        event_at=fields.event_at,
        channel=fields.channel,
        properties=properties,
        content=property_text(properties, "content"),
        sentiment=sentiment if sentiment is not None and not math.isnan(sentiment) else None,
    )


def resolved_sentiment(event: LiveEvent, lexicon_score) -> tuple[float | None, str | None]:
    """A user message's sentiment and its source, as ``int_conversation_sentiment_summarized`` decides:
    the event's own value when it is within -1..1, else the lexicon's."""
    if event.sentiment is not None and -1 <= event.sentiment <= 1:
        return event.sentiment, "event"
    if lexicon_score is None:
        return None, None
    return lexicon_score(event.content), "lexicon"
