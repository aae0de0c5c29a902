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
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from convo_warehouse.lib.dbt_commands import GRAIN_TESTS, production_build
from convo_warehouse.lib.resident import run_every, run_inputs
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


# What the stage classifier reads and writes (lib/classify), copied between Spark
# and an in-memory DuckDB where the classifier runs unchanged, and how much of
# each: "all" rows; the rows of the "conversations" whose transcripts it reads
# (runner.conversations_to_read: those a run recomputed, so an hour's run copies
# an hour's transcripts, not the history); "none" (a log it only appends to).
# Copied in first, the tables that say which conversations those are.
CLASSIFIER_TABLES = {
    "scope.scope_conversation_lifecycle": "all",
    "marts.fct_conversations": "all",
    "classification.transcript_preparations": "all",
    "classification.stage_classifications": "all",
    "staging.stg_events": "conversations",
    "classification.message_sentiment": "conversations",
    "classification.message_embeddings": "conversations",
    "classification.conversation_judgments": "conversations",
    "classification.llm_calls": "none",
}
# the columns the classifier reads of the tables it does not write
CLASSIFIER_INPUT_COLUMNS = {
    "scope.scope_conversation_lifecycle": ("conversation_id", "recomputed_at"),
    "marts.fct_conversations": ("conversation_id", "started"),
    "staging.stg_events": ("conversation_id", "event_id", "event_at", "event_type", "content", "sentiment"),
}
CLASSIFIER_OUTPUTS = tuple(relation for relation in CLASSIFIER_TABLES if relation not in CLASSIFIER_INPUT_COLUMNS)


def classify_on_spark(spark, mode: str | None = None):
    """Run the stage classifier on Spark's transcripts; results go back to Spark.

    Returns the classifier's ``ClassifyStats`` and ``table_counts`` (rows in
    its tables after the run, counted on Spark).

    The classifier's rules run as set-based DuckDB SQL, so what it reads is
    copied from Spark into an in-memory DuckDB (``CLASSIFIER_TABLES``: the
    transcripts and earlier results of the conversations it will read), and
    what it changed goes back: appended when it only added rows (an hour's new
    messages and conversations), the table rewritten when it replaced some (a
    conversation reclassified after late events).
    """
    import duckdb

    from convo_warehouse.lib.classify.runner import classify_warehouse, conversations_to_read

    con = duckdb.connect()
    for relation, extent in CLASSIFIER_TABLES.items():
        if extent == "all":
            _copy_to_duckdb(spark, con, relation, extent)
    to_read = conversations_to_read(con, mode)
    conversations = None if to_read is None else spark.createDataFrame(
        con.execute(f"select conversation_id from {to_read}").df(), "conversation_id string"
    )
    for relation, extent in CLASSIFIER_TABLES.items():
        if extent != "all":
            _copy_to_duckdb(spark, con, relation, extent, conversations)
    for relation in CLASSIFIER_OUTPUTS:
        if _exists(con, relation):
            con.execute(f"create temp table {_before(relation)} as select * from {relation}")
    stats = classify_warehouse(con, mode=mode)
    for relation in CLASSIFIER_OUTPUTS:
        _write_back(spark, con, relation, conversations if CLASSIFIER_TABLES[relation] == "conversations" else None)
    counts = _table_counts(spark, con)
    con.close()
    return stats, counts


def _before(relation: str) -> str:
    """The DuckDB copy of ``relation`` as the classifier found it."""
    return "before_" + relation.replace(".", "__")


def _staged(relation: str) -> str:
    """The Spark table a rewrite of ``relation`` is written to before it takes its name."""
    return f"{relation}__classified"


def _exists(con, relation: str) -> bool:
    """Whether ``con`` holds ``relation`` (``schema.table``, or a temp table's bare name)."""
    schema, table = relation.split(".") if "." in relation else ("main", relation)
    return con.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, table]
    ).fetchone()[0] > 0


def _copy_to_duckdb(spark, con, relation: str, extent: str, conversations=None) -> None:
    """Copy ``relation`` from Spark into the same name in ``con``: ``extent`` "all" its rows,
    "conversations" the rows of the ``conversations`` DataFrame's ids (None: all), "none" no row."""
    staged = _staged(relation)
    if not spark.catalog.tableExists(relation) and spark.catalog.tableExists(staged):
        spark.sql(f"alter table {staged} rename to {relation}")  # a swap (_write_back) a run did not finish
    if not spark.catalog.tableExists(relation):
        return
    table = spark.table(relation)
    columns = CLASSIFIER_INPUT_COLUMNS.get(relation)
    if columns:
        table = table.select(*[column for column in columns if column in table.columns])
    if relation == "staging.stg_events":
        table = table.where("event_type in ('user_message', 'agent_message')")
    if extent == "conversations" and conversations is not None:
        table = table.join(conversations.hint("broadcast"), "conversation_id", "left_semi")
    schema = relation.split(".")[0]
    con.execute(f"create schema if not exists {schema}")
    # typed from Spark's schema: pandas alone types an empty column (an
    # embedding list) as an integer, which would then be written back
    # (if not exists: the classifier's own DDL may have made it already, runner.conversations_to_read)
    con.execute(f"create table if not exists {relation} "
                f"({', '.join(_duckdb_column(field) for field in table.schema.fields)})")
    if extent == "none":
        return
    con.register("_spark_frame", table.toPandas())
    con.execute(f"insert into {relation} by name select * from _spark_frame")
    con.unregister("_spark_frame")


def _duckdb_column(field) -> str:
    return f'"{field.name}" {_duckdb_type(field.dataType.simpleString())}'


