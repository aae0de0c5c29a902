"""The semantic layer: `mf query` (dbt-metricflow) answers with metrics_daily's numbers.

A small warehouse is built by the loader and dbt; `mf query` runs in a folder
holding the project's dbt_project.yml and profile and the semantic manifest
of the session's parse (MetricFlow reads target/semantic_manifest.json of
the project folder, which must not be the repository's). For single
segments every value equals metrics_daily's row; a crossed query (channel by
agent_id), which metrics_daily cannot answer, adds up to the single-segment
numerators. The queries are `mf`'s own command run in one Python process, one
after the other, so MetricFlow and dbt are imported once, not once a query.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.warehouse import REPO_ROOT, Warehouse

MF = Path(sys.executable).with_name("mf")

pytestmark = pytest.mark.skipif(
    not MF.exists(), reason="dbt-metricflow is not installed (pip install -e '.[dev]' installs it)"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory, dbt_target_dir) -> tuple[Path, Warehouse]:
    from convo_warehouse.lib.generate import generate_events

    root = tmp_path_factory.mktemp("semantic")
    warehouse = Warehouse(root / "warehouse", dbt_target_dir)
    generate_events(warehouse.landing, conversations=600, days=3, seed=31, progress=False)
    warehouse.load()
    warehouse.build("+metrics_daily +metrics_by_conversation metricflow_time_spine")
    # dbt ran in this process and keeps the file open: MetricFlow (another process) reads a copy
    warehouse = warehouse.copy(root / "readable")
    # MetricFlow reads the project's dbt_project.yml, the profile and target/semantic_manifest.json:
    # the one this session's parse wrote (the same project, a warehouse of the same name)
    copy = root / "project"
    (copy / "target").mkdir(parents=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(REPO_ROOT / name, copy / name)
    shutil.copy2(dbt_target_dir / "semantic_manifest.json", copy / "target" / "semantic_manifest.json")
    return copy, warehouse


SINGLE_SEGMENTS = [("completion_rate", "channel"), ("sales_response_rate", "agent_id"), ("conversations", "language")]
CROSSED = ("completion_rate_numerator", "metric_time__day,conversation__channel,conversation__agent_id")
# `mf query` for each (metric, group-by, csv) of argv's JSON, in this one process: the entry
# point the `mf` script calls, with click's exit status kept (a failed query fails the run)
QUERIES = """
import json, sys
from dbt_metricflow.cli.main import cli
for metric, group_by, out in json.loads(sys.argv[1]):
    try:
        cli.main(["query", "--metrics", metric, "--group-by", group_by, "--csv", out], prog_name="mf")
    except SystemExit as status:
        if status.code:
            sys.exit(f"mf query --metrics {metric} --group-by {group_by} exited with {status.code}")
"""


@pytest.fixture(scope="module")
def answers(project, tmp_path_factory) -> dict[tuple[str, str], list[dict]]:
    """(metric, group-by) -> the rows `mf query` wrote to its CSV, for every query of this file."""
    copy, warehouse = project
    out = tmp_path_factory.mktemp("mf-answers")
    queries = [(metric, f"metric_time__day,conversation__{segment}") for metric, segment in SINGLE_SEGMENTS]
    queries.append(CROSSED)
    argv = [(metric, group_by, str(out / f"{number}.csv")) for number, (metric, group_by) in enumerate(queries)]
    env = {**warehouse.env, "DBT_PROFILES_DIR": str(copy), "DBT_PROJECT_DIR": str(copy)}
    env.pop("DBT_TARGET_PATH")
    result = subprocess.run(
        [sys.executable, "-c", QUERIES, json.dumps(argv)],
        cwd=copy, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {}
    for metric, group_by, csv_path in argv:
        with open(csv_path, newline="") as handle:
            rows[(metric, group_by)] = list(csv.DictReader(handle))
    return rows


@pytest.mark.parametrize(("metric", "segment_type"), SINGLE_SEGMENTS)
def test_mf_query_equals_metrics_daily_for_a_single_segment(project, answers, metric, segment_type):
    _, warehouse = project
    rows = answers[(metric, f"metric_time__day,conversation__{segment_type}")]
    shown = {
        (row["metric_time__day"][:10], row[f"conversation__{segment_type}"]): float(row[metric])
        for row in rows
        if row[metric] not in ("", "None")  # a ratio whose denominator is 0: no row in metrics_daily
    }
    expected = {
        (str(day), value_of_segment): value
        for day, value_of_segment, value in warehouse.query(
            "select metric_date, segment_value, value from marts.metrics_daily "
            "where metric_name = ? and segment_type = ?",
            [metric, segment_type],
        )
    }
    assert len(expected) > 5
    assert shown.keys() == expected.keys()
    assert shown == pytest.approx(expected, rel=1e-9)


def test_mf_query_crosses_segments_metrics_daily_cannot(project, answers):
    _, warehouse = project
    crossed = answers[CROSSED]
    by_channel: dict[tuple[str, str], float] = {}
    for row in crossed:
        key = (row["metric_time__day"][:10], row["conversation__channel"])
        by_channel[key] = by_channel.get(key, 0.0) + float(row["completion_rate_numerator"] or 0)
    expected = {
        (str(day), channel): numerator
        for day, channel, numerator in warehouse.query(
            "select metric_date, segment_value, numerator from marts.metrics_daily "
            "where metric_name = 'completion_rate' and segment_type = 'channel'"
        )
    }
    assert {key: value for key, value in by_channel.items() if key in expected} == pytest.approx(expected)
    assert len({row["conversation__agent_id"] for row in crossed}) > 1


def test_every_summed_metric_is_in_the_semantic_layer():
    """The semantic layer lists every count and ratio of dim_metrics' definitions (percentiles excepted)."""
    macro = (REPO_ROOT / "macros" / "metrics" / "metrics_definitions.sql").read_text()
    definitions = yaml.safe_load(macro.split("{%- set definitions -%}")[1].split("{%- endset -%}")[0])
    kinds = {metric["name"]: metric["kind"] for metric in definitions}
    assert len(kinds) > 30
    semantic = yaml.safe_load((REPO_ROOT / "models" / "marts" / "semantic" / "_semantic__models.yml").read_text())
    metrics = {metric["name"]: metric["type"] for metric in semantic["metrics"]}
    for name, kind in kinds.items():
        if kind == "percentile":
            assert name not in metrics
        else:
            assert metrics.get(name) == ("simple" if kind == "count" else "ratio"), name
