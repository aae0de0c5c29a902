"""The classifier reads only the transcripts that may have changed: the
conversations with events staged since its previous run and those without a
usable stored classification. It stores exactly what reading every
transcript stores, and reads everything when staging read the history anew."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from convo_warehouse.lib.classify.runner import classify_warehouse
from convo_warehouse.lib.classify.transcripts import PREPARED_TABLE, TRANSCRIPTS_TABLE, staged_history
from convo_warehouse.lib.generate import generate_events
from support.warehouse import open_warehouse

# A fixed past end date: every generated day is whole.
END_DATE = "2024-04-02"


def classify(path: Path) -> tuple[dict, set[str], dict[str, list]]:
    """Run the rules classifier on ``path``: its stats, the conversations it
    prepared transcripts for, and what it stored (without write times)."""
    con = open_warehouse(path)
    try:
        stats = classify_warehouse(con, "rules", judge=False).as_dict()
        prepared = {row[0] for row in con.execute(f"select conversation_id from {TRANSCRIPTS_TABLE}").fetchall()}
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
    return stats, prepared, stored


def test_classifier_reads_the_conversations_with_new_events_and_stores_what_a_full_read_stores(
    tmp_path_factory, make_warehouse
):
    source = tmp_path_factory.mktemp("classify-incremental-landing")
    generate_events(source, conversations=90, days=2, seed=8, end_date=END_DATE, progress=False)
    days = sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")
    warehouse = make_warehouse("classify-incremental")
    warehouse.dbt("seed")
    shutil.copytree(days[0], warehouse.landing / days[0].name)
    warehouse.load()
    warehouse.build()
    first_stats, first_prepared, _ = classify(warehouse.path)
    started = "select conversation_id from marts.fct_conversations where started"
    # Nothing recorded before: every started conversation with a message was read.
    assert first_prepared and first_stats["conversations"] == len(first_prepared)
    assert first_stats["classified"] == len(first_prepared)

    shutil.copytree(days[1], warehouse.landing / days[1].name)
    warehouse.load()
    warehouse.build()
    # The newest staged load run, as the staged events' build recorded it, is
    # the one a scan of every staged event finds; without the record, the scan.
    scanned = warehouse.scalar("select max(load_id) from staging.stg_events")
    recorded = warehouse.scalar(
        "select loaded_through_load_id from audit.incremental_builds "
        "where model_name = 'base_events_parsed' order by recorded_at desc limit 1"
    )
    assert recorded == scanned == 2
    with open_warehouse(warehouse.path) as con:
        assert staged_history(con)[0] == recorded
        con.execute("begin")
        con.execute("update audit.incremental_builds set loaded_through_load_id = null")
        assert staged_history(con)[0] == scanned
        con.execute("rollback")
    # The same warehouse without the record: the classifier reads everything there.
    full = warehouse.root / "full-read.duckdb"
    warehouse.query("checkpoint")
    shutil.copyfile(warehouse.path, full)
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

    scoped_stats, scoped_prepared, scoped_stored = classify(warehouse.path)
    full_stats, full_prepared, full_stored = classify(full)
    new_events = {
        row[0] for row in warehouse.query(
            f"select distinct conversation_id from staging.stg_events where load_id = 2 and conversation_id in ({started})"
        )
    }
    assert scoped_prepared == (new_events | {unusable}) & full_prepared
    assert len(scoped_prepared) < len(full_prepared)
    assert scoped_stats == full_stats
    assert scoped_stats["classified"] > 1 and scoped_stats["sentiment_scored"] > 0
    assert scoped_stored == full_stored

    # No new event: nothing read, and a build with nothing new leaves
    # stg_events' recorded fingerprint as it was.
    assert classify(warehouse.path)[1] == set()
    warehouse.build()
    assert classify(warehouse.path)[1] == set()
    # Staging reads the history anew (a sender added to the var the view
    # maps messages through: the view's build records a new fingerprint):
    # everything read.
    warehouse.build("stg_events", "--vars", '{"user_message_senders": [prospect, user, customer, visitor, lead, guest]}')
    assert classify(warehouse.path)[1] == full_prepared
