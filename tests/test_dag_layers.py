"""The dbt DAG flows one way: staging -> intermediate -> marts.

Read from the manifest of a fresh `dbt parse`: a model's layer is the folder
under models/ it lives in (its fqn's second part, as the Dagster groups).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# The layers a model of each layer may read (besides seeds), in DAG order.
ALLOWED_PARENT_LAYERS: dict[str, set[str]] = {
    "staging": {"staging"},
    "intermediate": {"staging", "intermediate"},
    "marts": {"staging", "intermediate", "marts"},
    "quarantine": {"staging"},
    "audit": {"staging", "quarantine"},
}


def layer_of(node: dict) -> str:
    """The folder under models/ a model lives in: fqn is [project, layer, ...]."""
    return node["fqn"][1]


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
            if layer_of(parent) not in allowed:
                violations.append(
                    f"{node['name']} ({layer}) reads {parent['name']} ({layer_of(parent)})"
                )
    return violations


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from dbt.cli.main import dbtRunner

    target = tmp_path_factory.mktemp("dag-target")
    saved = dict(os.environ)
    os.environ.update(
        {
            "DBT_PROFILES_DIR": str(REPO_ROOT),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_LOG_PATH": str(target / "logs"),
        }
    )
    try:
        result = dbtRunner().invoke(
            ["parse", "--quiet", "--project-dir", str(REPO_ROOT), "--target-path", str(target)]
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.success, f"dbt parse failed: {result.exception}"
    return json.loads((target / "manifest.json").read_text())


def test_every_model_reads_only_its_own_or_earlier_layers(manifest: dict) -> None:
    assert layer_violations(manifest) == []


def test_no_intermediate_model_reads_a_mart(manifest: dict) -> None:
    nodes = manifest["nodes"]
    intermediate = [node for node in nodes.values() if node["resource_type"] == "model" and layer_of(node) == "intermediate"]
    assert intermediate, "no intermediate models found: is the fqn layout unchanged?"
    marts_read = {
        (node["name"], nodes[parent]["name"])
        for node in intermediate
        for parent in node["depends_on"]["nodes"]
        if parent in nodes and nodes[parent]["resource_type"] == "model" and layer_of(nodes[parent]) == "marts"
    }
    assert marts_read == set()


def test_the_checker_reports_an_intermediate_model_reading_a_mart() -> None:
    def model(name: str, layer: str, parents: list[str]) -> dict:
        return {
            "resource_type": "model",
            "name": name,
            "fqn": ["convo_warehouse", layer, name],
            "depends_on": {"nodes": parents},
        }

    manifest = {
        "nodes": {
            "model.p.stg_events": model("stg_events", "staging", ["seed.p.event_types"]),
            "model.p.fct_conversations": model("fct_conversations", "marts", ["model.p.stg_events"]),
            "model.p.int_funnels": model("int_funnels", "intermediate", ["model.p.fct_conversations"]),
            "model.p.stg_bad": model("stg_bad", "staging", ["model.p.int_funnels"]),
            "model.p.stray": model("stray", "misc", []),
            "seed.p.event_types": {"resource_type": "seed", "name": "event_types", "fqn": ["p", "event_types"]},
        }
    }

    assert layer_violations(manifest) == [
        "int_funnels (intermediate) reads fct_conversations (marts)",
        "stg_bad (staging) reads int_funnels (intermediate)",
        "stray: lives in models/misc/, which is not a layer",
    ]
