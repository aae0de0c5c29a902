"""Patterns: the divergence statistics against scipy, and the divergence mart on
generated data with a planted pattern (conversations that call check_warranty
and are then handed off) that it must rank first.

The warehouse is built once per module by the real loader and dbt.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats

from support.warehouse import REPO_ROOT, Warehouse
from convo_warehouse.lib import patterns
from convo_warehouse.lib.generate import planted

END_DATE = "2024-05-10"
DAYS = 4
CONVERSATIONS = 1200
SEED = 23
# ab_test_exposures and fct_conversation_stages: the divergence re-count reads the published marts
PATTERNS_SELECT = (
    "+path_divergence +top_paths +path_transitions +metrics_by_dimension +objection_outcomes"
    " +ab_test_exposures +fct_conversation_stages"
)
PLANTED_STEP = f"tool_called:{planted.PLANTED_TOOL}"


# --------------------------------------------------------------------------- statistics


def test_chi_square_2x2_matches_scipy():
    tables = [(30, 5, 70, 95), (1, 40, 99, 60), (12, 12, 88, 88)]
    ours = patterns.chi_square_2x2(*zip(*tables, strict=True))
    for table, statistic in zip(tables, ours, strict=True):
        a, b, c, d = table
        expected = stats.chi2_contingency([[a, b], [c, d]], correction=False).statistic
        assert statistic == pytest.approx(expected, rel=1e-12)


def _counts(rows, successful: int = 100, failed: int = 100, comparison: str = "overall") -> pd.DataFrame:
    """path_divergence_counted rows: (scope, depth, step, successful_with_step, failed_with_step)."""
    frame = pd.DataFrame(rows, columns=["scope", "depth", "step", "successful_with_step", "failed_with_step"])
    frame["depth"] = frame["depth"].astype("Int64")
    return frame.assign(
        comparison=comparison, segment_type="all", segment_value="all",
        successful_conversations=successful, failed_conversations=failed,
    )


def test_score_counts_ranks_tests_and_finds_first_divergence():
    # 100 successful and 100 failed conversations. Every conversation starts
    # with "start". At depth 2, "helpful" is in 60 successful and 20 failed;
    # "x" is in 3 successful and 0 failed (small: Fisher); at depth 3 "bad"
    # is in 0 successful and 50 failed.
    counts = _counts([
        ("anywhere", None, "start", 100, 100),
        ("anywhere", None, "helpful", 60, 20),
        ("anywhere", None, "x", 3, 0),
        ("anywhere", None, "bad", 0, 50),
        ("at_depth", 1, "start", 100, 100),
        ("at_depth", 2, "helpful", 60, 20),
        ("at_depth", 2, "x", 3, 0),
        ("at_depth", 3, "bad", 0, 50),
    ])

    scored = patterns.score_counts(counts.sample(frac=1, random_state=3))  # input order does not matter
    assert list(scored.columns) == list(patterns.SCHEMA)
    anywhere = scored[scored["scope"] == "anywhere"].set_index("step")
    assert anywhere["depth"].isna().all()
    assert list(anywhere.sort_values("divergence_rank").index) == ["bad", "helpful", "x", "start"]
    bad = anywhere.loc["bad"]
    assert (bad["successful_with_step"], bad["failed_with_step"]) == (0, 50)
    assert bad["more_common_in"] == "failed"
    expected = stats.chi2_contingency([[0, 50], [100, 50]], correction=False)
    assert bad["statistic"] == pytest.approx(expected.statistic)
    assert bad["p_value"] == pytest.approx(expected.pvalue)
    assert bad["test_method"] == "chi_square"
    # Bonferroni over the steps of the scope (start, helpful, x, bad)
    assert bad["p_value_adjusted"] == pytest.approx(min(1.0, expected.pvalue * len(anywhere)))
    small = anywhere.loc["x"]
    assert small["test_method"] == "fisher_exact"
    assert small["p_value"] == pytest.approx(stats.fisher_exact([[3, 0], [97, 100]]).pvalue)
    # "start" is in everyone: no difference at all
    assert anywhere.loc["start", "statistic"] == 0
    assert anywhere.loc["start", "p_value"] == pytest.approx(1.0)
    # first point of divergence: depth 2 (the first depth with a significant step), "helpful"
    first = scored[scored["is_first_divergence"]]
    assert len(first) == 1
    assert (first.iloc[0]["depth"], first.iloc[0]["step"]) == (2, "helpful")


def test_score_counts_keeps_families_apart():
    # Two comparisons: each is ranked, adjusted and given its first divergence on its own.
    overall = _counts([("at_depth", 1, "a", 90, 10), ("at_depth", 2, "b", 50, 50)])
    funnel = _counts([("at_depth", 1, "a", 5, 5), ("at_depth", 2, "b", 0, 40)], successful=40, failed=60,
                     comparison="funnel:sales")
    scored = patterns.score_counts(pd.concat([overall, funnel], ignore_index=True))
    first = scored[scored["is_first_divergence"]].set_index("comparison")
    assert (first.loc["overall", "depth"], first.loc["overall", "step"]) == (1, "a")
    assert (first.loc["funnel:sales", "depth"], first.loc["funnel:sales", "step"]) == (2, "b")
    assert (scored.groupby("comparison")["divergence_rank"].max() == 2).all()
    funnel_b = scored[(scored["comparison"] == "funnel:sales") & (scored["step"] == "b")].iloc[0]
    assert funnel_b["p_value_adjusted"] == pytest.approx(min(1.0, 2 * funnel_b["p_value"]))
    assert (funnel_b["successful_conversations"], funnel_b["failed_conversations"]) == (40, 60)


def test_score_counts_of_nothing_is_an_empty_frame_of_the_schema():
    scored = patterns.score_counts(_counts([]))
    assert scored.empty
    assert list(scored.columns) == list(patterns.SCHEMA)


# --------------------------------------------------------------------------- planted pattern, end to end


@pytest.fixture(scope="module")
def built(tmp_path_factory, dbt_target_dir) -> tuple[Warehouse, dict]:
    from convo_warehouse.lib.generate import generate_events

    warehouse = Warehouse(tmp_path_factory.mktemp("patterns-warehouse"), dbt_target_dir)
    shutil.rmtree(warehouse.landing)
    summary = generate_events(
        warehouse.landing, conversations=CONVERSATIONS, days=DAYS, seed=SEED, end_date=END_DATE,
        progress=False, plant="tool_then_handoff",
    )
    warehouse.load()
    warehouse.build(PATTERNS_SELECT)
    return warehouse, summary


def test_planted_file_is_written_with_its_conversations(built):
    _, summary = built
    plant = summary["planted"]
    assert plant["pattern"] == "tool_then_handoff"
    assert plant["conversations"] > 50
    lines = Path(plant["file"]).read_text().splitlines()
    assert len(lines) == plant["events"] == 2 * plant["conversations"]


def test_divergence_ranks_the_planted_step_first(built):
    warehouse, summary = built
    top = warehouse.query(
        """
        select step, more_common_in, successful_with_step, failed_with_step, is_significant
        from marts.path_divergence
        where comparison = 'overall' and segment_type = 'all' and scope = 'anywhere' and divergence_rank = 1
        """
    )
    assert top == [(PLANTED_STEP, "failed", 0, summary["planted"]["conversations"], True)]


def test_planted_step_is_first_in_every_variant(built):
    warehouse, _ = built
    firsts = warehouse.query(
        """
        select segment_type, segment_value, step
        from marts.path_divergence
        where comparison = 'overall' and segment_type like 'experiment:%' and scope = 'anywhere'
          and divergence_rank = 1
        order by 1, 2
        """
    )
    assert len(firsts) == 4  # two tests x two variants
    assert {step for _, _, step in firsts} == {PLANTED_STEP}


def test_divergence_counts_match_a_count_conversation_by_conversation(built):
    """path_divergence_counted counts once per membership signature; counting every
    population's conversations one by one (here, in pandas) gives the same rows."""
    warehouse, _ = built
    def frame(table: str, columns: list[str], where: str = "true") -> pd.DataFrame:
        return pd.DataFrame(warehouse.query(f"select {', '.join(columns)} from {table} where {where}"), columns=columns)

    paths = frame("marts.fct_conversation_paths", ["conversation_id", "outcome", "started", "is_successful"])
    steps = frame("intermediate.int_conversation_steps_cleaned", ["conversation_id", "step_number", "step"])
    stages = frame("marts.fct_conversation_stages", ["conversation_id", "funnel_name", "stage"])
    ends = frame("intermediate.int_funnel_stages_ordered", ["funnel_name", "stage", "is_first_stage", "is_last_stage"])
    exposures = frame("marts.ab_test_exposures", ["test_name", "variant", "conversation_id"], "variant_count = 1")
    project_vars = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())["vars"]
    excluded = project_vars["divergence_excluded_step_pattern"]
    min_conversations = project_vars["divergence_min_conversations"]
    max_depth = project_vars["divergence_max_depth"]

    finished = paths[paths["outcome"] != "in_progress"]
    overall = finished[finished["started"]][["conversation_id", "is_successful"]]
    populations = {("overall", "all", "all"): overall}
    for (test_name, variant), group in exposures.groupby(["test_name", "variant"]):
        populations[("overall", f"experiment:{test_name}", variant)] = overall[
            overall["conversation_id"].isin(group["conversation_id"])
        ]
    for funnel_name, funnel in ends.groupby("funnel_name"):
        reached = stages[stages["funnel_name"] == funnel_name]
        first = funnel.loc[funnel["is_first_stage"], "stage"].iloc[0]
        last = funnel.loc[funnel["is_last_stage"], "stage"].iloc[0]
        population = finished[finished["conversation_id"].isin(reached.loc[reached["stage"] == first, "conversation_id"])]
        populations[(f"funnel:{funnel_name}", "all", "all")] = population[["conversation_id"]].assign(
            is_successful=population["conversation_id"].isin(reached.loc[reached["stage"] == last, "conversation_id"])
        )

    candidates = steps[[re.search(excluded, step) is None for step in steps["step"]]]
    presence = pd.concat([
        candidates[["conversation_id", "step"]].drop_duplicates().assign(scope="anywhere", depth=pd.NA),
        candidates[candidates["step_number"] <= max_depth].rename(columns={"step_number": "depth"})
        .assign(scope="at_depth")[["conversation_id", "step", "scope", "depth"]],
    ])
    expected = []
    for (comparison, segment_type, segment_value), population in populations.items():
        successful, failed = int(population["is_successful"].sum()), int((~population["is_successful"]).sum())
        if not successful or not failed:
            continue
        having = presence.merge(population, on="conversation_id")
        for (scope, depth, step), rows in having.groupby(["scope", "depth", "step"], dropna=False):
            if len(rows) >= min_conversations:
                expected.append((comparison, segment_type, segment_value, scope,
                                 None if pd.isna(depth) else int(depth), step,
                                 int(rows["is_successful"].sum()), successful, int((~rows["is_successful"]).sum()), failed))

    counted = warehouse.query(
        "select comparison, segment_type, segment_value, scope, depth, step, successful_with_step,"
        " successful_conversations, failed_with_step, failed_conversations from marts.path_divergence_counted"
    )
    assert len(expected) > 100
    assert sorted(counted, key=str) == sorted(expected, key=str)


