"""Tests of the synthetic event generator (convo_warehouse.lib.generate).

The files are read back here with plain Python readers (json, csv, pyarrow),
independently of the warehouse loader, and checked against what the
generator promises: determinism, counts, formats, the experiment assignment
rule, every bad-row class, the fallback incident, and timestamps that keep
their instant whatever form they are written in.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from convo_warehouse.lib.assignment import assign_variant
from convo_warehouse.lib.generate import BAD_CLASSES, EXPERIMENTS, generate_events

END = "2026-03-10"
NOW = dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.timezone.utc)  # "today" is END, half elapsed
N = 1500
DAYS = 5


def _gen(path, seed=11, **kw):
    kw.setdefault("end_date", END)
    kw.setdefault("now", NOW)
    return generate_events(path, conversations=kw.pop("n", N), days=kw.pop("days", DAYS), seed=seed,
                           progress=False, **kw)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    summary = _gen(root / "landing", truth_dir=root / "truth")
    return root / "landing", root / "truth", summary


def _parse_ts(value):
    """Reference parser for the contract's timestamp forms -> epoch ms, or None if unparseable."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return round(value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not isinstance(value, str) or "T" not in value and " " not in value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return round(parsed.timestamp() * 1000)


def read_rows(landing: Path) -> tuple[list[dict], dict[str, int]]:
    """Every raw row of every file as a dict, plus counts of unreadable lines per kind."""
    rows: list[dict] = []
    unreadable = Counter()
    for path in sorted(landing.rglob("*")):
        if path.is_dir():
            continue
        name = path.name
        if name.endswith(".parquet"):
            for r in pq.read_table(path).to_pylist():
                r["_file"] = str(path)
                rows.append(r)
        elif name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    if not line.strip():
                        unreadable["blank"] += 1
                        continue
                    try:
                        r = _v1_0_names(json.loads(line))
                    except json.JSONDecodeError:
                        unreadable["bad_json"] += 1
                        continue
                    r["_file"] = str(path)
                    rows.append(r)
        elif name.endswith(".csv"):
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                for values in reader:
                    if len(values) != len(header):
                        unreadable["csv_columns"] += 1
                        continue
                    r = {k: (v if v != "" else None) for k, v in zip(header, values)}
                    r["_file"] = str(path)
                    rows.append(r)
        else:
            raise AssertionError(f"unexpected file in landing folder: {path}")
    return rows, dict(unreadable)


def _v1_0_names(r: dict) -> dict:
    """Contract v1.1 field names (id, message_id, metadata) read as v1's; canonical names win."""
    for alias, canonical in (("id", "event_id"), ("message_id", "event_id"), ("metadata", "properties")):
        value = r.pop(alias, None)
        if r.get(canonical) in (None, "") and value not in (None, ""):
            r[canonical] = value
    return r


def _props(r):
    p = r.get("properties")
    if isinstance(p, str):
        try:
            p = json.loads(p)
        except json.JSONDecodeError:
            return None
        if isinstance(p, str):  # double-encoded
            try:
                p = json.loads(p)
            except json.JSONDecodeError:
                return None
    return p if isinstance(p, dict) else None


def clean_events(rows, limit_ms):
    """Valid rows (contract rules), first copy per event_id wins, as dicts with ts_ms and props."""
    aliases = {"started": "conversation_started", "session_start": "conversation_started",
               "message_sent": "user_message", "message_received": "agent_message",
               "agent_response": "agent_message", "escalation_requested": "handoff_requested",
               "feedback_submitted": "feedback_received", "completed": "conversation_completed",
               "abandoned": "conversation_abandoned", "session_end": "conversation_ended",
               "ab_exposure": "experiment_exposure", "meeting_booked": "stage_reached"}
    seen = {}
    for r in rows:
        conv = r.get("conversation_id") or r.get("session_id")
        ts = _parse_ts(r.get("timestamp"))
        props = _props(r) if r.get("properties") is not None else {}
        if not r.get("event_id") or not conv or not r.get("event_type") or ts is None or props is None:
            continue
        if ts > limit_ms + 86_400_000:
            continue
        if r["event_id"] in seen:
            continue
        et = aliases.get(r["event_type"], r["event_type"])
        if et == "agent_message" and str(props.get("sender") or "").strip().lower() in (
            "prospect", "user", "customer", "visitor", "lead"
        ):
            et = "user_message"  # contract v1.1: the sender decides the side
        seen[r["event_id"]] = {"event_id": r["event_id"], "conversation_id": conv, "event_type": et,
                               "ts_ms": ts, "props": props}
    return list(seen.values())


