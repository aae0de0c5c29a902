"""The project stays runnable on Spark: portable types, and one Spark configuration."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from convo_warehouse.spark.session import spark_settings

ROOT = Path(__file__).resolve().parents[2]
# Types both DuckDB and Spark accept under these names (DuckDB reads `string`
# as VARCHAR; Spark 4 rejects a VARCHAR without a length), and decimal(p, s)
# with p <= 38 (both engines' limit; the exact sums across partials use it).
PORTABLE_TYPES = {"string", "boolean", "integer", "bigint", "double", "date", "timestamp"}
PORTABLE_DECIMAL = re.compile(r"decimal\((\d+), ?(\d+)\)")


def is_portable(kind: str) -> bool:
    decimal = PORTABLE_DECIMAL.fullmatch(kind.lower())
    if decimal:
        return int(decimal.group(2)) <= int(decimal.group(1)) <= 38
    return kind.lower() in PORTABLE_TYPES


def _yaml_files(folder: str):
    for path in sorted((ROOT / folder).rglob("*.yml")):
        yield path, yaml.safe_load(path.read_text()) or {}


def test_model_contract_types_are_portable():
    offending = []
    for path, document in _yaml_files("models"):
        for model in document.get("models", []) or []:
            for column in model.get("columns", []) or []:
                kind = column.get("data_type")
                if kind is not None and not is_portable(kind):
                    offending.append(f"{path.relative_to(ROOT)}: {model['name']}.{column['name']} {kind}")
    assert not offending, (
        "use one of " + ", ".join(sorted(PORTABLE_TYPES)) + " or decimal(p, s), p <= 38:\n" + "\n".join(offending)
    )


def test_seed_column_types_are_portable():
    offending = []
    for path, document in _yaml_files("seeds"):
        for seed in document.get("seeds", []) or []:
            for name, kind in ((seed.get("config") or {}).get("column_types") or {}).items():
                if kind.lower() not in PORTABLE_TYPES:
                    offending.append(f"{path.relative_to(ROOT)}: {seed['name']}.{name} {kind}")
    assert not offending, "use one of " + ", ".join(sorted(PORTABLE_TYPES)) + ":\n" + "\n".join(offending)


@pytest.mark.parametrize("java_options", [None, "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"])
def test_spark_profile_matches_the_session_the_spark_path_creates(monkeypatch, tmp_path, java_options):
    """profiles.yml's spark target and convo_warehouse.spark.session configure one Spark,
    with or without CONVO_SPARK_JAVA_OPTIONS."""
    monkeypatch.setenv("CONVO_SPARK_DIR", str(tmp_path))
    if java_options is None:
        monkeypatch.delenv("CONVO_SPARK_JAVA_OPTIONS", raising=False)
    else:
        monkeypatch.setenv("CONVO_SPARK_JAVA_OPTIONS", java_options)
    text = (ROOT / "profiles.yml").read_text()
    # dbt's env_var(name, default), for the names the spark target reads
    rendered = re.sub(
        r"\{\{ env_var\('(CONVO_SPARK_DIR|CONVO_SPARK_JAVA_OPTIONS)', '([^']*)'\) \}\}",
        lambda match: os.environ.get(match.group(1), match.group(2)), text,
    )
    profile = yaml.safe_load(rendered)["convo_warehouse"]["outputs"]["spark"]
    assert profile["method"] == "session"
    assert {key: str(value) for key, value in profile["server_side_parameters"].items()} == spark_settings(
        tmp_path
    )
