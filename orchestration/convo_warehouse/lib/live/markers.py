"""The funnel marker language (docs/funnels.md), evaluated in Python over one conversation.

The warehouse compiles markers to SQL (``macros/funnels/``); intervention
rules are written in the same language so analysts learn one, and the
collector evaluates them here while the conversation is in progress.
``tests/live/test_markers_python_equals_sql.py`` evaluates markers using every operator both
here and through dbt (``int_conversation_markers_evaluated``) on generated
conversations and requires the same conversations to reach each.

Same semantics as the SQL: only known event types take part; several keys in
one condition must all hold; a missing property is no match; ``text`` reads
the message content (``matches``: RE2, any case, a search; ``contains``:
plain text, any case); ``seq`` steps are each strictly later in time than the
previous one; ``and`` is reached at the latest known time of its parts,
``or`` at the earliest among those that hold; ``not`` and ``never`` have no
time.

The collector adds what only a conversation in progress has (refused by the
warehouse's markers, accepted in intervention rules):

- ``stage: <support stage>`` holds while the live rules classifier reports
  that stage reached;
- ``count: {of: <condition>, at_least: N}``: N events satisfy the condition
  (reached at the N-th);
- ``consecutive_turns: {of: <condition>, count: N}``: N user turns in a row
  each have an event satisfying the condition (an event's turn is the
  number of user messages at or before it);
- the event condition ``sentiment: {lt|lte|gt|gte: x}``: a user message's
  sentiment (the event's own value in -1..1, else the offline lexicon's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import re2

from convo_warehouse.lib.classify.stages import STAGES
from convo_warehouse.lib.live.events import LiveEvent, property_number, property_text

CONVERSATION_OPERATORS = ("and", "or", "not", "seq", "at_least_once", "never")
LIVE_OPERATORS = ("stage", "count", "consecutive_turns")
EVENT_KEYS = ("event_type", "property", "text", "and", "or", "not")
LIVE_EVENT_KEYS = ("sentiment",)
NUMERIC = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}


class RuleError(ValueError):
    """A rule that is not in the language; the message names the rule and the problem."""


def sql_lower(text: str) -> str:
    """DuckDB's lower(): one code point at a time (U+0130 becomes a plain i)."""
    return (text.replace("\u0130", "i") if "\u0130" in text else text).lower()


def _case_insensitive(pattern: str, rule: str):
    """``regexp_matches(x, pattern, 'i')``: RE2, any case."""
    options = re2.Options()
    options.case_sensitive = False
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        raise RuleError(f"rule '{rule}': invalid regular expression {pattern!r}: {error}") from error


@dataclass
class EventView:
    """What an event condition reads: the staged event and, for user messages, its sentiment."""

    event: LiveEvent
    sentiment: float | None = None


Predicate = Callable[[EventView], bool]


def compile_condition(condition: Any, rule: str, live: bool) -> Predicate:
    """An event condition -> a predicate (never raises on event data; a missing value is no match)."""
    if not isinstance(condition, dict) or not condition:
        raise RuleError(f"rule '{rule}': an event condition must be a non-empty mapping, got: {condition!r}")
    parts: list[Predicate] = []
    for key, value in condition.items():
        if key in ("and", "or"):
            if not isinstance(value, list) or not value:
                raise RuleError(f"rule '{rule}': '{key}' needs a non-empty list of conditions")
            inner = [compile_condition(item, rule, live) for item in value]
            parts.append((lambda view, inner=inner: all(p(view) for p in inner)) if key == "and"
                         else (lambda view, inner=inner: any(p(view) for p in inner)))
        elif key == "not":
            inner_one = compile_condition(value, rule, live)
            parts.append(lambda view, inner_one=inner_one: not inner_one(view))
        elif key == "event_type":
            types = frozenset([value] if isinstance(value, str) else [str(item) for item in value])
            parts.append(lambda view, types=types: view.event.event_type in types)
        elif key == "text":
            parts.append(_text_predicate(value, rule))
        elif key == "property":
            parts.append(_property_predicate(value, rule))
        elif key == "sentiment" and live:
            parts.append(_sentiment_predicate(value, rule))
        else:
            allowed = EVENT_KEYS + (LIVE_EVENT_KEYS if live else ())
            raise RuleError(f"rule '{rule}': unknown event condition '{key}' (expected {', '.join(allowed)})")
    if len(parts) == 1:
        return parts[0]
    return lambda view: all(part(view) for part in parts)


def _text_predicate(value: Any, rule: str) -> Predicate:
    text_rule = {"matches": value} if isinstance(value, str) else value
    if not isinstance(text_rule, dict) or len(text_rule) != 1 or next(iter(text_rule)) not in ("matches", "contains"):
        raise RuleError(f"rule '{rule}': text needs exactly one of matches, contains")
    if "matches" in text_rule:
        pattern = _case_insensitive(str(text_rule["matches"]), rule)
        return lambda view: view.event.content is not None and pattern.search(view.event.content) is not None
    needle = sql_lower(str(text_rule["contains"]))
    return lambda view: view.event.content is not None and needle in sql_lower(view.event.content)