def test_paths_end_in_the_outcome_node_and_transitions_add_up(built):
    warehouse, _ = built
    bad_paths = warehouse.scalar(
        "select count(*) from marts.fct_conversation_paths where not ends_with(path, outcome_step)"
    )
    assert bad_paths == 0
    # every conversation with at least one step makes exactly one move into its outcome node
    into_outcomes = warehouse.scalar(
        "select sum(conversations) from marts.path_transitions where to_step like 'outcome:%'"
    )
    with_steps = warehouse.scalar("select count(*) from marts.fct_conversation_paths where path_length > 1")
    assert into_outcomes == with_steps
    planted_moves = warehouse.query(
        "select sum(conversations), sum(successful_conversations) from marts.path_transitions "
        "where from_step = ? and to_step like 'handoff_requested:%'",
        [PLANTED_STEP],
    )
    assert planted_moves[0][1] == 0 and planted_moves[0][0] > 0


def _read_only_copy(warehouse: Warehouse, tmp_path: Path) -> Path:
    # the CLI opens the file read-only, which DuckDB refuses while this process
    # (in-process dbt) still holds a read-write connection to it
    return warehouse.file_copy(tmp_path / "copy.duckdb")


def test_patterns_cli_prints_the_planted_step_first(built, tmp_path):
    from convo_warehouse.cli import main

    database = _read_only_copy(built[0], tmp_path)
    result = CliRunner().invoke(main, ["patterns", "--database", str(database), "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert "top paths of successful conversations" in result.output
    assert "top paths of failed conversations" in result.output
    divergence = result.output.split("where successful and failed conversations diverge")[1]
    first_row = [line for line in divergence.splitlines() if line.startswith("1 ")][0]
    assert PLANTED_STEP in first_row and "failed" in first_row
    assert "first point of divergence" in result.output


def test_patterns_cli_names_what_exists_for_an_unknown_segment(built, tmp_path):
    from convo_warehouse.cli import main

    database = _read_only_copy(built[0], tmp_path)
    result = CliRunner().invoke(main, ["patterns", "--database", str(database), "--segment", "nope:x"])
    assert result.exit_code != 0
    assert "overall greeting_tone:casual" in result.output


def test_breakdowns_cover_the_planted_tool(built):
    warehouse, summary = built
    calls, conversations, success_rate = warehouse.query(
        "select sum(events), sum(conversations), sum(successful_conversations) / sum(started_conversations) "
        "from marts.metrics_by_dimension where dimension = 'tool' and dimension_value = ?",
        [planted.PLANTED_TOOL],
    )[0]
    assert calls == conversations == summary["planted"]["conversations"]
    assert success_rate == 0
    assert np.isfinite(warehouse.scalar("select sum(events) from marts.metrics_by_dimension where dimension = 'model'"))


def test_objections_built_with_literal_patterns_equal_a_join_on_the_lexicon(built):
    """The build writes each lexicon pattern as a literal (lexicon_matches); the
    unit test covers the join form. Recomputed here as that join on the seed,
    both directions of the difference are empty and objections were found."""
    warehouse, _ = built
    compiled = next(warehouse.target_dir.glob("run/**/int_conversation_objections_detected.sql")).read_text()
    assert "regexp_matches(lower(user_messages.content), '\\b(too expensive" in compiled  # a literal
    recomputed = """
        select conversation_id, objection, min(event_at), arg_min(turn, event_at), count(*)
        from (
            select distinct m.event_id, m.conversation_id, m.event_at, m.turn, l.objection
            from staging.stg_events as m
            inner join seeds.objection_lexicon as l on regexp_matches(lower(m.content), l.pattern)
            where m.is_known_type and m.event_type = 'user_message' and m.content is not null
        )
        group by conversation_id, objection
    """
    built_rows = "select * from intermediate.int_conversation_objections_detected"
    assert warehouse.scalar(f"select count(*) from ({built_rows})") > 20
    assert warehouse.query(f"{built_rows} except all {recomputed}") == []
    assert warehouse.query(f"{recomputed} except all {built_rows}") == []
