"""Row-by-row data tests of stg_events read only the loads since the previous
build (macro loaded_since_previous_build), and the whole history on a full
refresh or with the var test_full_history."""

from __future__ import annotations

import shutil

from convo_warehouse.lib.generate import generate_events


def test_stg_events_row_tests_read_the_new_loads_only(tmp_path_factory, make_warehouse):
    source = tmp_path_factory.mktemp("scoped-tests-landing")
    generate_events(source, conversations=60, days=2, seed=5, progress=False)
    days = sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")
    warehouse = make_warehouse("scoped-tests")
    warehouse.dbt("seed")
    for number, day in enumerate(days, start=1):
        shutil.copytree(day, warehouse.landing / day.name)
        assert warehouse.load().load_id == number
        warehouse.dbt("run", "--select", "+stg_events")

    def not_null_event_type_passes(*extra: str) -> bool:
        result = warehouse.dbt(
            "test", "--select", "not_null_stg_events_event_type", *extra, check=False
        )
        statuses = {
            node_result.node.name: str(node_result.status) for node_result in result.result.results
        }
        assert "not_null_stg_events_event_type" in statuses, statuses
        return statuses["not_null_stg_events_event_type"] == "pass"

    # A null in a row of the first load: the scoped test (the second load's
    # rows) does not read it, the whole-history test does.
    warehouse.query(
        "update staging.stg_events set event_type = null where event_id = "
        "(select min(event_id) from staging.stg_events where load_id = 1)"
    )
    assert not_null_event_type_passes()
    assert not not_null_event_type_passes("--vars", "{test_full_history: true}")
    # A null in the newest load's rows is found by the scoped test.
    warehouse.query(
        "update staging.stg_events set event_type = null where event_id = "
        "(select min(event_id) from staging.stg_events where load_id = 2)"
    )
    assert not not_null_event_type_passes()
