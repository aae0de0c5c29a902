"""The live stage tally (Python, RE2 bindings) decides exactly what the batch query (DuckDB SQL) decides.

The rules exist once (``stage_rules.yml``); they are evaluated by two
engines: ``rules_sql`` over whole transcripts in the warehouse, and
``StageTally`` message by message in the collector. These tests feed both
every *prefix* of thousands of transcripts (what the live state reports after
each message), in arrival orders that include late messages, and require the
same reached flag and confidence for every stage. The message the batch names
for a stage (``reached_seq``, whose time is the stage's ``reached_at``, contract
v1.3) is the one after which the live tally, fed in time order, first says
the stage is reached.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from convo_warehouse.lib.classify.rules import (
    StageProgram,
    classify_relation,
    load_rules,
    normalise_text,
)
from convo_warehouse.lib.classify.stages import STAGES

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
REAL_CHATS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real-support-chats" / "chats.jsonl"

# A rules file using what the shipped one does not: scope last_user_message,
# cap above 1, weights that only add up exactly as decimals (0.6 + 0.3 + 0.1),
# a negative weight, an `after` on an implied stage, non-ASCII patterns.
FEATURES_RULES = r"""
reach_score: 1.0
stages:
  greeted:
    signals:
      - {name: hello, role: agent, weight: 0.6, patterns: ['\bhello\b', 'olá']}
      - {name: welcome, role: agent, weight: 0.3, patterns: ['\bwelcome\b']}
      - {name: hi, role: agent, weight: 0.1, patterns: ['\bhi\b'], exclude: ['\bhi there\b']}
  problem_identified:
    implied_by: [solution_proposed]
    signals:
      - {name: asks, role: agent, weight: 0.4, cap: 3, patterns: ['\?']}
  solution_proposed:
    implied_by: [resolved]
    signals:
      - {name: try, role: agent, patterns: ['\btry\b', '^restart']}
  solution_accepted:
    signals:
      - {name: ok, role: user, after: problem_identified, patterns: ['\bok\b', 'ça marche']}
  resolved:
    signals:
      - {name: works, role: user, scope: last_user_message, weight: 2.0, patterns: ['\bworks\b'], exclude: ['\bnot\b']}
      - {name: broken, role: user, after: solution_accepted, weight: -1.5, cap: 2, patterns: ['broken']}
      - {name: thanks, role: user, after: resolved, weight: 0.5, patterns: ['thank']}
"""

FRAGMENTS = [
    "hello", "Hello!", "hi", "hi there", "welcome", "olá", "OLÁ", "İ see", "İSTANBUL", "ok", "OK", "ça marche",
    "try restarting", "restart it", "please try again", "works", "it works now", "not works", "broken",
    "still broken", "thank you", "thanks", "?", "is it right?", "what is your order number?", "let me check",
    "I understand your issue", "I have refunded it", "got it, thanks", "that’s all", "it won’t sync",
    "sorry to hear that", "you can reset it", "done", "all set", "not working", "\n", "—", "🙂", "#NAME#",
    "ΑΣ", "Kelvin", "straße", "", "yes please", "I’ll try", "you should be all set",
]


def _transcript_sources() -> dict[str, list[tuple[str, str]]]:
    """conversation id -> [(role, content), ...] in time order, from every source available."""
    transcripts: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(GOLDEN.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            transcripts[f"{path.stem}/{item['conversation_id']}"] = [
                ("user" if message["role"] == "user" else "agent", message["content"]) for message in item["messages"]
            ]
    if REAL_CHATS.exists():
        events = [json.loads(line) for line in REAL_CHATS.read_text().splitlines()]
        events.sort(key=lambda event: (event["timestamp"], event["event_id"]))
        for event in events:
            if event["event_type"] in ("user_message", "agent_message"):
                transcripts.setdefault(f"real/{event['conversation_id']}", []).append(
                    ("user" if event["event_type"] == "user_message" else "agent",
                     (event.get("properties") or {}).get("content") or "")
                )
    generator = random.Random(29)
    for number in range(600):
        transcripts[f"fuzz/{number}"] = [
            (generator.choice(("user", "agent")),
             " ".join(generator.choice(FRAGMENTS) for _ in range(generator.randint(0, 4))))
            for _ in range(generator.randint(1, 12))
        ]
    return transcripts


def _sql_decisions(rules, rows: list[tuple[str, int, str, str]], seqs: dict | None = None) -> dict[str, dict[str, tuple[bool, float]]]:
    """The batch query's (reached, confidence) per transcript and stage; ``seqs`` (if given) gets
    each reached stage's reached_seq."""
    con = duckdb.connect()
    try:
        columns = list(zip(*rows, strict=True))
        messages = pa.table({"conversation_id": pa.array(columns[0], pa.string()),
                             "seq": pa.array(columns[1], pa.int32()),
                             "role": pa.array(columns[2], pa.string()),
                             "content": pa.array(columns[3], pa.string())})
        con.register("messages", messages)
        decided: dict[str, dict[str, tuple[bool, float]]] = {}
        for conversation_id, stage, reached, confidence, _score, seq in classify_relation(con, "messages", rules).fetchall():
            decided.setdefault(conversation_id, {})[stage] = (bool(reached), float(confidence))
            # a stage is reached exactly when the batch names the message that shows it
            assert (seq is not None) == bool(reached), (conversation_id, stage, seq)
            if seqs is not None and reached:
                seqs[(conversation_id, stage)] = seq
        return decided
    finally:
        con.close()


