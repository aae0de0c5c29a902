"""The whole pipeline on Spark: load the landing folder, build the dbt project.

dbt runs in this process (dbt-spark session mode), so it shares the Spark
session the loader created. Session mode cannot submit dbt Python models
(dbt-spark sends those to Databricks clusters only), so the project's Python
models (found in the manifest) are executed here, with their own code, on
DataFrames read from Spark; dbt builds what comes before them and, after
them, what depends on them.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from convo_warehouse.lib.dbt_commands import GRAIN_TESTS, production_build
from convo_warehouse.spark.landing import load_landing_spark
from convo_warehouse.spark.session import get_spark
from convo_warehouse.spark.target import SPARK_TARGET_PATHS

PROJECT_DIR = Path(__file__).resolve().parents[3]
TARGET_PATH = SPARK_TARGET_PATHS["spark"]


class SparkPipelineError(RuntimeError):
    """A step of the Spark pipeline failed; the message names the step."""


@dataclass(frozen=True)
class _Ref:
    """What a Python model's ``dbt.ref(name)`` returns: ``.df()`` gives pandas,
    ``.select(*columns)`` narrows it first (as on a DuckDB relation)."""

    spark: object
    relation: str
    columns: tuple[str, ...] = ()

    def select(self, *columns: str) -> "_Ref":
        return replace(self, columns=columns)

    def df(self):
        table = self.spark.table(self.relation)
        return (table.select(*self.columns) if self.columns else table).toPandas()


class _Config:
    """``dbt.config``: a no-op when called (the manifest holds the config); ``.get``
    reads the model's config from the manifest, as dbt's compiled code does."""

    def __init__(self, values: dict) -> None:
        self._values = values

    def __call__(self, **_: object) -> None:
        return None

    def get(self, key: str, default: object = None) -> object:
        return self._values.get(key, default)


class _DbtShim:
    """The part of dbt's Python-model API our models use (``ref``, ``config``)."""

    def __init__(self, spark, relations: dict[str, str], config: dict | None = None) -> None:
        self._spark = spark
        self._relations = relations
        self.config = _Config(config or {})

    def ref(self, name: str) -> _Ref:
        return _Ref(self._spark, self._relations[name])


def dbt(args: list[str], target: str = "spark") -> None:
    """Run one dbt command on the ``target`` output (``spark``: in this process's session;
    ``spark_thrift``: through the Thrift server) in this process; raise on failure."""
    from dbt.cli.main import dbtRunner

    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    full = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--target", target,
        "--target-path", str(PROJECT_DIR / SPARK_TARGET_PATHS[target]),
    ]
    result = dbtRunner().invoke(full)
    if not result.success:
        raise SparkPipelineError(f"dbt {' '.join(args)} failed on Spark (see logs/dbt.log)")


def _manifest_nodes(target_path: str | None = None) -> dict:
    return json.loads((PROJECT_DIR / (target_path or TARGET_PATH) / "manifest.json").read_text())["nodes"]


def python_model_names() -> list[str]:
    return sorted(
        node["name"]
        for node in _manifest_nodes().values()
        if node["resource_type"] == "model" and node.get("language") == "python"
    )


def run_python_models(spark, names: list[str] | None = None, target_path: str | None = None) -> list[str]:
    """Execute the project's Python models (``names``, default all) in dependency order; return their names.
    ``target_path``: the dbt target folder whose manifest to read (default ``target-spark``)."""
    nodes = _manifest_nodes(target_path)
    relations = {
        node["name"]: f"{node['schema']}.{node['alias']}"
        for node in nodes.values()
        if node["resource_type"] in ("model", "seed")
    }
    python_models = {
        unique_id: node
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model" and node.get("language") == "python"
        and (names is None or node["name"] in names)
    }
    done: list[str] = []
    pending = dict(python_models)
    while pending:
        ready = [
            unique_id
            for unique_id, node in pending.items()
            if not any(parent in pending for parent in node["depends_on"]["nodes"])
        ]
        for unique_id in sorted(ready):
            node = pending.pop(unique_id)
            frame = _execute_python_model(spark, node, relations)
            schema, name = relations[node["name"]].split(".")
            spark.sql(f"create database if not exists {schema}")
            spark.createDataFrame(frame).write.mode("overwrite").format("parquet").saveAsTable(
                f"{schema}.{name}"
            )
            done.append(node["name"])
    return done


