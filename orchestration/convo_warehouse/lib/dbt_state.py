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
- Those relations are dropped before the build (``Plan.drop``), so dbt
  builds each one whole, as it builds a new table; the rest are built
  incrementally in the same ``dbt build``. A dropped relation the build then
  fails to create is simply absent, and built whole by the next run.
- What no load reaches is left out of the build while unmodified
  (``Plan.exclude``): seeds, views (a view has no rows to keep up to date)
  and the models tagged ``static`` (computed from seeds alone).

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from convo_warehouse.lib.run_state import project_fingerprint

MANIFEST = "manifest.json"
VARS = "vars.json"
FINGERPRINT = "project_fingerprint"

# Left out of a build while dbt's state comparison finds them unmodified.
UNMODIFIED_LEFT_OUT = (
    "state:unmodified,resource_type:seed",
    "state:unmodified,config.materialized:view",
    "state:unmodified,tag:static",
)

# The schemas dbt builds into (a relation there that no node names is not ours to drop).
_DROPPABLE = ("model", "seed")


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

    @property
    def exclude(self) -> list[str]:
        return list(UNMODIFIED_LEFT_OUT) if self.state is not None else []

    def selector_of_rebuilt(self, manifest: Mapping) -> str | None:
        """dbt's selector of what this build rebuilds whole: the state comparison and the var readers."""
        if self.state is None:
            return None
        names = sorted(manifest["nodes"][unique_id]["name"] for unique_id in var_readers(manifest, self.changed_vars))
        return " ".join(["state:modified+", *(f"{name}+" for name in names)])

    def drop(self, con: duckdb.DuckDBPyConnection, manifest: Mapping, existing: Callable[[str, str], str | None]) -> list[str]:
        """Drop the relations of ``self.rebuilt`` (of every model and seed when ``rebuild_all``);
        return their names. A node configured ``full_refresh: false`` keeps its relation."""
        dropped = []
        nodes = manifest["nodes"]
        unique_ids = (
            [unique_id for unique_id, node in nodes.items() if node["resource_type"] in _DROPPABLE]
            if self.rebuild_all
            else self.rebuilt
        )
        for unique_id in unique_ids:
            node = nodes.get(unique_id)
            if node is None or node["resource_type"] not in _DROPPABLE or node["config"].get("full_refresh") is False:
                continue
            name = f'{node["schema"]}.{node.get("alias") or node["name"]}'
            kind = existing(node["schema"], node.get("alias") or node["name"])
            if kind is None:
                continue
            con.execute(f'drop {"view" if kind == "VIEW" else "table"} if exists {name}')
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


def project_changed(warehouse: Path, project_dir: Path) -> bool:
    """Whether the project's files differ from those of the last successful build (a cheap test
    before asking dbt which nodes changed)."""
    stamp = state_dir(warehouse) / FINGERPRINT
    return not stamp.is_file() or stamp.read_text() != project_fingerprint(project_dir)


def keep(warehouse: Path, project_dir: Path, manifest_path: Path) -> None:
    """After a successful build: keep the manifest it ran from, its vars and the project's fingerprint."""
    folder = state_dir(warehouse)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = folder / f"{MANIFEST}.partial"
    shutil.copyfile(manifest_path, partial)
    partial.replace(folder / MANIFEST)
    (folder / VARS).write_text(json.dumps(project_vars(project_dir), sort_keys=True, default=str))
    (folder / FINGERPRINT).write_text(project_fingerprint(project_dir))