def _compare_every_prefix(rules, transcripts: dict[str, list[tuple[str, str]]], shuffle_seed: int | None) -> int:
    """Feed each transcript to a tally in arrival order; compare after every message. Returns prefixes compared."""
    program = StageProgram(rules)
    generator = random.Random(shuffle_seed)
    rows, live = [], {}
    first_reached: dict[tuple[str, str], int] = {}  # (conversation, stage) -> messages when live first said reached
    for conversation_id, messages in transcripts.items():
        keyed = [(f"2026-01-01T00:{position // 60:02d}:{position % 60:02d}", f"e{position:04d}", role, content)
                 for position, (role, content) in enumerate(messages)]
        arrival = list(keyed)
        if shuffle_seed is not None:
            # late messages: a few swapped with an earlier neighbour
            for index in range(1, len(arrival)):
                if generator.random() < 0.3:
                    arrival[index - 1], arrival[index] = arrival[index], arrival[index - 1]
        tally = program.tally()
        previous = None
        for count, (event_at, event_id, role, content) in enumerate(arrival, start=1):
            mask = program.matcher.mask(role, content)
            # the one-pass RE2 set gives what searching signal by signal gives
            assert mask == program.matcher.mask_each(role, content), (role, content)
            may_change = tally.add((event_at, event_id), role == "user", mask)
            decided = tally.decide()
            # add() says False only when decide() cannot have changed (the live state skips it then)
            assert may_change or decided == previous, (conversation_id, count)
            previous = decided
            prefix_id = f"{conversation_id}#{count}"
            live[prefix_id] = {stage: (reached, confidence) for stage, (reached, confidence, _) in decided.items()}
            for stage, (reached, _, _) in decided.items():
                if reached:
                    first_reached.setdefault((conversation_id, stage), count)
            for seq, (_, _, arrived_role, arrived_content) in enumerate(sorted(arrival[:count]), start=1):
                rows.append((prefix_id, seq, arrived_role, arrived_content))
    seqs: dict[tuple[str, str], int] = {}
    batch = _sql_decisions(rules, rows, seqs)
    differences = [(prefix_id, live[prefix_id], batch.get(prefix_id)) for prefix_id in live
                   if live[prefix_id] != batch.get(prefix_id)]
    assert not differences, f"{len(differences)} prefixes differ, e.g. {differences[:3]}"
    if shuffle_seed is None:  # arrival is time order: the live tally's first reach is the batch's message
        named = {(prefix_id, stage): seq for (prefix_id, stage), seq in seqs.items()}
        wrong = [(prefix_id, stage, seq, first_reached.get((prefix_id.rsplit("#", 1)[0], stage)))
                 for (prefix_id, stage), seq in named.items()
                 if seq != first_reached.get((prefix_id.rsplit("#", 1)[0], stage))]
        assert not wrong, f"{len(wrong)} stages named another message, e.g. {wrong[:3]}"
        assert len(named) > 1000
    return len(live)


