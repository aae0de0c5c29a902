"""The Dagster asset: materialises through WarehouseResource and reports its counts."""

from __future__ import annotations

import dagster as dg
import duckdb

from convo_warehouse.assets.classification import (
    MESSAGE_SENTIMENT,
    STAGE_CLASSIFICATIONS,
    stage_classifications,
)
from convo_warehouse.resources import WarehouseResource


def build_warehouse(path) -> None:
    con = duckdb.connect(str(path))
    con.execute("create schema staging")
    con.execute("create schema marts")
    con.execute(
        "create table staging.stg_events (event_id varchar, conversation_id varchar, event_type varchar, "
        "event_at timestamp, content varchar)"
    )
    con.execute("create table marts.fct_conversations (conversation_id varchar, started boolean)")
    con.execute("insert into marts.fct_conversations values ('a', true), ('b', true), ('never_started', false)")
    con.execute(
        """
        insert into staging.stg_events values
            ('a1', 'a', 'user_message', '2025-01-01 10:00:00', 'my card is blocked'),
            ('a2', 'a', 'agent_message', '2025-01-01 10:00:05', 'Hello, sorry about that. I have unblocked your card.'),
            ('a3', 'a', 'user_message', '2025-01-01 10:00:09', 'it works now, thanks'),
            ('b1', 'b', 'user_message', '2025-01-01 11:00:00', 'hello?'),
            ('n1', 'never_started', 'user_message', '2025-01-01 12:00:00', 'ghost message')
        """
    )
    con.close()


def test_asset_materialises_rules_and_reports_cache(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    build_warehouse(path)
    monkeypatch.setenv("CONVO_CLASSIFIER", "rules")
    resources = {"warehouse": WarehouseResource(database_path=str(path))}

    first = dg.materialize([stage_classifications], resources=resources)
    assert first.success
    events = {e.materialization.asset_key: e.materialization for e in first.get_asset_materialization_events()}
    event = events[STAGE_CLASSIFICATIONS]
    assert events[MESSAGE_SENTIMENT].metadata["scored_this_run"].value == 3  # the user messages of a and b
    assert event.metadata["classified"].value == 2  # a and b; never_started is left out
    assert event.metadata["fell_back_to_rules"].value == 0

    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "select conversation_id, stage, reached from classification.stage_classifications"
    ).fetchall()
    con.close()
    assert len(rows) == 10
    assert ("a", "resolved", True) in rows and ("b", "resolved", False) in rows

    second = dg.materialize([stage_classifications], resources=resources)
    events = {e.materialization.asset_key: e.materialization for e in second.get_asset_materialization_events()}
    event = events[STAGE_CLASSIFICATIONS]
    assert events[MESSAGE_SENTIMENT].metadata["scored_this_run"].value == 0
    assert event.metadata["classified"].value == 0
    assert event.metadata["cached_skipped"].value == 2