def _property_predicate(spec: Any, rule: str) -> Predicate:
    if not isinstance(spec, dict) or "name" not in spec or len(spec) != 2:
        raise RuleError(f"rule '{rule}': property needs a name and exactly one operator, got: {spec!r}")
    name = str(spec["name"])
    if not re2.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RuleError(f"rule '{rule}': property name must be letters, digits and _: {name}")
    operator = next(key for key in spec if key != "name")
    value = spec[operator]

    def text(view: EventView) -> str | None:
        return property_text(view.event.properties, name)

    def number(view: EventView) -> float | None:
        found = property_number(view.event.properties, name)
        return None if found is None or math.isnan(found) else found

    if operator in ("equals", "not_equals"):
        same = operator == "equals"
        if isinstance(value, bool):
            wanted = "true" if value else "false"
            return lambda view: (lambda t: t is not None and (t.lower() == wanted) == same)(text(view))
        if isinstance(value, int | float):
            wanted_number = float(value)
            return lambda view: (lambda n: n is not None and (n == wanted_number) == same)(number(view))
        wanted_text = str(value)
        return lambda view: (lambda t: t is not None and (t == wanted_text) == same)(text(view))
    if operator == "in":
        if isinstance(value, str) or not isinstance(value, list) or not value:
            raise RuleError(f"rule '{rule}': property 'in' needs a non-empty list")
        # the SQL compares text with each item's text (Jinja's `| string`)
        items = frozenset(("True" if item is True else "False" if item is False else str(item)) for item in value)
        return lambda view: text(view) in items
    if operator == "matches":
        pattern = _case_insensitive(str(value), rule)
        return lambda view: (lambda t: t is not None and pattern.search(t) is not None)(text(view))
    if operator in NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(f"rule '{rule}': property '{operator}' needs a number")
        compare, bound = NUMERIC[operator], float(value)
        return lambda view: (lambda n: n is not None and compare(n, bound))(number(view))
    if operator == "exists":
        present = bool(value)
        return lambda view: (text(view) is not None) == present
    raise RuleError(f"rule '{rule}': unknown property operator '{operator}'")


def _sentiment_predicate(spec: Any, rule: str) -> Predicate:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in NUMERIC:
        raise RuleError(f"rule '{rule}': sentiment needs exactly one of {', '.join(NUMERIC)} and a number")
    operator, bound = next(iter(spec.items()))
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        raise RuleError(f"rule '{rule}': sentiment '{operator}' needs a number")
    compare, limit = NUMERIC[operator], float(bound)
    return lambda view: view.sentiment is not None and compare(float(view.sentiment), limit)


# --- conversation level -----------------------------------------------------------------


@dataclass
class Outcome:
    """Whether a rule holds over a conversation's events, since when, and the events that show it."""

    holds: bool
    at: datetime | None = None
    evidence: list[int] = field(default_factory=list)  # positions in the event list


@dataclass
class Conversation:
    """What conversation-level operators read: the known-type events in order, each event's
    condition bits, the user turn of each event, and the live stages."""

    events: Sequence[tuple[datetime, str]]  # (event_at, event_id), sorted
    bits: Sequence[int]
    turns: Sequence[int]
    stages: frozenset[str] = frozenset()