def test_shipped_rules_agree_on_every_prefix_of_every_transcript():
    transcripts = _transcript_sources()
    compared = _compare_every_prefix(load_rules(), transcripts, shuffle_seed=None)
    assert compared > 3_000


def test_shipped_rules_agree_when_messages_arrive_out_of_order():
    transcripts = _transcript_sources()
    compared = _compare_every_prefix(load_rules(), transcripts, shuffle_seed=7)
    assert compared > 3_000


def test_every_rules_feature_agrees(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(FEATURES_RULES)
    rules = load_rules(path)
    assert {signal.scope for signal in rules.signals} == {"all", "last_user_message"}
    generator = random.Random(3)
    transcripts = {
        f"features/{number}": [
            (generator.choice(("user", "agent")),
             " ".join(generator.choice(FRAGMENTS) for _ in range(generator.randint(0, 3))))
            for _ in range(generator.randint(1, 10))
        ]
        for number in range(1500)
    }
    _compare_every_prefix(rules, transcripts, shuffle_seed=11)
    # in time order: the message each stage is reached at, with a negative weight that can take a
    # stage back, a score over the last user message only, and an `after` on an implied stage
    _compare_every_prefix(rules, transcripts, shuffle_seed=None)


def test_decimal_weights_reach_exactly_at_the_threshold(tmp_path):
    # 0.6 + 0.3 + 0.1 is 0.9999999999999999 in floating point, exactly 1.0 for the query
    path = tmp_path / "rules.yml"
    path.write_text(FEATURES_RULES)
    program = StageProgram(load_rules(path))
    tally = program.tally()
    tally.add(("t1", "e1"), False, program.matcher.mask("agent", "hello, welcome! hi"))
    assert tally.decide()["greeted"][0] is True
    assert _sql_decisions(program.rules, [("c", 1, "agent", "hello, welcome! hi")])["c"]["greeted"][0] is True


def test_no_messages_no_stages():
    program = StageProgram(load_rules())
    assert program.tally().decide() == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("İSTANBUL", "istanbul"),            # DuckDB lowers U+0130 to a plain i
    ("It’s OK", "it's ok"),
    (None, ""),
])
def test_text_is_normalised_as_the_query_does(text, expected):
    con = duckdb.connect()
    sql_value = con.execute("select lower(replace(coalesce(?, ''), '’', ''''))", [text]).fetchone()[0]
    assert normalise_text(text) == sql_value == expected


def test_stages_are_the_contract_stages():
    program = StageProgram(load_rules())
    tally = program.tally()
    tally.add(("t", "e"), False, program.matcher.mask("agent", "Hello!"))
    assert set(tally.decide()) == set(STAGES)


def test_a_message_the_rule_set_cannot_answer_is_searched_signal_by_signal():
    # RE2's set answers "no match" when its DFA runs out of memory: the combined pattern confirms it
    program = StageProgram(load_rules())
    matcher = program.matcher

    class OutOfMemory:
        def Match(self, text):  # noqa: N802 - the name of RE2's set method
            return None

    for role, patterns in list(matcher._sets.items()):
        matcher._sets[role] = (OutOfMemory(), patterns[1])
    for role, content in [("user", "I want to talk to a human, this is useless"), ("agent", "Hello! How can I help?"),
                          ("user", "ok"), ("agent", "")]:
        assert matcher.mask(role, content) == matcher.mask_each(role, content)
    assert matcher.mask("agent", "Hello! How can I help?") != 0
