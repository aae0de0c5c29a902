"""The offline ``rules`` classifier: one set-based DuckDB query over message rows.

The patterns live in ``stage_rules.yml`` (see the comments there). The query
tests every message once against each signal's combined regular expression,
aggregates per conversation and returns one row per (conversation, stage), so
a million conversations take minutes, not the hours a per-conversation loop
would.

Input: a table or view with ``conversation_id``, ``seq`` (message order within
the conversation), ``role`` (``user`` | ``agent``) and ``content``.

The collector's live state (``convo_warehouse.lib.live``) applies the same
rules to one conversation at a time, message by message, as they arrive:
``MessageMatcher`` tests a message against the signals with RE2 (the engine
behind DuckDB's ``regexp_matches``, through the ``google-re2`` bindings, with
DuckDB's defaults) and ``StageTally`` keeps a conversation's counts and
decides its stages exactly as the query does. A DuckDB query compiles every
signal's regex each time it runs, a cost a live update cannot pay per
message (docs/capture.md has the figures). ``tests/live/test_stage_rules_python_equals_sql.py`` proves the two
paths equal on every prefix of thousands of transcripts (golden sets, real
chats, generated and adversarial ones).
"""

from __future__ import annotations

import bisect
import hashlib
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import re2
import yaml

from convo_warehouse.lib.classify.stages import STAGES
from convo_warehouse.lib.warehouse import sql_literal

DEFAULT_RULES_PATH = Path(__file__).with_name("stage_rules.yml")
# What a stored rules result holds, hashed into the rules version with the rules
# file: 2 names the message that reaches each stage (rows of 1 have none, so
# they are classified again)
RULES_OUTPUT_VERSION = 2
ROLES = ("user", "agent")
SCOPES = ("all", "last_user_message")


@dataclass(frozen=True)
class Signal:
    stage: str
    name: str
    role: str
    weight: float
    patterns: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    after: str | None = None
    scope: str = "all"
    cap: int = 1


@dataclass(frozen=True)
class RuleSet:
    signals: tuple[Signal, ...]
    implied_by: dict[str, tuple[str, ...]]
    reach_score: float
    hybrid_uncertain_below: float
    confidence: dict[str, float]
    version: str
    path: str = field(default="")

    def signals_of(self, stage: str) -> list[Signal]:
        return [signal for signal in self.signals if signal.stage == stage]


def rules_path() -> Path:
    """The rules file: ``CONVO_STAGE_RULES`` if set, else the packaged one."""
    return Path(os.environ.get("CONVO_STAGE_RULES") or DEFAULT_RULES_PATH)


def load_rules(path: str | os.PathLike | None = None) -> RuleSet:
    """Read and validate a rules file; the hash of its content and RULES_OUTPUT_VERSION is the rules version."""
    path = Path(path) if path else rules_path()
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    stages = data.get("stages") or {}
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"{path}: unknown stages {sorted(unknown)}; allowed: {list(STAGES)}")
    signals: list[Signal] = []
    implied_by: dict[str, tuple[str, ...]] = {}
    for stage, spec in stages.items():
        implied = tuple(spec.get("implied_by") or ())
        bad = set(implied) - set(STAGES)
        if bad:
            raise ValueError(f"{path}: {stage}.implied_by names unknown stages {sorted(bad)}")
        implied_by[stage] = implied
        for raw in spec.get("signals") or ():
            signal = Signal(
                stage=stage,
                name=str(raw["name"]),
                role=str(raw["role"]),
                weight=float(raw.get("weight", 1.0)),
                patterns=tuple(raw["patterns"]),
                exclude=tuple(raw.get("exclude") or ()),
                after=raw.get("after"),
                scope=str(raw.get("scope", "all")),
                cap=int(raw.get("cap", 1)),
            )
            if signal.role not in ROLES:
                raise ValueError(f"{path}: {stage}.{signal.name}: role must be one of {ROLES}")
            if signal.scope not in SCOPES:
                raise ValueError(f"{path}: {stage}.{signal.name}: scope must be one of {SCOPES}")
            if signal.after is not None and signal.after not in STAGES:
                raise ValueError(f"{path}: {stage}.{signal.name}: after names unknown stage")
            if not signal.patterns:
                raise ValueError(f"{path}: {stage}.{signal.name}: no patterns")
            signals.append(signal)
    _check_implications_acyclic(implied_by)
    confidence = {
        "reached_strong": 0.95,
        "reached": 0.8,
        "implied": 0.7,
        "no_evidence": 0.9,
        "weak_evidence": 0.6,
        **(data.get("confidence") or {}),
    }
    return RuleSet(
        signals=tuple(signals),
        implied_by=implied_by,
        reach_score=float(data.get("reach_score", 1.0)),
        hybrid_uncertain_below=float(data.get("hybrid_uncertain_below", 0.7)),
        confidence={key: float(value) for key, value in confidence.items()},
        version="rules-" + hashlib.sha256(f"{RULES_OUTPUT_VERSION}\n{text}".encode()).hexdigest()[:12],
        path=str(path),
    )


