"""classification.stage_classifications has one definition (the dbt source's
YAML): the table dbt's on-run-start hook creates and the one the Python writer
creates are the same, column for column and type for type."""

from __future__ import annotations

import duckdb
import pytest
import yaml
from support.warehouse import Warehouse, open_warehouse

from convo_warehouse.lib.classify import grain, store


def describe(path) -> list[tuple[str, str]]:
    con = open_warehouse(path)
    try:
        return [
            (name, kind)
            for name, kind, *_ in con.execute("describe classification.stage_classifications").fetchall()
        ]
    finally:
        con.close()


@pytest.fixture(scope="module")
def created_by_dbt(tmp_path_factory, dbt_target_dir) -> list[tuple[str, str]]:
    """The table as the on-run-start hook creates it in an empty warehouse (any dbt command that runs hooks)."""
    warehouse = Warehouse(tmp_path_factory.mktemp("classification-dbt"), dbt_target_dir)
    warehouse.dbt("seed", "--select", "experiments")
    return describe(warehouse.path)


def test_dbt_hook_and_python_writer_create_the_same_table(created_by_dbt, tmp_path):
    path = tmp_path / "python.duckdb"
    con = open_warehouse(path)
    store.ensure_tables(con)
    con.close()
    assert describe(path) == created_by_dbt
    assert ("confidence", "DOUBLE") in created_by_dbt


def test_both_follow_the_source_yaml(created_by_dbt):
    document = yaml.safe_load(grain.SOURCES_DEFINITION.read_text())
    table = document["sources"][0]["tables"][0]
    assert table["name"] == "stage_classifications"
    assert [name for name, _ in created_by_dbt] == [column["name"] for column in table["columns"]]
    assert [store.DUCKDB_TYPES[column["data_type"]] for column in table["columns"]] == [k for _, k in created_by_dbt]


def test_python_brings_an_older_table_to_the_definition(created_by_dbt, tmp_path):
    path = tmp_path / "old.duckdb"
    con = open_warehouse(path)
    # the table as an earlier DDL made it: confidence a 4-byte float, no fallback_reason
    con.execute("create schema classification")
    con.execute(
        "create table classification.stage_classifications (conversation_id varchar, funnel_name varchar, "
        "stage varchar, reached boolean, confidence float, classifier varchar, model varchar, "
        "prompt_version varchar, transcript_hash varchar, classified_at timestamp)"
    )
    con.execute("insert into classification.stage_classifications values "
                "('c1', 'support', 'greeted', true, 0.7, 'rules', 'rules', 'v1', 'h', '2024-01-01 00:00:00')")
    store.ensure_tables(con)
    assert con.execute("select confidence from classification.stage_classifications").fetchone()[0] == pytest.approx(0.7)
    con.close()
    assert describe(path) == created_by_dbt


def test_an_unknown_type_in_the_yaml_names_the_file_and_column(tmp_path, monkeypatch):
    bad = tmp_path / "_classification__sources.yml"
    document = yaml.safe_load(grain.SOURCES_DEFINITION.read_text())
    document["sources"][0]["tables"][0]["columns"][4]["data_type"] = "float4"
    bad.write_text(yaml.safe_dump(document))
    monkeypatch.setattr(grain, "SOURCES_DEFINITION", bad)
    store.results_columns.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"column confidence of stage_classifications has data_type 'float4'"):
            store.results_columns()
    finally:
        store.results_columns.cache_clear()


# ---------------------------------------------------------------------------
# Each writer checks the grain of what it wrote before its commit
# ---------------------------------------------------------------------------


def test_the_grain_checked_is_the_source_yaml_grain_test():
    document = yaml.safe_load(grain.SOURCES_DEFINITION.read_text())
    for table in document["sources"][0]["tables"]:
        tests = [test["grain"]["arguments"]["columns"] for test in table.get("data_tests", []) if "grain" in test]
        if tests:
            assert grain.columns(table["name"]) == tuple(tests[0])
    assert grain.columns("stage_classifications") == ("conversation_id", "funnel_name", "stage")


def _rules_inputs(con, stages: list[str]) -> None:
    con.execute("create temp table todo as select 'c1' as conversation_id")
    con.execute("create temp table transcripts as select 'c1' as conversation_id, 'h2' as transcript_hash")
    con.execute("create temp table messages as select 'c1' as conversation_id, 1 as seq, 'e1' as event_id")
    con.execute("create temp table result (conversation_id varchar, stage varchar, reached boolean, "
                "confidence double, reached_seq integer)")
    for stage in stages:
        con.execute("insert into result values ('c1', ?, true, 0.8, 1)", [stage])


def test_a_rules_write_with_a_key_twice_fails_and_leaves_the_table(tmp_path):
    con = open_warehouse(tmp_path / "w.duckdb")
    store.ensure_tables(con)
    con.execute("insert into classification.stage_classifications (conversation_id, funnel_name, stage, reached, "
                "transcript_hash) values ('c1', 'support', 'greeted', false, 'h1')")
    _rules_inputs(con, ["greeted", "greeted"])  # a body that returns one stage twice
    con.execute("begin")
    with pytest.raises(grain.GrainError, match=r"classification.stage_classifications: this write left 2 rows "
                                                r"for \(conversation_id, funnel_name, stage\) = \('c1', 'support', 'greeted'\)"):
        store.replace_with_rules(con, "todo", "result", "transcripts", "v2", messages_table="messages")
    # rolled back: the row before the write, alone
    assert con.execute("select transcript_hash, reached from classification.stage_classifications").fetchall() == [
        ("h1", False)]


def test_a_rules_write_of_one_row_per_key_commits(tmp_path):
    con = open_warehouse(tmp_path / "w.duckdb")
    store.ensure_tables(con)
    _rules_inputs(con, ["greeted", "resolved"])
    con.execute("begin")
    assert store.replace_with_rules(con, "todo", "result", "transcripts", "v2", messages_table="messages") == 1
    con.execute("commit")
    assert con.execute("select stage, message_event_id from classification.stage_classifications order by stage"
                       ).fetchall() == [("greeted", "e1"), ("resolved", "e1")]


def test_a_sentiment_write_with_a_message_twice_fails_and_leaves_the_table(tmp_path):
    from convo_warehouse.lib.classify import sentiment

    con = open_warehouse(tmp_path / "w.duckdb")
    # one message listed twice (a join that doubled it), so its score would be written twice
    con.execute("create temp table messages as select * from (values ('e1', 'c1', timestamp '2026-01-01', 'user', "
                "'thanks, great'), ('e1', 'c1', timestamp '2026-01-01', 'user', 'thanks, great')) "
                "as m(event_id, conversation_id, event_at, role, content)")
    with pytest.raises(grain.GrainError, match=r"classification.message_sentiment: this write left [0-9]+ rows "
                                                r"for \(event_id\) = \('e1'\)"):
        sentiment.score_messages(con, "messages")
    assert con.execute("select count(*) from classification.message_sentiment").fetchone()[0] == 0
