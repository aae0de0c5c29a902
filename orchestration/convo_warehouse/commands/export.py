"""``convo-warehouse export``: one published table to CSV or Parquet, for analysts.

Reads the published snapshot (never the warehouse, so it works while a run
writes). The file is readable by its owner only unless ``CONVO_FILE_MODE``
says otherwise (``lib/file_modes.py``). ``--since`` keeps rows whose date column (the table's first DATE
column, else its first TIMESTAMP column) is on or after that day.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from convo_warehouse.commands._reading import echo_json, json_option, serving_dir_option
from convo_warehouse.lib import file_modes, serving

_DATE_TYPES = ("DATE",)
_TIME_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")


def date_column(con, table: str) -> str | None:
    """The column ``--since`` filters on: the first DATE column, else the first TIMESTAMP column."""
    schema, name = table.split(".")
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    for types in (_DATE_TYPES, _TIME_TYPES):
        for column, data_type in columns:
            if data_type in types:
                return column
    return None


def export_table(
    snapshot: serving.Snapshot,
    table: str,
    out: Path,
    file_format: str,
    since: dt.date | None = None,
) -> int:
    """Write ``table`` of ``snapshot`` to ``out``; return the number of rows written."""
    import pyarrow.csv
    import pyarrow.parquet

    table = serving.qualified(table)
    if table not in snapshot.tables:
        known = ", ".join(sorted(name.removeprefix("marts.") for name in snapshot.tables))
        raise click.ClickException(
            f"unknown table {table!r} in snapshot {snapshot.version}. Published tables: {known} "
            "(a bare name means marts.<name>)."
        )
    con = snapshot.connect()
    try:
        where, params = "", []
        if since is not None:
            column = date_column(con, table)
            if column is None:
                raise click.ClickException(
                    f"{table} has no date or timestamp column, so --since cannot filter it: export it without --since."
                )
            where, params = f'where cast("{column}" as date) >= ?', [since]
        data = con.execute(f"select * from {table} {where}", params).to_arrow_table()
    finally:
        con.close()
    file_modes.make_dirs(out.parent)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    # Created empty with the file mode (CONVO_FILE_MODE, default owner only) before any row is written.
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_modes.file_mode()))
    file_modes.restrict(temporary)
    if file_format == "parquet":
        pyarrow.parquet.write_table(data, temporary, compression="zstd")
    else:
        pyarrow.csv.write_csv(data, temporary)
    os.replace(temporary, out)  # a half-written file never has the requested name
    return data.num_rows


@click.command()
@click.option("--table", "table", required=True, help="Published table: a mart name (metrics_daily) or schema.table.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only rows on or after this day (YYYY-MM-DD), by the table's first date column.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    help="Output format (default: from the --out extension, else csv).",
)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="File to write.")
@serving_dir_option
@json_option
def export(table: str, since: dt.datetime | None, file_format: str | None, out: str, serving_dir: str | None,
           as_json: bool) -> None:
    """Export one table of the published snapshot to CSV or Parquet.

    Reads the newest published snapshot, so it never waits for (or blocks) a
    run. Example: convo-warehouse export --table metrics_daily --since 2026-11-01
    --format parquet --out metrics.parquet
    """
    path = Path(out)
    try:
        file_modes.file_mode()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if file_format is None:
        file_format = "parquet" if path.suffix.lower() == ".parquet" else "csv"
    try:
        snapshot = serving.current_snapshot(serving.serving_path(serving_dir))
    except serving.SnapshotNotFoundError as error:
        raise click.ClickException(str(error)) from None
    rows = export_table(snapshot, table, path, file_format, since.date() if since else None)
    if as_json:
        echo_json({"table": serving.qualified(table), "rows": rows, "out": str(path), "format": file_format,
                   "snapshot": snapshot.version, "data_up_to": snapshot.manifest.get("newest_event_at")})
        return
    click.echo(
        f"wrote {rows:,} rows of {serving.qualified(table)} to {path} ({file_format}; "
        f"snapshot {snapshot.version}, data up to {snapshot.manifest.get('newest_event_at') or 'n/a'})"
    )
