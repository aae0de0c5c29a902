"""End to end: landing files -> loader -> dbt, compared value by value with the reference.

The reference (``tests/support/reference_contract.py``) re-implements the contract in
plain Python from the contract text. Each test drops files into a temporary
landing folder, runs the real loader (once per load run) and
``dbt build`` of the contract marts (``BUILD_SELECT``), then compares:

* staging: the set of staged event ids and, per event, the winning copy
  (load run, file, row), its parsed UTC timestamp, canonical type, ids, channel;
* quarantine: every rejected row (load run, file, row) and its reason;
* reconciliation: raw = staged + duplicates + quarantined, each number;
* ``marts.fct_conversations``: every column of every conversation
  (floats within 1e-9 relative);
* ``marts.metrics_daily`` / ``metrics_hourly``: v1.2's five sales step rates
  (numerator, denominator, value) for every period and segment;
* ``marts.funnel_summary``: the any-order and v1.2's nested reading of the
  funnels whose stages come from events (sales, engagement);
* v1.3: ``marts.fct_conversation_quality``'s rows and numeric sentiment trend,
  ``marts.segment_comparison`` for every contract proportion metric and
  segment type, and the environment segment of the sales step rates.

A failure lists every disagreement with the conversation id and both values.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.reference_contract import (
    FUTURE_TS,
    INVALID_TYPE,
    MISSING,
    PROPS_NOT_OBJECT,
    UNPARSEABLE_TS,
    UNREADABLE,
    RawStore,
    Reference,
    build_reference,
    EVENT_FUNNELS,
    CONTRACT_PROPORTIONS,
    SEGMENT_ATTRIBUTES,
    SUPPORT_STAGES,
    in_order_where_known,
    median,
    stage_seconds,
    support_stage_reaches,
    conversation_facts,
    conversation_segments,
    conversation_sentiment,
    proportion_contributions,
    segment_comparison,
    funnel_stage_counts,
    funnel_summary_rows,
    sales_step_rates,
    parse_timestamp,
    rating_value,
    read_file,
    stage,
)
from support.warehouse import open_warehouse

REAL_CHATS = Path("/work/shared/data/real-support-chats/chats.jsonl")

CONTRACT_COLUMNS = (
    "conversation_id", "user_id", "channel", "agent_id", "device", "source", "language",
    "environment", "first_event_at", "conversation_date", "initialized", "started_at", "started",
    "last_event_at", "duration_seconds", "engaged", "user_turns", "agent_messages", "tool_calls",
    "fallback_count", "had_handoff", "was_completed", "was_abandoned", "abandoned_at_turn",
    "converted", "feedback_score", "first_response_ms", "satisfaction_score", "rephrase_count",
    "outcome",
)  # fmt: skip
EXTRA_COLUMNS = (
    "initialized_at", "first_user_message_at", "first_agent_message_at", "completed_at",
    "converted_at", "last_user_message",
)  # fmt: skip
STAGED_FIELDS = (
    "conversation_id", "user_id", "event_type", "raw_event_type", "is_known_type", "event_at",
    "channel", "load_id", "source_file", "row_number",
)  # fmt: skip
MAX_LISTED = 60


# --------------------------------------------------------------------------- helpers


def _rows(path: Path, sql: str) -> list[dict[str, Any]]:
    con = open_warehouse(path)  # same configuration as dbt's in-process connection
    try:
        cursor = con.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def _same(warehouse_value: Any, reference_value: Any) -> bool:
    if warehouse_value is None or reference_value is None:
        return warehouse_value is None and reference_value is None
    if isinstance(reference_value, bool) or isinstance(warehouse_value, bool):
        return bool(warehouse_value) == bool(reference_value) and type(warehouse_value) is type(reference_value)
    if isinstance(reference_value, (int, float)) and isinstance(warehouse_value, (int, float)):
        a, b = float(warehouse_value), float(reference_value)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(reference_value, datetime) and isinstance(warehouse_value, datetime):
        return warehouse_value.replace(tzinfo=None) == reference_value
    return warehouse_value == reference_value


def _report(title: str, mismatches: list[str]) -> str:
    shown = "\n  ".join(mismatches[:MAX_LISTED])
    more = f"\n  ... and {len(mismatches) - MAX_LISTED} more" if len(mismatches) > MAX_LISTED else ""
    return f"{title}: {len(mismatches)} mismatch(es)\n  {shown}{more}"


PROBE_DIR = "probes/"  # landing sub-folder of the ambiguity probes, left out of the comparisons


def _compared_file(source_file: str) -> bool:
    return not source_file.startswith(PROBE_DIR)


def _compared_conversation(conversation_id: str) -> bool:
    return not conversation_id.startswith("p-")


def compare_staging(db: Path, ref: Reference) -> list[str]:
    warehouse = {
        row["event_id"]: row
        for row in _rows(db, f"select event_id, {', '.join(STAGED_FIELDS)} from staging.stg_events")
        if _compared_file(row["source_file"])
    }
    reference = {event.event_id: event for event in ref.staging.staged if _compared_file(event.source_file)}
    mismatches = []
    for event_id in sorted(set(reference) - set(warehouse)):
        event = reference[event_id]
        mismatches.append(
            f"stg_events: {event_id!r} staged by the reference only "
            f"(from {event.source_file}:{event.row_number}, load {event.load_id})"
        )
    for event_id in sorted(set(warehouse) - set(reference)):
        row = warehouse[event_id]
        mismatches.append(
            f"stg_events: {event_id!r} staged by the warehouse only "
            f"(from {row['source_file']}:{row['row_number']}, load {row['load_id']})"
        )
    for event_id in sorted(set(warehouse) & set(reference)):
        for name in STAGED_FIELDS:
            expected = getattr(reference[event_id], name)
            actual = warehouse[event_id][name]
            if not _same(actual, expected):
                mismatches.append(
                    f"stg_events[{event_id!r}].{name}: warehouse={actual!r} reference={expected!r}"
                )
    return mismatches


def compare_quarantine(db: Path, ref: Reference) -> list[str]:
    warehouse = Counter(
        (row["load_id"], row["source_file"], row["row_number"], row["reason"])
        for row in _rows(db, "select load_id, source_file, row_number, reason from quarantine.rejected_events")
        if _compared_file(row["source_file"])
    )
    reference = Counter(
        (rejection.load_id, rejection.source_file, rejection.row_number, rejection.reason)
        for rejection in ref.staging.quarantined
        if _compared_file(rejection.source_file)
    )
    mismatches = []
    for key in sorted((warehouse - reference).keys(), key=str):
        mismatches.append(f"rejected_events: warehouse only {key} x{(warehouse - reference)[key]}")
    for key in sorted((reference - warehouse).keys(), key=str):
        mismatches.append(f"rejected_events: reference only {key} x{(reference - warehouse)[key]}")
    by_reason_w = Counter(key[3] for key in warehouse.elements())
    by_reason_r = Counter(key[3] for key in reference.elements())
    for reason in sorted(set(by_reason_w) | set(by_reason_r)):
        if by_reason_w[reason] != by_reason_r[reason]:
            mismatches.append(
                f"quarantine count for {reason!r}: warehouse={by_reason_w[reason]} reference={by_reason_r[reason]}"
            )
    return mismatches


def compare_reconciliation(db: Path, ref: Reference) -> list[str]:
    """Whole-warehouse totals of audit.reconciliation vs its own tables and vs the reference.

    Raw rows are compared in total; staged / duplicate / quarantined / unknown
    counts outside the probe folder (the probes' split is what they probe).
    """
    totals = _rows(
        db,
        "select sum(raw_rows) as raw_rows, sum(staged_rows) as staged_rows, "
        "sum(duplicates_dropped) as duplicates_dropped, sum(quarantined_rows) as quarantined_rows, "
        "sum(unknown_type_rows) as unknown_type_rows from audit.reconciliation",
    )[0]
    tables = _rows(
        db,
        "select (select count(*) from raw.events) as raw_rows, "
        "(select count(*) from staging.stg_events) as staged_rows, "
        "(select count(*) from quarantine.rejected_events) as quarantined_rows, "
        "(select count(*) from staging.stg_events where not is_known_type) as unknown_type_rows",
    )[0]
    mismatches = []
    if totals["raw_rows"] != ref.staging.raw_rows:
        mismatches.append(f"reconciliation.raw_rows: warehouse={totals['raw_rows']} reference={ref.staging.raw_rows}")
    for name in ("raw_rows", "staged_rows", "quarantined_rows", "unknown_type_rows"):
        if totals[name] != tables[name]:
            mismatches.append(f"reconciliation.{name}={totals[name]} but the table holds {tables[name]}")
    if totals["raw_rows"] != totals["staged_rows"] + totals["duplicates_dropped"] + totals["quarantined_rows"]:
        mismatches.append(f"reconciliation does not add up: {totals}")

    per_file = _rows(db, "select source_file, count(*) as n from raw.events group by source_file")
    raw_compared = sum(row["n"] for row in per_file if _compared_file(row["source_file"]))
    staged = _rows(db, "select source_file, is_known_type from staging.stg_events")
    rejected = _rows(db, "select source_file from quarantine.rejected_events")
    warehouse = {
        "raw": raw_compared,
        "staged": sum(_compared_file(row["source_file"]) for row in staged),
        "unknown": sum(_compared_file(row["source_file"]) and not row["is_known_type"] for row in staged),
        "quarantined": sum(_compared_file(row["source_file"]) for row in rejected),
    }
    warehouse["duplicates"] = warehouse["raw"] - warehouse["staged"] - warehouse["quarantined"]
    compared = [row for row in ref.staging.staged if _compared_file(row.source_file)]
    reference = {
        "raw": sum(_compared_file(row.source_file) for row in ref.raw),
        "staged": len(compared),
        "unknown": sum(not event.is_known_type for event in compared),
        "quarantined": sum(_compared_file(row.source_file) for row in ref.staging.quarantined),
        "duplicates": sum(_compared_file(row.source_file) for row in ref.staging.duplicates),
    }
    for name, value in reference.items():
        if warehouse[name] != value:
            mismatches.append(f"{name} rows outside {PROBE_DIR}: warehouse={warehouse[name]} reference={value}")
    return mismatches


def compare_facts(db: Path, ref: Reference) -> list[str]:
    rows = _rows(db, "select * from marts.fct_conversations")
    mismatches = []
    present = set(rows[0]) if rows else set()
    for column in CONTRACT_COLUMNS + EXTRA_COLUMNS:
        if rows and column not in present:
            mismatches.append(f"fct_conversations: column {column!r} is missing")
    if len({row["conversation_id"] for row in rows}) != len(rows):
        mismatches.append("fct_conversations: duplicate conversation_id rows")
    warehouse = {row["conversation_id"]: row for row in rows if _compared_conversation(row["conversation_id"])}
    facts = {cid: row for cid, row in ref.facts.items() if _compared_conversation(cid)}
    for conversation_id in sorted(set(facts) - set(warehouse)):
        mismatches.append(f"fct_conversations: {conversation_id!r} missing from the warehouse")
    for conversation_id in sorted(set(warehouse) - set(facts)):
        mismatches.append(f"fct_conversations: {conversation_id!r} not expected by the reference")
    by_column: Counter = Counter()
    for conversation_id in sorted(set(warehouse) & set(facts)):
        expected_row, actual_row = facts[conversation_id], warehouse[conversation_id]
        for column in CONTRACT_COLUMNS + EXTRA_COLUMNS:
            if column not in actual_row:
                continue
            expected, actual = expected_row[column], actual_row[column]
            if not _same(actual, expected):
                by_column[column] += 1
                mismatches.append(
                    f"fct_conversations[{conversation_id!r}].{column}: "
                    f"warehouse={actual!r} reference={expected!r}"
                )
    if by_column:
        mismatches.insert(0, f"mismatching columns: {dict(by_column)}")
    return mismatches


SALES_METRICS = ("sales_response_rate", "qualification_rate", "booking_rate", "show_rate", "sales_conversion_rate")


def compare_sales_step_rates(db: Path, ref: Reference) -> list[str]:
    """metrics_daily and metrics_hourly rows of the five v1.2 metrics, every period and segment.

    The ambiguity probes are left out of the comparisons; a metric sums whole
    periods, so the periods holding a probe conversation, by the reference's
    reading or by the warehouse's, are left out (the sales edge cases are a
    day earlier)."""
    mismatches = []
    probes = [fact for cid, fact in ref.facts.items() if not _compared_conversation(cid)]
    probes += [row for row in _rows(db, "select conversation_id, conversation_date, first_event_at "
                                        "from marts.fct_conversations") if not _compared_conversation(row["conversation_id"])]
    names = ", ".join(f"'{name}'" for name in SALES_METRICS)
    for table, period, grain in (("metrics_daily", "metric_date", "day"), ("metrics_hourly", "metric_hour", "hour")):
        rows = _rows(db, f"select {period} as period, metric_name, segment_type, segment_value, numerator, "
                         f"denominator, value from marts.{table} where metric_name in ({names})")
        warehouse = {(r["period"], r["metric_name"], r["segment_type"], r["segment_value"]):
                     (r["numerator"], r["denominator"], r["value"]) for r in rows}  # fmt: skip
        expected = sales_step_rates(ref.staging.staged, ref.facts, grain)
        left_out = {
            fact["conversation_date"] if grain == "day"
            else fact["first_event_at"].replace(minute=0, second=0, microsecond=0)
            for fact in probes
        }
        warehouse = {key: value for key, value in warehouse.items() if key[0] not in left_out}
        expected = {key: value for key, value in expected.items() if key[0] not in left_out}
        if not expected:
            mismatches.append(f"{table}: nothing compared (every period holds a probe)")
        for key in sorted(set(expected) - set(warehouse), key=str):
            mismatches.append(f"{table}{key}: missing from the warehouse (reference {expected[key]})")
        for key in sorted(set(warehouse) - set(expected), key=str):
            mismatches.append(f"{table}{key}: not expected by the reference (warehouse {warehouse[key]})")
        for key in sorted(set(warehouse) & set(expected), key=str):
            if not all(_same(a, e) for a, e in zip(warehouse[key], expected[key], strict=True)):
                mismatches.append(f"{table}{key}: warehouse={warehouse[key]} reference={expected[key]}")
    return mismatches


FUNNEL_COLUMNS = ("reached", "reached_in_order", "conversion_rate", "conversion_from_start", "drop_off",
                  "conversion_rate_in_order", "drop_off_in_order")


def compare_funnel_summary(db: Path, ref: Reference) -> list[str]:
    """funnel_summary of the event funnels (sales, engagement), every column of both readings.

    A whole-history mart holds the ambiguity probes too: their stage counts are taken from the
    warehouse's own stages (fct_conversation_stages; their number from fct_conversations), the rest
    from the reference, and every rate is computed by the reference from the summed counts."""
    compared = {cid: fact for cid, fact in ref.facts.items() if _compared_conversation(cid)}
    counts = funnel_stage_counts(ref.staging.staged, compared)
    probe_stages = _rows(db, "select conversation_id, funnel_name, stage, is_reached_in_order "
                             "from marts.fct_conversation_stages")
    for row in probe_stages:
        key = (row["funnel_name"], row["stage"])
        if not _compared_conversation(row["conversation_id"]) and key in counts:
            counts[key][0] += 1
            counts[key][1] += int(row["is_reached_in_order"])
    probes = sum(1 for row in _rows(db, "select conversation_id from marts.fct_conversations")
                 if not _compared_conversation(row["conversation_id"]))
    expected = funnel_summary_rows(counts, len(compared) + probes)
    funnels = ", ".join(f"'{name}'" for name in EVENT_FUNNELS)
    warehouse = {(r["funnel_name"], r["stage"]): r for r in _rows(
        db, f"select funnel_name, stage, {', '.join(FUNNEL_COLUMNS)} from marts.funnel_summary "
            f"where funnel_name in ({funnels})")}  # fmt: skip
    mismatches = []
    for key in sorted(set(expected) | set(warehouse)):
        if key not in warehouse or key not in expected:
            mismatches.append(f"funnel_summary{key}: only in {'the reference' if key in expected else 'the warehouse'}")
            continue
        for column in FUNNEL_COLUMNS:
            if not _same(warehouse[key][column], expected[key][column]):
                mismatches.append(f"funnel_summary{key}.{column}: warehouse={warehouse[key][column]} "
                                  f"reference={expected[key][column]}")
    return mismatches


QUALITY_SENTIMENT_COLUMNS = ("sentiment_messages", "sentiment_start", "sentiment_end", "sentiment_trend")


def lexicon_scores(db: Path) -> dict[str, float]:
    """The offline sentiment model's newest score per user message (classifier output, an input here)."""
    return {row["event_id"]: row["sentiment"] for row in _rows(
        db, "select event_id, sentiment from classification.message_sentiment "
            "qualify row_number() over (partition by event_id order by scored_at desc) = 1")}