def python_model_steps(target_path: str | None = None) -> list[tuple[str, list[str]]]:
    """The build as alternating steps: ("dbt", selection args) and ("python", model names).

    The dbt steps' arguments are ``--select``/``--exclude`` lists; the caller
    also excludes the Python models themselves from every dbt step.

    dbt-spark cannot run Python models, so dbt builds what needs none of them
    not yet run, then the Python models whose inputs are built run here, then
    dbt builds what they unblocked, and so on (the stage classifier is a
    Python model early in the graph; the statistics ones come late).
    """
    nodes = _manifest_nodes(target_path)
    python_models = {
        unique_id: node["name"]
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model" and node.get("language") == "python"
    }
    children: dict[str, set[str]] = {}
    for unique_id, node in nodes.items():
        for parent in node.get("depends_on", {}).get("nodes", []):
            children.setdefault(parent, set()).add(unique_id)

    def downstream(unique_id: str) -> set[str]:
        seen, stack = set(), [unique_id]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    pending = set(python_models)
    steps: list[tuple[str, list[str]]] = []
    selected: list[str] | None = None  # the first dbt step selects everything not excluded
    while True:
        excluded = [f"{python_models[unique_id]}+" for unique_id in sorted(pending)]
        dbt_args = ([] if selected is None else ["--select", *selected]) + (["--exclude", *excluded] if excluded else [])
        if selected is None or selected:
            steps.append(("dbt", dbt_args))
        if not pending:
            return steps
        blocked = set().union(*(downstream(unique_id) for unique_id in pending))
        ready = sorted(unique_id for unique_id in pending if unique_id not in blocked)
        steps.append(("python", [python_models[unique_id] for unique_id in ready]))
        pending -= set(ready)
        selected = [f"{python_models[unique_id]}+" for unique_id in ready]


