"""Seeds before dbt runs: which to rebuild (their CSV columns changed), which to skip (unchanged).

The contract lets a user drop a seed's optional columns or add them back
(docs/staging.md). dbt loads a seed into its existing table with that table's
columns, so a CSV whose header no longer matches fails every run (DuckDB: "not
possible to automatically detect the CSV parsing dialect"). Before dbt runs,
the pipeline drops the table of every such seed, so dbt builds it anew from
the CSV (a full refresh of that seed); the models that read it see the new
content through their input fingerprints and rebuild what it changes. Each
rebuild is recorded in ``audit.seed_rebuilds`` and named in the run summary.

A seed whose file is byte for byte what was loaded the last time a build
succeeded is left out of the run (``unchanged_seeds``: its table and its
tests stand as they are; ``audit.seeds_loaded`` keeps each file's sha256,
written by ``record_loaded_seeds`` after a successful build): reloading it
would rewrite the same rows and run its tests again every hour.

No Dagster here: ``assets/dbt.py`` calls these under the writer lock, around
``dbt build``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

REBUILDS_DDL = """
create schema if not exists audit;
create table if not exists audit.seed_rebuilds (
    seed_name varchar not null,
    table_name varchar not null,
    previous_columns varchar not null,
    csv_columns varchar not null,
    rebuilt_at timestamp not null
);
"""


LOADED_DDL = """
create schema if not exists audit;
create table if not exists audit.seeds_loaded (
    seed_name varchar not null,
    file_sha256 varchar not null,
    loaded_at timestamp not null
);
"""


@dataclass(frozen=True)
class SeedTable:
    """A seed of the dbt project: its CSV and the warehouse table dbt loads it into."""

    name: str
    schema: str
    table: str
    csv_path: Path


@dataclass(frozen=True)
class ChangedSeed:
    seed: SeedTable
    previous_columns: tuple[str, ...]
    csv_columns: tuple[str, ...]

    def describe(self) -> str:
        removed = [column for column in self.previous_columns if column not in self.csv_columns]
        added = [column for column in self.csv_columns if column not in self.previous_columns]
        change = "; ".join(
            part
            for part in (
                f"columns removed: {', '.join(removed)}" if removed else "",
                f"columns added: {', '.join(added)}" if added else "",
                "columns reordered" if not removed and not added else "",
            )
            if part
        )
        return f"seed {self.seed.name} rebuilt ({change})"


def changed_columns(
    csv_headers: Mapping[str, Sequence[str]], table_columns: Mapping[str, Sequence[str]]
) -> list[str]:
    """The seeds whose CSV header differs from the columns of their table (names compared
    case-insensitively, in order). A seed without a table yet is no change: dbt creates it."""
    return sorted(
        name
        for name, header in csv_headers.items()
        if name in table_columns
        and [column.strip().lower() for column in header] != [column.lower() for column in table_columns[name]]
    )


def seed_tables(manifest: Mapping, project_dir: Path) -> list[SeedTable]:
    """Every seed of a parsed dbt manifest, with its CSV path and its table."""
    return [
        SeedTable(
            name=node["name"],
            schema=node["schema"],
            table=node.get("alias") or node["name"],
            csv_path=project_dir / node["original_file_path"],
        )
        for node in manifest["nodes"].values()
        if node["resource_type"] == "seed"
    ]


def csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


def table_columns(con: duckdb.DuckDBPyConnection, seeds: Sequence[SeedTable]) -> dict[str, list[str]]:
    """The columns, in order, of each seed's table that exists in the warehouse."""
    columns: dict[str, list[str]] = {}
    for seed in seeds:
        rows = con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [seed.schema, seed.table],
        ).fetchall()
        if rows:
            columns[seed.name] = [row[0] for row in rows]
    return columns


def rebuild_changed_seeds(
    con: duckdb.DuckDBPyConnection,
    manifest: Mapping,
    project_dir: Path,
    now: dt.datetime | None = None,
) -> list[ChangedSeed]:
    """Drop the table of every seed whose CSV columns changed (dbt then builds it from the CSV),
    record each in ``audit.seed_rebuilds`` and return them."""
    seeds = seed_tables(manifest, project_dir)
    by_name = {seed.name: seed for seed in seeds}
    headers = {seed.name: csv_header(seed.csv_path) for seed in seeds if seed.csv_path.exists()}
    existing = table_columns(con, seeds)
    changed = [
        ChangedSeed(by_name[name], tuple(existing[name]), tuple(column.strip() for column in headers[name]))
        for name in changed_columns(headers, existing)
    ]
    if not changed:
        return []
    con.execute(REBUILDS_DDL)
    rebuilt_at = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    for change in changed:
        seed = change.seed
        con.execute(f'drop table "{seed.schema}"."{seed.table}"')
        con.execute(
            "insert into audit.seed_rebuilds values (?, ?, ?, ?, ?)",
            [seed.name, f"{seed.schema}.{seed.table}", ",".join(change.previous_columns),
             ",".join(change.csv_columns), rebuilt_at],
        )
    return changed


def rebuilt_seed_lines(con: duckdb.DuckDBPyConnection, since: dt.datetime | None) -> list[str]:
    """Summary lines for the seeds rebuilt at or after ``since`` (the run's start)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'audit' and table_name = 'seed_rebuilds'"
    ).fetchone()[0]
    if not exists or since is None:
        return []
    rows = con.execute(
        "select seed_name, previous_columns, csv_columns from audit.seed_rebuilds"
        " where rebuilt_at >= ? order by seed_name",
        [since],
    ).fetchall()
    return [
        ChangedSeed(SeedTable(name, "", "", Path()), tuple(before.split(",")), tuple(after.split(","))).describe()
        + ": its CSV columns changed, so it was built anew and what reads it follows"
        for name, before, after in rows
    ]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unchanged_seeds(con: duckdb.DuckDBPyConnection, manifest: Mapping, project_dir: Path) -> list[str]:
    """The seeds to leave out of this build: their table exists and their file is the one the
    last successful build loaded (``audit.seeds_loaded``)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'audit' and table_name = 'seeds_loaded'"
    ).fetchone()[0]
    if not exists:
        return []
    loaded = dict(con.execute("select seed_name, file_sha256 from audit.seeds_loaded").fetchall())
    seeds = seed_tables(manifest, project_dir)
    present = table_columns(con, seeds)
    return sorted(
        seed.name
        for seed in seeds
        if seed.name in present and seed.csv_path.exists() and loaded.get(seed.name) == file_sha256(seed.csv_path)
    )


def record_loaded_seeds(
    con: duckdb.DuckDBPyConnection,
    manifest: Mapping,
    project_dir: Path,
    loaded: Sequence[str],
    now: dt.datetime | None = None,
) -> None:
    """After a successful build: the sha256 of the files of the seeds it ``loaded`` (names)."""
    seeds = seed_tables(manifest, project_dir)
    rows = [
        (seed.name, file_sha256(seed.csv_path))
        for seed in seeds
        if seed.name in loaded and seed.csv_path.exists()
    ]
    loaded_at = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    con.execute(LOADED_DDL)
    current = dict(con.execute("select seed_name, file_sha256 from audit.seeds_loaded").fetchall())
    changed = [(name, digest) for name, digest in rows if current.get(name) != digest]
    if not changed:  # a build that loaded nothing new changes no byte
        return
    con.execute("begin")
    for name, digest in changed:
        con.execute("delete from audit.seeds_loaded where seed_name = ?", [name])
        con.execute("insert into audit.seeds_loaded values (?, ?, ?)", [name, digest, loaded_at])
    con.execute("commit")