def _check_implications_acyclic(implied_by: dict[str, tuple[str, ...]]) -> None:
    def visit(stage: str, trail: tuple[str, ...]) -> None:
        if stage in trail:
            raise ValueError(f"implied_by cycle: {' -> '.join(trail + (stage,))}")
        for other in implied_by.get(stage, ()):
            visit(other, trail + (stage,))

    for stage in implied_by:
        visit(stage, ())


def _combined(patterns: tuple[str, ...]) -> str:
    return "|".join(f"(?:{pattern})" for pattern in patterns)


def _implying(rules: RuleSet, stage: str) -> set[str]:
    """The stages whose being reached implies ``stage`` (``stage`` included), through ``implied_by``."""
    found = {stage}
    for other in rules.implied_by.get(stage, ()):
        found |= _implying(rules, other)
    return found


def rules_sql(rules: RuleSet, messages_relation: str) -> str:
    """The query: one row per (conversation, stage) with reached, confidence, score and reached_seq.

    ``messages_relation`` is a table/view name (or a parenthesised subquery).
    ``reached_seq`` is the ``seq`` of the message that shows the stage: the
    first message at which the rules, read over the messages up to it, reach
    the stage (what the collector's live tally reports as that message
    arrives); null when the stage is not reached.
    """
    signal_columns = []
    for index, signal in enumerate(rules.signals):
        test = f"regexp_matches(messages_normalised.text, {sql_literal(_combined(signal.patterns))})"
        if signal.exclude:
            test += (
                " and not regexp_matches(messages_normalised.text, "
                f"{sql_literal(_combined(signal.exclude))})"
            )
        signal_columns.append(
            f"case when messages_normalised.role = '{signal.role}' then {test} else false end"
            f" as signal_{index}"
        )

    # first message with direct (unconditioned, positive) evidence of a stage
    anchors = sorted({signal.after for signal in rules.signals if signal.after})
    anchor_columns = []
    for stage in anchors:
        evidence_stages = _implying(rules, stage)
        flags = [
            f"messages_signalled.signal_{index}"
            for index, signal in enumerate(rules.signals)
            if signal.stage in evidence_stages and signal.after is None and signal.weight > 0
        ]
        condition = " or ".join(flags) if flags else "false"
        anchor_columns.append(
            f"min(case when {condition} then messages_signalled.seq end) as first_{stage}_seq"
        )

    count_columns = []
    # where each signal's capped count steps up, for the prefix scores below: the
    # positions of its first `cap` counted messages (scope last_user_message: the
    # user messages that carry it; its count at a prefix is whether the prefix's
    # last user message is one of them)
    position_columns = []
    for index, signal in enumerate(rules.signals):
        condition = f"messages_signalled.signal_{index}"
        if signal.after:
            condition += f" and messages_signalled.seq > conversation_anchors.first_{signal.after}_seq"
        if signal.scope == "last_user_message":
            position_columns.append(
                f"coalesce(list(messages_signalled.seq) filter (where messages_signalled.role = 'user' and {condition}),"
                f" []) as positions_{index}"
            )
            condition += " and messages_signalled.seq = conversation_anchors.last_user_seq"
        else:
            position_columns.append(
                f"coalesce(list_sort(list(messages_signalled.seq) filter (where {condition}))[1:{signal.cap}], [])"
                f" as positions_{index}"
            )
        count_columns.append(f"count(*) filter (where {condition}) as count_{index}")
    reads_last_user = any(signal.scope == "last_user_message" for signal in rules.signals)
    if reads_last_user:
        position_columns.append(
            "list(messages_signalled.seq) filter (where messages_signalled.role = 'user') as user_positions"
        )

    score_columns = []
    for stage in STAGES:
        terms = [
            f"{signal.weight!r} * least(signals_counted.count_{index}, {signal.cap})"
            for index, signal in enumerate(rules.signals)
            if signal.stage == stage
        ]
        score_columns.append(f"{' + '.join(terms) if terms else '0.0'} as score_{stage}")

    # a stage's score over the messages up to position p, from where its
    # signals' counts step up; it can only change at those positions (and at
    # user messages for last_user_message signals), so they are the candidates
    def count_at(index: int, signal: Signal) -> str:
        positions = f"reach_candidates.positions_{index}"
        if signal.scope == "last_user_message":
            last_user = (
                "list_max(list_filter(reach_candidates.user_positions, "
                "position -> position <= reach_candidates.candidate_seq))"
            )
            return f"(case when list_contains({positions}, {last_user}) then least(1, {signal.cap}) else 0 end)"
        return f"len(list_filter({positions}, position -> position <= reach_candidates.candidate_seq))"

    first_direct_columns = []
    for stage in STAGES:
        terms = [
            f"{signal.weight!r} * {count_at(index, signal)}"
            for index, signal in enumerate(rules.signals)
            if signal.stage == stage
        ]
        score_at = " + ".join(terms) if terms else "0.0"
        first_direct_columns.append(
            f"min(case when {score_at} >= {rules.reach_score!r} then reach_candidates.candidate_seq end)"
            f" as first_direct_seq_{stage}"
        )
    candidate_lists = [f"signal_positions.positions_{index}" for index in range(len(rules.signals))]
    if reads_last_user:
        candidate_lists.append("signal_positions.user_positions")
    candidates = "[]"
    for candidate_list in candidate_lists:
        candidates = f"list_concat({candidates}, {candidate_list})"

    def direct(stage: str) -> str:
        return f"(stage_scores.score_{stage} >= {rules.reach_score!r})"

    def reached(stage: str) -> str:
        parts = [direct(stage)] + [reached(other) for other in rules.implied_by.get(stage, ())]
        return "(" + " or ".join(parts) + ")"

    def reached_seq(stage: str) -> str:
        # reached as soon as it or a stage implying it is reached directly: the
        # earliest of those (least skips nulls)
        firsts = [f"first_reaches.first_direct_seq_{other}" for other in sorted(_implying(rules, stage))]
        return f"case when {reached(stage)} then least({', '.join(firsts)}) end"

    confidence = rules.confidence
    stage_rows = []
    for stage in STAGES:
        score = f"stage_scores.score_{stage}"
        stage_rows.append(
            f"""
    select
        stage_scores.conversation_id,
        '{stage}' as stage,
        {reached(stage)} as reached,
        case
            when {score} >= {rules.reach_score + 1!r} then {confidence['reached_strong']!r}
            when {direct(stage)} then {confidence['reached']!r}
            when {reached(stage)} then {confidence['implied']!r}
            when {score} > 0 then {confidence['weak_evidence']!r}
            else {confidence['no_evidence']!r}
        end as confidence,
        {score} as score,
        cast({reached_seq(stage)} as bigint) as reached_seq
    from stage_scores
    left join first_reaches
        on stage_scores.conversation_id = first_reaches.conversation_id"""
        )

    return f"""
with

messages as (
    select conversation_id, seq, role, content from {messages_relation}
),

messages_normalised as (
    select
        messages.conversation_id,
        messages.seq,
        messages.role,
        lower(replace(coalesce(messages.content, ''), '’', '''')) as text,
    from messages
),

messages_signalled as (
    select
        messages_normalised.conversation_id,
        messages_normalised.seq,
        messages_normalised.role,
        {(',' + chr(10) + '        ').join(signal_columns)},
    from messages_normalised
),

conversation_anchors as (
    select
        messages_signalled.conversation_id,
        max(case when messages_signalled.role = 'user' then messages_signalled.seq end) as last_user_seq,
        {''.join(column + ',' + chr(10) + '        ' for column in anchor_columns)}
    from messages_signalled
    group by messages_signalled.conversation_id
),

signals_counted as (
    select
        messages_signalled.conversation_id,
        {(',' + chr(10) + '        ').join(count_columns)},
    from messages_signalled
    inner join conversation_anchors
        on messages_signalled.conversation_id = conversation_anchors.conversation_id
    group by messages_signalled.conversation_id
),

stage_scores as (
    select
        signals_counted.conversation_id,
        {(',' + chr(10) + '        ').join(score_columns)},
    from signals_counted
),

signal_positions as (
    select
        messages_signalled.conversation_id,
        {(',' + chr(10) + '        ').join(position_columns)},
    from messages_signalled
    inner join conversation_anchors
        on messages_signalled.conversation_id = conversation_anchors.conversation_id
    group by messages_signalled.conversation_id
),

reach_candidates as (
    select
        signal_positions.*,
        unnest(list_distinct({candidates})) as candidate_seq
    from signal_positions
),

first_reaches as (
    select
        reach_candidates.conversation_id,
        {(',' + chr(10) + '        ').join(first_direct_columns)},
    from reach_candidates
    group by reach_candidates.conversation_id
),

stages_decided as (
    {(chr(10) + '    union all' + chr(10)).join(stage_rows)}
)

select * from stages_decided
"""


