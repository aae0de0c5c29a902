"""Every contract mart on Spark against the same mart in a DuckDB warehouse.

Row by row on the mart's key: the same number of rows, the same keys, and in
every column the same value (doubles within a relative tolerance, timestamps
to the microsecond, nulls where the other side has nulls).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

# The contract's marts (../shared/contract/marts.md) and their keys.
CONTRACT_MARTS: dict[str, tuple[str, ...]] = {
    "fct_conversations": ("conversation_id",),
    "fct_conversation_stages": ("conversation_id", "funnel_name", "stage"),
    "funnel_stage_daily": ("funnel_name", "conversation_date", "channel", "stage"),
    "funnel_summary": ("funnel_name", "stage"),
    "funnel_dropoffs": ("conversation_id", "funnel_name"),
    "metrics_daily": ("metric_date", "metric_name", "segment_type", "segment_value"),
    "metrics_hourly": ("metric_hour", "metric_name", "segment_type", "segment_value"),
    "ab_test_exposures": ("test_name", "conversation_id"),
    "ab_test_results": ("test_name", "variant"),
}

# Public marts beside the contract's, compared the same way (their grain).
OTHER_MARTS: dict[str, tuple[str, ...]] = {
    "fct_conversation_rephrases": ("conversation_id",),
    "abandon_turn_daily": ("conversation_date", "channel", "agent_id", "environment", "turn"),
    "timing_daily": ("conversation_date", "hour_of_day", "channel", "agent_id", "environment"),
    "timing_patterns": ("weekday", "hour_of_day"),
    "ab_test_variant_daily": ("conversation_date", "test_name", "variant"),
    "feedback_rating_daily": ("conversation_date", "rating"),
}
COMPARED_MARTS = {**CONTRACT_MARTS, **OTHER_MARTS}

# The classifier's stores (Spark copies part of them into DuckDB and back,
# spark/pipeline.py), their keys and the columns that hold when a row was written.
CLASSIFIER_STORES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "classification.stage_classifications": (("conversation_id", "funnel_name", "stage"), ("classified_at",)),
    "classification.message_sentiment": (("event_id",), ("scored_at",)),
}


def compare_marts(spark, duckdb_path: Path, rel_tol: float = 1e-9) -> dict[str, list[str]]:
    """Per compared mart (the contract's and OTHER_MARTS, named ``marts.<name>``) and classifier
    store (CLASSIFIER_STORES, without their write times), the differences found (an empty list when equal)."""
    import duckdb

    con = duckdb.connect(str(duckdb_path), read_only=True)
    compared = {f"marts.{table}": (keys, ()) for table, keys in COMPARED_MARTS.items()} | CLASSIFIER_STORES
    try:
        differences = {}
        for relation, (keys, written) in compared.items():
            duck_rows = _rows(con.execute(f"select * exclude ({', '.join(written)}) from {relation}" if written
                                          else f"select * from {relation}"))
            spark_frame = spark.table(relation).drop(*written)
            spark_rows = [row.asDict() for row in spark_frame.collect()]
            differences[relation] = compare_rows(duck_rows, spark_rows, keys, rel_tol)
        return differences
    finally:
        con.close()


def _rows(cursor) -> list[dict]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def compare_rows(
    expected: list[dict], actual: list[dict], keys: tuple[str, ...], rel_tol: float = 1e-9
) -> list[str]:
    """Differences between two lists of rows keyed by ``keys`` (expected = DuckDB)."""
    problems: list[str] = []
    if len(expected) != len(actual):
        problems.append(f"row count: duckdb {len(expected)}, spark {len(actual)}")
    columns = list(expected[0]) if expected else []
    missing = [name for name in columns if actual and name not in actual[0]]
    if missing:
        problems.append(f"columns missing on spark: {', '.join(missing)}")
    by_key = {tuple(_normal(row[name]) for name in keys): row for row in actual}
    seen = set()
    for row in expected:
        key = tuple(_normal(row[name]) for name in keys)
        seen.add(key)
        other = by_key.get(key)
        if other is None:
            problems.append(f"key {key} only on duckdb")
            continue
        for name in columns:
            if name in missing:
                continue
            if not values_equal(row[name], other[name], rel_tol):
                problems.append(f"key {key} column {name}: duckdb {row[name]!r}, spark {other[name]!r}")
    for key in by_key.keys() - seen:
        problems.append(f"key {key} only on spark")
    return problems


def _normal(value):
    """One comparable form for values the two engines return as different types."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return value
    return value


def values_equal(left, right, rel_tol: float = 1e-9) -> bool:
    left, right = _normal(left), _normal(right)
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        return bool(left) == bool(right) and type(left) is type(right)
    if isinstance(left, int | float) and isinstance(right, int | float):
        if isinstance(left, float) and math.isnan(left):
            return isinstance(right, float) and math.isnan(right)
        return math.isclose(left, right, rel_tol=rel_tol, abs_tol=1e-12)
    return left == right


def partition_files(spark_dir: Path) -> dict[tuple[str, str], frozenset[str]]:
    """(schema.table, partition value) -> the names of its data files, for every partitioned table
    under ``spark_dir``'s warehouse (``<schema>.db/<table>/<column>=<value>/``).

    A partition a run rewrote has new files (dynamic partition overwrite
    writes new ones), or is gone; one it left alone has the same files. Read
    from the file system, not from what the run says it did.
    """
    partitions = {}
    for folder in (spark_dir / "warehouse").glob("*.db/*/*=*"):
        if folder.is_dir():
            table = f"{folder.parent.parent.name.removesuffix('.db')}.{folder.parent.name}"
            partitions[(table, folder.name.split("=", 1)[1])] = frozenset(
                path.name for path in folder.iterdir() if not path.name.startswith((".", "_"))
            )
    return partitions


def partitions_rewritten(before: dict, after: dict) -> dict[str, set[str]]:
    """Per table, the partitions whose files changed or that appeared or vanished between two
    ``partition_files`` listings."""
    tables = {table for table, _ in (*before, *after)}
    rewritten = {}
    for table in sorted(tables):
        old = {value: files for (name, value), files in before.items() if name == table}
        new = {value: files for (name, value), files in after.items() if name == table}
        rewritten[table] = {value for value in old.keys() | new.keys() if old.get(value) != new.get(value)}
    return rewritten

