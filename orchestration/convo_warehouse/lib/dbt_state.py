"""What changed in the dbt project since the last successful build, by dbt's own state comparison.

After every successful build the manifest it ran from is kept beside the
warehouse (``<warehouse>.dbt-state/manifest.json``), with the vars it read
(``vars.json``). The next build compares the project with it
(docs/incremental.md):

- ``state:modified+``: every node whose code, config, contract or macros
  changed, every seed whose content changed, every new node, and everything
  downstream of them. dbt 1.11 has no ``state:modified.vars``, so the nodes
  whose SQL or macros name a var whose value changed are added
  (``var_readers``) with everything downstream.
- Their tables are dropped before the build (``Plan.drop``), so dbt builds
  each one whole, as it builds a new table; the rest are built
  incrementally in the same ``dbt build``. A dropped table the build then
  fails to create is simply absent, and built whole by the next run. A view
  is never dropped: it holds no rows, and dbt replaces it when its own
  definition changed.
- What no load reaches is left out of the build unless it is among them
  (``Plan.left_out``): seeds, views and the models tagged ``static``
  (computed from seeds alone), when their relation exists.

Without a kept manifest (a new warehouse, or one built before this was
kept) there is nothing to compare with: a new warehouse is built whole
anyway, and an existing one is rebuilt whole (``Plan.rebuild_all``), since
nothing says what built it.

No Dagster here: ``assets/dbt.py`` calls it under the writer lock.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from convo_warehouse.lib.project_files import project_fingerprint

MANIFEST = "manifest.json"
VARS = "vars.json"
FINGERPRINT = "project_fingerprint"

STATIC_TAG = "static"
SCOPE_TAG = "scope"


def _relation(node: Mapping) -> tuple[str, str]:
    return node["schema"], node.get("alias") or node["name"]


def _reached_by_no_load(node: Mapping) -> bool:
    """A seed, a view or a static model: what a new load cannot change."""
    return (
        node["resource_type"] == "seed"
        or (node["resource_type"] == "model" and node["config"].get("materialized") == "view")
        or STATIC_TAG in node["config"].get("tags", [])
    )


# The models and seeds ``_reached_by_no_load`` picks, in dbt's selector words
# (tests/orchestration/test_dbt_state.py: dbt selects the same nodes).
NO_LOAD_REACHES = ("resource_type:seed", "config.materialized:view,resource_type:model",
                   f"tag:{STATIC_TAG},resource_type:model")


def as_selection(names: list[str], manifest: Mapping) -> list[str]:
    """``names`` (models and seeds) as ``--exclude`` words: ``NO_LOAD_REACHES`` when they are
    every node it selects, as they are in a run that changed nothing of the project, else the
    names. dbt matches each word against every node of the project, three times over, before its
    first node: fifty names cost an hourly build's start a tenth of a second and more."""
    every = sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed") and _reached_by_no_load(node)
    )
    return list(NO_LOAD_REACHES) if sorted(names) == every else list(names)


def state_dir(warehouse: Path) -> Path:
    """Where the manifest of the last successful build of ``warehouse`` is kept."""
    return warehouse.with_name(warehouse.name.removesuffix(".duckdb") + ".dbt-state")


def project_vars(project_dir: Path) -> dict:
    """The vars of ``dbt_project.yml``, as dbt reads them when no ``--vars`` is given."""
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    return dict(project.get("vars") or {})


