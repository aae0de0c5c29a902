"""Planted patterns: known signals added on top of generated data, for tests of pattern finding.

``tool_then_handoff``: a share of the engaged, non-converted conversations
call a tool no other conversation calls (``check_warranty``) right after the
user's first message and are then handed off to a human. Those
conversations end escalated, so a divergence analysis must rank "called
check_warranty" as the step that most separates failed from successful
conversations.

The events are written to ``<out>/planted/events_planted_<pattern>.jsonl``
(one JSON object per line, canonical event types), timed strictly between
the first ``user_message`` and the conversation's next event. The choice of
conversations depends only on the seed and the conversation id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb

PATTERNS = ("tool_then_handoff",)
PLANTED_TOOL = "check_warranty"
PLANTED_REASON = "complex_issue"


def _chosen(seed: int, conversation_id: str, share: float) -> bool:
    digest = hashlib.sha256(f"plant:{seed}:{conversation_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < share


def _iso(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def plant_pattern(pattern: str, truth_dir, out_dir, seed: int, share: float = 0.4) -> dict:
    """Write the planted events of ``pattern`` for the generated data whose truth is in ``truth_dir``."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown planted pattern {pattern!r}; choose one of: {', '.join(PATTERNS)}")
    truth_files = sorted(Path(truth_dir).glob("truth_*.parquet"))
    if not truth_files:
        raise ValueError(f"no truth files in {truth_dir}: generate with a truth directory first")
    file_list = ", ".join(f"'{path}'" for path in truth_files)
    candidates = duckdb.sql(
        f"""
        with truth as (select conversation_id, event_type, ts_ms from read_parquet([{file_list}])),
        firsts as (
            select
                conversation_id,
                min(case when event_type = 'user_message' then ts_ms end) as first_user_ms,
                count(case when event_type = 'conversion' then 1 end) as conversions
            from truth
            group by conversation_id
        )
        select
            firsts.conversation_id,
            firsts.first_user_ms,
            min(case when truth.ts_ms > firsts.first_user_ms then truth.ts_ms end) as next_ms
        from firsts
        inner join truth on firsts.conversation_id = truth.conversation_id
        where firsts.first_user_ms is not null and firsts.conversions = 0
        group by firsts.conversation_id, firsts.first_user_ms
        order by firsts.conversation_id
        """
    ).fetchall()
    target = Path(out_dir) / "planted" / f"events_planted_{pattern}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    planted = 0
    with open(target, "w", encoding="utf-8") as handle:
        for conversation_id, first_user_ms, next_ms in candidates:
            if not _chosen(seed, conversation_id, share):
                continue
            gap = (next_ms - first_user_ms) if next_ms is not None else 3
            tool_ms = first_user_ms + max(1, gap // 3)
            handoff_ms = first_user_ms + max(2, 2 * gap // 3)
            for suffix, event_type, properties, ms in (
                ("p1", "tool_called", {"tool_name": PLANTED_TOOL}, tool_ms),
                ("p2", "handoff_requested", {"reason": PLANTED_REASON}, handoff_ms),
            ):
                event = {
                    "event_id": f"e-{conversation_id}-{suffix}",
                    "conversation_id": conversation_id,
                    "event_type": event_type,
                    "timestamp": _iso(ms),
                    "properties": properties,
                }
                handle.write(json.dumps(event) + "\n")
            planted += 1
    return {"pattern": pattern, "conversations": planted, "events": 2 * planted, "file": str(target)}
