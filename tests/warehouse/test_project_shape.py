"""The dbt project's shape, read from the manifest of this test session's `dbt parse`.

The DAG flows one way (staging -> intermediate -> marts): a model's layer is
the folder under models/ it lives in (its fqn's second part, as the Dagster
groups). One exception, from STYLE.md's "a mart that only renames one
intermediate model is that model": a fact computed where it is published
(a stored fct_ mart) may feed intermediate models, which
would otherwise read a stored copy of it. Every mart is public: an enforced contract and every column described.
Every macro is documented in YAML with each of its arguments.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import yaml
from support.warehouse import undocumented_columns

REPO_ROOT = Path(__file__).resolve().parents[2]

# The layers a model of each layer may read (besides seeds), in DAG order.
ALLOWED_PARENT_LAYERS: dict[str, set[str]] = {
    "staging": {"staging"},
    "intermediate": {"staging", "intermediate"},
    "marts": {"staging", "intermediate", "marts"},
    "quarantine": {"staging", "quarantine"},
    "audit": {"staging", "quarantine"},
}


def layer_of(node: dict) -> str:
    """The folder under models/ a model lives in: fqn is [project, layer, ...]."""
    return node["fqn"][1]


def is_published_fact_read(node: dict, parent: dict) -> bool:
    """An intermediate model reading a stored fct_ mart (one computed where it is published)."""
    return (
        layer_of(node) == "intermediate"
        and layer_of(parent) == "marts"
        and parent["name"].startswith("fct_")
        and parent["config"]["materialized"] in {"incremental", "table"}
    )


def layer_violations(manifest: dict) -> list[str]:
    """Every model that reads a model of a layer it may not read, as readable lines."""
    nodes = manifest["nodes"]
    violations = []
    for unique_id, node in sorted(nodes.items()):
        if node["resource_type"] != "model":
            continue
        layer = layer_of(node)
        allowed = ALLOWED_PARENT_LAYERS.get(layer)
        if allowed is None:
            violations.append(f"{node['name']}: lives in models/{layer}/, which is not a layer")
            continue
        for parent_id in node["depends_on"]["nodes"]:
            parent = nodes.get(parent_id)
            if parent is None or parent["resource_type"] != "model":
                continue  # seeds and sources
            if layer_of(parent) not in allowed and not is_published_fact_read(node, parent):
                violations.append(
                    f"{node['name']} ({layer}) reads {parent['name']} ({layer_of(parent)})"
                )
    return violations


def test_every_model_reads_only_its_own_or_earlier_layers(manifest: dict) -> None:
    assert layer_violations(manifest) == []


def test_the_checker_reports_models_reading_later_layers() -> None:
    def model(name: str, layer: str, parents: list[str], materialized: str = "incremental") -> dict:
        return {
            "resource_type": "model",
            "name": name,
            "config": {"materialized": materialized},
            "fqn": ["convo_warehouse", layer, name],
            "depends_on": {"nodes": parents},
        }

    manifest = {
        "nodes": {
            "model.p.stg_events": model("stg_events", "staging", ["seed.p.event_types"]),
            "model.p.fct_conversations": model("fct_conversations", "marts", ["model.p.stg_events"]),
            "model.p.int_funnels": model("int_funnels", "intermediate", ["model.p.fct_conversations"]),
            "model.p.metrics_daily": model("metrics_daily", "marts", ["model.p.int_funnels"]),
            "model.p.fct_rollup": model("fct_rollup", "marts", ["model.p.metrics_daily"], "view"),
            "model.p.int_days": model("int_days", "intermediate", ["model.p.metrics_daily", "model.p.fct_rollup"]),
            "model.p.stg_bad": model("stg_bad", "staging", ["model.p.int_funnels"]),
            "model.p.stray": model("stray", "misc", []),
            "seed.p.event_types": {"resource_type": "seed", "name": "event_types", "fqn": ["p", "event_types"]},
        }
    }

    # int_funnels may read fct_conversations, a stored fact; not a metrics mart or a view
    assert layer_violations(manifest) == [
        "int_days (intermediate) reads metrics_daily (marts)",
        "int_days (intermediate) reads fct_rollup (marts)",
        "stg_bad (staging) reads int_funnels (intermediate)",
        "stray: lives in models/misc/, which is not a layer",
    ]


# dispatch implementations (`duckdb__list_length`) are documented by the macro
# that dispatches to them
ADAPTER_PREFIXES = ("default", "duckdb", "postgres", "spark")


def macro_signature_arguments(macro_sql: str, name: str) -> list[str]:
    """Argument names of `{% macro name(a, b=1) %}` (or `{% test ... %}`), in order."""
    test_name = name.removeprefix("test_")
    match = re.search(
        r"{%-?\s*(?:macro\s+" + re.escape(name) + r"|test\s+" + re.escape(test_name) + r")\s*\((.*?)\)\s*-?%}",
        macro_sql,
        re.S,
    )
    assert match, f"no signature found for macro {name}"
    return [part.split("=")[0].strip() for part in match.group(1).split(",") if part.strip()]


def test_macro_signature_arguments_reads_defaults_and_tests() -> None:
    assert macro_signature_arguments("{% macro m(a, b=none) -%} x {%- endmacro %}", "m") == ["a", "b"]
    assert macro_signature_arguments("{% test value_between(model, lo) %}", "test_value_between") == ["model", "lo"]
    assert macro_signature_arguments("{%- macro k() %}", "k") == []


def sql_lines(folder: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in folder.rglob("*.sql"))


def test_macros_stay_within_their_line_budgets() -> None:
    """The macros' SQL stays small enough to read (issue 46): at most 2,000 lines, of which the
    incremental layer (the strategies, the ledgers, Spark's partitions) at most 400."""
    assert sql_lines(REPO_ROOT / "macros") <= 2000
    assert sql_lines(REPO_ROOT / "macros" / "incremental") <= 400


def test_dbt_project_yml_says_how_folders_are_built_in_at_most_150_lines() -> None:
    """dbt_project.yml configures folders, not models (issue 46): at most 150 lines, and no
    entry under `models:` names a model file."""
    text = (REPO_ROOT / "dbt_project.yml").read_text()
    assert len(text.splitlines()) <= 150
    models = {path.stem for path in (REPO_ROOT / "models").rglob("*.sql")} | {
        path.stem for path in (REPO_ROOT / "models").rglob("*.py")
    }
    configured = yaml.safe_load(text)["models"]["convo_warehouse"]

    def keys(node: dict) -> set[str]:
        found = set()
        for key, value in node.items():
            if not key.startswith("+"):
                found.add(key)
                if isinstance(value, dict):
                    found |= keys(value)
        return found

    assert not keys(configured) & models, sorted(keys(configured) & models)


def test_every_macro_is_documented_with_its_arguments(manifest: dict) -> None:
    problems = []
    for macro in manifest["macros"].values():
        if macro["package_name"] != "convo_warehouse" or macro["name"].split("__")[0] in ADAPTER_PREFIXES:
            continue
        where = f"{macro['name']} ({macro['original_file_path']})"
        if not macro["description"].strip():
            problems.append(f"{where}: no description in a _*.yml")
        documented = [argument["name"] for argument in macro["arguments"]]
        # a materialization block takes no arguments (it reads config())
        is_materialization = macro["name"].startswith("materialization_")
        expected = [] if is_materialization else macro_signature_arguments(macro["macro_sql"], macro["name"])
        if documented != expected:
            problems.append(f"{where}: arguments documented {documented}, signature {expected}")
        problems += [
            f"{where}: argument {argument['name']} has no description"
            for argument in macro["arguments"]
            if not argument.get("description", "").strip()
        ]
    assert problems == []


def test_every_sql_mart_has_a_contract_and_every_column_a_description(manifest: dict) -> None:
    problems = []
    marts = [node for node in manifest["nodes"].values() if node["resource_type"] == "model" and layer_of(node) == "marts"]
    assert marts, "no marts found"
    for node in marts:
        # an enforced contract makes the YAML's columns exactly the table's
        # (dbt supports contracts on SQL models only)
        if node["language"] == "sql" and not node["config"]["contract"]["enforced"]:
            problems.append(f"{node['name']}: contract not enforced")
        # the grain-first description: test_every_model_description_starts_with_its_grain
        problems += [
            f"{node['name']}.{column}: no description"
            for column, properties in node["columns"].items()
            if not properties.get("description", "").strip()
        ]
    assert problems == []


def test_every_model_description_starts_with_its_grain(manifest: dict) -> None:
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert models, "no models found"
    assert [node["name"] for node in models if not node["description"].startswith("One row per")] == []


def test_the_column_checker_reports_undescribed_and_unbuilt_columns() -> None:
    def model(name: str, columns: dict[str, str], materialized: str = "table") -> dict:
        return {
            "resource_type": "model",
            "name": name,
            "schema": "marts",
            "alias": name,
            "config": {"materialized": materialized},
            "columns": {column: {"name": column, "description": text} for column, text in columns.items()},
        }

    manifest = {
        "nodes": {
            "model.p.a": model("a", {"id": "The key.", "value": ""}),
            "model.p.b": model("b", {"id": "The key."}),
            "model.p.c": model("c", {}),
            "model.p.inlined": model("inlined", {}, materialized="ephemeral"),
        }
    }
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.a (id integer, value integer, extra integer)")
    con.execute("create table marts.b (id integer)")
    assert undocumented_columns(manifest, con) == {"a": ["value", "extra"], "c": ["(not built)"]}


def test_every_seed_column_is_described(manifest: dict) -> None:
    """Each column of each seed's CSV (what a user edits) has a description in its YAML."""
    import csv

    problems = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "seed":
            continue
        with open(REPO_ROOT / node["original_file_path"], newline="") as handle:
            header = next(csv.reader(handle))
        problems += [
            f"{node['name']}.{column}: no description"
            for column in header
            if not node["columns"].get(column, {}).get("description", "").strip()
        ]
    assert problems == []