def compare_quality_sentiment(db: Path, ref: Reference) -> list[str]:
    """v1.3: fct_conversation_quality's rows (started conversations with a scored user message) and
    their sentiment start, end and numeric trend."""
    expected = {cid: row for cid, row in conversation_sentiment(ref.staging.staged, ref.facts, lexicon_scores(db)).items()
                if _compared_conversation(cid)}
    warehouse = {row["conversation_id"]: row for row in _rows(
        db, f"select conversation_id, {', '.join(QUALITY_SENTIMENT_COLUMNS)} from marts.fct_conversation_quality")
        if _compared_conversation(row["conversation_id"])}
    mismatches = [f"fct_conversation_quality[{cid!r}]: only in {'the reference' if cid in expected else 'the warehouse'}"
                  for cid in sorted(set(expected) ^ set(warehouse))]
    for cid in sorted(set(expected) & set(warehouse)):
        for column in QUALITY_SENTIMENT_COLUMNS:
            if not _same(warehouse[cid][column], expected[cid][column]):
                mismatches.append(f"fct_conversation_quality[{cid!r}].{column}: warehouse={warehouse[cid][column]!r} "
                                  f"reference={expected[cid][column]!r}")
    return mismatches


COMPARISON_COLUMNS = ("numerator", "sample_size", "rate", "ci_low", "ci_high", "rest_rate", "difference_from_rest",
                      "z_score", "is_best")
P_VALUE_COLUMNS = ("unadjusted_p_value", "p_value")


def reference_segment_comparison(db: Path, ref: Reference):
    """The reference's segment_comparison over the whole history. A whole-history mart holds the
    ambiguity probes too: their contributions (numerator and denominator of each metric), segments
    and days are the warehouse's own (metrics_by_conversation, ab_test_exposures), every other
    conversation's the reference's."""
    compared = {cid: fact for cid, fact in ref.facts.items() if _compared_conversation(cid)}
    contributions = proportion_contributions(ref.staging.staged, compared)
    segments = conversation_segments(ref.staging.staged, compared)
    days = {cid: fact["conversation_date"] for cid, fact in compared.items()}
    columns = ", ".join(f"{metric}__numerator, {metric}__denominator" for metric in CONTRACT_PROPORTIONS)
    exposures: dict[str, list[tuple[str, str]]] = {}
    for row in _rows(db, "select conversation_id, test_name, variant from marts.ab_test_exposures "
                         "where variant_count = 1"):
        exposures.setdefault(row["conversation_id"], []).append((f"experiment:{row['test_name']}", row["variant"]))
    for row in _rows(db, f"select conversation_id, metric_date, channel, agent_id, device, source, language, "
                         f"environment, {columns} from marts.metrics_by_conversation"):
        cid = row["conversation_id"]
        if _compared_conversation(cid):
            continue
        contributions[cid] = {metric: (row[f"{metric}__numerator"], row[f"{metric}__denominator"])
                              for metric in CONTRACT_PROPORTIONS}
        segments[cid] = [(name, row[name]) for name in SEGMENT_ATTRIBUTES] + exposures.get(cid, [])
        days[cid] = row["metric_date"]
    return segment_comparison(contributions, segments, days)


def compare_segment_comparison(db: Path, ref: Reference) -> list[str]:
    """v1.3: segment_comparison's rows of the contract's proportion metrics, every column the contract
    names, and the period. The SQL normal CDF is within 1.5e-7 of the exact one, an error the
    adjustment multiplies by up to the family's number of tests: p-values are compared within 2e-7
    times that number."""
    period, expected = reference_segment_comparison(db, ref)
    metrics = ", ".join(f"'{metric}'" for metric in CONTRACT_PROPORTIONS)
    rows = _rows(db, f"select * from marts.segment_comparison where metric_name in ({metrics})")
    warehouse = {(r["metric_name"], r["segment_type"], r["segment_value"]): r for r in rows}
    mismatches = [f"segment_comparison{key}: only in {'the reference' if key in expected else 'the warehouse'}"
                  for key in sorted(set(expected) ^ set(warehouse))]
    periods = {(r["period_start"], r["period_end"]) for r in rows}
    if periods != {period}:
        mismatches.append(f"segment_comparison period: warehouse={periods} reference={period}")
    family_tests = Counter(key[:2] for key, row in expected.items() if row["unadjusted_p_value"] is not None)
    for key in sorted(set(expected) & set(warehouse)):
        actual, want = warehouse[key], expected[key]
        tolerance = 2e-7 * max(1, family_tests[key[:2]])
        for column in COMPARISON_COLUMNS:
            if not _same(actual[column], want[column]):
                mismatches.append(f"segment_comparison{key}.{column}: warehouse={actual[column]!r} reference={want[column]!r}")
        for column in P_VALUE_COLUMNS:
            if (actual[column] is None) != (want[column] is None) or (
                    want[column] is not None and abs(actual[column] - want[column]) > tolerance):
                mismatches.append(f"segment_comparison{key}.{column}: warehouse={actual[column]!r} reference={want[column]!r}")
        near_level = want["p_value"] is not None and abs(want["p_value"] - 0.05) <= tolerance
        if not near_level and actual["is_significant"] != want["is_significant"]:
            mismatches.append(f"segment_comparison{key}.is_significant: warehouse={actual['is_significant']!r} "
                              f"reference={want['is_significant']!r}")
    return mismatches


def classifier_answers(db: Path) -> dict[str, dict[str, tuple[str, str | None]]]:
    """The stage classifier's newest answer per conversation and support stage (llm before rules at
    the same instant), its reached ones: stage -> (classifier, message_event_id). An input: what the
    classifier decides is not in the contract, the time of the message it names is."""
    answers: dict[str, dict[str, tuple[str, str | None]]] = {}
    for row in _rows(db, "select conversation_id, stage, reached, classifier, message_event_id "
                         "from classification.stage_classifications where funnel_name = 'support' "
                         "qualify row_number() over (partition by conversation_id, stage "
                         "order by classified_at desc, classifier = 'llm' desc) = 1"):
        if row["reached"]:
            answers.setdefault(row["conversation_id"], {})[row["stage"]] = (row["classifier"], row["message_event_id"])
    return answers


def reference_support(ref: Reference, db: Path) -> dict[str, dict[str, tuple[str, datetime | None]]]:
    """conversation_id -> the reference's support stages reached: stage -> (source, reached_at)."""
    answers = classifier_answers(db)
    by_conversation: dict[str, list] = {}
    for event in ref.staging.staged:
        by_conversation.setdefault(event.conversation_id, []).append(event)
    return {cid: support_stage_reaches(by_conversation.get(cid, []), fact, answers.get(cid, {}))
            for cid, fact in ref.facts.items() if _compared_conversation(cid)}


