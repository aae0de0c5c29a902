"""Conversations in progress, updated event by event: stages, turns, sentiment, interventions.

``LiveState.apply(records, acknowledged_at)`` takes events the collector
accepted, stages them as the warehouse will (``live_event``), keeps each
conversation's events in the warehouse's order (time, then id), classifies
its transcript so far with the batch rules (``StageTally``), scores user
messages with the batch lexicon, and evaluates the intervention rules after
each event. It returns the interventions that fired.

Bounded: a conversation idle (no event received) for longer than the
abandonment window (dbt var ``abandon_after_minutes``) is dropped; above
``max_conversations``, or above ``max_bytes`` of what the conversations hold
(an estimate from the lengths of their ids and texts, see ``_event_cost``),
the least recently active one is dropped; a conversation keeps at most
``max_events`` events (beyond, it is marked ``truncated`` and stops
changing). Each drop is counted. Pure Python, no I/O: the collector's live
worker owns one (``collector/live_worker.py``).

Each conversation remembers the ``agent_id`` of its events, so a key bound
to agents reads only the conversations all of whose events are its agents'
(``get`` and ``page`` take the agents a key may read).

An intervention's webhook carries its evidence's text masked
(``Firing.masked_payload``: names found in any message held are masked in
each), unless ``evidence_raw_text`` is set.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import yaml

from convo_warehouse.lib.classify.rules import RuleSet, StageProgram, load_rules
from convo_warehouse.lib.classify.sentiment import score_text
from convo_warehouse.lib.classify.stages import STAGES
from convo_warehouse.lib.live.events import LiveEvent, live_event, resolved_sentiment
from convo_warehouse.lib.live.interventions import (
    EVENT_TYPE,
    Firing,
    InterventionRules,
    idempotency_key,
    iso,
    load_intervention_rules,
)
from convo_warehouse.lib.live.markers import Conversation, EventView
from convo_warehouse.lib.warehouse import REPO_ROOT

ENDING_TYPES = ("conversation_completed", "conversation_abandoned", "conversation_ended")
# Estimated bytes of a conversation held (its object, tally, deque and dicts) and of each event
# held (its key tuple, list slots, id set, owner and acknowledgement entries) besides its strings:
# measured as RSS over 100,000 conversations (docs/capture.md), rounded up.
CONVERSATION_BYTES = 4096
EVENT_BYTES = 400
MESSAGE_BYTES = 200
AGENTS_KEPT = 16  # agent ids remembered per conversation; more make it readable to unbound keys only


@lru_cache(maxsize=1)
def abandon_after_minutes() -> float:
    """The dbt var ``abandon_after_minutes`` (the one place it is set)."""
    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    return float(project["vars"]["abandon_after_minutes"])


@dataclass
class LiveSettings:
    max_conversations: int = 200_000
    max_events: int = 2_000
    idle_seconds: float | None = None  # default: the abandonment window
    last_messages: int = 10
    text_chars: int = 500
    sentiment: bool = True
    max_bytes: int = 1024 * 1024 * 1024
    evidence_raw_text: bool = False

    def idle(self) -> float:
        return self.idle_seconds if self.idle_seconds is not None else abandon_after_minutes() * 60


@dataclass(slots=True)
class Message:
    event_id: str
    role: str
    text: str
    event_at: datetime
    sentiment: float | None


class ConversationState:
    """One conversation in progress."""

    __slots__ = (
        "conversation_id", "user_id", "channel", "keys", "types", "bits", "sentiments", "ids", "tally",
        "current", "first_reached", "user_turns", "messages", "last_messages", "sentiment", "sentiment_source",
        "fired", "declined", "pending", "last_received", "first_received", "ended", "handed_off", "truncated",
        "acknowledged", "agent_ids", "bytes",
    )

    def __init__(self, conversation_id: str, tally, keep_messages: int) -> None:
        self.conversation_id = conversation_id
        self.user_id: str | None = None
        self.channel: str | None = None
        self.keys: list[tuple[datetime, str]] = []  # known-type events, sorted (event_at, event_id)
        self.types: list[str] = []
        self.bits: list[int] = []  # intervention condition bits per event
        self.sentiments: list[float | None] = []
        self.ids: set[str] = set()
        self.tally = tally
        self.current: dict[str, tuple[bool, float]] = {}
        self.first_reached: dict[str, tuple[datetime, float]] = {}  # stage -> (event time, wall time seen)
        self.user_turns = 0
        self.messages = 0
        self.last_messages: deque[Message] = deque(maxlen=keep_messages)
        self.sentiment: float | None = None
        self.sentiment_source: str | None = None
        self.fired: dict[str, dict] = {}
        self.declined: set[str] = set()  # rules an LLM check found not to hold
        self.pending: set[str] = set()  # rules waiting for an LLM check
        self.last_received = 0.0
        self.first_received = 0.0
        self.ended: str | None = None
        self.handed_off = False
        self.truncated = False
        self.acknowledged: dict[str, float] = {}  # event_id -> epoch seconds acknowledged (trigger times)
        self.agent_ids: set[str | None] = set()  # of its events (None: an event without one)
        self.bytes = CONVERSATION_BYTES + 2 * len(conversation_id)

    def visible_to(self, agents: frozenset[str] | None) -> bool:
        """Whether a key reading ``agents`` (None: every agent) may read this conversation."""
        return agents is None or (bool(self.agent_ids) and self.agent_ids <= agents)

    def stages_reached(self) -> list[str]:
        return [stage for stage in STAGES if self.current.get(stage, (False,))[0]]

    def furthest_stage(self) -> str | None:
        reached = self.stages_reached()
        return reached[-1] if reached else None

    def turns(self) -> list[int]:
        turns, count = [], 0
        for event_type in self.types:
            if event_type == "user_message":
                count += 1
            turns.append(count)
        return turns

    def view(self, with_turns: bool = True) -> Conversation:
        return Conversation(self.keys, self.bits, self.turns() if with_turns else (),
                            frozenset(self.stages_reached()))

    def summary(self) -> dict:
        return {
            "conversation_id": self.conversation_id,
            "user_id": self.user_id,
            "channel": self.channel,
            "user_turns": self.user_turns,
            "messages": self.messages,
            "stage": self.furthest_stage(),
            "sentiment": self.sentiment,
            "last_event_at": iso(self.keys[-1][0]) if self.keys else None,
            "interventions": sorted(self.fired),
            "ended": self.ended,
            "truncated": self.truncated,
        }

    def detail(self) -> dict:
        stages = []
        for stage in STAGES:
            reached, confidence = self.current.get(stage, (False, None))
            first = self.first_reached.get(stage)
            stages.append({
                "stage": stage,
                "reached": reached,
                "confidence": confidence,
                "first_reached_at": iso(first[0]) if first else None,
                "first_reached_seen_at": iso(datetime.fromtimestamp(first[1], UTC).replace(tzinfo=None))
                if first else None,
            })
        return {
            **self.summary(),
            "stages": stages,
            "stages_reached": self.stages_reached(),
            "sentiment_source": self.sentiment_source,
            "last_messages": [
                {"event_id": m.event_id, "role": m.role, "text": m.text, "at": iso(m.event_at),
                 "sentiment": m.sentiment}
                for m in self.last_messages
            ],
            "interventions": [self.fired[name] for name in sorted(self.fired)],
        }


@dataclass
class Counters:
    events: int = 0
    duplicates: int = 0
    unknown_type: int = 0
    unreadable: int = 0
    conversations_expired: int = 0
    conversations_evicted: int = 0
    events_over_cap: int = 0
    interventions_fired: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class LiveState:
    settings: LiveSettings = field(default_factory=LiveSettings)
    rules: RuleSet | None = None
    interventions: InterventionRules | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.program = StageProgram(self.rules or load_rules())
        if self.interventions is None:
            self.interventions = load_intervention_rules()
        self.conversations: OrderedDict[str, ConversationState] = OrderedDict()
        self.counters = Counters()
        # ids of the events held, across conversations: staging keeps the first copy of an id
        self.owner: dict[str, str] = {}
        # idempotency key -> the firing (also those read back at a restart), the most recent
        # 4 x max_conversations: a conversation that comes back after being dropped still
        # finds its rules fired
        self.already_fired: OrderedDict[str, dict] = OrderedDict()
        self.bytes = 0  # estimated bytes of the conversations held

    # --- events in ------------------------------------------------------------------

    def apply(self, records: Iterable[dict], acknowledged_at: float | None = None) -> list[Firing]:
        """Apply accepted events in order; return the interventions that fired."""
        firings: list[Firing] = []
        acknowledged_at = acknowledged_at if acknowledged_at is not None else self.clock()
        for record in records:
            try:
                event = live_event(record)
            except Exception:  # accepted by the collector, so this is a bug to count, never a crash
                self.counters.unreadable += 1
                continue
            if event.event_type == EVENT_TYPE:
                self.remember_firing(event)
                continue
            firings.extend(self._apply_one(event, acknowledged_at))
        return firings

    def apply_lines(self, lines: Iterable[bytes | str], acknowledged_at: float | None = None) -> list[Firing]:
        """Apply lines the collector stored (accepted events: from its queue, or its landing files
        read back at a restart)."""
        lines = list(lines)
        decoded = None
        if all(type(line) is bytes for line in lines):
            try:
                # the collector's lines are compact JSON, one value each: one decode for them all
                decoded = json.loads(b"[" + b",".join(lines) + b"]")
            except ValueError:
                decoded = None
        if decoded is None or len(decoded) != len(lines):
            decoded = []
            for line in lines:
                try:
                    decoded.append(json.loads(line))
                except ValueError:
                    self.counters.unreadable += 1
        return self.apply([record for record in decoded if isinstance(record, dict)], acknowledged_at)

    def remember_firing(self, event: LiveEvent) -> None:
        """An ``intervention_triggered`` event read back: that rule has fired for that conversation."""
        key, rule = event.properties.get("idempotency_key"), event.properties.get("rule")
        if not isinstance(key, str) or not isinstance(rule, str):
            return
        fired = {"rule": rule, "idempotency_key": key, "fired_at": event.properties.get("fired_at"),
                 "triggered_at": iso(event.event_at), "stage": event.properties.get("stage_at_trigger"),
                 "classifier": event.properties.get("classifier")}
        self._remember_fired(key, fired)
        conversation = self.conversations.get(event.conversation_id)
        if conversation is not None:
            conversation.fired.setdefault(rule, fired)

    def _conversation(self, event: LiveEvent, now: float) -> ConversationState:
        conversation = self.conversations.get(event.conversation_id)
        if conversation is None:
            conversation = ConversationState(event.conversation_id, self.program.tally(), self.settings.last_messages)
            conversation.first_received = now
            self.conversations[event.conversation_id] = conversation
            self.bytes += conversation.bytes
            while len(self.conversations) > self.settings.max_conversations:
                self._drop(next(iter(self.conversations)))
                self.counters.conversations_evicted += 1
        else:
            self.conversations.move_to_end(event.conversation_id)
        conversation.last_received = max(conversation.last_received, now)
        return conversation

    def _grow(self, conversation: ConversationState, size: int) -> None:
        """Count ``size`` more bytes for the conversation; drop the least recently active ones
        (never this one) while the state holds more than ``max_bytes``."""
        conversation.bytes += size
        self.bytes += size
        while self.bytes > self.settings.max_bytes and len(self.conversations) > 1:
            oldest = next(iter(self.conversations))
            if oldest == conversation.conversation_id:
                break
            self._drop(oldest)
            self.counters.conversations_evicted += 1

    def _apply_one(self, event: LiveEvent, acknowledged_at: float) -> list[Firing]:
        # when the collector acknowledged it: now, or a landing file's time when read back
        now = acknowledged_at
        if event.event_id in self.owner:
            self.counters.duplicates += 1
            return []
        conversation = self._conversation(event, now)
        self.counters.events += 1
        conversation.user_id = conversation.user_id or event.user_id
        conversation.channel = conversation.channel or event.channel
        agent = event.properties.get("agent_id")
        agent = agent if isinstance(agent, str) else None
        if agent not in conversation.agent_ids:
            # past the bound, a conversation is one only unbound keys read (a None nobody holds)
            conversation.agent_ids.add(agent if len(conversation.agent_ids) < AGENTS_KEPT else None)
            self._grow(conversation, 100 + len(agent or ""))
        if not event.is_known_type:
            # staged but used by nothing (the contract): no stage, no rule reads it
            self.counters.unknown_type += 1
            return []
        if conversation.truncated or len(conversation.keys) >= self.settings.max_events:
            conversation.truncated = True
            self.counters.events_over_cap += 1
            return []
        self.owner[event.event_id] = event.conversation_id
        conversation.ids.add(event.event_id)
        self._grow(conversation, EVENT_BYTES + 3 * len(event.event_id))
        conversation.acknowledged[event.event_id] = acknowledged_at
        if event.event_type in ENDING_TYPES:
            conversation.ended = event.event_type
        if event.event_type == "handoff_requested":
            conversation.handed_off = True

        sentiment = None
        role = event.role
        if role is not None:
            conversation.messages += 1
            stage_changed = False
            if conversation.tally.add(event.key, role == "user", self.program.matcher.mask(role, event.content or "")):
                stage_changed = self._decide(conversation, event, now)
            if role == "user":
                conversation.user_turns += 1
                sentiment, source = resolved_sentiment(event, score_text if self.settings.sentiment else None)
                if conversation.sentiment is None or event.key >= self._last_user_key(conversation):
                    conversation.sentiment, conversation.sentiment_source = sentiment, source
            if len(conversation.last_messages) < (conversation.last_messages.maxlen or 0):
                # a full deque replaces a message by one of the same bound: counted once
                self._grow(conversation, MESSAGE_BYTES + self.settings.text_chars + len(event.event_id))
            conversation.last_messages.append(Message(event.event_id, role, (event.content or "")[: self.settings.text_chars],
                                                       event.event_at, sentiment))
        else:
            stage_changed = False

        bits = self.interventions.program.event_bits(EventView(event, sentiment))
        appended_last = self._insert(conversation, event, bits, sentiment)
        return self._due(conversation, event, bits, stage_changed, appended_last, acknowledged_at)

    def _last_user_key(self, conversation: ConversationState) -> tuple:
        for key, event_type in zip(reversed(conversation.keys), reversed(conversation.types), strict=True):
            if event_type == "user_message":
                return key
        return (datetime.min, "")

    def _insert(self, conversation: ConversationState, event: LiveEvent, bits: int, sentiment) -> bool:
        """Place the event in time order; True when it went last (the usual case)."""
        keys = conversation.keys
        position = len(keys) if not keys or event.key > keys[-1] else bisect.bisect_right(keys, event.key)
        keys.insert(position, event.key)
        conversation.types.insert(position, event.event_type)
        conversation.bits.insert(position, bits)
        conversation.sentiments.insert(position, sentiment)
        return position == len(keys) - 1

    def _decide(self, conversation: ConversationState, event: LiveEvent, now: float) -> bool:
        """Classify the transcript again; True when the stages reached changed."""
        before = conversation.current
        decided = conversation.tally.decide()
        conversation.current = {stage: (reached, confidence) for stage, (reached, confidence, _) in decided.items()}
        changed = False
        for stage, (reached, _confidence, _score) in decided.items():
            if reached != before.get(stage, (False,))[0]:
                changed = True
            if reached and stage not in conversation.first_reached:
                conversation.first_reached[stage] = (event.event_at, now)
        return changed

    # --- interventions ----------------------------------------------------------------------

    def _due(self, conversation: ConversationState, event: LiveEvent, bits: int, stage_changed: bool,
             appended_last: bool, acknowledged_at: float) -> list[Firing]:
        """The rules this event can make hold, evaluated. A rule's result changes only with events
        matching its conditions, with the stages (if it reads them) and, for turns, with a user
        message arriving out of order (it renumbers the turns after it)."""
        firings = []
        first_event = len(conversation.keys) == 1
        views: dict[bool, Conversation] = {}
        for rule in self.interventions.rules:
            if rule.name in conversation.fired or rule.name in conversation.declined or rule.name in conversation.pending:
                continue
            relevant = first_event or bits & rule.relevant_bits or (rule.reads_stages and stage_changed) or (
                rule.reads_turns and event.event_type == "user_message" and not appended_last)
            if not relevant:
                continue
            if rule.reads_turns not in views:
                views[rule.reads_turns] = conversation.view(with_turns=rule.reads_turns)
            outcome = rule.node.evaluate(views[rule.reads_turns])
            if not outcome.holds:
                continue
            key = idempotency_key(conversation.conversation_id, rule.name)
            if key in self.already_fired:
                conversation.fired[rule.name] = self.already_fired[key]
                continue
            # pending until the firing is stored (record_fired): a later event of the
            # same batch must not fire the rule again
            conversation.pending.add(rule.name)
            firings.append(self._firing(conversation, rule, event, outcome.evidence, acknowledged_at))
        return firings

    def _firing(self, conversation: ConversationState, rule, event: LiveEvent, evidence: list[int],
                acknowledged_at: float) -> Firing:
        texts = {message.event_id: message for message in conversation.last_messages}
        items = []
        for position in evidence[-10:]:
            event_at, event_id = conversation.keys[position]
            message = texts.get(event_id)
            items.append({"event_id": event_id, "event_type": conversation.types[position], "at": iso(event_at),
                          "text": message.text if message else None, "sentiment": conversation.sentiments[position]})
        return Firing(
            key=idempotency_key(conversation.conversation_id, rule.name),
            conversation_id=conversation.conversation_id,
            user_id=conversation.user_id,
            channel=conversation.channel,
            rule=rule.name,
            description=rule.description,
            stage=conversation.furthest_stage(),
            stages=conversation.stages_reached(),
            triggered_at=event.event_at,
            trigger_event_id=event.event_id,
            fired_at=datetime.fromtimestamp(self.clock(), UTC).replace(tzinfo=None),
            condition_met_at=acknowledged_at,
            evidence=items,
            user_turns=conversation.user_turns,
            # masked off the path that applies events (``Firing.masked_payload``), by the worker's
            # thread that stores firings and queues webhooks
            context=tuple(message.text for message in conversation.last_messages),
        )

    def record_fired(self, firing: Firing) -> None:
        """Mark a firing as done (after it was written to the landing folder)."""
        fired = {"rule": firing.rule, "idempotency_key": firing.key, "fired_at": iso(firing.fired_at),
                 "triggered_at": iso(firing.triggered_at), "stage": firing.stage, "classifier": firing.classifier}
        self._remember_fired(firing.key, fired)
        self.counters.interventions_fired += 1
        conversation = self.conversations.get(firing.conversation_id)
        if conversation is not None:
            conversation.pending.discard(firing.rule)
            conversation.fired[firing.rule] = fired

    def _remember_fired(self, key: str, fired: dict) -> None:
        self.already_fired[key] = fired
        while len(self.already_fired) > 4 * self.settings.max_conversations:
            self.already_fired.popitem(last=False)

    # --- bounds and reading ---------------------------------------------------------------

    def expire(self) -> int:
        """Drop conversations idle longer than the window; returns how many."""
        limit = self.clock() - self.settings.idle()
        dropped = 0
        while self.conversations:
            conversation_id, conversation = next(iter(self.conversations.items()))
            if conversation.last_received > limit:
                break
            self._drop(conversation_id)
            dropped += 1
        self.counters.conversations_expired += dropped
        return dropped

    def _drop(self, conversation_id: str) -> None:
        conversation = self.conversations.pop(conversation_id)
        self.bytes -= conversation.bytes
        for event_id in conversation.ids:
            self.owner.pop(event_id, None)

    def get(self, conversation_id: str, agents: frozenset[str] | None = None) -> dict | None:
        """The conversation's detail, None when it is not held or not readable with ``agents``."""
        conversation = self.conversations.get(conversation_id)
        return None if conversation is None or not conversation.visible_to(agents) else conversation.detail()

    def page(self, limit: int = 500, after: str | None = None, max_bytes: int = 1024 * 1024,
             include_ended: bool = False, agents: frozenset[str] | None = None) -> dict:
        """One page of ``active``: at most ``limit`` summaries and ``max_bytes`` of their JSON, most
        recently active first, after the cursor ``after`` (a previous page's ``next``, which is None
        on the last page)."""
        position = None
        if after:
            try:
                seconds, _, conversation_id = base64.urlsafe_b64decode(after.encode("ascii")).decode().partition("|")
                position = (float(seconds), conversation_id)
            except (ValueError, UnicodeError):
                return {"error": "after must be the \"next\" of a previous page"}
        candidates = (
            ((conversation.last_received, conversation.conversation_id), conversation)
            for conversation in self.conversations.values()
            if (include_ended or conversation.ended is None) and conversation.visible_to(agents)
            and (position is None or (conversation.last_received, conversation.conversation_id) < position)
        )
        chosen = heapq.nlargest(limit + 1, candidates, key=lambda item: item[0])
        found, size, last = [], 2, None
        for place, conversation in chosen[:limit]:
            summary = conversation.summary()
            size += len(json.dumps(summary)) + 1
            if found and size > max_bytes:
                break
            found.append(summary)
            last = place
        more = len(found) < len(chosen)
        cursor = (base64.urlsafe_b64encode(f"{last[0]!r}|{last[1]}".encode()).decode("ascii")
                  if more and last is not None else None)
        return {"conversations": found, "next": cursor}

    def stats(self) -> dict:
        return {"conversations": len(self.conversations), "bytes": self.bytes, **self.counters.as_dict(),
                "rules_version": self.program.rules.version, "interventions_version": self.interventions.version}
