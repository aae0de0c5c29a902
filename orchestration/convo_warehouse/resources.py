"""Dagster resources: the DuckDB warehouse and the landing folder; dbt on the Spark target."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from convo_warehouse.lib.warehouse import connect, landing_path, warehouse_path


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file and the landing folder it loads from.

    Empty strings fall back to ``CONVO_DUCKDB_PATH`` / ``CONVO_LANDING_DIR`` and
    then to the defaults, read when the resource is used (not at import).
    """

    database_path: str = ""
    landing_dir: str = ""

    @property
    def database(self) -> Path:
        return warehouse_path(self.database_path or None)

    @property
    def landing(self) -> Path:
        return landing_path(self.landing_dir or None)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.database, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


class SparkDbtCliResource(DbtCliResource):
    """dbt on the ``spark`` target, run by the Spark virtualenv's ``dbt``.

    dagster-dbt also opens the target's adapter inside Dagster's own process
    (for optional row-count and column metadata this project does not fetch).
    dbt-spark lives only in the Spark virtualenv, so that failed and logged a
    "Could not find adapter type spark" traceback at every dbt step; here no
    adapter handle is taken.
    """

    def _initialize_dbt_core_adapter(self, args):
        return None