def classify_relation(
    con: duckdb.DuckDBPyConnection,
    messages_relation: str,
    rules: RuleSet | None = None,
    into: str | None = None,
) -> duckdb.DuckDBPyRelation | None:
    """Run the rules over ``messages_relation``.

    With ``into``, the result is written to that (temp) table and None is
    returned; otherwise the relation is returned.
    """
    rules = rules or load_rules()
    sql = rules_sql(rules, messages_relation)
    if into:
        con.execute(f"create or replace temp table {into} as {sql}")
        return None
    return con.sql(sql)


def classify_messages(
    messages: dict[str, list[tuple[str, str]]],
    rules: RuleSet | None = None,
) -> dict[str, dict[str, tuple[bool, float]]]:
    """Classify small in-memory transcripts ``{conversation_id: [(role, content), ...]}``.

    Returns ``{conversation_id: {stage: (reached, confidence)}}``. For tests,
    evaluation and the hybrid fallback; bulk work goes through ``classify_relation``.
    """
    rules = rules or load_rules()
    con = duckdb.connect()
    try:
        rows = [
            (conversation_id, seq, role, content)
            for conversation_id, transcript in messages.items()
            for seq, (role, content) in enumerate(transcript, start=1)
        ]
        con.execute(
            "create temp table golden_messages "
            "(conversation_id varchar, seq integer, role varchar, content varchar)"
        )
        if rows:
            con.executemany("insert into golden_messages values (?, ?, ?, ?)", rows)
        result: dict[str, dict[str, tuple[bool, float]]] = {cid: {} for cid in messages}
        relation = classify_relation(con, "golden_messages", rules)
        for conversation_id, stage, reached, confidence, _score, _reached_seq in relation.fetchall():
            result[conversation_id][stage] = (bool(reached), float(confidence))
        # conversations without any message: nothing reached
        for conversation_id, stages in result.items():
            for stage in STAGES:
                stages.setdefault(stage, (False, rules.confidence["no_evidence"]))
        return result
    finally:
        con.close()


