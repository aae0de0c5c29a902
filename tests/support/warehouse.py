"""Temporary warehouses built by the real loader and dbt, and plain connections to them.

A test gets a ``Warehouse`` (its own DuckDB file, landing folder and dbt target
folder), drops files into ``warehouse.landing``, calls ``warehouse.load()`` and
``warehouse.build(...)`` and queries the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[2]

# Parsing the project costs seconds; it is done once per session and the
# manifest reused for every warehouse (all test warehouses are files named
# warehouse.duckdb, so relation names are the same).
_MANIFESTS: dict[Path, object] = {}

# What the loader's rows become (staging, quarantine, reconciliation) with their data tests: the
# build of a test that reads nothing further
STAGED = "+reconciliation +rejected_events"

# dbt commands whose JSON output is what they are for (every other call skips writing it)
JSON_COMMANDS = ("parse", "docs")

# dbt commands that run nodes on the profile's threads. In this process they run on one:
# a crash in a C extension (DuckDB's Python binding driven by several threads at once)
# would take the whole test worker down, with every test left in its file, and CI saw two
# such segfaults inside in-process runs on several threads. A pipeline run (its own
# process, the profile's threads) still runs nodes side by side.
THREADED_COMMANDS = ("build", "run", "test", "seed", "compile", "show")


def forget_parsed_manifest(target_dir: Path) -> None:
    """The next dbt call with ``target_dir`` parses the project again (it was edited)."""
    _MANIFESTS.pop(target_dir, None)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in this process's environment, which in-process dbt reads, until the block ends."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _parse_in_process(*options: str):
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(["parse", "--quiet", *options])
    if not result.success:
        raise AssertionError(f"dbt parse failed: {result.exception}")
    return result.result


def _session_manifest(target_dir: Path):
    if target_dir not in _MANIFESTS:
        from support.pipeline import parse_env, shared_target

        if target_dir == shared_target():
            # The pipeline runs' target: parsed as a run parses it (project.ensure_manifest(), in
            # full once per test process), then read here from that parse (partially: the same
            # profile, the link's warehouse path). The manifest serves every warehouse named
            # warehouse.duckdb, whatever its folder.
            from convo_warehouse.project import ensure_manifest

            # The project as shipped, whichever copy's dbt settings this process holds now (the
            # first call may come from a copy's parse: start_from_session_parse)
            with _environment({**parse_env(), "DBT_PROJECT_DIR": str(REPO_ROOT)}):
                ensure_manifest()
                # manifest.json left as that parse wrote it: ensure_manifest() knows its own by its time
                _MANIFESTS[target_dir] = _parse_in_process("--no-write-json")
            # a seed read from a copy's folder would give every later build that copy's edits
            elsewhere = {node.root_path for node in _MANIFESTS[target_dir].nodes.values()
                         if node.resource_type == "seed" and Path(node.root_path).resolve() != REPO_ROOT}
            assert not elsewhere, f"the session parse reads seeds outside the project: {elsewhere}"
        else:
            # A copy of the project (or the project in a target of its own): parsed with the
            # link's warehouse path, from the session parse's partial-parse file when it has
            # none yet (start_from_session_parse), so dbt reads only the files the copy changed.
            start_from_session_parse(target_dir)
            with _environment({"CONVO_DUCKDB_PATH": parse_env()["CONVO_DUCKDB_PATH"]}):
                _MANIFESTS[target_dir] = _parse_in_process()
    manifest = _MANIFESTS[target_dir]
    # dbt marks a compiled node as holding its ephemeral models' CTEs and, in
    # a later invocation on the same manifest object, renders the node again
    # but skips putting them back ("__dbt__cte__... does not exist"): every
    # invocation starts from uncompiled nodes, as a fresh parse would.
    for node in manifest.nodes.values():
        if getattr(node, "extra_ctes_injected", False):
            node.extra_ctes_injected = False
            node.extra_ctes = []
            node._pre_injected_sql = None
    return manifest


def seed_content_tests(manifest) -> list[str]:
    """The data tests of ``manifest`` (a parsed project) a production build runs (the grain tests
    it leaves out: ``dbt_commands.GRAIN_TESTS``) that read nothing but seeds, directly or through
    models built from seeds alone (stg_seeds__*): their result depends only on the project's
    files, the same for every warehouse built from the same project."""
    from convo_warehouse.lib.dbt_commands import GRAIN_TESTS

    left_out_tag = GRAIN_TESTS.removeprefix("tag:")
    only_seeds: dict[str, bool] = {}

    def reads_only_seeds(unique_id: str) -> bool:
        if unique_id not in only_seeds:
            node = manifest.nodes.get(unique_id)
            if node is None or node.resource_type not in ("seed", "model", "test"):
                only_seeds[unique_id] = False  # a source, or a node without parents of its own
            elif node.resource_type == "seed":
                only_seeds[unique_id] = True
            else:
                parents = node.depends_on.nodes
                only_seeds[unique_id] = bool(parents) and all(reads_only_seeds(parent) for parent in parents)
        return only_seeds[unique_id]

    return sorted(
        node.name for unique_id, node in manifest.nodes.items()
        if node.resource_type == "test" and left_out_tag not in node.tags and reads_only_seeds(unique_id)
    )


def copy_project(folder: Path) -> Path:
    """A copy of the dbt project in ``folder``, to edit (a seed, a var, a model) and build with
    ``Warehouse(root, target_dir, project_dir=folder)``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(REPO_ROOT / name, folder / name)
    for name in ("models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(REPO_ROOT / name, folder / name)
    return folder


def start_from_session_parse(target_dir: Path) -> None:
    """Give ``target_dir`` (a copy of the project's, empty) the session parse's partial-parse file.

    dbt decides whether it may parse partially from its version, the vars, the profile's
    connection settings (the warehouse path among them: parse with ``parse_env()``'s) and
    each ``dbt_project.yml``; the files it compares by their path inside the project and
    their checksum, not by the folder the project is in. So a copy of the project parses
    only the files the copy changed, where it paid a full parse before; a copy whose
    ``dbt_project.yml`` changed is parsed in full, as dbt would parse the project itself.
    A seed the copy left as shipped keeps its parsed node, which names the project's own
    folder (the same file content): edit a copy before its parse, or parse it again after
    (``forget_parsed_manifest``), as every edit needs anyway.
    """
    from support.pipeline import shared_target

    saved = target_dir / "partial_parse.msgpack"
    if target_dir == shared_target() or saved.exists():
        return
    _session_manifest(shared_target())  # the session parse exists from here on
    target_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shared_target() / "partial_parse.msgpack", saved)