def var_readers(manifest: Mapping, names: Iterable[str]) -> set[str]:
    """Unique ids of the nodes whose SQL, or a macro they call (at any depth), names one of the vars."""
    wanted = set(names)
    if not wanted:
        return set()
    pattern = re.compile(r"""var\(\s*['"](%s)['"]""" % "|".join(re.escape(name) for name in sorted(wanted)))
    macros = manifest.get("macros", {})
    reads: dict[str, bool] = {}

    def macro_reads(unique_id: str, seen: frozenset[str] = frozenset()) -> bool:
        if unique_id not in reads:
            macro = macros.get(unique_id)
            if macro is None or unique_id in seen:
                return False
            reads[unique_id] = bool(pattern.search(macro.get("macro_sql", ""))) or any(
                macro_reads(child, seen | {unique_id}) for child in macro.get("depends_on", {}).get("macros", [])
            )
        return reads[unique_id]

    readers = set()
    for unique_id, node in manifest.get("nodes", {}).items():
        if pattern.search(node.get("raw_code") or "") or any(
            macro_reads(child) for child in node.get("depends_on", {}).get("macros", [])
        ):
            readers.add(unique_id)
    return readers


@dataclass
class Plan:
    """What a build does about the project's changes since the last successful one."""

    state: Path | None  # the kept manifest's folder, None when there is none to compare with
    changed_vars: list[str] = field(default_factory=list)
    rebuild_all: bool = False
    rebuilt: list[str] = field(default_factory=list)  # unique ids rebuilt whole (filled by ``find_rebuilt``)

    def left_out(self, manifest: Mapping, existing: Callable[[str, str], str | None]) -> list[str]:
        """The nodes this build leaves out (by name): what no load reaches and this build does not
        rebuild, where its relation exists. Nothing without a kept manifest."""
        if self.state is None or self.rebuild_all:
            return []
        rebuilt = set(self.rebuilt)
        return sorted(
            node["name"]
            for unique_id, node in manifest["nodes"].items()
            if node["resource_type"] in ("model", "seed")
            and _reached_by_no_load(node)
            and unique_id not in rebuilt
            and existing(*_relation(node)) is not None
        )

    def selector_of_rebuilt(self, manifest: Mapping) -> str | None:
        """dbt's selector of what this build rebuilds whole: the state comparison and the var readers."""
        if self.state is None:
            return None
        selectors = ["state:modified+"]
        for unique_id in sorted(var_readers(manifest, self.changed_vars)):
            node = manifest["nodes"][unique_id]
            # every incremental model reads the scope models, but a var they read decides only
            # which keys later runs recompute, not the rows built so far: they are rebuilt alone
            selectors.append(node["name"] if SCOPE_TAG in node["config"].get("tags", []) else f'{node["name"]}+')
        return " ".join(selectors)

    def drop(self, con: duckdb.DuckDBPyConnection, manifest: Mapping, existing: Callable[[str, str], str | None]) -> list[str]:
        """Drop the tables of ``self.rebuilt`` (of every model and seed when ``rebuild_all``);
        return their names. A node configured ``full_refresh: false`` keeps its table."""
        dropped = []
        nodes = manifest["nodes"]
        unique_ids = (
            [unique_id for unique_id, node in nodes.items() if node["resource_type"] in ("model", "seed")]
            if self.rebuild_all
            else self.rebuilt
        )
        for unique_id in unique_ids:
            node = nodes.get(unique_id)
            if node is None or node["resource_type"] not in ("model", "seed") or node["config"].get("full_refresh") is False:
                continue
            if existing(*_relation(node)) != "BASE TABLE":
                continue
            name = ".".join(_relation(node))
            con.execute(f"drop table if exists {name}")
            dropped.append(name)
        return dropped


def plan(warehouse: Path, project_dir: Path, manifest: Mapping, has_models: bool) -> Plan:
    """Compare the project with what the last successful build of ``warehouse`` kept.

    ``has_models``: the warehouse already holds dbt's relations (a warehouse
    without them is new, and built whole anyway)."""
    folder = state_dir(warehouse)
    kept = folder / MANIFEST
    if not kept.is_file():
        return Plan(state=None, rebuild_all=has_models)
    previous_vars = json.loads((folder / VARS).read_text()) if (folder / VARS).is_file() else {}
    current_vars = project_vars(project_dir)
    changed = sorted(
        name
        for name in set(previous_vars) | set(current_vars)
        if previous_vars.get(name) != current_vars.get(name)
    )
    return Plan(state=folder, changed_vars=changed)


