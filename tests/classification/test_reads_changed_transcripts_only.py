"""The classifier reads only the transcripts that may have changed: the
conversations whose scope.scope_conversation_lifecycle row a run recomputed
since it last prepared transcripts (those with new events) and those without a
usable stored classification. It stores exactly what reading every transcript
stores, and reads everything when staging read the history anew (the
lifecycle is then rebuilt whole, which recomputes every conversation)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from convo_warehouse.lib.classify import runner
from convo_warehouse.lib.classify.runner import classify_warehouse
from convo_warehouse.lib.classify.transcripts import PREPARED_TABLE, TRANSCRIPTS_TABLE
from convo_warehouse.lib.generate import generate_events
from support.warehouse import Warehouse, copy_project, forget_parsed_manifest, open_warehouse

# A fixed past end date: every generated day is whole.
END_DATE = "2024-04-02"
WITH_MESSAGES = (
    "select distinct conversation_id from staging.stg_events where event_type in ('user_message', 'agent_message')"
)


@pytest.fixture
def prepared(monkeypatch) -> list[set[str]]:
    """The conversations each classifier run prepared transcripts for, the classifier steps
    of the dbt builds (the Python model classifier_runs runs in this process) included."""
    runs: list[set[str]] = []
    prepare = runner.prepare_transcripts

    def recording(con, conversations=None):
        count = prepare(con, conversations)
        runs.append({row[0] for row in con.execute(f"select conversation_id from {TRANSCRIPTS_TABLE}").fetchall()})
        return count

    monkeypatch.setattr(runner, "prepare_transcripts", recording)
    return runs


def classify(path: Path, prepared: list[set[str]]) -> tuple[dict, set[str], dict[str, list]]:
    """Run the rules classifier on ``path``: its stats, the conversations it
    prepared transcripts for, and what it stored (without write times)."""
    con = open_warehouse(path)
    try:
        stats = classify_warehouse(con, "rules", judge=False).as_dict()
        stored = {
            table: con.execute(f"select * exclude ({written}) from {table} order by all").fetchall()
            for table, written in (
                ("classification.stage_classifications", "classified_at"),
                ("classification.message_sentiment", "scored_at"),
            )
        }
    finally:
        con.close()
    del stats["seconds"]
    return stats, prepared[-1], stored


def test_classifier_reads_the_conversations_with_new_events_and_stores_what_a_full_read_stores(
    tmp_path, prepared
):
    source = tmp_path / "landing-source"
    generate_events(source, conversations=90, days=2, seed=8, end_date=END_DATE, progress=False)
    days = sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")
    project = copy_project(tmp_path / "project")
    warehouse = Warehouse(tmp_path / "warehouse", tmp_path / "target", project)
    shutil.copytree(days[0], warehouse.landing / days[0].name)
    warehouse.load()
    # A pipeline run: its classifier step prepared every conversation with a message
    # (nothing recorded before).
    warehouse.run_build()
    everyone = {row[0] for row in warehouse.query(WITH_MESSAGES)}
    assert everyone and prepared[-1] == everyone

    # The next load staged and its conversations' lifecycle recomputed, as a run does
    # before its classifier step (a partial run: the next complete one covers it again).
    shutil.copytree(days[1], warehouse.landing / days[1].name)
    warehouse.load()
    warehouse.dbt("run", "--select", "+scope_conversation_lifecycle")
    new_events = {
        row[0] for row in warehouse.query(
            f"select distinct conversation_id from staging.stg_events where load_id = 2 "
            f"and conversation_id in ({WITH_MESSAGES})"
        )
    }
    assert new_events and {row[0] for row in warehouse.query(
        "select conversation_id from scope.scope_conversation_lifecycle where last_load_id = 2"
    )} >= new_events
    # The same warehouse without the record of what was prepared: the classifier reads everything there.
    full = warehouse.file_copy(warehouse.root / "full-read.duckdb")
    with open_warehouse(full) as con:
        con.execute(f"drop table {PREPARED_TABLE}")
    # A conversation of the first day whose stored classification is unusable
    # (another rules version): read again, though it has no new event.
    unusable = warehouse.scalar(
        "select min(conversation_id) from classification.stage_classifications where conversation_id not in "
        "(select conversation_id from staging.stg_events where load_id = 2)"
    )
    for path in (warehouse.path, full):
        with open_warehouse(path) as con:
            con.execute(
                "update classification.stage_classifications set prompt_version = 'rules-old' "
                "where conversation_id = ?",
                [unusable],
            )

    # What an engine that copies the classifier's tables asks first (spark/pipeline.py): which
    # conversations' transcripts the classifier will read; here the new ones and the unusable one.
    with open_warehouse(warehouse.path) as con:
        to_read = runner.conversations_to_read(con, "rules", judge=False)
        announced = {row[0] for row in con.execute(f"select conversation_id from {to_read}").fetchall()}
    with open_warehouse(full) as con:
        assert runner.conversations_to_read(con, "rules", judge=False) is None

    scoped_stats, scoped_prepared, scoped_stored = classify(warehouse.path, prepared)
    full_stats, full_prepared, full_stored = classify(full, prepared)
    assert full_prepared == {row[0] for row in warehouse.query(WITH_MESSAGES)}
    assert scoped_prepared == (new_events | {unusable}) & full_prepared
    assert announced & full_prepared == scoped_prepared
    assert len(scoped_prepared) < len(full_prepared)
    assert scoped_stats == full_stats
    assert scoped_stats["classified"] > 1 and scoped_stats["sentiment_scored"] > 0
    assert scoped_stored == full_stored

    # No new event: nothing read, classified or scored, by the classifier alone or in a run with
    # nothing new.
    again_stats, again_prepared, again_stored = classify(warehouse.path, prepared)
    assert again_prepared == set() and again_stored == scoped_stored
    assert again_stats["classified"] == 0 and again_stats["sentiment_scored"] == 0
    warehouse.run_build()
    # (the partial run recorded nothing: the first complete run recomputes its conversations once more)
    assert prepared[-1] == new_events
    warehouse.run_build()
    assert prepared[-1] == set()
    assert classify(warehouse.path, prepared)[1] == set()

    # Staging reads the history anew (a sender added to the var the staged events map
    # messages through): the run rebuilds the lifecycle whole, and its classifier step
    # reads everything.
    settings = project / "dbt_project.yml"
    senders = "user_message_senders: [prospect, user, customer, visitor, lead]"
    assert senders in settings.read_text()
    settings.write_text(settings.read_text().replace(senders, senders.replace("lead]", "lead, guest]")))
    (warehouse.target_dir / "manifest.json").unlink()
    forget_parsed_manifest(warehouse.target_dir)
    _, dropped, _ = warehouse.run_build()
    assert "scope.scope_conversation_lifecycle" in dropped
    assert prepared[-1] == {row[0] for row in warehouse.query(WITH_MESSAGES)}
