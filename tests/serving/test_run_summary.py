"""The run summary on small hand-made marts: which day the key rates show, and
how the any-order funnel prints a stage reached more often than the one before."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from convo_warehouse.lib.summary import funnel_lines, key_rate_lines

TODAY = dt.date(2024, 5, 3)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        """
        create table marts.metrics_daily (
            metric_date date, segment_type varchar, segment_value varchar, metric_name varchar,
            numerator double, denominator double, value double
        )
        """
    )
    con.execute(
        """
        create table marts.funnel_summary (
            funnel_name varchar, stage varchar, stage_order integer, reached bigint,
            conversion_rate double, conversion_from_start double, drop_off bigint
        )
        """
    )
    yield con
    con.close()


def add_day(con, day: dt.date, conversations: int, completed: int) -> None:
    con.executemany(
        "insert into marts.metrics_daily values (?, 'all', 'all', ?, ?, ?, ?)",
        [
            [day, "conversations", None, None, conversations],
            [day, "completion_rate", completed, conversations, completed / conversations],
        ],
    )
    # a segment row on a later day must not decide the day shown
    con.execute(
        "insert into marts.metrics_daily values (?, 'channel', 'web', 'conversations', null, null, 1)",
        [day + dt.timedelta(days=5)],
    )


def test_key_rates_show_the_latest_complete_day_not_todays_partial_one(con):
    add_day(con, TODAY - dt.timedelta(days=2), 400, 300)
    add_day(con, TODAY - dt.timedelta(days=1), 500, 250)
    add_day(con, TODAY, 20, 1)
    lines = key_rate_lines(con, today=TODAY)
    assert lines[0] == "Key rates for 2024-05-02 (latest complete day, UTC; today 2024-05-03 is still in progress)"
    assert lines[1].split() == ["conversations", "500"]
    assert lines[2].split() == ["completion_rate", "50.0%", "(250", "/", "500)"]


def test_key_rates_of_a_warehouse_that_ends_before_today(con):
    add_day(con, dt.date(2024, 1, 30), 40, 10)
    add_day(con, dt.date(2024, 1, 31), 50, 10)
    lines = key_rate_lines(con, today=TODAY)
    assert lines[0] == "Key rates for 2024-01-31 (latest complete day, UTC)"
    assert lines[2].split()[1] == "20.0%"


def test_key_rates_of_a_warehouse_with_only_today_say_the_day_is_partial(con):
    add_day(con, TODAY, 20, 5)
    lines = key_rate_lines(con, today=TODAY)
    assert lines[0] == "Key rates for 2024-05-03 (partial day, still in progress: no complete day yet)"
    assert lines[2].split()[1] == "25.0%"


def test_no_metrics_no_key_rate_section(con):
    assert key_rate_lines(con, today=TODAY) == []


def test_a_stage_reached_more_often_than_the_previous_one_says_so(con):
    con.executemany(
        "insert into marts.funnel_summary values ('support', ?, ?, ?, ?, ?, ?)",
        [
            ["initiated", 1, 1000, 1.0, 1.0, 0],
            ["greeted", 2, 800, 0.8, 0.8, 200],
            ["problem_identified", 3, 920, 1.15, 0.92, -120],
            ["resolved", 4, 460, 0.5, 0.46, 460],
        ],
    )
    lines = funnel_lines(con)
    by_stage = {line.split()[0]: line for line in lines[2:6]}
    skipped = by_stage["problem_identified"]
    assert "skipped-to: 120 more than previous" in skipped
    assert "115.0%" not in skipped and "-120" not in skipped
    assert skipped.split()[:5] == ["problem_identified", "920", "-", "92.0%", "-"]
    # ordinary stages keep their rate and drop-off
    assert by_stage["greeted"].split() == ["greeted", "800", "80.0%", "80.0%", "200"]
    assert by_stage["resolved"].split() == ["resolved", "460", "50.0%", "46.0%", "460"]
    assert lines[-1].startswith("  skipped-to: more conversations reached the stage than the one before it")


def test_a_funnel_without_skipped_stages_has_no_skipped_note(con):
    con.executemany(
        "insert into marts.funnel_summary values ('support', ?, ?, ?, ?, ?, ?)",
        [["initiated", 1, 10, 1.0, 1.0, 0], ["greeted", 2, 10, 1.0, 1.0, 0]],
    )
    lines = funnel_lines(con)
    assert len(lines) == 4
    assert not any("skipped-to" in line for line in lines)