def _execute_python_model(spark, node: dict, relations: dict[str, str]):
    path = PROJECT_DIR / node["original_file_path"]
    spec = importlib.util.spec_from_file_location(f"convo_python_model_{node['name']}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.model(_DbtShim(spark, relations, node.get("config")), spark)


# What the stage classifier reads and writes (lib/classify): copied between
# Spark and an in-memory DuckDB, where the classifier runs unchanged.
CLASSIFIER_INPUTS = ("staging.stg_events", "scope.scope_conversation_lifecycle")
CLASSIFIER_OUTPUTS = (
    "classification.stage_classifications",
    "classification.llm_calls",
    "classification.message_sentiment",
    "classification.message_embeddings",
    "classification.conversation_judgments",
)


def classify_on_spark(spark, mode: str | None = None):
    """Run the stage classifier on Spark's transcripts; results go back to Spark.

    Returns the classifier's ``ClassifyStats`` and ``table_counts`` (rows in
    its tables after the run).

    The classifier's rules run as set-based DuckDB SQL, so its inputs and its
    earlier results (the cache: unchanged transcripts are not classified
    again) are copied from Spark into an in-memory DuckDB, and its tables are
    written back.
    """
    import duckdb

    from convo_warehouse.lib.classify.runner import classify_warehouse, table_counts

    con = duckdb.connect()
    for relation in (*CLASSIFIER_INPUTS, *CLASSIFIER_OUTPUTS):
        schema, table = relation.split(".")
        if not spark.catalog.tableExists(relation):
            continue
        table_on_spark = spark.table(relation)
        frame = table_on_spark.toPandas()
        con.execute(f"create schema if not exists {schema}")
        # typed from Spark's schema: pandas alone types an empty column (an
        # embedding list) as an integer, which would then be written back
        columns = ", ".join(f'"{field.name}" {_duckdb_type(field.dataType.simpleString())}'
                            for field in table_on_spark.schema.fields)
        con.execute(f"create table {relation} ({columns})")
        con.register("_spark_frame", frame)
        con.execute(f"insert into {relation} select * from _spark_frame")
        con.unregister("_spark_frame")
    stats = classify_warehouse(con, mode=mode)
    for relation in CLASSIFIER_OUTPUTS:
        frame = con.execute(f"select * from {relation}").df()
        for column, kind, *_ in con.execute(f"describe {relation}").fetchall():
            if kind.endswith("[]"):  # Spark takes Python lists, not the NumPy arrays pandas holds
                frame[column] = frame[column].map(lambda value: None if value is None else [float(x) for x in value])
        spark.sql(f"create database if not exists {relation.split('.')[0]}")
        spark.createDataFrame(frame, schema=_spark_schema(con, relation)).write.mode("overwrite").format(
            "parquet"
        ).saveAsTable(relation)
    counts = table_counts(con)
    con.close()
    return stats, counts


# Spark's name of a column type (``simpleString()``) -> DuckDB's, one map for both directions
_DUCKDB_TYPES = {"string": "varchar", "boolean": "boolean", "double": "double", "float": "float", "int": "integer",
                 "bigint": "bigint", "timestamp": "timestamp", "date": "date"}
_SPARK_TYPES = {duckdb_type: spark_type for spark_type, duckdb_type in _DUCKDB_TYPES.items()}


def _duckdb_type(spark_type: str) -> str:
    """DuckDB's name for a Spark column type (``simpleString()``), lists included."""
    if spark_type.startswith("array<"):
        return _duckdb_type(spark_type[len("array<"):-1]) + "[]"
    return _DUCKDB_TYPES.get(spark_type.removesuffix("_ntz"), "varchar")


def _spark_schema(con, relation: str) -> str:
    """A Spark DDL schema for a DuckDB table (so empty tables keep their types)."""
    columns = con.execute(f"describe {relation}").fetchall()

    def spark_type(kind: str) -> str:
        if kind.endswith("[]"):  # a list: message_embeddings.embedding
            return f"array<{spark_type(kind[:-2])}>"
        return _SPARK_TYPES.get(kind.lower(), "string")

    return ", ".join(f"{name} {spark_type(kind)}" for name, kind, *_ in columns)


def run_spark_pipeline(landing_dir: Path, progress: bool = True) -> str:
    """Load new landing files and build the project: dbt and the Python models in turn."""
    from convo_warehouse.lib import dbt_state
    from convo_warehouse.spark.target import spark_state_dir

    started = run_started()
    spark = get_spark()
    report = load_landing_spark(spark, landing_dir, progress=progress)
    dbt(["parse"])
    python_models = python_model_names()
    manifest_path = PROJECT_DIR / TARGET_PATH / "manifest.json"
    # as the Dagster job: what no load reaches is left out while the project stays as the last
    # complete run left it (lib/dbt_state.py)
    left_out = dbt_state.left_out_if_unchanged(spark_state_dir(), PROJECT_DIR, json.loads(manifest_path.read_text()))
    ran: list[str] = []
    for kind, arguments in python_model_steps():
        if kind == "python":
            ran += run_python_models(spark, arguments)
            dbt(["test", "--select", *arguments, "--exclude", GRAIN_TESTS])
        else:
            excluded = arguments[arguments.index("--exclude") + 1:] if "--exclude" in arguments else []
            selection = arguments[: arguments.index("--exclude")] if "--exclude" in arguments else arguments
            dbt([*production_build(multi_step=True, exclude=[*excluded, *python_models, *left_out]), *selection])
    record_run(started)
    dbt_state.keep_in(spark_state_dir(), PROJECT_DIR, manifest_path)
    return f"{report.summary()}; Python models run in-session: {', '.join(ran)}"


def run_started() -> str:
    """Now, in UTC, as ``record_steps_scope`` takes it: when a run's first step starts."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def record_steps_args(started: str) -> list[str]:
    """``dbt run-operation record_steps_scope`` for a run that started at ``started``."""
    return ["run-operation", "record_steps_scope", "--args", json.dumps({"since": started})]


def record_run(started: str) -> None:
    """Every step succeeded: record the run's scope and the partitions it rewrote in the ledgers.

    On DuckDB the on-run-end hook does it when one dbt invocation built
    every incremental model; here the build is several invocations around
    the Python models, so the driver does it after the last one, through
    dbt's connection (the session, or a Thrift server): ``record_steps_scope``
    (macros/incremental/run_ledgers.sql). A run that failed before records
    nothing, and the next one covers its scope again. The models a step
    built whole (first build, --full-refresh) recorded that themselves
    since ``started``, and get no day rows.
    """
    dbt(record_steps_args(started))
