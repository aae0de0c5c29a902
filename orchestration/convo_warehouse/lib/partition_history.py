"""Which day partitions the incremental builds rewrote: read from ``audit.partitions_rewritten``.

dbt's hooks record it (macros/incremental/run_ledgers.sql): a complete run
records, for every incremental model, the days of ``scope_days``, one row per
``(relation_name, partition_date)``; a build that writes a whole table
records one row with ``rewrote_all`` (and a null ``partition_date``) before
it starts. Models that are not incremental (views, tables) get no rows.
``recorded_at`` grows from one run to the next.

The publisher reads it to learn what changed since the snapshot it published
last without scanning the history of every table: a table with rows there is
*tracked*, and its changes since a moment are the rows recorded after it.
Anything the table cannot answer (the table does not exist yet, has another
shape, the relation was never recorded, there is no starting moment) is
*unknown*, and the caller compares the whole table instead.

No Dagster here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb

SCHEMA = "audit"
NAME = "partitions_rewritten"
TABLE = f"{SCHEMA}.{NAME}"
COLUMNS = {
    "relation_name": "VARCHAR",
    "partition_date": "DATE",
    "rewrote_all": "BOOLEAN",
    "recorded_at": "TIMESTAMP",
}


@dataclasses.dataclass(frozen=True)
class Rewrites:
    """What the builds rewrote in one relation: every partition, or these days."""

    rewrote_all: bool
    days: frozenset[dt.date]


NOTHING_REWRITTEN = Rewrites(rewrote_all=False, days=frozenset())


@dataclasses.dataclass(frozen=True)
class PartitionHistory:
    """The rows of ``audit.partitions_rewritten`` recorded after ``since``.

    ``available`` is false when the table cannot be read (``reason`` says
    why); then every relation is unknown.
    """

    available: bool
    reason: str
    since: dt.datetime | None
    newest_recorded_at: dt.datetime | None
    tracked: frozenset[str] = frozenset()
    rewrites: dict[str, Rewrites] = dataclasses.field(default_factory=dict)

    def rewrites_of(self, relation: str) -> Rewrites | None:
        """What ``relation`` had rewritten since ``since``; None when the history cannot tell."""
        if self.why_unknown(relation) is not None:
            return None
        return self.rewrites.get(relation, NOTHING_REWRITTEN)

    def why_unknown(self, relation: str) -> str | None:
        """Why the history cannot tell what ``relation`` had rewritten, or None when it can."""
        if not self.available:
            return self.reason
        if self.since is None:
            return "no earlier publish noted where to read the history from"
        if relation not in self.tracked:
            return f"{relation} has no rows in {TABLE} (not built incrementally)"
        return None


def _shape_problem(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why the table cannot be read (missing, or other columns), or None."""
    found = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [SCHEMA, NAME],
        ).fetchall()
    )
    if not found:
        return f"{TABLE} does not exist"
    wrong = [f"{column} {wanted}" for column, wanted in COLUMNS.items() if found.get(column) != wanted]
    if wrong:
        return f"{TABLE} lacks the columns (or types) " + ", ".join(wrong)
    return None


def read_partition_history(con: duckdb.DuckDBPyConnection, since: dt.datetime | None) -> PartitionHistory:
    """The partitions recorded as rewritten after ``since`` (None: no starting moment, all unknown)."""
    problem = _shape_problem(con)
    if problem is not None:
        return PartitionHistory(available=False, reason=problem, since=since, newest_recorded_at=None)
    newest, tracked = con.execute(
        f"select max(recorded_at), coalesce(list(distinct relation_name) filter (where relation_name is not null), []) "
        f"from {TABLE}"
    ).fetchone()
    rewrites: dict[str, Rewrites] = {}
    if since is not None:
        rows = con.execute(
            f"""
            select
                relation_name,
                bool_or(rewrote_all or partition_date is null) as rewrote_all,
                coalesce(list(distinct partition_date) filter (where partition_date is not null), [])
                    as partition_dates,
            from {TABLE}
            where recorded_at > ?
            group by relation_name
            """,
            [since],
        ).fetchall()
        rewrites = {relation: Rewrites(bool(whole), frozenset(days)) for relation, whole, days in rows}
    reason = f"{TABLE} after {since.isoformat()}" if since is not None else f"{TABLE}, read from its start"
    return PartitionHistory(
        available=True,
        reason=reason,
        since=since,
        newest_recorded_at=newest,
        tracked=frozenset(tracked),
        rewrites=rewrites,
    )
