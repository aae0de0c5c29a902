"""Data health: reconciliation (raw = staged + duplicates + quarantined), quarantine reasons, freshness.

About the pipeline, not the conversations: the period and filters do not apply
(the page says so).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import has_table, records
from convo_warehouse.dashboard.views import Page


@dataclasses.dataclass
class Reconciliation:
    raw_rows: int
    staged_rows: int
    duplicates_dropped: int
    quarantined_rows: int
    unknown_type_rows: int
    loads: int
    is_reconciled: bool


def reconciliation(con) -> Reconciliation | None:
    """Whole-warehouse totals of ``audit.reconciliation`` (None if the snapshot has no reconciliation)."""
    if not has_table(con, "audit.reconciliation"):
        return None
    row = con.execute(
        """
        select coalesce(sum(raw_rows), 0), coalesce(sum(staged_rows), 0), coalesce(sum(duplicates_dropped), 0),
               coalesce(sum(quarantined_rows), 0), coalesce(sum(unknown_type_rows), 0), count(*),
               coalesce(bool_and(is_reconciled), true)
        from audit.reconciliation
        """
    ).fetchone()
    return Reconciliation(*[int(value) for value in row[:6]], bool(row[6]))


def loads(con) -> list[dict]:
    """Per load run: when, files, and the four counts, newest first."""
    if not has_table(con, "audit.reconciliation"):
        return []
    return records(
        con,
        """
        select load_id, loaded_at, files_loaded, raw_rows, staged_rows, duplicates_dropped, quarantined_rows,
               is_reconciled
        from audit.reconciliation order by load_id desc
        """,
    )


def quarantine_reasons(con) -> list[dict]:
    """Quarantined rows per reason, most frequent first, with an example location and detail."""
    if not has_table(con, "quarantine.rejected_events"):
        return []
    return records(
        con,
        """
        select reason, count(*) as rows, min(source_file || ':' || row_number) as example,
               min(reason_detail) as example_detail
        from quarantine.rejected_events
        group by reason
        order by rows desc, reason
        """,
    )


@dataclasses.dataclass
class Freshness:
    published_at: dt.datetime
    newest_event_at: dt.datetime | None
    run_id: str
    version: str
    test_status: str
    checks_passed: int
    checks_warned: int


def freshness(manifest: dict) -> Freshness:
    """When the snapshot was published, the newest event it covers, and the run's test status."""
    tests = manifest.get("tests") or {}
    newest = manifest.get("newest_event_at")
    return Freshness(
        published_at=dt.datetime.fromisoformat(manifest["published_at"]),
        newest_event_at=dt.datetime.fromisoformat(newest).replace(tzinfo=dt.UTC) if newest else None,
        run_id=manifest.get("run_id", ""),
        version=manifest["version"],
        test_status=tests.get("status", "unknown"),
        checks_passed=int(tests.get("checks_passed", 0)),
        checks_warned=int(tests.get("checks_warned", 0)),
    )


def render(context) -> None:
    import plotly.express as px
    import streamlit as st

    con, snapshot = context.con, context.snapshot
    st.title("Data health")
    st.caption("The whole warehouse, every load: the sidebar's period and filters do not apply here.")
    now = dt.datetime.now(dt.UTC)
    fresh = freshness(snapshot.manifest)
    st.subheader("Freshness")
    a, b, c = st.columns(3)
    a.metric("Published", fmt.since(fresh.published_at, now), help=f"{fresh.published_at:%Y-%m-%d %H:%M:%S} UTC")
    b.metric(
        "Newest event",
        fmt.since(fresh.newest_event_at, now) if fresh.newest_event_at else fmt.MISSING,
        help=f"{fresh.newest_event_at:%Y-%m-%d %H:%M:%S} UTC" if fresh.newest_event_at else None,
    )
    c.metric("Checks of the run", fresh.test_status.replace("_", " "),
             help=f"{fresh.checks_passed:,} passed, {fresh.checks_warned:,} warned (failed checks never publish)")
    st.caption(f"Snapshot {fresh.version}, Dagster run {fresh.run_id}.")

    st.subheader("Reconciliation")
    totals = reconciliation(con)
    if totals is None:
        st.info("No reconciliation in this snapshot.")
    else:
        (st.success if totals.is_reconciled else st.error)(
            f"raw {fmt.count(totals.raw_rows)} = staged {fmt.count(totals.staged_rows)} + duplicates "
            f"{fmt.count(totals.duplicates_dropped)} + quarantined {fmt.count(totals.quarantined_rows)}"
            + (" ✓ reconciled" if totals.is_reconciled else " ✗ does NOT reconcile")
        )
        x1, x2, x3, x4 = st.columns(4)
        x1.metric("Raw rows", fmt.count(totals.raw_rows))
        x2.metric("Staged", fmt.count(totals.staged_rows))
        x3.metric("Duplicates dropped", fmt.count(totals.duplicates_dropped))
        x4.metric("Quarantined", fmt.count(totals.quarantined_rows))
        st.caption(f"{fmt.count(totals.loads)} load run(s); unknown event types staged (in no metric): "
                   f"{fmt.count(totals.unknown_type_rows)}.")
        with st.expander("Per load run"):
            runs = pd.DataFrame(loads(con))
            tables.show(runs, title="load runs", key="loads")

    st.subheader("Quarantine reasons")
    reasons = quarantine_reasons(con)
    if not reasons:
        st.success("Nothing quarantined.")
    else:
        chart = px.bar(reasons, x="rows", y="reason", orientation="h", text="rows")
        chart.update_layout(height=80 + 40 * len(reasons), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                            yaxis={"categoryorder": "total ascending"})
        st.plotly_chart(chart, key="quarantine-reasons")
        tables.show(
            pd.DataFrame({
                "reason": [row["reason"] for row in reasons],
                "rows": [fmt.count(row["rows"]) for row in reasons],
                "example (file:row)": [row["example"] for row in reasons],
                "detail": [row["example_detail"] for row in reasons],
            }),
            pd.DataFrame(reasons),
            title="quarantine reasons",
            key="quarantine",
        )

    st.subheader("Published tables")
    published = sorted(snapshot.tables.items())
    tables.show(
        pd.DataFrame({"table": [name for name, _ in published], "rows": [fmt.count(info["rows"]) for _, info in published]}),
        pd.DataFrame({"table": [name for name, _ in published], "rows": [info["rows"] for _, info in published]}),
        title="published tables",
        key="published",
    )


PAGE = Page(title="Data health", url_path="health", icon=":material/health_and_safety:", order=60, render=render)