# --- the same rules, one conversation at a time (the collector's live state) ---------


def normalise_text(content: str | None) -> str:
    """The text the signals read, as the query's ``messages_normalised`` makes it.

    DuckDB lowers one code point at a time: U+0130 (dotted capital I) becomes
    ``i``, where Python's full case mapping gives ``i`` plus a combining dot.
    """
    text = (content or "").replace("’", "'")
    if "\u0130" in text:
        text = text.replace("\u0130", "i")
    return text.lower()


def _re2_compile(patterns: tuple[str, ...]):
    # DuckDB's regexp_matches(text, pattern) runs RE2 with its default options
    # (UTF-8, case-sensitive, `.` not matching a newline, `^`/`$` at the ends
    # of the text); so do these.
    return re2.compile(_combined(patterns).encode("utf-8"))


class MessageMatcher:
    """The signals one message carries, as a bit mask (bit i = ``rules.signals[i]``).

    ``mask`` runs the patterns of the message's role in one pass (an RE2 set:
    which of them match anywhere), then the exclusions of those that matched;
    ``mask_each`` searches pattern by pattern, as the query does, and is the
    reference (``tests/live/test_stage_rules_python_equals_sql.py`` checks both on every message).
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._by_role: dict[str, list[tuple[int, Any, Any]]] = {role: [] for role in ROLES}
        for index, signal in enumerate(rules.signals):
            self._by_role[signal.role].append((
                1 << index,
                _re2_compile(signal.patterns),
                _re2_compile(signal.exclude) if signal.exclude else None,
            ))
        # role -> (RE2 set of its patterns, every pattern combined): the combined one confirms a
        # set's empty answer, which is also what RE2 gives when its DFA runs out of memory
        self._sets: dict[str, tuple[Any, Any]] = {}
        for role, entries in self._by_role.items():
            if entries:
                patterns = re2.Set.SearchSet()
                for _bit, pattern, _exclude in entries:
                    patterns.Add(pattern.pattern)
                patterns.Compile()
                every = tuple(_combined(signal.patterns) for signal in rules.signals if signal.role == role)
                self._sets[role] = (patterns, _re2_compile(every))

    def mask(self, role: str, content: str | None) -> int:
        found = self._sets.get(role)
        if found is None:
            return 0
        text = normalise_text(content).encode("utf-8", "surrogatepass")
        matched = found[0].Match(text)
        if matched is None:
            if found[1].search(text) is None:
                return 0
            return self._mask_each(role, text)  # the set failed: search pattern by pattern
        entries = self._by_role[role]
        mask = 0
        for index in matched:
            bit, _pattern, exclude = entries[index]
            if exclude is None or exclude.search(text) is None:
                mask |= bit
        return mask

    def mask_each(self, role: str, content: str | None) -> int:
        return self._mask_each(role, normalise_text(content).encode("utf-8", "surrogatepass"))

    def _mask_each(self, role: str, text: bytes) -> int:
        mask = 0
        for bit, pattern, exclude in self._by_role.get(role, ()):
            if pattern.search(text) is not None and (exclude is None or exclude.search(text) is None):
                mask |= bit
        return mask


class StageProgram:
    """A ``RuleSet`` prepared for ``StageTally``: which bits feed which counts and stages."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.matcher = MessageMatcher(rules)
        self.anchors = sorted({signal.after for signal in rules.signals if signal.after})
        self.anchor_index = {stage: index for index, stage in enumerate(self.anchors)}
        # a message with any of these bits is direct evidence of the anchor stage
        self.anchor_evidence = [
            sum(
                1 << index
                for index, signal in enumerate(rules.signals)
                if signal.stage in _implying(rules, stage) and signal.after is None and signal.weight > 0
            )
            for stage in self.anchors
        ]
        self.counted = [  # (bit, anchor index or None) of signals counted over every message
            (1 << index, self.anchor_index[signal.after] if signal.after else None)
            for index, signal in enumerate(rules.signals)
        ]
        self.last_user_only = [signal.scope == "last_user_message" for signal in rules.signals]
        self.reads_last_user = any(self.last_user_only)
        self.last_user_bits = sum(1 << index for index, only in enumerate(self.last_user_only) if only)
        # the query writes weights and thresholds as SQL literals, which DuckDB
        # reads as exact decimals; scaled to integers they stay exact (a sum such
        # as 0.6 + 0.3 + 0.1 is exactly 1.0, where floats fall short) and cheap
        literals = [Decimal(repr(signal.weight)) for signal in rules.signals]
        literals += [Decimal(repr(rules.reach_score)), Decimal(repr(rules.reach_score + 1))]
        places = max(-min(literal.as_tuple().exponent, 0) for literal in literals)
        self.scale = 10**places
        self.weights = [int(literal * self.scale) for literal in literals[:-2]]
        self.reach, self.reach_strong = (int(literal * self.scale) for literal in literals[-2:])
        self.stage_signals = {
            stage: [index for index, signal in enumerate(rules.signals) if signal.stage == stage] for stage in STAGES
        }
        # (stage, ((signal index, weight, cap, counts only the last user message), ...)), for scores()
        self.stage_terms = tuple(
            (stage, tuple((index, self.weights[index], rules.signals[index].cap, self.last_user_only[index])
                          for index in indexes))
            for stage, indexes in self.stage_signals.items()
        )
        # a stage is reached when it or a stage implying it (transitively) is reached directly
        self.implying = {stage: tuple(sorted(_implying(rules, stage))) for stage in STAGES}

    def tally(self) -> StageTally:
        return StageTally(self)


