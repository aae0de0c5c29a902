"""Dagster resources: the DuckDB warehouse and the landing folder; dbt on DuckDB and on Spark."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from packaging import version

from convo_warehouse.lib.dbt_process import without_dbt_core
from convo_warehouse.lib.warehouse import connect, landing_path, warehouse_path

with without_dbt_core():
    from dagster_dbt import DbtCliResource


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


class _DbtCliWithoutAdapter(DbtCliResource):
    """dbt without the adapter handle dagster-dbt opens in Dagster's own
    process before each invocation, for optional row-count and column
    metadata this project does not fetch."""

    def _initialize_dbt_core_adapter(self, args):
        return None


class ProjectDbtCliResource(_DbtCliWithoutAdapter):
    """dbt on the DuckDB targets, run by this virtualenv's ``dbt``.

    dagster-dbt asks the executable for its version (``dbt --version`` in a
    subprocess, which starts dbt once more at the first dbt step of every run); this
    virtualenv's ``dbt`` is the installed dbt-core, so its version is read
    from the package.
    """

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent != Path(sys.executable).parent:
            return super()._cli_version
        return version.parse(importlib.metadata.version("dbt-core"))


class SparkDbtCliResource(_DbtCliWithoutAdapter):
    """dbt on the ``spark`` target, run by the Spark virtualenv's ``dbt``.

    dbt-spark lives only in the Spark virtualenv, so the adapter handle
    dagster-dbt opens in Dagster's process failed and logged a "Could not find
    adapter type spark" traceback at every dbt step; none is taken.

    Each invocation starts from the partial parse of its own output's target
    folder (``target-spark``, ``target-spark-thrift``; dagster-dbt would copy
    the DuckDB target's, whose other profile makes dbt parse everything again).
    With ``CONVO_SPARK_THRIFT=local`` the local Thrift server is started first
    (``convo_warehouse.spark.target``).
    """

    def cli(self, args, *, context=None, target_path=None, **kwargs):
        import shutil

        from convo_warehouse.spark.target import REPO_ROOT, SPARK_TARGET_PATHS, local_thrift, start_thrift_server

        if local_thrift():
            start_thrift_server()
        target_path = target_path or self._get_unique_target_path(context=context)
        if not target_path.is_absolute():
            target_path = Path(self.project_dir) / target_path
        own = REPO_ROOT / SPARK_TARGET_PATHS.get(self.target or "spark", "target-spark") / "partial_parse.msgpack"
        if own.exists() and not (target_path / own.name).exists():
            target_path.mkdir(parents=True, exist_ok=True)
            shutil.copy(own, target_path / own.name)
        return super().cli(args, context=context, target_path=target_path, **kwargs)