def compare_support_funnel(db: Path, ref: Reference) -> list[str]:
    """v1.3: the support funnel, whose classified stages now have times: fct_conversation_stages'
    rows (reached_at, source), funnel_summary's both readings and its medians of the seconds from the
    previous and from the first stage (within 0.5%: read from a histogram), and funnel_stage_daily.
    The probes' stages (whole-history sums) are the warehouse's own; the days holding a probe are
    left out of funnel_stage_daily."""
    support = reference_support(ref, db)
    mismatches = []
    warehouse = {(r["conversation_id"], r["stage"]): (r["reached_at"], r["source"]) for r in _rows(
        db, "select conversation_id, stage, reached_at, source from marts.fct_conversation_stages "
            "where funnel_name = 'support'") if _compared_conversation(r["conversation_id"])}
    expected = {(cid, stage): reach for cid, reaches in support.items() for stage, reach in reaches.items()}
    for key in sorted(set(expected) ^ set(warehouse)):
        mismatches.append(f"fct_conversation_stages{key}: only in {'the reference' if key in expected else 'the warehouse'}")
    for key in sorted(set(expected) & set(warehouse)):
        if not (_same(warehouse[key][0], expected[key][1]) and warehouse[key][1] == expected[key][0]):
            mismatches.append(f"fct_conversation_stages{key}: warehouse={warehouse[key]} reference={expected[key][::-1]}")

    counts = {("support", stage): [0, 0] for stage in SUPPORT_STAGES}
    seconds: dict[str, tuple[list[float], list[float]]] = {stage: ([], []) for stage in SUPPORT_STAGES}
    for reaches in support.values():
        times = {stage: at for stage, (_, at) in reaches.items()}
        in_order = in_order_where_known(SUPPORT_STAGES, times)
        for stage in SUPPORT_STAGES:
            counts[("support", stage)][0] += stage in times
            counts[("support", stage)][1] += in_order[stage]
        for stage, (from_previous, from_first) in stage_seconds(SUPPORT_STAGES, times).items():
            for values, value in zip(seconds[stage], (from_previous, from_first), strict=True):
                if value is not None:
                    values.append(value)
    for row in _rows(db, "select conversation_id, stage, is_reached_in_order, seconds_from_previous_stage, "
                         "seconds_from_first_stage from marts.fct_conversation_stages where funnel_name = 'support'"):
        if not _compared_conversation(row["conversation_id"]):
            counts[("support", row["stage"])][0] += 1
            counts[("support", row["stage"])][1] += int(row["is_reached_in_order"])
            for values, value in zip(seconds[row["stage"]], (row["seconds_from_previous_stage"],
                                                             row["seconds_from_first_stage"]), strict=True):
                if value is not None:
                    values.append(value)
    all_conversations = len(_rows(db, "select conversation_id from marts.fct_conversations"))
    summary = funnel_summary_rows(counts, all_conversations, {"support": SUPPORT_STAGES})
    rows = {r["stage"]: r for r in _rows(
        db, f"select stage, {', '.join(FUNNEL_COLUMNS)}, median_seconds_from_previous_stage, "
            "median_seconds_from_first_stage from marts.funnel_summary where funnel_name = 'support'")}
    for stage in SUPPORT_STAGES:
        for column in FUNNEL_COLUMNS:
            if not _same(rows[stage][column], summary[("support", stage)][column]):
                mismatches.append(f"funnel_summary('support', {stage!r}).{column}: warehouse={rows[stage][column]} "
                                  f"reference={summary[('support', stage)][column]}")
        for column, values in zip(("median_seconds_from_previous_stage", "median_seconds_from_first_stage"),
                                  seconds[stage], strict=True):
            want, got = median(values), rows[stage][column]
            if (want is None) != (got is None) or (want is not None and abs(got - want) > 0.005 * want + 1e-9):
                mismatches.append(f"funnel_summary('support', {stage!r}).{column}: warehouse={got} reference={want}")

    probe_days = {row["conversation_date"] for row in _rows(db, "select conversation_id, conversation_date "
                                                                "from marts.fct_conversations")
                  if not _compared_conversation(row["conversation_id"])}
    daily: dict[tuple, list[int]] = {}
    for cid, reaches in support.items():
        fact = ref.facts[cid]
        if not reaches or fact["conversation_date"] in probe_days:
            continue
        channel = fact["channel"] if fact["channel"] is not None else "unknown"
        in_order = in_order_where_known(SUPPORT_STAGES, {stage: at for stage, (_, at) in reaches.items()})
        for stage in SUPPORT_STAGES:
            totals = daily.setdefault((fact["conversation_date"], channel, stage), [0, 0, 0])
            totals[0] += SUPPORT_STAGES[0] in reaches
            totals[1] += stage in reaches
            totals[2] += in_order[stage]
    shown = {(r["conversation_date"], r["channel"], r["stage"]): [r["conversations"], r["reached"], r["reached_in_order"]]
             for r in _rows(db, "select conversation_date, channel, stage, conversations, reached, reached_in_order "
                                "from marts.funnel_stage_daily where funnel_name = 'support'")
             if r["conversation_date"] not in probe_days}
    for key in sorted(set(daily) | set(shown), key=str):
        if daily.get(key) != shown.get(key):
            mismatches.append(f"funnel_stage_daily('support', {key}): warehouse={shown.get(key)} reference={daily.get(key)}")
    return mismatches


def assert_no_mismatches(title: str, mismatches: list[str]) -> None:
    assert not mismatches, "warehouse disagrees with the reference:\n" + _report(title, mismatches)


def load(warehouse, store: RawStore) -> None:
    """One loader run in the warehouse and the same run in the reference."""
    report = warehouse.load()
    loaded = store.load(warehouse.landing, report.loaded_at)
    assert sorted(report.files_loaded) == sorted(loaded), (report.files_loaded, loaded)


# --------------------------------------------------------------------------- hand-made edge cases

BASE = datetime(2024, 3, 10, 12, 0, 0)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)) / timedelta(milliseconds=1))


def _event(event_id, conversation_id, event_type, at, properties=None, **extra) -> dict:
    record = {
        "event_id": event_id,
        "conversation_id": conversation_id,
        "event_type": event_type,
        "timestamp": _iso(at) if isinstance(at, datetime) else at,
    }
    if properties is not None:
        record["properties"] = properties
    record.update(extra)
    return record


def _conversation(cid: str, start: datetime, script: list[tuple], user: str | None = "u-") -> list[dict]:
    """script: (event_type, seconds after start, properties) -> events with ids cid-e00..."""
    events = []
    for index, (event_type, seconds, properties) in enumerate(script):
        record = _event(f"{cid}-e{index:02d}", cid, event_type, start + timedelta(seconds=seconds), properties)
        if user:
            record["user_id"] = f"{user}{cid}"
        record["channel"] = "web"
        events.append(record)
    return events