class StageTally:
    """One conversation's messages as the rules see them, updated one message at a time.

    ``add`` takes a message's sort key (``event_at``, ``event_id``: the
    query's ``seq`` order), side and signal mask. A message arriving after the
    others updates the counts in place; one arriving out of order is inserted
    where it belongs and the counts are computed again from all messages.
    ``decide`` gives what ``rules_sql`` gives for these messages.
    """

    __slots__ = ("program", "keys", "users", "masks", "counts", "anchor_positions", "last_user_position")

    def __init__(self, program: StageProgram) -> None:
        self.program = program
        self.keys: list[tuple] = []
        self.users: list[bool] = []
        self.masks: list[int] = []
        self._reset()

    def _reset(self) -> None:
        self.counts = [0] * len(self.program.counted)
        self.anchor_positions: list[int | None] = [None] * len(self.program.anchors)
        self.last_user_position: int | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: tuple, is_user: bool, mask: int) -> bool:
        """Add a message; False when ``decide`` cannot have changed (no signal, appended last, and
        no signal reads only the last user message)."""
        if not self.keys or key > self.keys[-1]:
            previous_user = self.last_user_position
            self.keys.append(key)
            self.users.append(is_user)
            self.masks.append(mask)
            self._count(len(self.keys) - 1)
            # a user message without signals changes a last-user-message count only when the
            # user message it replaces as the last one had such a signal
            return bool(mask) or len(self.keys) == 1 or (
                is_user and previous_user is not None
                and bool(self.masks[previous_user] & self.program.last_user_bits))
        position = bisect.bisect_right(self.keys, key)
        self.keys.insert(position, key)
        self.users.insert(position, is_user)
        self.masks.insert(position, mask)
        self._reset()
        for index in range(len(self.keys)):
            self._count(index)
        return True

    def _count(self, position: int) -> None:
        mask = self.masks[position]
        anchors = self.anchor_positions
        if mask:
            for index, evidence in enumerate(self.program.anchor_evidence):
                if anchors[index] is None and mask & evidence:
                    anchors[index] = position
            for index, (bit, anchor) in enumerate(self.program.counted):
                if mask & bit and (anchor is None or (anchors[anchor] is not None and position > anchors[anchor])):
                    self.counts[index] += 1
        if self.users[position]:
            self.last_user_position = position

    def _count_of(self, index: int) -> int:
        if not self.program.last_user_only[index]:
            return self.counts[index]
        # scope last_user_message: only the last user message counts
        position = self.last_user_position
        if position is None:
            return 0
        bit, anchor = self.program.counted[index]
        anchored = anchor is None or (
            self.anchor_positions[anchor] is not None and position > self.anchor_positions[anchor]
        )
        return 1 if self.masks[position] & bit and anchored else 0

    def scores(self) -> dict[str, int]:
        """Each stage's score, scaled by ``program.scale`` (exact)."""
        counts = self.counts
        scores = {}
        for stage, terms in self.program.stage_terms:
            score = 0
            for index, weight, cap, last_user_only in terms:
                count = self._count_of(index) if last_user_only else counts[index]
                score += weight * (count if count <= cap else cap)
            scores[stage] = score
        return scores

    def decide(self) -> dict[str, tuple[bool, float, float]]:
        """``{stage: (reached, confidence, score)}``, as the query decides them; empty without messages."""
        if not self.keys:
            return {}
        program = self.program
        confidence = program.rules.confidence
        scores = self.scores()
        direct = {stage: score >= program.reach for stage, score in scores.items()}
        decided = {}
        for stage in STAGES:
            score = scores[stage]
            reached = any(direct[other] for other in program.implying[stage])
            if score >= program.reach_strong:
                level = confidence["reached_strong"]
            elif direct[stage]:
                level = confidence["reached"]
            elif reached:
                level = confidence["implied"]
            elif score > 0:
                level = confidence["weak_evidence"]
            else:
                level = confidence["no_evidence"]
            decided[stage] = (reached, level, score / program.scale)
        return decided