NOW_MS = int(NOW.timestamp() * 1000)


def test_every_format_and_the_late_file_are_written(generated):
    landing, _, summary = generated
    names = [p.name for p in landing.rglob("*") if p.is_file()]
    assert any(n.endswith("_tstype.parquet") for n in names)
    assert any(n.endswith("_epochms.parquet") for n in names)
    assert any(n.endswith(".parquet") and "_" not in n.split("_p")[-1] for n in names)
    assert any(n.endswith(".jsonl") for n in names)
    assert any(n.endswith(".jsonl.gz") for n in names)
    assert sum(n.endswith(".csv") for n in names) == 1
    late = list((landing / "late").glob("*.jsonl"))
    assert len(late) == 1 and summary["late_file"] == "late/" + late[0].name
    # parquet timestamp columns: string, timestamp type, int64
    types = {str(pq.read_schema(p).field("timestamp").type) for p in landing.rglob("*.parquet")}
    assert {"string", "int64"} <= types and any(t.startswith("timestamp") for t in types)


def test_late_file_holds_older_conversations(generated):
    landing, _, _ = generated
    late_rows, _ = read_rows(landing / "late")
    newest = max(_parse_ts(r.get("timestamp")) or 0 for r in read_rows(landing)[0]
                 if (_parse_ts(r.get("timestamp")) or 0) <= NOW_MS)
    late_first = max(min(_parse_ts(r["timestamp"]) for r in late_rows if r.get("timestamp") is not None
                         and r.get("event_type") in ("interaction_initialized", "conversation_started",
                                                     "started", "session_start")), 0)
    assert late_rows
    assert newest - late_first >= 2 * 86_400_000


