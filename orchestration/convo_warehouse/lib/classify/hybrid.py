"""Classify in-memory transcripts (the golden set) with rules, llm or hybrid.

The warehouse path is ``runner.classify_warehouse``; this is the same decision
logic for transcripts that are not in a warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence

from convo_warehouse.lib.classify.evaluate import GoldenConversation
from convo_warehouse.lib.classify.llm import LLMClassifier, LLMSettings, TranscriptItem
from convo_warehouse.lib.classify.rules import RuleSet, classify_messages, load_rules
from convo_warehouse.lib.classify.stages import STAGES


def classify_golden(
    conversations: Sequence[GoldenConversation],
    mode: str = "rules",
    rules: RuleSet | None = None,
    settings: LLMSettings | None = None,
) -> tuple[dict[str, dict[str, bool]], dict[str, int | float]]:
    """Predictions ``{conversation_id: {stage: reached}}`` and counters (llm calls, fallbacks)."""
    rules = rules or load_rules()
    by_rules = classify_messages({c.conversation_id: c.messages for c in conversations}, rules)
    predictions = {cid: {stage: reached for stage, (reached, _) in stages.items()} for cid, stages in by_rules.items()}
    info: dict[str, int | float] = {}
    if mode == "rules":
        return predictions, info
    if mode == "llm":
        candidates = list(conversations)
    else:
        candidates = [
            c for c in conversations
            if min(confidence for _, confidence in by_rules[c.conversation_id].values()) < rules.hybrid_uncertain_below
        ]
    settings = settings or LLMSettings.from_env()
    results = LLMClassifier(settings).classify_many_sync(
        [TranscriptItem(c.conversation_id, "", c.messages) for c in candidates]
    )
    fell_back = 0
    for result in results:
        if result.labels is None:
            fell_back += 1
        else:
            predictions[result.conversation_id] = {stage: result.labels[stage] for stage in STAGES}
    calls = [call for result in results for call in result.calls]
    info.update(
        sent_to_llm=len(candidates),
        llm_calls=len(calls),
        fell_back_to_rules=fell_back,
        cost_usd=round(sum(call.cost_usd for call in calls), 6),
    )
    return predictions, info
