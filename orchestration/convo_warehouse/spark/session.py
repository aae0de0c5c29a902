"""The local Spark session, configured as the dbt ``spark`` target is.

dbt-spark's session mode asks ``SparkSession.builder.getOrCreate()`` for its
session, so a process that creates the session first (the loader, the engine
comparison) and then runs dbt in the same process shares one JVM and one
metastore. The settings below and ``server_side_parameters`` of the ``spark``
output in profiles.yml must agree; ``tests/spark/test_spark_target.py`` proves it.

With ``CONVO_SPARK_CONNECT`` set (``sc://127.0.0.1:<port>``: the Dagster job
sets it for its steps when it runs its own Spark server, ``CONVO_SPARK_THRIFT=local``)
the session is a Spark Connect client of that server instead: no JVM in this
process, the server's warehouse, metastore and settings.
"""

from __future__ import annotations

import os
from pathlib import Path


def spark_dir() -> Path:
    """Where the metastore (Derby), its log and the table files live."""
    return Path(os.environ.get("CONVO_SPARK_DIR", "data/spark")).resolve()


def spark_settings(directory: Path | None = None) -> dict[str, str]:
    """Spark configuration of the local session (the dbt ``spark`` target's)."""
    directory = directory or spark_dir()
    return {
        "spark.master": "local[2]",
        "spark.sql.warehouse.dir": f"{directory}/warehouse",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={directory}/metastore_db;create=true"
        ),
        # CONVO_SPARK_JAVA_OPTIONS: the JVM's own options, e.g. the JIT's first tier only for
        # small data (make test-spark; docs/spark.md)
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={directory} -Dderby.stream.error.file={directory}/derby.log "
            + os.environ.get("CONVO_SPARK_JAVA_OPTIONS", "")
        ),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        # day filters are literal lists (dates_listed), which prune both sides of a join on the
        # day statically; dynamic pruning would only add a copy of the other side's plan per join
        "spark.sql.optimizer.dynamicPartitionPruning.enabled": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "3g",
        # insert_overwrite replaces only the partitions a run writes rows to
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # DataFrames to and from pandas column by column (the classifier's copies, the Python models' inputs)
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # permissions set without a chmod process per file written (spark/java/, built by the Makefile)
        "spark.hadoop.fs.file.impl": "org.convowarehouse.hadoop.NioLocalFileSystem",
    }


def connect_url() -> str | None:
    """The Spark Connect server this process's steps use (``CONVO_SPARK_CONNECT``), if any."""
    return os.environ.get("CONVO_SPARK_CONNECT") or None


def get_spark(directory: Path | None = None):
    """The process's Spark session (created on first use), Hive metastore on; a Spark Connect
    session of the server ``CONVO_SPARK_CONNECT`` names when it is set."""
    from pyspark.sql import SparkSession

    remote = connect_url()
    if remote:
        # the server was started with spark_settings(): its session has them all
        return SparkSession.builder.remote(remote).getOrCreate()
    directory = directory or spark_dir()
    directory.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName("convo-warehouse").enableHiveSupport()
    for key, value in spark_settings(directory).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