def test_deterministic_for_a_seed_and_different_for_another(tmp_path, generated):
    landing, _, summary = generated
    again = _gen(tmp_path / "again")
    _gen(tmp_path / "other", seed=12)
    assert again["files"] == summary["files"]
    for rel in summary["files"]:
        assert (landing / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel
    differs = [rel for rel in summary["files"]
               if not (tmp_path / "other" / rel).exists()
               or (landing / rel).read_bytes() != (tmp_path / "other" / rel).read_bytes()]
    assert differs == summary["files"]
    assert {k: v for k, v in again.items() if k not in ("seconds", "out_dir")} == \
        {k: v for k, v in summary.items() if k not in ("seconds", "out_dir")}


def test_distinct_conversations_equal_requested_and_nothing_after_now(generated):
    landing, truth, summary = generated
    rows, _ = read_rows(landing)
    events = clean_events(rows, NOW_MS)
    assert len({e["conversation_id"] for e in events}) == N
    assert max(e["ts_ms"] for e in events) <= NOW_MS
    # "today" (END) has data
    assert any(dt.datetime.fromtimestamp(e["ts_ms"] / 1000, dt.timezone.utc).date().isoformat() == END
               for e in events)
    truth_rows = duckdb.sql(f"select count(*) from read_parquet('{truth}/*.parquet')").fetchone()[0]
    assert truth_rows == summary["events"] == len(events) - summary["unknown_type_rows"]


def test_raw_rows_add_up(generated):
    landing, _, summary = generated
    rows, unreadable = read_rows(landing)
    assert len(rows) + unreadable["bad_json"] + unreadable["csv_columns"] == summary["rows_written"]
    assert unreadable["blank"] == summary["blank_lines"]
    assert unreadable["bad_json"] == summary["bad_rows_by_class"]["bad_json_line"]
    assert unreadable["csv_columns"] == summary["bad_rows_by_class"]["csv_wrong_column_count"]
    ids = Counter(r.get("event_id") for r in rows if r.get("event_id"))
    assert sum(c - 1 for c in ids.values()) >= summary["duplicates_injected"]


def test_every_bad_row_class_is_present(generated):
    landing, _, summary = generated
    rows, unreadable = read_rows(landing)
    found = Counter()
    for r in rows:
        if r.get("event_id") in (None, ""):
            found["missing_event_id"] += 1
        if not (r.get("conversation_id") or r.get("session_id")):
            found["missing_conversation_id"] += 1
        if r.get("event_type") in (None, ""):
            found["missing_event_type"] += 1
        ts = r.get("timestamp")
        if ts in (None, ""):
            found["missing_timestamp"] += 1
        elif _parse_ts(ts) is None:
            found["unparseable_timestamp"] += 1
        elif _parse_ts(ts) > NOW_MS + 86_400_000:
            found["future_timestamp"] += 1
        if r.get("properties") is not None and _props(r) is None:
            found["properties_not_object"] += 1
        if r.get("event_type") in ("mystery_event", "widget_ping", "typing_indicator"):
            found["unknown_type"] += 1
    found["bad_json_line"] = unreadable.get("bad_json", 0)
    found["csv_wrong_column_count"] = unreadable.get("csv_columns", 0)
    for cls in BAD_CLASSES:
        assert found[cls] >= 1, cls
    assert found["unknown_type"] == summary["unknown_type_rows"] >= 1
    # unparseable forms include words and a date alone
    values = {r.get("timestamp") for r in rows if isinstance(r.get("timestamp"), str)}
    assert {"now", "epoch"} & values
    assert any(len(v) == 10 and v[4] == "-" for v in values)
    # mixed id aliases and timestamp forms are present
    assert any(r.get("session_id") and not r.get("conversation_id") for r in rows)
    assert any(r.get("customer_id") and not r.get("user_id") for r in rows)
    assert any(isinstance(r.get("timestamp"), int) for r in rows)
    assert any(isinstance(r.get("properties"), str) and r["_file"].endswith((".jsonl", ".gz")) for r in rows)


def test_exposures_follow_the_sha256_rule_except_a_few(generated):
    landing, _, summary = generated
    rows, _ = read_rows(landing)
    events = clean_events(rows, NOW_MS)
    exposures = [e for e in events if e["event_type"] == "experiment_exposure"]
    by_conv = {}
    for e in sorted(exposures, key=lambda e: (e["ts_ms"], e["event_id"])):
        by_conv.setdefault((e["props"]["test_name"], e["conversation_id"]), []).append(e["props"]["variant"])
    ok = bad = 0
    for (test, conv), variants in by_conv.items():
        if len(set(variants)) > 1:
            continue  # contaminated
        expected = assign_variant(test, conv, EXPERIMENTS[test])
        if variants[0] == expected:
            ok += 1
        else:
            bad += 1
    assert ok > 1000
    assert 0 < bad <= summary["mismatched_exposures"]
    assert bad / (ok + bad) < 0.02
    contaminated = sum(1 for v in by_conv.values() if len(set(v)) > 1)
    assert contaminated >= 1


def test_casual_converts_more_than_formal_after_exposure(tmp_path):
    summary = _gen(tmp_path / "ab", n=4000, days=3, ab_effect=0.12, format_mix="parquet=1")
    rows, _ = read_rows(tmp_path / "ab")
    events = clean_events(rows, NOW_MS)
    first_exp, converted_at = {}, {}
    for e in sorted(events, key=lambda e: (e["ts_ms"], e["event_id"])):
        if e["event_type"] == "experiment_exposure" and e["props"]["test_name"] == "greeting_tone":
            first_exp.setdefault(e["conversation_id"], (e["props"]["variant"], e["ts_ms"]))
        if e["event_type"] == "conversion":
            converted_at.setdefault(e["conversation_id"], e["ts_ms"])
    stats = {"formal": [0, 0], "casual": [0, 0]}
    for conv, (variant, t) in first_exp.items():
        stats[variant][0] += 1
        stats[variant][1] += conv in converted_at and converted_at[conv] >= t
    rate = {v: c / n for v, (n, c) in stats.items()}
    assert 0.05 < rate["formal"] < 0.15
    assert rate["casual"] - rate["formal"] > 0.05
    assert summary["exposures"]["greeting_tone"] >= sum(n for n, _ in stats.values())


def test_fallback_spike_raises_the_chosen_days_rate(tmp_path):
    summary = _gen(tmp_path / "spike", n=1500, incident="fallback_spike", format_mix="parquet=1,jsonl=0.2")
    rows, _ = read_rows(tmp_path / "spike")
    events = clean_events(rows, NOW_MS)
    con = duckdb.connect()
    ev = pa.table({k: [e[k] for e in events] for k in ("conversation_id", "event_type", "ts_ms")})
    con.register("ev", ev)
    rates = dict(con.execute("""
        with conv_day as (
            select conversation_id, cast(make_timestamp(min(ts_ms) * 1000) as date) as d
            from ev group by conversation_id
        )
        select conv_day.d::varchar,
            count(*) filter (where ev.event_type = 'fallback_triggered')
                / count(*) filter (where ev.event_type = 'user_message')
        from ev join conv_day on ev.conversation_id = conv_day.conversation_id
        group by conv_day.d
    """).fetchall())
    day = summary["incident_day"]
    assert rates[day] > 0.4
    others = [r for d, r in rates.items() if d != day]
    assert others and max(others) < 0.2


def test_timestamp_forms_keep_the_instant(generated):
    landing, truth, summary = generated
    intended = dict(duckdb.sql(f"select event_id, ts_ms from read_parquet('{truth}/*.parquet')").fetchall())
    rows, _ = read_rows(landing)
    checked = Counter()
    for r in rows:
        eid, ts = r.get("event_id"), r.get("timestamp")
        if eid not in intended or ts in (None, ""):
            continue
        parsed = _parse_ts(ts)
        if parsed is None or parsed > NOW_MS + 86_400_000:
            continue  # a bad copy of this event
        assert parsed == intended[eid], (eid, ts)
        if isinstance(ts, str) and ("+" in ts[10:] or "-" in ts[10:]):
            checked["offset"] += 1
        checked[type(ts).__name__] += 1
    assert checked["offset"] > 100 and checked["int"] > 100 and checked["datetime"] > 100
    assert sum(summary["timestamp_forms"].values()) > 0


def test_cli_writes_to_the_landing_env_folder(tmp_path, monkeypatch):
    from convo_warehouse.commands.generate import generate

    monkeypatch.setenv("CONVO_LANDING_DIR", str(tmp_path / "env_landing"))
    result = CliRunner().invoke(generate, ["-n", "50", "--days", "2", "--end-date", "2026-01-05", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["conversations"] == 50
    assert (tmp_path / "env_landing" / summary["files"][0]).exists()
    bad = CliRunner().invoke(generate, ["-n", "5", "--format-mix", "xml=1", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "unknown format" in bad.output


@pytest.mark.parametrize("incident", ["srm", "contamination"])
def test_experiment_incidents(tmp_path, incident):
    summary = _gen(tmp_path / incident, n=3000, days=2, incident=incident, format_mix="parquet=1")
    rows, _ = read_rows(tmp_path / incident)
    variants = {}
    for e in clean_events(rows, NOW_MS):
        if e["event_type"] == "experiment_exposure" and e["props"]["test_name"] == "greeting_tone":
            variants.setdefault(e["conversation_id"], set()).add(e["props"]["variant"])
    first = Counter(next(iter(v)) for v in variants.values() if len(v) == 1)
    contaminated = sum(len(v) > 1 for v in variants.values()) / len(variants)
    if incident == "srm":
        assert summary["dropped_exposures_srm"] > 0
        assert first["casual"] / first["formal"] < 0.92
        assert contaminated < 0.03
    else:
        assert first["casual"] / first["formal"] > 0.9
        assert contaminated > 0.04


def test_jsonl_carries_contract_v1_1_vocabulary(generated):
    """A share of JSONL events use v1.1 names, so the end-to-end tests exercise them."""
    landing, _, _ = generated
    lines = []
    for path in sorted(landing.rglob("*.jsonl*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            lines += [line for line in handle.read().splitlines() if line.strip()]
    text = "\n".join(lines)
    counts = {key: text.count(key) for key in ('{"id":', '{"message_id":', '"metadata":', '"sender":',
                                               '"event_type":"message_received"')}  # fmt: skip
    assert all(count > 0 for count in counts.values()), counts
    senders = set()
    for line in lines:
        if '"sender":' in line and line.endswith("}"):
            senders.add((_props(_v1_0_names(json.loads(line))) or {}).get("sender"))
    assert {"prospect", "assistant"} <= senders