def parsing_from_the_session(root: Path, target_dir: Path) -> dict[str, str]:
    """``CONVO_DUCKDB_PATH`` and ``DBT_TARGET_PATH`` for a dbt process (or a pipeline run) on the
    warehouse ``root / "warehouse.duckdb"`` with the target ``target_dir``: the warehouse named
    through this process's link (support/pipeline.py), the target started from the session
    parse, so the process parses only the files its project copy changed."""
    from support.pipeline import pipeline_env

    start_from_session_parse(target_dir)
    return {**pipeline_env(root), "DBT_TARGET_PATH": str(target_dir)}


def in_fresh_interpreter(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``script`` run by a new Python process (what it imports starts from nothing); it must succeed."""
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def open_warehouse(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection to a warehouse file, configured as dbt's (``profiles.yml``).

    dbt run in this process keeps its connection open, and DuckDB refuses a
    second one to the same file with another configuration.
    """
    from convo_warehouse.lib.warehouse import STORAGE_VERSION

    config = {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
    return duckdb.connect(str(path), read_only=read_only, config=config)


def frame(warehouse: "Warehouse", sql: str):
    """The rows of ``sql`` on ``warehouse`` as a pandas DataFrame."""
    con = open_warehouse(warehouse.path)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def undocumented_columns(manifest: dict, con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every model's columns, as built in the warehouse ``con``, that its YAML does not describe.

    The rule: every model and column has a description. A model's YAML may
    list only some of its columns (contracts, which make them exactly the
    table's, are on the marts), so the built relation says which columns
    there are. Ephemeral models build nothing; a model with no relation in
    this warehouse is reported under its name.
    """
    built: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in con.execute(
        "select schema_name, table_name, column_name from duckdb_columns() order by column_index"
    ).fetchall():
        built.setdefault((schema, table), []).append(column)
    missing: dict[str, list[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"]["materialized"] == "ephemeral":
            continue
        columns = built.get((node["schema"], node.get("alias") or node["name"]))
        if columns is None:
            missing[node["name"]] = ["(not built)"]
            continue
        described = {name for name, column in node["columns"].items() if column.get("description", "").strip()}
        if undescribed := [column for column in columns if column not in described]:
            missing[node["name"]] = undescribed
    return missing


def describe_failures(result) -> str:
    """What failed in a dbt invocation's ``result``: its exception, or each failed node's message."""
    if result.exception is not None:
        return str(result.exception)
    lines = []
    for node_result in getattr(result.result, "results", []) or []:
        if str(node_result.status) not in ("success", "pass", "skipped"):
            lines.append(f"{node_result.node.unique_id}: {node_result.status}: {node_result.message}")
    return "\n".join(lines) or "unknown failure"


class Warehouse:
    """A throwaway warehouse: loader + dbt on a temporary DuckDB file."""

    def __init__(self, root: Path, target_dir: Path, project_dir: Path = REPO_ROOT) -> None:
        self.root = root
        self.path = root / "warehouse.duckdb"
        self.landing = root / "landing"
        self.landing.mkdir(parents=True, exist_ok=True)
        self.target_dir = target_dir  # one per project: the parsed manifest is kept per target folder
        self.project_dir = project_dir

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONVO_DUCKDB_PATH": str(self.path),
            "CONVO_LANDING_DIR": str(self.landing),
            "DBT_TARGET_PATH": str(self.target_dir),
            "DBT_PROJECT_DIR": str(self.project_dir),
            "DBT_LOG_PATH": str(self.root / "dbt-logs"),
            "DBT_PROFILES_DIR": str(REPO_ROOT),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            # No dbt.log: dbt formats every event, debug ones included, for each logger it
            # has before the logger's level drops it, which costs CPU every build (a failed
            # build's errors are in the assertion message; DBT_LOG_LEVEL_FILE=debug in the
            # shell brings the file back)
            "DBT_LOG_LEVEL_FILE": os.environ.get("DBT_LOG_LEVEL_FILE", "none"),
        }

    def load(self):
        from convo_warehouse.lib.landing import load_landing

        from convo_warehouse.lib.warehouse import connect

        con = connect(self.path)
        try:
            return load_landing(con, self.landing, progress=False)
        finally:
            con.close()

    def classify(self):
        """The rules stage classifier over this warehouse, as the pipeline's classifier step runs it."""
        from convo_warehouse.lib.classify.runner import classify_warehouse

        con = open_warehouse(self.path)
        try:
            return classify_warehouse(con, "rules", judge=False)
        finally:
            con.close()

    def dbt(self, *args: str, check: bool = True):
        """Run dbt in-process on this warehouse, reusing the session's parsed manifest."""
        from dbt.cli.main import dbtRunner

        # No manifest.json or run_results.json rewritten per call: writing them costs more
        # than a small build's nodes, and the parse already wrote the manifest ``run_build``
        # reads; the results are in ``result``.
        options = [] if args[0] in JSON_COMMANDS else ["--no-write-json"]
        # nothing printed (what failed is in ``result``), so no console logger formats each event
        options += ["--log-level", "none"]
        if args[0] in THREADED_COMMANDS:
            options += ["--threads", "1"]
        with _environment(self.env):
            result = dbtRunner(manifest=_session_manifest(self.target_dir)).invoke([*args, *options])
        if check and not result.success:
            raise AssertionError(f"dbt {' '.join(args)} failed:\n{describe_failures(result)}")
        return result

    def seed_tests_left_out(self) -> list[str]:
        """``--exclude`` of the data tests that read only seeds, for a warehouse of the project as
        shipped: they check the project's own seed files, which every such warehouse loads the
        same, so the suite runs them once, on test_quality_marts.py's whole build, and not again
        in each test's build. A copy of the project (edited seeds) runs them in its builds."""
        if self.project_dir != REPO_ROOT:
            return []
        return ["--exclude", " ".join(seed_content_tests(_session_manifest(self.target_dir)))]

    def build(self, select: str | None = "+fct_conversations +reconciliation", *more: str, full_refresh: bool = False):
        """``dbt build`` of ``select`` (None: the whole project) with the data tests of what it
        builds, as a production run builds (``dbt_commands.production_build``): no dbt unit tests,
        which check SQL against fixtures rather than this warehouse and which `make dbt-test`
        runs once each, and, on the project as shipped, not the tests of its seeds
        (``seed_tests_left_out``). ``more``: further dbt arguments (``--exclude``, ``--vars``)."""
        from convo_warehouse.lib import dbt_commands

        args = [*dbt_commands.production_build(), *self.seed_tests_left_out(),
                *more]
        if select is not None:
            args += ["--select", select]
        if full_refresh:
            args.append("--full-refresh")
        return self.dbt(*args)

    def manifest_json(self) -> dict:
        """The project's manifest (``manifest.json``) as this warehouse's dbt calls parse it."""
        if not (self.target_dir / "manifest.json").is_file():
            with _environment(self.env):
                _session_manifest(self.target_dir)
        manifest = json.loads((self.target_dir / "manifest.json").read_text())
        # a test that runs dbt on a project of its own with the session's DBT_TARGET_PATH leaves
        # its parse here, and every later reader would see a project without our models
        name = manifest["metadata"].get("project_name")
        assert name == "convo_warehouse", f"{self.target_dir} holds the parse of project {name!r}"
        return manifest

    def run_build(self, *more: str):
        """The dbt step of a pipeline run (assets/dbt.py), without Dagster: compare the project with
        the manifest the last successful build kept (lib/dbt_state.py), drop what changed, ``dbt
        build`` with what no load reaches left out while unmodified (and the tests of the shipped
        project's seeds: ``seed_tests_left_out``), and keep the manifest."""
        from convo_warehouse.lib import dbt_commands, dbt_state

        manifest = self.manifest_json()
        con = open_warehouse(self.path)
        try:
            plan, dropped, left_out = dbt_state.prepare(con, self.path, self.project_dir, manifest, self._select)
        finally:
            con.close()
        args = dbt_commands.production_build(exclude=left_out)
        result = self.dbt(*args, *self.seed_tests_left_out(), *more)
        dbt_state.keep(self.path, self.project_dir, self.target_dir / "manifest.json")
        return plan, dropped, result

    def _select(self, selector: str, state: Path) -> list[str]:
        result = self.dbt(
            "ls", "--select", selector, "--state", str(state), "--resource-type", "model", "--resource-type", "seed",
            "--output", "json", "--output-keys", "unique_id",
        )
        return [json.loads(line)["unique_id"] for line in result.result]

    def file_copy(self, path: Path) -> Path:
        """This warehouse's DuckDB file copied to ``path``, whole: dbt run in this process keeps
        the file open, with rows not yet written into it, so a checkpoint comes first."""
        self.query("checkpoint")
        shutil.copy2(self.path, path)
        return path

    def copy(self, root: Path) -> Warehouse:
        """A new warehouse under ``root`` holding what this one holds: its file (``file_copy``),
        the state its last build kept (``<name>.dbt-state``) and its landing folder, built by
        the same project into the same target. A test changes the copy, or hands it to another
        process (a run refuses a warehouse another writer holds)."""
        self.query("checkpoint")
        shutil.copytree(self.root, root, ignore=shutil.ignore_patterns("*.lock", "dbt-logs"), dirs_exist_ok=True)
        from convo_warehouse.lib.landing import ensure_raw_tables

        copy = Warehouse(root, self.target_dir, self.project_dir)
        if copy.path.exists():
            con = open_warehouse(copy.path)
            try:
                if con.execute("select count(*) from duckdb_views() where schema_name = 'raw'").fetchone()[0]:
                    ensure_raw_tables(con)  # raw.events reads the copy's raw files, not this warehouse's
            finally:
                con.close()
        return copy

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = open_warehouse(self.path)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params: list | None = None):
        return self.query(sql, params)[0][0]

    def table_hash(self, table: str, exclude: tuple[str, ...] = ()) -> str:
        """Order-independent fingerprint of a table's content."""
        columns = [
            row[0]
            for row in self.query(f"describe {table}")
            if row[0] not in exclude
        ]
        rows = self.query(f"select {', '.join(columns)} from {table}")
        digest = hashlib.sha256()
        for line in sorted(repr(row) for row in rows):
            digest.update(line.encode())
        return digest.hexdigest()

    def tables(self, schemas: tuple[str, ...]) -> list[str]:
        placeholders = ", ".join("?" for _ in schemas)
        return [
            f"{schema}.{name}"
            for schema, name in self.query(
                f"select table_schema, table_name from information_schema.tables "
                f"where table_schema in ({placeholders}) order by 1, 2",
                list(schemas),
            )
        ]
