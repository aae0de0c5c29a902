"""The key of each table the classifier writes, checked by the writer before it commits.

The ``classification`` tables are dbt sources with a ``grain`` test over the
whole table (tagged ``grain``: ``make dbt-test`` and CI run it, production
runs leave it out, as they leave out the models' grain tests). A production
run's check is here instead: each writer checks the rows of the keys it
replaced, in its own transaction, reading the key from that same test.
"""

from __future__ import annotations

from functools import cache

import duckdb
import yaml

from convo_warehouse.lib.warehouse import REPO_ROOT

#: The one definition of the classifier's tables: the dbt source's YAML, whose columns carry a
#: data_type (the on-run-start macro create_classification_source and store.ensure_tables build the
#: tables from it) and whose grain tests name each table's key.
SOURCES_DEFINITION = REPO_ROOT / "models" / "staging" / "classification" / "_classification__sources.yml"


def definition(table: str) -> dict:
    """One table of the ``classification`` source, as its YAML defines it (columns, tests)."""
    document = yaml.safe_load(SOURCES_DEFINITION.read_text(encoding="utf-8"))
    source = next(source for source in document["sources"] if source["name"] == "classification")
    return next(entry for entry in source["tables"] if entry["name"] == table)


@cache
def columns(table: str) -> tuple[str, ...]:
    """The key of a ``classification`` table: the columns of its ``grain`` test in the source YAML."""
    for test in definition(table).get("data_tests", []):
        if isinstance(test, dict) and "grain" in test:
            return tuple(test["grain"]["arguments"]["columns"])
    raise ValueError(f"{SOURCES_DEFINITION}: table {table} has no grain test; give it one with its key's columns")


class GrainError(RuntimeError):
    """A write left two rows with one key in a ``classification`` table (rolled back)."""


def check(con: duckdb.DuckDBPyConnection, table: str, written: str, scope: str) -> None:
    """Before a writer's commit: the rows of ``classification.<table>`` whose ``scope`` column holds a
    value of ``written`` (a relation with that column: what this write replaced) hold one row per key;
    otherwise roll the write back and raise. The whole table's grain test (the source YAML's, in
    ``make dbt-test`` and CI) then need not run in production: no other writer adds rows."""
    key = columns(table)
    duplicate = con.execute(
        f"""
        select {', '.join(key)}, count(*)
        from classification.{table}
        where {scope} in (select {scope} from {written})
        group by all
        having count(*) > 1
        limit 1
        """
    ).fetchone()
    if duplicate is not None:
        con.execute("rollback")
        values = ", ".join(map(repr, duplicate[:-1]))
        raise GrainError(
            f"classification.{table}: this write left {duplicate[-1]} rows for ({', '.join(key)}) = ({values}); "
            "it was rolled back. The writer inserted a key twice: fix its query (lib/classify)."
        )