def _write_back(spark, con, relation: str, conversations) -> None:
    """Store on Spark what the classifier changed in ``relation``: append the rows it added,
    or, if it removed or replaced any, rewrite the table: the rows of conversations it did
    not read (``conversations``: the ids whose rows were copied; None: every row was) and its copy."""
    before = _before(relation)
    if not _exists(con, before):
        con.execute(f"create temp table {before} as select * from {relation} limit 0")
    replaced = con.execute(f"select count(*) from (from {before} except all from {relation})").fetchone()[0]
    if replaced == 0:
        con.execute(f"create or replace temp table added_rows as from {relation} except all from {before}")
        if con.execute("select count(*) from added_rows").fetchone()[0] == 0 and spark.catalog.tableExists(relation):
            return
        _spark_frame(spark, con, relation, "from added_rows").write.mode("append").format("parquet").saveAsTable(
            relation)
        return
    rows = _spark_frame(spark, con, relation, f"from {relation}")
    if conversations is not None and spark.catalog.tableExists(relation):
        kept = spark.table(relation).join(conversations.hint("broadcast"), "conversation_id", "left_anti")
        rows = kept.unionByName(rows)
    # Spark cannot overwrite a table it reads in the same statement: write a new one, then swap
    staged = _staged(relation)
    spark.sql(f"drop table if exists {staged}")
    rows.write.mode("overwrite").format("parquet").saveAsTable(staged)
    spark.sql(f"drop table if exists {relation}")
    spark.sql(f"alter table {staged} rename to {relation}")


def _spark_frame(spark, con, relation: str, query: str):
    """A Spark DataFrame of ``query``'s rows in ``con``, with ``relation``'s column types."""
    frame = con.execute(query).df()
    for column, kind, *_ in con.execute(f"describe {relation}").fetchall():
        if kind.endswith("[]"):  # Spark takes Python lists, not the NumPy arrays pandas holds
            frame[column] = frame[column].map(lambda value: None if value is None else [float(x) for x in value])
    spark.sql(f"create database if not exists {relation.split('.')[0]}")
    return spark.createDataFrame(frame, schema=_spark_schema(con, relation))


def _table_counts(spark, con) -> dict[str, int]:
    """``runner.table_counts`` after the write-back: the tables copied whole counted in ``con``,
    the others (``con`` holds the rows of the conversations read) on Spark."""
    from convo_warehouse.lib.classify.runner import table_counts

    counts = table_counts(con)
    for key, relation in (("sentiment_rows", "classification.message_sentiment"),
                          ("embedding_rows", "classification.message_embeddings"),
                          ("judgment_rows", "classification.conversation_judgments")):
        if CLASSIFIER_TABLES[relation] != "all":
            counts[key] = spark.table(relation).count() if spark.catalog.tableExists(relation) else 0
    return counts


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
    clock = _StepClock(progress)
    spark = get_spark()
    clock.lap("Spark session")
    report = load_landing_spark(spark, landing_dir, progress=progress)
    clock.lap("load")
    dbt(["parse"])
    clock.lap("dbt parse")
    python_models = python_model_names()
    manifest_path = PROJECT_DIR / TARGET_PATH / "manifest.json"
    # as the Dagster job: what no load reaches is left out while the project stays as the last
    # complete run left it (lib/dbt_state.py)
    manifest = json.loads(manifest_path.read_text())
    left_out = dbt_state.as_selection(dbt_state.left_out_if_unchanged(spark_state_dir(), PROJECT_DIR, manifest), manifest)
    ran: list[str] = []
    for number, (kind, arguments) in enumerate(python_model_steps(), start=1):
        if kind == "python":
            ran += run_python_models(spark, arguments)
            dbt(["test", "--select", *arguments, "--exclude", GRAIN_TESTS])
            clock.lap(f"step {number}: Python models {', '.join(arguments)} and their tests")
        else:
            excluded = arguments[arguments.index("--exclude") + 1:] if "--exclude" in arguments else []
            selection = arguments[: arguments.index("--exclude")] if "--exclude" in arguments else arguments
            dbt([*production_build(multi_step=True, exclude=[*excluded, *python_models, *left_out]), *selection])
            clock.lap(f"step {number}: dbt build {' '.join(selection) or '(first)'}")
    record_run(started)
    dbt_state.keep_in(spark_state_dir(), PROJECT_DIR, manifest_path)
    clock.lap("run recorded")
    clock.finished()
    return f"{report.summary()}; Python models run in-session: {', '.join(ran)}"


def run_spark_pipeline_every(
    landing_dir: Path,
    seconds: float,
    stop: threading.Event,
    progress: bool = True,
    run: Callable[[Path, bool], str] | None = None,
) -> None:
    """``run`` (``run_spark_pipeline``) now, then after each ``seconds`` when the landing folder or
    the project changed since the last run that succeeded, in this process until ``stop`` is set
    (``lib/resident.py``). Every run after the first finds this process's Spark JVM started and
    its code compiled. Raises ``SparkPipelineError`` after ``RESIDENT_FAILURES_LIMIT`` failures in
    a row."""
    run = run or run_spark_pipeline
    run_every(seconds, stop, lambda: run(landing_dir, progress), lambda: run_inputs(landing_dir, PROJECT_DIR),
              failure=SparkPipelineError)


class _StepClock:
    """Prints how long each step of a run took (``progress``), so a slow run says where."""

    def __init__(self, progress: bool) -> None:
        import time

        self._progress, self._now = progress, time.perf_counter
        self._started = self._last = self._now()

    def lap(self, step: str) -> None:
        now = self._now()
        if self._progress:
            print(f"spark run: {step}: {now - self._last:.1f} s", flush=True)
        self._last = now

    def finished(self) -> None:
        if self._progress:
            print(f"spark run: finished in {self._now() - self._started:.1f} s", flush=True)


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