def _write_jsonl(path: Path, lines: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    path.write_text(text, encoding="utf-8")


def _edge_case_run_1(landing: Path, now: datetime, base: datetime = BASE) -> None:
    """Every timestamp form, aliases, bad rows of each class, duplicates across files and formats."""
    t = base
    facts = []
    # Short completed conversation: satisfaction 0.9 only; attributes from start / init events.
    facts += _conversation("c-short-complete", t, [
        ("interaction_initialized", 0, {"device": "mobile", "source": "ads", "environment": "production"}),
        ("conversation_started", 5, {"agent_id": "agent-1", "device": "desktop", "language": "en"}),
        ("user_message", 10, {"content": "I need to reset my password"}),
        ("agent_message", 11.5, {"content": "Sure, I can help."}),
        ("user_message", 20, {"content": "thanks", "device": "ignored-not-a-setup-event"}),
        ("agent_message", 21, {"content": "Done."}),
        ("conversation_completed", 22, {"total_turns": 2}),
    ])  # fmt: skip
    # Long completed conversation with mixed ratings, including ignored ones.
    facts += _conversation("c-long-complete", t, [
        ("conversation_started", 0, {"agent_id": 7}),
        *[("user_message", 10 * i + 1, {"content": f"question number {i} about billing"}) for i in range(5)],
        ("agent_message", 0.5, {"content": "early reply before any user message"}),
        ("agent_message", 11, {"content": "answer"}),
        ("feedback_received", 60, {"rating": "POSITIVE"}),
        ("feedback_received", 61, {"rating": 4}),
        ("feedback_received", 62, {"rating": "neutral"}),
        ("feedback_received", 63, {"rating": 6}),
        ("feedback_received", 64, {"rating": 0}),
        ("conversation_completed", 65, None),
    ])  # fmt: skip
    # Handoff with a digit-string rating; 3 turns.
    facts += _conversation("c-handoff", t, [
        ("conversation_started", 0, {}),
        ("user_message", 1, {"content": "my order never arrived"}),
        ("user_message", 2, {"content": "my order never arrived!!"}),
        ("user_message", 3, {"content": "Hello? My ORDER never arrived"}),
        ("handoff_requested", 4, {"reason": "angry"}),
        ("feedback_received", 5, {"rating": "2"}),
    ])  # fmt: skip
    # Eleven turns, never completed: length signal 0 still counts; inferred abandoned.
    facts += _conversation("c-eleven-turns", t, [
        ("conversation_started", 0, {}),
        *[("user_message", i + 1, {"content": f"word{i} other{i}"}) for i in range(11)],
    ])  # fmt: skip
    # Two explicit abandon events: the first one's turn wins.
    facts += _conversation("c-abandon-two", t, [
        ("conversation_started", 0, {}),
        ("user_message", 1, {"content": "hi"}),
        ("conversation_abandoned", 2, {"abandoned_at_turn": 2}),
        ("conversation_abandoned", 3, {"abandoned_at_turn": 5}),
    ])  # fmt: skip
    # Abandon event without the property: user_turns.
    facts += _conversation("c-abandon-noturn", t, [
        ("conversation_started", 0, {}),
        ("user_message", 1, {"content": "a"}),
        ("user_message", 2, {"content": "b"}),
        ("conversation_abandoned", 3, {}),
    ])  # fmt: skip
    # Rephrases: empty word sets never count; punctuation and case do not matter.
    facts += _conversation("c-rephrase", t, [
        ("conversation_started", 0, {}),
        ("user_message", 1, {"content": "How do I reset my password?"}),
        ("user_message", 2, {"content": "how do i RESET the password"}),
        ("user_message", 3, {"content": "?!"}),
        ("user_message", 4, {"content": "?!"}),
        ("user_message", 5, {"content": "it's the user's pass"}),
        ("user_message", 6, {"content": "its the users pass"}),
        ("user_message", 7, {"content": "a b"}),
        ("user_message", 8, {"content": "a b c d"}),
        ("user_message", 8.5, None),
        ("user_message", 9, {"content": "a b c d e"}),
    ])  # fmt: skip
    # First response at the same instant as the first user message.
    facts += _conversation("c-first-response-tie", t, [
        ("conversation_started", 0, {}),
        ("user_message", 2, {"content": "hello"}),
        ("agent_message", 2, {"content": "hi"}),
        ("conversion", 3, {"goal": "demo_booked"}),
        ("handoff_requested", 4, {}),
    ])  # fmt: skip
    # Only initialization and exposure: never started.
    facts += _conversation("c-not-started", t, [
        ("interaction_initialized", 0, {"device": "tablet"}),
        ("experiment_exposure", 1, {"test_name": "t1", "variant": "a"}),
    ])  # fmt: skip
    # Agent message but no user message: engaged false, first_response null.
    facts += _conversation("c-agent-only", t, [
        ("experiment_exposure", 0, {"test_name": "t1", "variant": "b"}),
        ("agent_message", 30, {"content": "anyone there?"}),
    ])  # fmt: skip
    # Attribute ties: same timestamp, ordered by event_id; nulls skipped.
    tie = [
        _event("c-ties-e02", "c-ties", "conversation_started", _iso(t), {"agent_id": "agent-b"}, user_id="user-b"),
        _event("c-ties-e01", "c-ties", "conversation_started", _iso(t), {"agent_id": None, "device": "d1"}),
        _event("c-ties-e03", "c-ties", "user_message", _iso(t + timedelta(seconds=1)), {"content": "x"},
               channel="sms", customer_id="cust-only"),
    ]  # fmt: skip
    facts += tie
    # Aliases of every kind, user_id via customer_id, conversation via session_id.
    alias_events = []
    for index, alias in enumerate([
        "session_start", "message_sent", "agent_response", "message_received", "message_sent",
        "escalation_requested", "feedback_submitted", "completed", "abandoned", "session_end", "ab_exposure",
    ]):  # fmt: skip
        record = {
            "event_id": f"c-alias-e{index:02d}",
            "session_id": "c-alias",
            "customer_id": "cust-alias",
            "event_type": alias,
            "timestamp": _iso(t + timedelta(seconds=index)),
            "properties": {"rating": "negative"} if alias == "feedback_submitted" else {},
        }
        alias_events.append(record)
    alias_events.append(
        {"event_id": "c-alias-e20", "conversation_id": "c-alias", "session_id": "c-other", "user_id": "u1",
         "customer_id": "c1", "event_type": "started", "timestamp": _iso(t - timedelta(seconds=5))}
    )  # fmt: skip
    # Timestamp forms (all the same instant t + 100 s unless noted) and double-encoded properties.
    moment = t + timedelta(seconds=100)
    forms = [
        _iso(moment),
        (moment + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S+05:30"),
        (moment - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S-0800"),
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        moment.strftime("%Y-%m-%dT%H:%M:%S"),
        _ms(moment),
        str(_ms(moment)),
        (moment + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S+01:00"),
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (moment + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S.123+0200"),
        moment.strftime("%Y-%m-%d %H:%M:%S.5Z"),
        (moment - timedelta(hours=3, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S-03:30"),
    ]
    ts_events = [
        _event(f"c-ts-e{index:02d}", "c-ts", "user_message", form, json.dumps({"content": f"form {index}"}))
        for index, form in enumerate(forms)
    ]
    ts_events.append(_event("c-ts-e90", "c-ts", "conversation_started", _iso(t), {"language": "de"}))
    # Bad rows, one problem each.
    future = now + timedelta(days=3)
    bad = [
        {"conversation_id": "c-bad", "event_type": "user_message", "timestamp": _iso(t)},
        _event("", "c-bad", "user_message", _iso(t)),
        _event("bad-conv-empty", "", "user_message", _iso(t)),
        {"event_id": "bad-no-type", "conversation_id": "c-bad", "timestamp": _iso(t)},
        {"event_id": "bad-no-ts", "conversation_id": "c-bad", "event_type": "user_message"},
        _event("bad-empty-ts", "c-bad", "user_message", ""),
        _event("bad-ts-date", "c-bad", "user_message", "2024-03-10"),
        _event("bad-ts-now", "c-bad", "user_message", "now"),
        _event("bad-ts-epoch", "c-bad", "user_message", "epoch"),
        _event("bad-ts-hour", "c-bad", "user_message", "2024-03-10T25:00:00Z"),
        _event("bad-ts-day", "c-bad", "user_message", "2024-02-30T10:00:00Z"),
        _event("bad-future", "c-bad", "user_message", _iso(future)),
        _event("bad-future-ms", "c-bad", "user_message", _ms(future)),
        _event("bad-props-list", "c-bad", "user_message", _iso(t), [1, 2]),
        _event("bad-props-text", "c-bad", "user_message", _iso(t), "not json"),
        _event("bad-props-number", "c-bad", "user_message", _iso(t), 42),
        _event("bad-props-encoded-list", "c-bad", "user_message", _iso(t), "[1, 2]"),
        # A bad copy first, then a good copy: the good copy wins.
        _event("dup-bad-first", "c-dup", "user_message", "yesterday", {"content": "bad copy"}),
        _event("dup-bad-first", "c-dup", "user_message", _iso(t + timedelta(seconds=7)), {"content": "good copy"}),
        # Two good copies in the same file: the first row wins even if its content differs.
        _event("dup-same-file", "c-dup", "user_message", _iso(t + timedelta(seconds=8)), {"content": "first"}),
        _event("dup-same-file", "c-dup", "user_message", _iso(t + timedelta(seconds=9)), {"content": "second"}),
        _event("dup-across", "c-dup", "conversation_started", _iso(t), {"agent_id": "from-a"}),
        # Unknown types: staged but in no metric; a conversation of unknown events only.
        _event("unknown-1", "c-dup", "weird_event", _iso(t + timedelta(seconds=30))),
        _event("unknown-2", "c-unknown-only", "heartbeat", _iso(t)),
    ]
    lines = facts + alias_events + ts_events + ["", "   ", "{not json", "[1, 2, 3]", '"just a string"'] + bad
    _write_jsonl(landing / "a" / "events.jsonl", lines)

    # The same events gzipped under another name: a different file (different bytes).
    gz_lines = [_event("gz-1", "c-gz", "conversation_started", _iso(t), {"source": "email"}),
                _event("gz-2", "c-gz", "user_message", _iso(t + timedelta(seconds=3)), {"content": "gz"}),
                _event("dup-across", "c-dup", "user_message", _iso(t), {"content": "loses: later path"})]  # fmt: skip
    path = landing / "b" / "events.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(line) for line in gz_lines) + "\n\n")

    # CSV: properties as a JSON string column, empty fields are null, a wrong-width row.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["event_id", "conversation_id", "user_id", "event_type", "timestamp", "channel", "properties"])
    writer.writerow(["csv-1", "c-csv", "", "conversation_started", moment.strftime("%Y-%m-%d %H:%M:%S+0000"),
                     "", json.dumps({"device": "kiosk"})])  # fmt: skip
    writer.writerow(["csv-2", "c-csv", "u-csv", "user_message", str(_ms(moment) + 1500), "voice",
                     json.dumps({"content": "line one\nline two"})])  # fmt: skip
    writer.writerow(["csv-3", "c-csv", "", "feedback_received", _iso(moment + timedelta(seconds=2)), "", ""])
    writer.writerow(["csv-4", "c-csv", "", "feedback_received", _iso(moment + timedelta(seconds=3)), "",
                     json.dumps(json.dumps({"rating": "5"}))])  # fmt: skip
    writer.writerow(["csv-5", "c-csv", "", "user_message"])
    writer.writerow(["csv-6", "", "", "user_message", _iso(moment), "", ""])
    writer.writerow(["dup-across", "c-dup", "", "user_message", _iso(t), "", ""])
    (landing / "c").mkdir(parents=True, exist_ok=True)
    (landing / "c" / "events.csv").write_text(buffer.getvalue(), encoding="utf-8")

    # Parquet: timestamp type with a time zone, properties as a struct.
    ts_type = pa.timestamp("us", tz="America/New_York")
    table = pa.table(
        {
            "event_id": ["pq-1", "pq-2", "pq-3"],
            "conversation_id": ["c-pq", "c-pq", "c-pq"],
            "user_id": [None, "u-pq", None],
            "event_type": ["conversation_started", "message_sent", "agent_response"],
            "timestamp": pa.array(
                [(t + timedelta(seconds=seconds)).replace(tzinfo=UTC) for seconds in (0, 5, 7.25)],
                type=ts_type),  # fmt: skip
            "channel": ["web", None, "web"],
            "properties": pa.array(
                [{"agent_id": "pq-agent", "content": None}, {"agent_id": None, "content": "hi"},
                 {"agent_id": None, "content": "hello"}]),  # fmt: skip
        }
    )
    pq.write_table(table, landing / "c" / "struct.parquet")
    # Parquet: int64 epoch milliseconds, properties as a map and as JSON text.
    table = pa.table(
        {
            "event_id": ["pqm-1", "pqm-2", "pqm-3"],
            "session_id": ["c-pqm", "c-pqm", "c-pqm"],
            "event_type": ["conversation_started", "user_message", "feedback_received"],
            "timestamp": pa.array([_ms(t), _ms(t) + 2000, _ms(t) + 4000], type=pa.int64()),
            "properties": pa.array(
                [[("source", "partner")], [("content", "hey")], [("rating", "positive")]],
                type=pa.map_(pa.string(), pa.string())),  # fmt: skip
        }
    )
    pq.write_table(table, landing / "c" / "map.parquet")
    # Parquet: naive timestamp type (UTC), properties as JSON text, one double-encoded.
    table = pa.table(
        {
            "event_id": ["pqn-1", "pqn-2", "pqn-3"],
            "conversation_id": ["c-pqn"] * 3,
            "customer_id": ["cust-pqn"] * 3,
            "event_type": ["started", "message_sent", "feedback_received"],
            "timestamp": pa.array([t, t + timedelta(seconds=1), t + timedelta(seconds=2)], type=pa.timestamp("ms")),
            "properties": [json.dumps({"language": "fr"}), json.dumps(json.dumps({"content": "bonjour"})),
                           json.dumps({"rating": "NEGATIVE"})],
        }
    )  # fmt: skip
    pq.write_table(table, landing / "c" / "naive.parquet")
    # Contract v1.1 names and identifier types, in each format.
    v11 = [
        {"id": "v11-1", "conversation_id": "c-v11", "event_type": "conversation_started", "timestamp": _iso(t),
         "metadata": {"agent_id": "v11-agent"}},
        {"message_id": "v11-2", "conversation_id": "c-v11", "event_type": "message_received",
         "timestamp": _iso(t + timedelta(seconds=1)), "properties": {"sender": "Prospect ", "content": "hi there"}},
        {"event_id": "v11-3", "id": "ignored", "conversation_id": "c-v11", "event_type": "message_received",
         "timestamp": _iso(t + timedelta(seconds=2)), "properties": {"sender": "bot", "content": "hello"}},
        {"event_id": 1101, "conversation_id": "c-v11", "event_type": "meeting_booked",
         "timestamp": _iso(t + timedelta(seconds=3))},
        {"event_id": 1102.0, "conversation_id": 77, "event_type": "user_message",
         "timestamp": _iso(t + timedelta(seconds=4))},
        {"event_id": {"id": 1}, "conversation_id": "c-v11", "event_type": "user_message", "timestamp": _iso(t)},
        {"event_id": "v11-bad-2", "conversation_id": ["c-v11"], "event_type": "user_message", "timestamp": _iso(t)},
        {"event_id": "v11-bad-3", "conversation_id": "c-v11", "user_id": True, "event_type": "user_message",
         "timestamp": _iso(t)},
        {"id": {"n": 4}, "conversation_id": "c-v11", "event_type": "user_message", "timestamp": _iso(t)},
    ]  # fmt: skip
    _write_jsonl(landing / "c" / "v11.jsonl", v11)
    (landing / "c" / "v11.csv").write_text(
        "id,conversation_id,event_type,timestamp,metadata\n"
        f"v11c-1,c-v11c,conversation_started,{_iso(t)},\"{{\"\"device\"\": \"\"web\"\"}}\"\n"
        f"v11c-2,c-v11c,message_received,{_iso(t + timedelta(seconds=1))},\"{{\"\"sender\"\": \"\"lead\"\"}}\"\n",
        encoding="utf-8",
    )
    table = pa.table(
        {
            "message_id": pa.array([2101, 2102, 2103], type=pa.int64()),
            "conversation_id": pa.array(["c-v11p", None, "c-v11p"]),
            "session_id": pa.array([None, "c-v11p", None]),
            "user_id": pa.array([None, None, False]),
            "event_type": ["conversation_started", "user_message", "user_message"],
            "timestamp": pa.array([_ms(t), _ms(t) + 1000, _ms(t) + 2000], type=pa.int64()),
            "metadata": pa.array([{"device": "tablet"}, {"device": None}, {"device": None}]),
        }
    )
    pq.write_table(table, landing / "c" / "v11.parquet")
    # CRLF line endings, with a blank CRLF line; an offset that moves the UTC date.
    day_before = (t - timedelta(days=2)).strftime("%Y-%m-%d")
    crlf = [
        _event("crlf-1", "c-crlf", "conversation_started", f"{day_before}T23:30:00-02:00"),
        _event("crlf-2", "c-crlf", "user_message", f"{day_before}T23:31:00-02:00", {"content": "late night"}),
    ]
    (landing / "d").mkdir(parents=True, exist_ok=True)
    (landing / "d" / "crlf.jsonl").write_bytes(
        ("\r\n".join(json.dumps(line) for line in crlf[:1]) + "\r\n\r\n" + json.dumps(crlf[1]) + "\r\n").encode()
    )
    # Valid but awkward JSON: tab whitespace, non-ASCII, escapes, a long line, a NUL escape.
    nasty = [
        _event("n-0", "c-nasty", "conversation_started", _iso(t)),
        _event("n-2", "c-nasty", "user_message", _iso(t + timedelta(seconds=2)),
               {"content": "Ünïcödé 😊 中文 \"quoted\" back\\slash\ttab\nnewline it's"}),
        _event("n-3", "c-nasty", "user_message", _iso(t + timedelta(seconds=3)), {"content": "long " * 40000}),
        _event("n-4", "c-nasty", "user_message", _iso(t + timedelta(seconds=4)), {"content": "nul\u0000byte"}),
    ]  # fmt: skip
    tab_line = json.dumps(_event("n-1", "c-nasty", "agent_message", _iso(t + timedelta(seconds=1)))).replace(
        ", ", ",\t"
    )
    body = [tab_line.encode()] + [json.dumps(line).encode() for line in nasty]
    (landing / "e").mkdir(parents=True, exist_ok=True)
    (landing / "e" / "nasty.jsonl").write_bytes(b"\n".join(body) + b"\n")
    # Only unusable ratings: feedback_score null, satisfaction without a feedback signal.
    _write_jsonl(landing / "d" / "ratings.jsonl", _conversation("c-bad-ratings", t, [
        ("conversation_started", 0, {}),
        ("user_message", 1, {"content": "x"}),
        ("feedback_received", 2, {"rating": "neutral"}),
        ("feedback_received", 3, {"rating": 9}),
        ("handoff_requested", 4, {}),
    ]))  # fmt: skip
    _sales_cases(landing, t - timedelta(days=1))


def _sales_cases(landing: Path, t: datetime) -> None:
    """v1.2's sales step rates: the in-order chain (started > responded > qualified > booked >
    attended > converted) as the contract words it."""
    sales = "sales"
    cases = []
    # Every stage in order; booked through the meeting_booked alias; converted by stage_reached.
    cases += _conversation("c-sales-nested", t, [
        ("conversation_started", 0, {"agent_id": "sales-bot"}),
        ("agent_message", 1, {"content": "Hi, what brings you here?"}),
        ("user_message", 2, {"content": "pricing for 20 seats"}),
        ("stage_reached", 3, {"funnel": sales, "stage": "qualified"}),
        ("meeting_booked", 4, {}),
        ("stage_reached", 5, {"funnel": sales, "stage": "attended"}),
        ("stage_reached", 6, {"funnel": sales, "stage": "converted"}),
    ])  # fmt: skip
    # booked without qualified: qualified and every later stage are out of order.
    cases += _conversation("c-sales-skip", t, [
        ("conversation_started", 0, {"agent_id": "sales-bot"}),
        ("agent_message", 1, {"content": "Hello"}),
        ("user_message", 2, {"content": "book me"}),
        ("stage_reached", 3, {"funnel": sales, "stage": "booked"}),
        ("stage_reached", 4, {"funnel": sales, "stage": "attended"}),
    ])  # fmt: skip
    # A conversion before attended: converted is reached, not in order. Run 2 brings a late
    # attended event dated before the booking: attended is then out of order too.
    cases += _conversation("c-sales-late", t, [
        ("conversation_started", 0, {"agent_id": "sales-bot"}),
        ("agent_message", 1, {"content": "Hi"}),
        ("user_message", 2, {"content": "demo please"}),
        ("stage_reached", 3, {"funnel": sales, "stage": "qualified"}),
        ("stage_reached", 4, {"funnel": sales, "stage": "booked"}),
        ("conversion", 5, {"goal": "demo_booked"}),
    ])  # fmt: skip
    # Equal times are in order (responded and qualified at the same instant).
    cases += _conversation("c-sales-tie", t, [
        ("conversation_started", 0, {"agent_id": "sales-bot"}),
        ("agent_message", 1, {"content": "Hi"}),
        ("user_message", 2, {"content": "yes"}),
        ("stage_reached", 2, {"funnel": sales, "stage": "qualified"}),
    ])  # fmt: skip
    # The user wrote only before the agent's first message: not responded; a stage_reached
    # sales/responded counts whatever the messages say (on another conversation).
    cases += _conversation("c-sales-user-first", t, [
        ("user_message", 0, {"content": "hello?"}),
        ("agent_message", 1, {"content": "Hi"}),
        ("stage_reached", 2, {"funnel": sales, "stage": "qualified"}),
    ])  # fmt: skip
    cases += _conversation("c-sales-asserted", t, [
        ("conversation_started", 0, {"agent_id": "sales-bot"}),
        ("stage_reached", 1, {"funnel": sales, "stage": "responded"}),
        ("stage_reached", 2, {"funnel": sales, "stage": "qualified"}),
    ])  # fmt: skip
    _write_jsonl(landing / "d" / "sales.jsonl", cases)


def _edge_case_run_2(landing: Path, base: datetime = BASE) -> None:
    """A late file (old timestamps), a re-delivered copy under a new path, a changed file."""
    t = base
    late = [
        # Days older than everything: moves c-short-complete's first_event_at and day.
        _event("late-1", "c-short-complete", "experiment_exposure", _iso(t - timedelta(days=3)), {"test_name": "t"}),
        _event("late-2", "c-eleven-turns", "conversation_completed", _iso(t - timedelta(days=2))),
        # Re-delivery of a run-1 event with other content: run 1's copy wins despite an earlier path.
        _event("c-handoff-e01", "c-handoff", "user_message", _iso(t), {"content": "changed"}),
        # The clock: the newest staged event decides inferred abandonment. It is an
        # unknown type: "the newest staged event timestamp" (marts.md) counts it,
        # though unknown types take part in no metric (newest_from_known_only=True
        # in the reference gives the other reading).
        _event("clock-1", "c-clock", "conversation_started", _iso(t + timedelta(hours=1))),
        _event("clock-2", "c-clock", "user_message", _iso(t + timedelta(hours=1)), {"content": "hi"}),
        _event("clock-3", "c-clock", "heartbeat", _iso(t + timedelta(hours=1, seconds=1))),
        # Exactly 30 minutes of silence before the newest event: not abandoned.
        _event("silent-30-1", "c-silent-30", "user_message", _iso(t + timedelta(minutes=30, seconds=1)), {"content": "a"}),
        # 30 minutes and 1 ms: abandoned.
        _event("silent-31-1", "c-silent-31", "user_message",
               _iso(t + timedelta(minutes=30, seconds=0, milliseconds=999)), {"content": "a"}),  # fmt: skip
        # A late sales stage of run 1's c-sales-late (a day before base), dated before its booking.
        _event("sales-late-1", "c-sales-late", "stage_reached",
               _iso(t - timedelta(days=1) + timedelta(seconds=3, milliseconds=500)),
               {"funnel": "sales", "stage": "attended"}, channel="web"),
    ]
    _write_jsonl(landing / "0-late" / "late.jsonl", late)
    # Same bytes as run 1's gzip file under a new path: not loaded again.
    shutil.copy(landing / "b" / "events.jsonl.gz", landing / "b" / "copy-of-events.jsonl.gz")
    # Changed content under the same path: loaded as a new file; old rows are duplicates.
    csv_path = landing / "c" / "events.csv"
    csv_path.write_text(
        csv_path.read_text(encoding="utf-8")
        + f"csv-7,c-csv,,conversion,{_iso(t + timedelta(minutes=2))},,{{}}\n",
        encoding="utf-8",
    )


# --------------------------------------------------------------------------- reference self-checks (no dbt)


def test_reference_timestamp_rules():
    expected = datetime(2024, 1, 1, 10, 0, 0)
    for form in (
        "2024-01-01T10:00:00Z", "2024-01-01 10:00:00", "2024-01-01T10:00:00", "2024-01-01T15:30:00+05:30",
        "2024-01-01T02:00:00-0800", "2024-01-01 11:00:00+01:00", 1704103200000, "1704103200000",
    ):  # fmt: skip
        assert parse_timestamp(form) == expected, form
    assert parse_timestamp("2024-01-01T10:00:00.123Z") == expected + timedelta(milliseconds=123)
    for bad in ("2024-01-01", "now", "epoch", "2024-13-01T00:00:00Z", "", True, None, "10:00:00"):
        assert parse_timestamp(bad) is None, bad


def test_reference_ratings_and_satisfaction_by_hand():
    assert [rating_value(value) for value in ("Positive", "NEGATIVE", 1, "5", 3, "meh", 0, 6, None)] == [
        1.0, 0.0, 0.0, 1.0, 0.5, None, None, None, None,
    ]  # fmt: skip
    ref = stage([])
    assert ref.raw_rows == 0


def test_reference_facts_by_hand(tmp_path: Path):
    """Hand-computed values for the edge-case conversations (checks the reference itself)."""
    _edge_case_run_1(tmp_path, datetime(2030, 1, 1))
    store = RawStore()
    store.load(tmp_path, datetime(2030, 1, 1))
    ref = build_reference(store)
    facts = ref.facts
    short = facts["c-short-complete"]
    assert (short["agent_id"], short["device"], short["source"], short["language"]) == (
        "agent-1", "mobile", "ads", "en",
    )  # fmt: skip
    assert short["satisfaction_score"] == pytest.approx(0.9)
    assert short["first_response_ms"] == pytest.approx(1500)
    assert short["duration_seconds"] == pytest.approx(17)
    assert short["outcome"] == "completed"
    long = facts["c-long-complete"]
    # ratings POSITIVE (1), 4 (0.75); completed with 5 turns adds nothing; length 0.8 - 0.2.
    assert long["feedback_score"] == pytest.approx(0.875)
    assert long["satisfaction_score"] == pytest.approx((1 + 0.75 + 0.6) / 3)
    assert long["first_response_ms"] == pytest.approx(10_000)
    assert long["agent_id"] == "7"
    handoff = facts["c-handoff"]
    assert handoff["satisfaction_score"] == pytest.approx((0.25 + 0.3 + 0.8) / 3)
    assert handoff["rephrase_count"] == 2 and handoff["outcome"] == "escalated"
    eleven = facts["c-eleven-turns"]
    assert eleven["satisfaction_score"] == pytest.approx(0.05)
    # The newest event of run 1 is c-csv's at +103 s: 92 s of silence is not abandonment.
    assert not eleven["was_abandoned"] and eleven["abandoned_at_turn"] is None
    assert eleven["outcome"] == "in_progress"
    assert facts["c-abandon-two"]["abandoned_at_turn"] == 2
    assert facts["c-abandon-noturn"]["abandoned_at_turn"] == 2
    # {how,do,i,reset,my,password} vs {how,do,i,reset,the,password} = 5/7 yes; "?!" pairs are empty;
    # "it's the user's pass" vs "its the users pass" = 2/6 no; {a,b} vs {a,b,c,d} = .5 yes; the
    # message without content breaks the last pair.
    assert facts["c-rephrase"]["rephrase_count"] == 2
    assert facts["c-rephrase"]["last_user_message"] == "a b c d e"
    tie = facts["c-first-response-tie"]
    assert tie["first_response_ms"] == 0 and tie["outcome"] == "converted"
    not_started = facts["c-not-started"]
    assert not_started["started_at"] is None and not_started["satisfaction_score"] is None
    assert not_started["outcome"] == "not_engaged" and not_started["duration_seconds"] is None
    assert facts["c-agent-only"]["first_response_ms"] is None
    ties = facts["c-ties"]
    assert (ties["agent_id"], ties["device"], ties["user_id"], ties["channel"]) == ("agent-b", "d1", "user-b", "sms")
    alias = facts["c-alias"]
    assert alias["user_id"] == "u1" and alias["was_completed"] and alias["had_handoff"]
    assert alias["feedback_score"] == 0.0 and alias["user_turns"] == 2 and alias["agent_messages"] == 2
    ts = facts["c-ts"]
    assert ts["user_turns"] == 12
    assert ts["last_event_at"] == BASE + timedelta(seconds=100, milliseconds=500)
    assert "c-unknown-only" not in facts and "c-bad" not in facts
    assert facts["c-csv"]["feedback_score"] == 1.0 and facts["c-csv"]["device"] == "kiosk"
    assert facts["c-pq"]["agent_id"] == "pq-agent" and facts["c-pq"]["first_response_ms"] == 2250
    assert facts["c-pqm"]["source"] == "partner" and facts["c-pqm"]["feedback_score"] == 1.0
    winners = {event.event_id: event for event in ref.staging.staged}
    assert winners["dup-bad-first"].properties == {"content": "good copy"}
    assert winners["dup-same-file"].properties == {"content": "first"}
    assert winners["dup-across"].source_file == "a/events.jsonl"
    assert ref.staging.reasons == {
        MISSING: 7, UNPARSEABLE_TS: 6, FUTURE_TS: 2, PROPS_NOT_OBJECT: 4, UNREADABLE: 4, INVALID_TYPE: 5,
    }  # fmt: skip
    # Contract v1.1 names and identifier types (c/v11.*): 4 JSONL rows and 1 Parquet row are invalid.
    v11 = {event.event_id: event for event in ref.staging.staged if event.source_file.startswith("c/v11")}
    assert sorted(v11) == ["1101", "1102", "2101", "2102", "v11-1", "v11-2", "v11-3", "v11c-1", "v11c-2"]
    assert [v11[key].event_type for key in ("v11-2", "v11-3", "v11c-2", "1101")] == [
        "user_message", "agent_message", "user_message", "stage_reached",
    ]  # fmt: skip
    assert v11["1101"].properties == {"funnel": "sales", "stage": "booked"}
    assert v11["1102"].conversation_id == "77" and v11["v11-1"].properties == {"agent_id": "v11-agent"}
    # Blank lines are not rows.
    assert all(text.strip() for _, _, _, text in read_file(tmp_path / "a" / "events.jsonl"))


def test_reference_one_conversation_clock():
    """Inferred abandonment needs strictly more than 30 minutes."""
    from support.reference_contract import Event

    def event(event_type: str, at: datetime) -> Event:
        return Event("e" + event_type, "c", None, event_type, event_type, True, at, None, {}, 1, "f", 1)

    last = datetime(2024, 1, 1, 10, 0)
    events = [event("user_message", last)]
    assert not conversation_facts(events, last + timedelta(minutes=30))["was_abandoned"]
    assert conversation_facts(events, last + timedelta(minutes=30, milliseconds=1))["was_abandoned"]


# --------------------------------------------------------------------------- end to end


# The contract marts compared here (metrics for the v1.2 sales step rates).
BUILD_SELECT = ("+fct_conversations +reconciliation +metrics_daily +metrics_hourly +funnel_summary"
                " +fct_conversation_quality +segment_comparison +metrics_by_conversation +ab_test_exposures"
                " +fct_conversation_stages +funnel_stage_daily")


@dataclass
class Built:
    """One warehouse holding every scenario, built once for the module (dbt parses once)."""

    path: Path
    store: RawStore
    ref: Reference
    truth: Path
    probes: list
    real_chats: bool
    after_run_1: dict[str, list[str]]  # mismatches of the build after load run 1
    timings: dict[str, float]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dbt_target_dir: Path) -> Built:
    """Generated data + real chats + hand-made edge cases + probes, in two load runs.

    Run 1: the generator's files (its late file held back), the real chats if
    present, edge-case run 1, the probes; dbt build; compared. Run 2: the
    generator's late file and edge-case run 2 (late events, re-delivery, a
    copied file, a changed file); dbt build again (the incremental path).
    Edge cases sit a little after the current time (allowed up to 1 day ahead)
    so that their clock conversation holds the newest event of the warehouse.
    """
    from support.warehouse import Warehouse
    from convo_warehouse.lib.generate import generate_events

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        timings[step] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    root = tmp_path_factory.mktemp("reference-e2e")
    warehouse = Warehouse(root / "warehouse", dbt_target_dir)
    now = datetime.now(UTC).replace(tzinfo=None)
    base = now.replace(second=0, microsecond=0) + timedelta(hours=2)

    generated = warehouse.landing / "generated"
    truth = root / "truth"
    summary = generate_events(generated, conversations=2000, days=5, seed=20240310, progress=False, truth_dir=truth)
    lap("generate")
    late_file = generated / summary["late_file"] if summary.get("late_file") else None
    held_back = root / "held-back-late.jsonl"
    if late_file is not None and late_file.exists():
        shutil.move(late_file, held_back)
    real_chats = REAL_CHATS.exists()
    if real_chats:  # copied at runtime only; never committed
        (warehouse.landing / "real").mkdir()
        shutil.copy(REAL_CHATS, warehouse.landing / "real" / "chats.jsonl")
    _edge_case_run_1(warehouse.landing / "edge", now, base)
    probes = _probes(base)
    probe_lines = [line for probe in probes for line in probe.lines]
    exponent = f"{_ms(base) // 1000}e3"  # base is a whole minute: exact, written with an exponent
    probe_lines = [json.dumps(line).replace('"__EXP__"', exponent) if isinstance(line, dict) else line
                   for line in probe_lines]  # fmt: skip
    _write_jsonl(warehouse.landing / PROBE_DIR / "probes.jsonl", probe_lines)
    bom = _completed("p-bom", _event("p40-1", "p-bom", "user_message", _iso(base), {"content": "bom"}), base)
    (warehouse.landing / PROBE_DIR / "bom.jsonl").write_bytes(
        b"\xef\xbb\xbf" + "\n".join(json.dumps(line) for line in bom).encode() + b"\n"
    )
    float_ms = pa.table({
        "event_id": ["p41-1", "p41-2", "p41-3"], "conversation_id": ["p-fms"] * 3,
        "event_type": ["conversation_started", "user_message", "conversation_completed"],
        "timestamp": pa.array([float(_ms(base)), float(_ms(base) + 1000), float(_ms(base) + 2000)], type=pa.float64()),
    })  # fmt: skip
    pq.write_table(float_ms, warehouse.landing / PROBE_DIR / "float_ms.parquet")
    probes.append(Probe("parquet_float_epoch_ms", "A float64 Parquet timestamp column (pandas int + NaN)", [],
                        "select count(*) from staging.stg_events where event_id like 'p41-%'",
                        {"accepted ('a number is epoch milliseconds')": 3, "rejected": 0}))
    bad_utf8 = _completed("p-utf8", _event("p42-1", "p-utf8", "user_message", _iso(base), {"content": "@@"}), base)
    (warehouse.landing / PROBE_DIR / "bad_utf8.jsonl").write_bytes(
        "\n".join(json.dumps(line) for line in bad_utf8).replace("@@", "\udcff").encode("utf-8", "surrogateescape")
        + b"\n"
    )
    probes.append(Probe("invalid_utf8_line", "A complete JSONL line with an invalid UTF-8 byte in a string", [],
                        _staged("p42-1"), {"unreadable line": 0, "read with a replacement character": 1}))
    probes.append(Probe("utf8_bom", "A UTF-8 byte-order mark before the first JSONL line", [], _staged("p40-1"),
                        {"first line unreadable": 0, "BOM skipped": 1}))

    store = RawStore()
    load(warehouse, store)
    lap("load 1")
    warehouse.build(BUILD_SELECT)
    lap("dbt build 1")
    first = build_reference(store)
    after_run_1 = {
        "staging": compare_staging(warehouse.path, first),
        "quarantine": compare_quarantine(warehouse.path, first),
        "fct_conversations": compare_facts(warehouse.path, first),
        "sales step rates": compare_sales_step_rates(warehouse.path, first),
        "funnel_summary": compare_funnel_summary(warehouse.path, first),
        "fct_conversation_quality": compare_quality_sentiment(warehouse.path, first),
        "segment_comparison": compare_segment_comparison(warehouse.path, first),
        "support funnel": compare_support_funnel(warehouse.path, first),
    }
    lap("reference + compare 1")
    if held_back.exists():
        shutil.move(held_back, late_file)
    _edge_case_run_2(warehouse.landing / "edge", base)
    load(warehouse, store)
    lap("load 2")
    warehouse.build(BUILD_SELECT)
    lap("dbt build 2")
    ref = build_reference(store)
    lap("reference 2")
    return Built(warehouse.path, store, ref, truth, probes, real_chats, after_run_1, timings)


def test_first_build_matches_reference(built: Built, capsys):
    """After load run 1 and the first build (before the late files)."""
    with capsys.disabled():
        print(f"\nreference e2e timings (s): {built.timings}")
    problems = [_report(title, mismatches) for title, mismatches in built.after_run_1.items() if mismatches]
    assert not problems, "after the first run, the warehouse disagrees with the reference:\n" + "\n".join(problems)


def test_staging_matches_reference(built: Built):
    assert_no_mismatches("staging.stg_events", compare_staging(built.path, built.ref))


def test_quarantine_matches_reference(built: Built):
    assert_no_mismatches("quarantine.rejected_events", compare_quarantine(built.path, built.ref))


def test_the_events_long_text_is_stored_with_zstd(built: Built):
    """The properties JSON and message text of the parsed events use zstd, not DuckDB's dictionary + FSST
    (base_events_parsed's contract; docs/staging.md#what-is-stored). The raw rows are zstd Parquet
    (tests/landing/test_raw_archive.py)."""
    con = open_warehouse(built.path)
    try:
        for table, column in (("staging.base_events_parsed", "properties"), ("staging.base_events_parsed", "content")):
            methods = {method for (method,) in con.execute(
                f"select distinct compression from pragma_storage_info('{table}') "
                "where column_name = ? and segment_type = 'VARCHAR'", [column]).fetchall()}
            # (a segment too small to compress stays Uncompressed)
            assert "ZSTD" in methods and methods <= {"ZSTD", "Uncompressed"}, (
                f"{table}.{column} is stored with {sorted(methods)}")
    finally:
        con.close()


def test_reconciliation_matches_reference(built: Built):
    assert_no_mismatches("audit.reconciliation", compare_reconciliation(built.path, built.ref))


def test_fct_conversations_matches_reference(built: Built):
    assert_no_mismatches("marts.fct_conversations", compare_facts(built.path, built.ref))


def test_sales_step_rates_match_reference(built: Built):
    """v1.2: the five sales step rates in metrics_daily and metrics_hourly, every segment, after the
    incremental second build (the late attended event re-reads c-sales-late's day)."""
    assert_no_mismatches("sales step rates", compare_sales_step_rates(built.path, built.ref))
    expected = sales_step_rates(built.ref.staging.staged, built.ref.facts)
    days = {fact["conversation_date"] for cid, fact in built.ref.facts.items() if cid.startswith("c-sales-")}
    assert len(days) == 1 and not days & {f["conversation_date"] for c, f in built.ref.facts.items()
                                          if not _compared_conversation(c)}, "the sales cases must be compared"
    for metric in SALES_METRICS:  # the comparison covers real counts, not only zeros
        assert sum(n for (_, name, kind, _), (n, _, _) in expected.items() if name == metric and kind == "all") > 0
    assert any(kind.startswith("experiment:") for (_, _, kind, _) in expected)


def test_funnel_summary_matches_reference(built: Built):
    """v1.2: funnel_summary's both readings of the sales and engagement funnels after the
    incremental second build (summed from its daily partials), every value; the sales cases
    make the readings differ (skipped and late stages)."""
    assert_no_mismatches("funnel_summary", compare_funnel_summary(built.path, built.ref))
    rows = {(r["funnel_name"], r["stage"]): r for r in _rows(
        built.path, "select funnel_name, stage, reached, reached_in_order from marts.funnel_summary")}
    assert any(row["reached_in_order"] < row["reached"] for key, row in rows.items() if key[0] == "sales")
    assert all(rows[(funnel, stage)]["reached"] > 0 for funnel, stages in EVENT_FUNNELS.items() for stage in stages)


def test_quality_sentiment_matches_reference(built: Built):
    """v1.3: fct_conversation_quality has exactly the started conversations with a scored user message,
    and sentiment_start / _end / _trend (a number) equal the reference's, for one, two and more
    scored messages, after the incremental second build."""
    assert_no_mismatches("fct_conversation_quality", compare_quality_sentiment(built.path, built.ref))
    counts = {row["sentiment_messages"] for row in _rows(
        built.path, "select sentiment_messages from marts.fct_conversation_quality")}
    assert {1, 2} <= counts and max(counts) >= 6, counts


def test_support_funnel_times_match_reference(built: Built):
    """v1.3: every classified support stage has the time of the message the classifier names (the
    rules classifier runs in the build), so the support funnel's in-order counts, its medians and
    funnel_stage_daily compare stage times; checked after the incremental second build."""
    assert_no_mismatches("support funnel", compare_support_funnel(built.path, built.ref))
    support = reference_support(built.ref, built.path)
    classified = [at for reaches in support.values() for source, at in reaches.values() if source == "rules"]
    assert len(classified) > 1000 and all(at is not None for at in classified)
    rows = {r["stage"]: r for r in _rows(built.path, "select stage, reached, reached_in_order, "
                                                     "median_seconds_from_first_stage from marts.funnel_summary "
                                                     "where funnel_name = 'support'")}
    assert rows["resolved"]["median_seconds_from_first_stage"] > 0
    # times make the in-order reading bite: conversations whose classified stages are all reached,
    # one of them later than the next
    late = [cid for cid, reaches in support.items()
            if all(stage in reaches for stage in SUPPORT_STAGES)
            and not in_order_where_known(SUPPORT_STAGES, {s: at for s, (_, at) in reaches.items()})["resolved"]]
    assert late, "no conversation reached every support stage with two of them out of order"


def test_segment_comparison_matches_reference(built: Built):
    """v1.3: every contract proportion metric by every segment type (environment and the experiments
    included) over the whole history, after the incremental second build: sums, Wilson interval,
    rest, z-test, Benjamini-Hochberg p-values, significance and the best value (lower is better for
    abandonment, handoff, rephrase)."""
    assert_no_mismatches("segment_comparison", compare_segment_comparison(built.path, built.ref))
    _, expected = reference_segment_comparison(built.path, built.ref)
    assert {metric for metric, _, _ in expected} == set(CONTRACT_PROPORTIONS)
    assert {"environment", "channel"} <= {segment_type for _, segment_type, _ in expected}
    assert any(row["is_significant"] for row in expected.values())
    assert any(row["p_value"] is not None and row["unadjusted_p_value"] < 0.05 <= row["p_value"]
               for row in expected.values()), "no value significant only before the adjustment"
    best_low = [key for key, row in expected.items() if key[0] == "abandonment_rate" and row["is_best"]]
    assert best_low and all(expected[key]["rate"] <= min(row["rate"] for k, row in expected.items()
                                                          if k[:2] == key[:2] and row["sample_size"] >= 30)
                            for key in best_low)


def test_scenarios_are_present(built: Built):
    """The comparison is only as good as its data: every scenario reached the marts."""
    facts = built.ref.facts
    assert sum(bool(re.fullmatch(r"c-\d+-\d+", cid)) for cid in facts) >= 2000 * 0.95
    for cid in ("c-short-complete", "c-alias", "c-ts", "c-csv", "c-pq", "c-pqm", "c-silent-30", "c-silent-31"):
        assert cid in facts, cid
    assert facts["c-silent-31"]["was_abandoned"] and not facts["c-silent-30"]["was_abandoned"]
    assert facts["c-eleven-turns"]["was_completed"]  # the late completion arrived in run 2
    reasons = built.ref.staging.reasons
    assert all(reasons[reason] > 0 for reason in (MISSING, UNPARSEABLE_TS, FUTURE_TS, PROPS_NOT_OBJECT, UNREADABLE))
    assert len(built.ref.staging.duplicates) > 100
    assert {event.load_id for event in built.ref.staging.staged} == {1, 2}
    if built.real_chats:
        assert sum(cid.startswith("gs-") for cid in facts) == 200


def test_reference_timestamps_match_generator_truth(built: Built):
    """The reference's own parsing agrees with the instants the generator intended."""
    truth_files = sorted(built.truth.rglob("*.parquet"))
    assert truth_files, "the generator wrote no truth files"
    table = pa.concat_tables([pq.read_table(path) for path in truth_files]).to_pylist()
    staged = {event.event_id: event for event in built.ref.staging.staged}
    wrong, checked = [], 0
    for row in table:
        event = staged.get(row["event_id"])
        if event is None:
            continue
        checked += 1
        if _ms_exact(event.event_at) != row["ts_ms"] or event.event_type != row["event_type"]:
            wrong.append((row["event_id"], event.event_at, event.event_type, row["ts_ms"], row["event_type"]))
    assert checked >= len(table) * 0.95
    assert not wrong, f"reference timestamps differ from the generator's truth: {wrong[:10]}"


def _ms_exact(moment: datetime) -> float:
    return (moment - datetime(1970, 1, 1)) / timedelta(milliseconds=1)


# --------------------------------------------------------------------------- ambiguity probes


@dataclass
class Probe:
    """A case the contract leaves open: the warehouse must take one of the readings.

    ``readings`` maps a label to the value observed under that reading (or a
    predicate); the first label is the reference's reading.
    """

    name: str
    question: str
    lines: list
    sql: str
    readings: dict[str, Any]


def _completed(cid: str, first: dict, base: datetime) -> list:
    """``first`` plus a started / completed pair so the probe never counts as abandoned."""
    t = base
    return [
        first,
        _event(f"{cid}-start", cid, "conversation_started", _iso(t - timedelta(seconds=30))),
        _event(f"{cid}-done", cid, "conversation_completed", _iso(t + timedelta(minutes=2))),
    ]


def _staged(event_id: str) -> str:
    return f"select count(*) from staging.stg_events where event_id = '{event_id}'"


def _fact(cid: str, column: str) -> str:
    return f"select {column} from marts.fct_conversations where conversation_id = '{cid}'"


def _probes(base: datetime = BASE) -> list[Probe]:
    t = base
    ts = _iso(t)
    day, minute = t.strftime("%Y-%m-%d"), t.strftime("%Y-%m-%dT%H:%M")

    def ev(event_id, cid, event_type, at=ts, properties=None, **extra):
        return _event(event_id, cid, event_type, at, properties, **extra)

    def near(value):
        return lambda actual: actual is not None and abs(float(actual) - value) < 1e-6

    return [
        Probe(
            "unknown_only_conversation",
            "Does a conversation with only unknown-type events get a fct_conversations row?",
            [ev("p2-1", "p-unknown-only", "mystery")],
            "select count(*) from marts.fct_conversations where conversation_id = 'p-unknown-only'",
            {"no row (unknown types in no metric)": 0, "a row": 1},
        ),
        Probe(
            "unknown_type_first_event_at",
            "Does an earlier unknown-type event set first_event_at?",
            _completed("p-unknown-first", ev("p3-1", "p-unknown-first", "mystery", _iso(t - timedelta(hours=1))), t),
            _fact("p-unknown-first", "first_event_at"),
            {"known types only": t - timedelta(seconds=30), "all staged events": t - timedelta(hours=1)},
        ),
        Probe(
            "epoch_ms_fraction_number",
            "A JSON number with a fraction (1710072000000.5): epoch ms, or unparseable?",
            _completed("p-frac", ev("p4-1", "p-frac", "user_message", _ms(t) + 0.5, {"content": "x"}), t),
            _staged("p4-1"),
            {"accepted ('a number is epoch milliseconds')": 1, "rejected": 0},
        ),
        Probe(
            "epoch_ms_string_fraction",
            "A string '1710072000000.5': only 'a string of digits' is epoch ms",
            _completed("p-sfrac", ev("p5-1", "p-sfrac", "user_message", f"{_ms(t)}.5", {"content": "x"}), t),
            _staged("p5-1"),
            {"rejected": 0, "accepted": 1},
        ),
        Probe(
            "event_type_case",
            "Is 'User_Message' the canonical user_message (case-insensitive) or unknown?",
            _completed("p-case", ev("p6-1", "p-case", "User_Message", properties={"content": "x"}), t),
            _fact("p-case", "user_turns"),
            {"exact match: unknown": 0, "case-insensitive": 1},
        ),
        Probe(
            "event_type_whitespace",
            "Is ' user_message ' (padded) canonical or unknown?",
            _completed("p-pad", ev("p7-1", "p-pad", " user_message ", properties={"content": "x"}), t),
            _fact("p-pad", "user_turns"),
            {"exact match: unknown": 0, "trimmed": 1},
        ),
        Probe(
            "last_user_message_without_content",
            "last_user_message when the last user_message has no content",
            _completed("p-lastmsg", ev("p8-1", "p-lastmsg", "user_message", properties={"content": "earlier"}), t)
            + [ev("p8-2", "p-lastmsg", "user_message", _iso(t + timedelta(seconds=5)))],
            _fact("p-lastmsg", "last_user_message"),
            {"content of the last user_message (null)": None, "last non-null content": "earlier"},
        ),
        Probe(
            "sub_millisecond_duration",
            "duration_seconds with microsecond timestamps: exact, or cut to milliseconds?",
            [ev("p9-1", "p-usec", "conversation_started", f"{minute}:00.000000Z"),
             ev("p9-2", "p-usec", "conversation_completed", f"{minute}:00.123456Z")],
            _fact("p-usec", "duration_seconds"),
            {"exact (0.123456)": near(0.123456), "milliseconds (0.123)": near(0.123)},
        ),
        Probe(
            "sub_millisecond_first_response",
            "first_response_ms with microsecond timestamps (0.9 ms apart)",
            [ev("p10-1", "p-usec-fr", "user_message", f"{minute}:00.000100Z", {"content": "x"}),
             ev("p10-2", "p-usec-fr", "agent_message", f"{minute}:00.001000Z"),
             ev("p10-3", "p-usec-fr", "conversation_completed", f"{minute}:01Z")],
            _fact("p-usec-fr", "first_response_ms"),
            {"exact (0.9)": near(0.9), "whole ms, truncated (0)": near(0), "ms boundaries (1)": near(1)},
        ),
        Probe(
            "fraction_over_6_digits",
            "'.1234567' (7 fraction digits): truncated, rounded or rejected?",
            _completed("p-7dig", ev("p11-1", "p-7dig", "user_message", f"{minute}:00.1234567Z"), t),
            "select event_at from staging.stg_events where event_id = 'p11-1'",
            {"truncated to µs": t + timedelta(microseconds=123456),
             "rounded to µs": t + timedelta(microseconds=123457),
             "rejected": lambda actual: actual is None},
        ),
        Probe(
            "iso_without_seconds",
            "'2024-03-10T12:00Z' (no seconds): the contract lists seconds + optional fraction",
            _completed("p-nosec", ev("p12-1", "p-nosec", "user_message", f"{minute}Z"), t),
            _staged("p12-1"),
            {"rejected": 0, "accepted": 1},
        ),
        Probe(
            "iso_lowercase_t_z",
            "'2024-03-10t12:00:00z' (lower-case t and z)",
            _completed("p-lower", ev("p13-1", "p-lower", "user_message", f"{day}t{t:%H:%M}:00z"), t),
            _staged("p13-1"),
            {"rejected": 0, "accepted": 1},
        ),
        Probe(
            "offset_hours_only",
            "'2024-03-10T12:00:00+05' (offset without minutes)",
            _completed("p-hh", ev("p14-1", "p-hh", "user_message", f"{minute}:00+05"), t),
            _staged("p14-1"),
            {"rejected": 0, "accepted": 1},
        ),
        Probe(
            "timestamp_padded",
            "' 2024-03-10T12:00:00Z ' (surrounding spaces)",
            _completed("p-tspad", ev("p15-1", "p-tspad", "user_message", f" {minute}:00Z "), t),
            _staged("p15-1"),
            {"rejected": 0, "accepted (trimmed)": 1},
        ),
        Probe(
            "whitespace_required_field",
            "event_id '   ' (only spaces): missing, or a value?",
            _completed("p-wsid", ev("   ", "p-wsid", "user_message"), t),
            "select count(*) from staging.stg_events where event_id = '   '",
            {"a value (only the empty string is missing)": 1, "missing": 0},
        ),
        Probe(
            "empty_conversation_id_with_session_id",
            "conversation_id '' and session_id 's': use session_id, or missing?",
            [_event("p17-1", "", "user_message", ts, None, session_id="p-sess"),
             _event("p17-2", "p-sess", "conversation_completed", ts)],
            _fact("p-sess", "user_turns"),
            {"empty is missing, session_id used": 1, "rejected as missing": 0},
        ),
        Probe(
            "empty_user_id_with_customer_id",
            "user_id '' and customer_id 'cust': which user_id?",
            _completed("p-uid", ev("p18-1", "p-uid", "user_message", user_id="", customer_id="cust"), t),
            _fact("p-uid", "user_id"),
            {"'' (user_id present)": "", "customer_id": "cust", "null": None},
        ),
        Probe(
            "empty_channel",
            "channel '' in JSON: a value, or null (then the next event's channel)?",
            _completed("p-chan", ev("p19-1", "p-chan", "user_message", _iso(t - timedelta(minutes=1)), channel=""), t)
            + [ev("p19-2", "p-chan", "user_message", channel="sms")],
            _fact("p-chan", "channel"),
            {"'' is a value": "", "'' is null": "sms"},
        ),
        Probe(
            "rating_float",
            "rating 4.0 (a JSON float): an integer rating, or ignored?",
            _completed("p-r40", ev("p20-1", "p-r40", "feedback_received", properties={"rating": 4.0}), t),
            _fact("p-r40", "feedback_score"),
            {"ignored (not an integer)": None, "0.75": near(0.75)},
        ),
        Probe(
            "rating_leading_zero",
            "rating '04' (a digit string of 4)",
            _completed("p-r04", ev("p21-1", "p-r04", "feedback_received", properties={"rating": "04"}), t),
            _fact("p-r04", "feedback_score"),
            {"0.75": near(0.75), "ignored": None},
        ),
        Probe(
            "rating_padded",
            "rating ' 5' / 'positive ' (padded)",
            _completed("p-rpad", ev("p22-1", "p-rpad", "feedback_received", properties={"rating": " 5"}), t)
            + [ev("p22-2", "p-rpad", "feedback_received", properties={"rating": "positive "})],
            _fact("p-rpad", "feedback_score"),
            {"ignored": None, "trimmed": near(1.0)},
        ),
        Probe(
            "first_abandon_without_turn",
            "First abandon event has no abandoned_at_turn, a later one has 5",
            [ev("p23-0", "p-ab", "conversation_started"),
             ev("p23-1", "p-ab", "user_message", _iso(t + timedelta(seconds=1)), {"content": "x"}),
             ev("p23-2", "p-ab", "conversation_abandoned", _iso(t + timedelta(seconds=2))),
             ev("p23-3", "p-ab", "conversation_abandoned", _iso(t + timedelta(seconds=3)), {"abandoned_at_turn": 5})],
            _fact("p-ab", "abandoned_at_turn"),
            {"first event's (absent -> user_turns)": 1, "first non-null": 5},
        ),
        Probe(
            "properties_empty_string",
            "properties '' in JSONL: not an object, or null?",
            _completed("p-pempty", ev("p24-1", "p-pempty", "user_message", properties=""), t),
            _staged("p24-1"),
            {"rejected (not a JSON object)": 0, "null properties": 1},
        ),
        Probe(
            "json_line_not_object",
            "A JSONL line that is valid JSON but not an object ([1, 2])",
            ["[1, 2]"],
            "select string_agg(reason, ',') from quarantine.rejected_events where raw_record like '[1, 2]%'",
            {"unreadable_line": "unreadable_line", "missing_required_field": "missing_required_field"},
        ),
        Probe(
            "missing_and_bad_timestamp",
            "A row missing event_id with an unparseable timestamp: which reason?",
            [{"conversation_id": "p-two", "event_type": "user_message", "timestamp": "soon"}],
            "select string_agg(reason, ',') from quarantine.rejected_events where event_timestamp = 'soon'",
            {"missing_required_field": "missing_required_field", "unparseable_timestamp": "unparseable_timestamp"},
        ),
        Probe(
            "bad_timestamp_and_properties",
            "A row with an unparseable timestamp and properties not an object: which reason?",
            [ev("p27-1", "p-two", "user_message", "later", [1])],
            "select string_agg(reason, ',') from quarantine.rejected_events where event_id = 'p27-1'",
            {"unparseable_timestamp": "unparseable_timestamp", "properties_not_object": "properties_not_object"},
        ),
        Probe(
            "rephrase_tie_order",
            "Two user messages at the same instant: consecutive pairs ordered by timestamp, then event_id?",
            _completed("p-rtie", ev("p28-2", "p-rtie", "user_message", properties={"content": "reset password now"}), t)
            + [ev("p28-1", "p-rtie", "user_message", properties={"content": "completely different words"}),
               ev("p28-3", "p-rtie", "user_message", _iso(t + timedelta(seconds=1)),
                  {"content": "reset password now please"})],
            _fact("p-rtie", "rephrase_count"),
            {"event_id breaks ties (1)": 1, "other order (0)": 0},
        ),
        Probe(
            "last_user_message_tie",
            "Two last user messages at the same instant: the later event_id's content?",
            _completed("p-ltie", ev("p29-2", "p-ltie", "user_message", properties={"content": "higher id"}), t)
            + [ev("p29-1", "p-ltie", "user_message", properties={"content": "lower id"})],
            _fact("p-ltie", "last_user_message"),
            {"max (event_at, event_id)": "higher id", "other": "lower id"},
        ),
        Probe(
            "properties_json_null_text",
            "properties given as the string 'null' (JSON text of null)",
            _completed("p-pnull", ev("p30-1", "p-pnull", "user_message", properties="null"), t),
            _staged("p30-1"),
            {"rejected (not an object)": 0, "null properties": 1},
        ),
        Probe(
            "abandoned_at_turn_text",
            "abandoned_at_turn given as the string '3'",
            [ev("p31-0", "p-abtxt", "conversation_started"),
             ev("p31-1", "p-abtxt", "conversation_abandoned", _iso(t + timedelta(seconds=1)),
                {"abandoned_at_turn": "3"})],
            _fact("p-abtxt", "abandoned_at_turn"),
            {"3 (cast)": 3, "user_turns (0)": 0},
        ),
        Probe(
            "space_before_offset",
            "'... 12:00:00 +01:00' (a space before the offset)",
            _completed("p-spoff", ev("p32-1", "p-spoff", "user_message", f"{minute}:00 +01:00"), t),
            _staged("p32-1"),
            {"rejected": 0, "accepted": 1},
        ),
        Probe(
            "comma_fraction",
            "'...12:00:00,5Z' (ISO-8601 comma decimal)",
            _completed("p-comma", ev("p33-1", "p-comma", "user_message", f"{minute}:00,5Z"), t),
            _staged("p33-1"),
            {"rejected": 0, "accepted": 1},
        ),
        Probe(
            "rating_digit_string_over_5",
            "rating '6' or 6: ignored (out of 1..5)",
            _completed("p-r6", ev("p34-1", "p-r6", "feedback_received", properties={"rating": "6"}), t),
            _fact("p-r6", "feedback_score"),
            {"ignored": None},
        ),
        Probe(
            "rephrase_non_ascii",
            "Word runs are [a-z0-9']: 'café crème' vs 'cafe creme' share only 'caf', 'cr', 'me'",
            _completed("p-uni", ev("p35-1", "p-uni", "user_message", properties={"content": "Café Crème"}), t)
            + [ev("p35-2", "p-uni", "user_message", _iso(t + timedelta(seconds=1)), {"content": "cafe creme"})],
            _fact("p-uni", "rephrase_count"),
            {"{caf,cr,me} vs {cafe,creme}: 0": 0, "unicode-aware: 1": 1},
        ),
        Probe(
            "unknown_type_attributes",
            "An earlier unknown-type event carries channel/user_id: does it count for attributes?",
            _completed("p-uattr", ev("p36-1", "p-uattr", "mystery", _iso(t - timedelta(hours=1)),
                                     channel="from-unknown", user_id="u-unknown"), t)
            + [ev("p36-2", "p-uattr", "user_message", channel="from-known", user_id="u-known")],
            _fact("p-uattr", "channel"),
            {"known types only": "from-known", "all staged events": "from-unknown"},
        ),
        Probe(
            "epoch_ms_integral_float_number",
            "A JSON number 1710072000000.0 (as pandas writes int columns with NaN)",
            _completed("p-fint", ev("p37-1", "p-fint", "user_message", float(_ms(t)), {"content": "x"}), t),
            _staged("p37-1"),
            {"accepted ('a number is epoch milliseconds')": 1, "rejected": 0},
        ),
        Probe(
            "epoch_ms_exponent_number",
            "A JSON number in exponent form (1710072000e3)",
            _completed("p-fexp", ev("p38-1", "p-fexp", "user_message", "__EXP__", {"content": "x"}), t),
            _staged("p38-1"),
            {"accepted ('a number is epoch milliseconds')": 1, "rejected": 0},
        ),
        Probe(
            "duplicate_json_keys",
            "A JSON object with the same key twice (event_type first 'user_message', then 'agent_message')",
            ['{"event_id": "p39-1", "conversation_id": "p-dupkey", "event_type": "user_message", '
             '"event_type": "agent_message", "timestamp": "' + ts + '"}']
            + _completed("p-dupkey", ev("p39-0", "p-dupkey", "conversation_started"), t)[1:],
            "select event_type from staging.stg_events where event_id = 'p39-1'",
            {"last key wins (Python json)": "agent_message", "first key wins": "user_message",
             "rejected": lambda actual: actual is None},
        ),
    ]  # fmt: skip


def _matches(actual: Any, expected: Any) -> bool:
    if callable(expected):
        return bool(expected(actual))
    return _same(actual, expected)


def reference_database(ref: Reference) -> duckdb.DuckDBPyConnection:
    """The reference's staging, quarantine and facts as DuckDB tables named like the warehouse's,
    so a probe's SQL can be asked of both."""
    con = duckdb.connect()
    staged = pa.Table.from_pylist(
        [{"event_id": e.event_id, "event_at": e.event_at, "source_file": e.source_file,
          "event_type": e.event_type, "is_known_type": e.is_known_type} for e in ref.staging.staged]
    )  # fmt: skip
    rejected = pa.Table.from_pylist(
        [{"reason": r.reason, "source_file": r.source_file,
          "raw_record": r.row.raw_text if r.row else None,
          "event_timestamp": _text_or_none((r.row.record or {}).get("timestamp")) if r.row else None,
          "event_id": _text_or_none((r.row.record or {}).get("event_id")) if r.row else None}
         for r in ref.staging.quarantined]
    )  # fmt: skip
    facts = pa.Table.from_pylist(list(ref.facts.values()))
    for schema, name, table in (
        ("staging", "stg_events", staged),
        ("quarantine", "rejected_events", rejected),
        ("marts", "fct_conversations", facts),
    ):
        con.execute(f"create schema if not exists {schema}")
        con.register("incoming", table)
        con.execute(f"create table {schema}.{name} as select * from incoming")
        con.unregister("incoming")
    return con


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def test_ambiguity_probes(built: Built, capsys):
    """Where the contract is open, record which reading the warehouse takes.

    Each probe's SQL is asked of the warehouse and of the reference (loaded
    into DuckDB under the same table names): the reference must give the
    probe's first reading (so the labels are honest), and the warehouse must
    give one of the readings. The table of choices is printed for the docs.
    """
    reference = reference_database(built.ref)
    choices, unmatched, mislabelled = [], [], []
    for probe in built.probes:
        rows = _rows(built.path, probe.sql)
        actual = next(iter(rows[0].values())) if rows else None
        ref_rows = reference.execute(probe.sql).fetchall()
        ref_value = ref_rows[0][0] if ref_rows else None
        reference_label, reference_reading = next(iter(probe.readings.items()))
        if not _matches(ref_value, reference_reading):
            mislabelled.append(f"{probe.name}: reference gives {ref_value!r}, labelled {reference_label!r}")
        chosen = [label for label, expected in probe.readings.items() if _matches(actual, expected)]
        flag = "" if reference_label in chosen else "   <-- differs from the reference"
        choices.append(f"{probe.name}: warehouse={actual!r} -> {chosen or 'NONE'}{flag}")
        if not chosen:
            unmatched.append(f"{probe.name} ({probe.question}): warehouse={actual!r}, readings={probe.readings}")
    reference.close()
    with capsys.disabled():
        print("\nambiguity probes (warehouse choice; first reading = reference's):\n  " + "\n  ".join(choices))
    assert not mislabelled, "probe labels disagree with the reference:\n" + "\n".join(mislabelled)
    assert not unmatched, "warehouse takes none of the readings:\n" + "\n".join(unmatched)
