"""The stage classifier runs inside the dbt build: the Python model classifier_runs.

It classifies the staged transcripts into the `classification` source tables,
which the run's scope (scope_run, scope_conversations) reads after it in the
same build, so the models they put in scope see this build's output; its row
says what the run did, and a second run finds everything cached.
"""

from __future__ import annotations

import shutil

import pytest

from convo_warehouse.lib.generate import generate_events


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    source = tmp_path_factory.mktemp("classifier-runs-landing")
    generate_events(source, conversations=40, days=1, seed=3, end_date="2024-05-02", progress=False)
    return source


def test_the_classifier_runs_in_the_build_and_its_output_is_staged_in_the_same_build(landing, warehouse):
    shutil.copytree(landing, warehouse.landing, dirs_exist_ok=True)
    warehouse.load()
    warehouse.dbt("seed")
    warehouse.dbt("run", "--select", "+scope_conversations stg_stage_classifications stg_message_sentiment")

    [(classifier, classified, cached, sentiment_scored, stage_rows)] = warehouse.query(
        "select classifier, classified, cached, sentiment_scored, stage_rows from classification.classifier_runs"
    )
    with_messages = warehouse.scalar(
        "select count(distinct conversation_id) from staging.stg_events "
        "where event_type in ('user_message', 'agent_message')"
    )
    assert (classifier, classified, cached) == ("rules", with_messages, 0)
    assert sentiment_scored == warehouse.scalar(
        "select count(*) from staging.stg_events where event_type = 'user_message'"
    )
    # the staging view reads its rows, and the scope built after it in the same build saw them
    assert stage_rows == warehouse.scalar("select count(*) from classification.stage_classifications") > 0
    assert warehouse.scalar("select count(distinct conversation_id) from staging.stg_stage_classifications") == (
        with_messages
    )
    assert warehouse.scalar("select classified_through from scope.scope_run") == warehouse.scalar(
        "select max(classified_at) from classification.stage_classifications"
    )

    # nothing new: a second run appends a row saying every transcript was cached
    warehouse.dbt("run", "--select", "classifier_runs")
    runs = warehouse.query("select classified, cached from classification.classifier_runs order by run_started_at")
    assert runs[-1] == (0, with_messages) and len(runs) == 2