def prepare(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    project_dir: Path,
    manifest: Mapping,
    select: Callable[[str, Path], list[str]],
) -> tuple[Plan, list[str], list[str]]:
    """Before a build: compare the project with what the last successful build kept and drop the
    tables of what changed. ``select(selector, state)`` lists the unique ids dbt's selector
    selects against the kept manifest (``dbt ls``). Returns the plan, the tables dropped and
    the nodes to leave out (``--exclude``)."""
    has_models = bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = 'staging' and table_name = 'base_events_parsed'"
    ).fetchone()[0])
    build = plan(warehouse, project_dir, manifest, has_models)
    if build.state is not None and (build.changed_vars or project_changed(warehouse, project_dir)):
        build.rebuilt = select(build.selector_of_rebuilt(manifest), build.state)
    kinds = {
        (schema, name): kind
        for schema, name, kind in con.execute(
            "select table_schema, table_name, table_type from information_schema.tables"
        ).fetchall()
    }
    existing = lambda schema, name: kinds.get((schema, name))  # noqa: E731
    dropped = build.drop(con, manifest, existing) if (build.rebuild_all or build.rebuilt) else []
    return build, dropped, build.left_out(manifest, existing)


def dbt_ls(dbt: str, project_dir: Path) -> Callable[[str, Path], list[str]]:
    """``select`` for ``prepare``: ``dbt ls`` of the project's models and seeds, run by ``dbt``."""

    def select(selector: str, state: Path) -> list[str]:
        command = [
            dbt, "ls", "--quiet", "--select", selector, "--state", str(state),
            "--resource-type", "model", "--resource-type", "seed", "--output", "json", "--output-keys", "unique_id",
        ]
        listed = subprocess.run(command, cwd=project_dir, capture_output=True, text=True)
        if listed.returncode != 0:
            raise RuntimeError(f"dbt ls --select {selector} failed:\n{listed.stdout}\n{listed.stderr}")
        return [json.loads(line)["unique_id"] for line in listed.stdout.splitlines() if line.startswith("{")]

    return select


def project_changed(warehouse: Path, project_dir: Path) -> bool:
    """Whether the project's files differ from those of the last successful build (a cheap test
    before asking dbt which nodes changed)."""
    stamp = state_dir(warehouse) / FINGERPRINT
    return not stamp.is_file() or stamp.read_text() != project_fingerprint(project_dir)


def keep(warehouse: Path, project_dir: Path, manifest_path: Path) -> None:
    """After a successful build: keep the manifest it ran from, its vars and the project's fingerprint."""
    keep_in(state_dir(warehouse), project_dir, manifest_path)


def keep_in(folder: Path, project_dir: Path, manifest_path: Path) -> None:
    """``keep`` into ``folder`` (on Spark: beside its warehouse, by the run's last step)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = folder / f"{MANIFEST}.partial"
    shutil.copyfile(manifest_path, partial)
    partial.replace(folder / MANIFEST)
    (folder / VARS).write_text(json.dumps(project_vars(project_dir), sort_keys=True, default=str))
    (folder / FINGERPRINT).write_text(project_fingerprint(project_dir))


def left_out_if_unchanged(folder: Path, project_dir: Path, manifest: Mapping) -> list[str]:
    """On Spark: what no load reaches (seeds, views, static models), by name, when the last
    complete run kept its state in ``folder`` and neither the project's files nor its vars changed
    since, so that run built every one of them as this one would. Else nothing: the build builds
    them all."""
    if not (folder / FINGERPRINT).is_file() or not (folder / VARS).is_file():
        return []
    if (folder / FINGERPRINT).read_text() != project_fingerprint(project_dir):
        return []
    if json.loads((folder / VARS).read_text()) != json.loads(json.dumps(project_vars(project_dir), sort_keys=True, default=str)):
        return []
    return sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed") and _reached_by_no_load(node)
    )