class Program:
    """A set of rules compiled once: each distinct event condition is one bit of an event's mask."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.conditions: list[Predicate] = []
        self._condition_keys: dict[str, int] = {}

    def condition_bit(self, condition: Any, rule: str) -> int:
        key = repr(condition)
        if key not in self._condition_keys:
            self._condition_keys[key] = len(self.conditions)
            self.conditions.append(compile_condition(condition, rule, self.live))
        return 1 << self._condition_keys[key]

    def event_bits(self, view: EventView) -> int:
        if not view.event.is_known_type:
            return 0
        bits = 0
        for index, predicate in enumerate(self.conditions):
            if predicate(view):
                bits |= 1 << index
        return bits

    def compile(self, rule: Any, name: str) -> Node:
        if not isinstance(rule, dict) or not rule:
            raise RuleError(f"rule '{name}': a rule must be a non-empty mapping, got: {rule!r}")
        operators = CONVERSATION_OPERATORS + (LIVE_OPERATORS if self.live else ())
        keys = list(rule)
        if not any(key in operators for key in keys):
            return self.compile({"at_least_once": rule}, name)  # a bare event condition
        if len(keys) != 1:
            raise RuleError(f"rule '{name}': one operator per mapping at conversation level "
                            f"(wrap them in and/or), got: {', '.join(map(str, keys))}")
        operator, value = keys[0], rule[keys[0]]
        if operator in ("at_least_once", "never"):
            return Node(operator, bit=self.condition_bit(value, name))
        if operator == "seq":
            if not isinstance(value, list) or not value:
                raise RuleError(f"rule '{name}': seq needs a non-empty list of event conditions")
            return Node(operator, steps=[self.condition_bit(item, name) for item in value])
        if operator == "not":
            return Node(operator, children=[self.compile(value, name)])
        if operator in ("and", "or"):
            if not isinstance(value, list) or not value:
                raise RuleError(f"rule '{name}': {operator} needs a non-empty list of rules")
            return Node(operator, children=[self.compile(item, name) for item in value])
        if operator == "stage":
            if value not in STAGES:
                raise RuleError(f"rule '{name}': stage must be one of {', '.join(STAGES)}, got: {value!r}")
            return Node(operator, stage=value)
        if operator in ("count", "consecutive_turns"):
            number_key = "at_least" if operator == "count" else "count"
            if not isinstance(value, dict) or set(value) != {"of", number_key}:
                raise RuleError(f"rule '{name}': {operator} needs exactly 'of' (an event condition) and '{number_key}'")
            number = value[number_key]
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise RuleError(f"rule '{name}': {operator}.{number_key} must be a whole number of at least 1")
            return Node(operator, bit=self.condition_bit(value["of"], name), number=number)
        raise RuleError(f"rule '{name}': unknown operator '{operator}'")


@dataclass
class Node:
    operator: str
    bit: int = 0
    steps: list[int] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    stage: str | None = None
    number: int = 0
    _ordered: list[Node] | None = field(default=None, repr=False, compare=False)

    @property
    def cheap_first(self) -> list[Node]:
        """Children that only read the stages first: an ``and`` stops at the first that fails."""
        if self._ordered is None:
            self._ordered = sorted(self.children, key=lambda child: not child.reads_only_stages())
        return self._ordered

    def reads_only_stages(self) -> bool:
        return self.operator == "stage" or (bool(self.children) and all(
            child.reads_only_stages() for child in self.children))

    def relevant_bits(self) -> int:
        """The condition bits whose events can change this rule's result."""
        bits = self.bit
        for step in self.steps:
            bits |= step
        for child in self.children:
            bits |= child.relevant_bits()
        return bits

    def reads_stages(self) -> bool:
        return self.operator == "stage" or any(child.reads_stages() for child in self.children)

    def reads_turns(self) -> bool:
        return self.operator == "consecutive_turns" or any(child.reads_turns() for child in self.children)

    def evaluate(self, conversation: Conversation) -> Outcome:
        operator = self.operator
        events, bits = conversation.events, conversation.bits
        if operator == "at_least_once":
            for position, mask in enumerate(bits):
                if mask & self.bit:
                    return Outcome(True, events[position][0], [position])
            return Outcome(False)
        if operator == "never":
            return Outcome(not any(mask & self.bit for mask in bits))
        if operator == "seq":
            return self._sequence(conversation)
        if operator == "not":
            return Outcome(not self.children[0].evaluate(conversation).holds)
        if operator == "and":
            outcomes = []
            for child in self.cheap_first:
                outcome = child.evaluate(conversation)
                if not outcome.holds:
                    return Outcome(False)
                outcomes.append(outcome)
            times = [outcome.at for outcome in outcomes if outcome.at is not None]
            return Outcome(True, max(times) if times else None, _merged(outcomes))
        if operator == "or":
            outcomes = [outcome for outcome in (child.evaluate(conversation) for child in self.children)
                        if outcome.holds]
            if not outcomes:
                return Outcome(False)
            times = [outcome.at for outcome in outcomes if outcome.at is not None]
            return Outcome(True, min(times) if times else None, _merged(outcomes))
        if operator == "stage":
            return Outcome(self.stage in conversation.stages)
        if operator == "count":
            found = [position for position, mask in enumerate(bits) if mask & self.bit][: self.number]
            if len(found) < self.number:
                return Outcome(False)
            return Outcome(True, events[found[-1]][0], found)
        return self._consecutive_turns(conversation)

    def _sequence(self, conversation: Conversation) -> Outcome:
        events, bits = conversation.events, conversation.bits
        position, previous_at, matched = 0, None, []
        for step in self.steps:
            while position < len(events) and not (
                bits[position] & step and (previous_at is None or events[position][0] > previous_at)
            ):
                position += 1
            if position == len(events):
                return Outcome(False)
            matched.append(position)
            previous_at = events[position][0]
            position += 1
        return Outcome(True, previous_at, matched)

    def _consecutive_turns(self, conversation: Conversation) -> Outcome:
        run: list[int] = []  # the first qualifying event of each turn of the current run
        for position, mask in enumerate(conversation.bits):
            turn = conversation.turns[position]
            if not mask & self.bit or turn < 1:
                continue
            last_turn = conversation.turns[run[-1]] if run else None
            if last_turn == turn:
                continue
            run = [*run, position] if last_turn == turn - 1 else [position]
            if len(run) == self.number:
                return Outcome(True, conversation.events[position][0], run)
        return Outcome(False)


def _merged(outcomes: list[Outcome]) -> list[int]:
    return sorted({position for outcome in outcomes for position in outcome.evidence})
