"""What every read command shares: where it reads, and its ``--json`` output.

Read commands (``funnel``, ``experiments``, ``patterns``, ``export``) read the
published snapshot (``CONVO_SERVING_DIR``, else ``serving/`` beside the
warehouse), never the warehouse a run writes, so they work while
``convo-warehouse run`` holds it. ``--warehouse PATH`` reads a warehouse file
explicitly instead (read-only; it fails with an explanation while a run
writes it). ``--database`` is the old name of ``--warehouse``, kept hidden.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import math
from collections.abc import Callable, Iterator

import click


@dataclasses.dataclass(frozen=True)
class Source:
    """What a read command read: ``snapshot <version>`` or ``warehouse <path>``."""

    kind: str  # "snapshot" or "warehouse"
    name: str
    data_up_to: str | None = None

    def describe(self) -> str:
        if self.kind == "snapshot":
            return f"snapshot {self.name}, data up to {self.data_up_to or 'n/a'}"
        return f"warehouse {self.name}"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# The published snapshot a command reads or serves (every reading command, the dashboard, the API, export).
serving_dir_option = click.option(
    "--serving-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Snapshot folder (default: $CONVO_SERVING_DIR, else serving/ beside the warehouse).",
)


def read_options(command: Callable) -> Callable:
    """``--warehouse`` (and its hidden old name ``--database``) and ``--serving-dir``."""

    @serving_dir_option
    @click.option("--database", "database_alias", type=click.Path(dir_okay=False), default=None, hidden=True)
    @click.option("--warehouse", type=click.Path(dir_okay=False), default=None,
                  help="Read this DuckDB warehouse file instead of the published snapshot (read-only; busy while "
                       "a run writes it).")
    @functools.wraps(command)
    def wrapper(*args, warehouse=None, database_alias=None, serving_dir=None, **kwargs):
        if warehouse and database_alias and warehouse != database_alias:
            raise click.UsageError("--database is the old name of --warehouse: give one of them")
        return command(*args, warehouse=warehouse or database_alias, serving_dir=serving_dir, **kwargs)

    return wrapper


@contextlib.contextmanager
def open_marts(warehouse: str | None, serving_dir: str | None) -> Iterator[tuple[object, Source]]:
    """A read-only DuckDB connection (UTC) to the snapshot or, with ``warehouse``, to that file."""
    from convo_warehouse.lib import serving
    from convo_warehouse.lib.warehouse import WarehouseBusyError, connect, warehouse_path

    if warehouse:
        path = warehouse_path(warehouse)
        try:
            con = connect(path, read_only=True)
        except (FileNotFoundError, WarehouseBusyError) as error:
            raise click.ClickException(str(error)) from None
        source = Source("warehouse", str(path))
    else:
        try:
            snapshot = serving.current_snapshot(serving.serving_path(serving_dir))
        except serving.SnapshotNotFoundError as error:
            raise click.ClickException(str(error)) from None
        con = snapshot.connect()
        source = Source("snapshot", snapshot.version, snapshot.manifest.get("newest_event_at"))
    try:
        yield con, source
    except Exception as error:  # duckdb.CatalogException, without importing duckdb here
        if "does not exist" in str(error) and "Catalog Error" in str(error):
            raise click.ClickException(
                f"{source.describe()} lacks a table this command reads ({str(error).splitlines()[0]}): "
                "run `convo-warehouse run`, which builds the marts and publishes a new snapshot."
            ) from None
        raise
    finally:
        con.close()


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON instead of tables (rates as fractions 0..1, counts as integers).")


def jsonable(value):
    """A value for json.dumps: NaN -> null, dates and times -> ISO text, numpy scalars -> Python."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return value


def echo_json(payload) -> None:
    click.echo(json.dumps(jsonable(payload), indent=2, sort_keys=False))
