"""The short report printed after a run: reconciliation, outcomes, the support
funnel and the key rates of the latest complete day, read from the warehouse's marts."""

from __future__ import annotations

import datetime as dt

import duckdb


KEY_RATES = ("completion_rate", "handoff_rate", "abandonment_rate", "conversion_rate", "fallback_rate")


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:5.1f}%"


def reconciliation_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    totals = con.execute(
        """
        select coalesce(sum(raw_rows), 0), coalesce(sum(staged_rows), 0),
               coalesce(sum(duplicates_dropped), 0), coalesce(sum(quarantined_rows), 0),
               coalesce(sum(unknown_type_rows), 0), coalesce(bool_and(is_reconciled), true)
        from audit.reconciliation
        """
    ).fetchone()
    latest = con.execute(
        """
        select load_id, files_loaded, raw_rows, staged_rows, duplicates_dropped, quarantined_rows
        from audit.reconciliation order by load_id desc limit 1
        """
    ).fetchone()
    raw, staged, duplicates, quarantined, unknown, ok = totals
    lines = [
        "Reconciliation (whole warehouse)",
        f"  raw rows {raw:,} = staged {staged:,} + duplicates dropped {duplicates:,} "
        f"+ quarantined {quarantined:,}  -> {'OK' if ok else 'MISMATCH'}",
        f"  unknown event types staged (in no metric): {unknown:,}",
    ]
    if latest:
        load_id, files, raw_new, staged_new, dup_new, quarantined_new = latest
        lines.append(
            f"  latest load {load_id}: {files} file(s), {raw_new:,} raw rows "
            f"({staged_new:,} staged, {dup_new:,} duplicates, {quarantined_new:,} quarantined)"
        )
    reasons = con.execute(
        "select reason, count(*) from quarantine.rejected_event_reasons group by 1 order by 2 desc"
    ).fetchall()
    if reasons:
        lines.append("  quarantined by reason: " + ", ".join(f"{reason} {count:,}" for reason, count in reasons))
    return lines


def outcome_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        """
        select outcome, count(*) as conversations, count(*) / sum(count(*)) over () as share
        from marts.fct_conversations group by outcome order by conversations desc
        """
    ).fetchall()
    lines = ["Conversations by outcome"]
    lines += [f"  {outcome:<12} {count:>9,}  {_percent(share)}" for outcome, count, share in rows]
    return lines


def _stage_cells(rate: float | None, drop_off: int) -> tuple[str, str, str]:
    """(from prev, drop-off, note) of one stage of the any-order funnel.

    Stages are counted in any order, so a stage can be reached by more
    conversations than the one before it (they skipped the earlier stage).
    Such a stage gets no rate above 100% and no negative drop-off: its note
    says how many more reached it.
    """
    if drop_off < 0:
        return "-", "-", f"skipped-to: {-drop_off:,} more than previous"
    return _percent(rate), f"{drop_off:,}", ""


def funnel_lines(con: duckdb.DuckDBPyConnection, funnel: str = "support") -> list[str]:
    if not _exists(con, "marts", "funnel_summary"):
        return []
    rows = con.execute(
        """
        select stage, reached, conversion_rate, conversion_from_start, drop_off
        from marts.funnel_summary where funnel_name = ? order by stage_order
        """,
        [funnel],
    ).fetchall()
    lines = [f"Funnel '{funnel}' (any order)", "  stage                 reached   from prev  from start   drop-off"]
    skipped = False
    for stage, reached, rate, start, drop in rows:
        from_previous, drop_off, note = _stage_cells(rate, drop)
        skipped = skipped or bool(note)
        line = f"  {stage:<20} {reached:>8,}   {from_previous:>9}  {_percent(start):>10}  {drop_off:>9}"
        lines.append(f"{line}  {note}" if note else line)
    if skipped:
        lines.append(
            "  skipped-to: more conversations reached the stage than the one before it "
            "(they skipped that stage); `convo-warehouse funnel` shows the in-order counts"
        )
    return lines


def latest_complete_day(con: duckdb.DuckDBPyConnection, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """(the latest complete day, the latest day) of metrics_daily.

    A day is complete once it has ended (UTC): the latest metric_date before
    ``today``. None when there is no such day.
    """
    return con.execute(
        """
        select max(metric_date) filter (where metric_date < ?), max(metric_date)
        from marts.metrics_daily where segment_type = 'all'
        """,
        [today],
    ).fetchone()


def key_rate_lines(con: duckdb.DuckDBPyConnection, today: dt.date | None = None) -> list[str]:
    """Key rates of the latest complete day (UTC); ``today`` defaults to the current UTC date."""
    if not _exists(con, "marts", "metrics_daily"):
        return []
    today = today or dt.datetime.now(dt.timezone.utc).date()
    complete, latest = latest_complete_day(con, today)
    if latest is None:
        return []
    # a warehouse whose only day is today shows today, flagged as partial
    day = complete or latest
    placeholders = ", ".join("?" for _ in KEY_RATES)
    rows = con.execute(
        f"""
        select metric_name, numerator, denominator, value
        from marts.metrics_daily
        where segment_type = 'all'
          and metric_date = ?
          and metric_name in ('conversations', {placeholders})
        """,
        [day, *KEY_RATES],
    ).fetchall()
    by_name = {name: (numerator, denominator, value) for name, numerator, denominator, value in rows}
    if complete is None:
        title = f"Key rates for {day} (partial day, still in progress: no complete day yet)"
    elif latest >= today:
        title = f"Key rates for {day} (latest complete day, UTC; today {today} is still in progress)"
    else:
        title = f"Key rates for {day} (latest complete day, UTC)"
    lines = [title]
    if "conversations" in by_name:
        lines.append(f"  conversations        {int(by_name['conversations'][2]):>9,}")
    for name in KEY_RATES:
        if name in by_name:
            numerator, denominator, value = by_name[name]
            lines.append(f"  {name:<20} {_percent(value):>9}   ({numerator:,.0f} / {denominator:,.0f})")
    return lines


def alert_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not _exists(con, "marts", "metric_alerts"):
        return []
    count = con.execute("select count(*) from marts.metric_alerts").fetchone()[0]
    return [f"Metric alerts fired: {count:,} (see marts.metric_alerts)"]


def rebuilt_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The incremental models the latest run rebuilt whole (the project changed, or a new
    warehouse), from ``audit.partitions_rewritten``'s rewrote_all rows."""
    if not _exists(con, "audit", "pipeline_runs") or not _exists(con, "audit", "partitions_rewritten"):
        return []
    started = con.execute("select max(started_at) from audit.pipeline_runs").fetchone()[0]
    names = [
        name
        for (name,) in con.execute(
            "select distinct relation_name from audit.partitions_rewritten"
            " where rewrote_all and recorded_at >= ? order by 1",
            [started],
        ).fetchall()
    ]
    if not names or started is None:
        return []
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [f"Rebuilt whole (new, or changed since the last successful build): {len(names)} models ({shown})"]


def run_summary(con: duckdb.DuckDBPyConnection, today: dt.date | None = None) -> str:
    """The report; ``today`` (UTC, default the current date) decides which day is complete."""
    sections = [
        rebuilt_lines(con),
        reconciliation_lines(con),
        outcome_lines(con),
        funnel_lines(con),
        key_rate_lines(con, today),
        alert_lines(con),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section)
