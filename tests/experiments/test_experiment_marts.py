"""The experiment marts on a small hand-built warehouse: reference numbers through dbt.

The events are written as a landing file, loaded by the real loader and built
by dbt (staging -> fct_conversations -> experiment marts), so the public
reference cases are checked through the models, not only the helpers:

- greeting_tone: control formal 14/28 vs casual 16/30 -> pooled z = 0.2539,
  two-sided p = 0.7996 (with contaminated conversations and conversions
  before exposure around them that must not count);
- reply_length: sessions 1000 vs 1100 at 50/50 -> SRM chi-square 4.762,
  p = 0.0291.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pytest
from support.warehouse import Warehouse, open_warehouse

from convo_warehouse.lib.assignment import assign_variant

SELECT_MARTS = "+ab_test_results +ab_test_metrics +ab_test_health ab_test_exposures fct_conversations"
START = datetime(2024, 5, 1, 9, 0, 0)


def build_experiment_marts(warehouse: Warehouse, events: list[dict]) -> None:
    """Load ``events`` with the real loader and build (and test) the experiment marts."""
    (warehouse.landing / "events.jsonl").write_text("\n".join(json.dumps(event) for event in events) + "\n")
    warehouse.load()
    warehouse.build(select=SELECT_MARTS)


class Events:
    """Builds raw events for one conversation at a time."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.count = 0

    def conversation(
        self,
        test_name: str,
        variants: list[str],
        converts_after: bool = False,
        converts_before: bool = False,
        channel: str = "web",
    ) -> str:
        """One conversation: started, exposed to ``variants`` in order, maybe converting."""
        self.count += 1
        conversation_id = f"{test_name}-{self.count:05d}"
        at = START + timedelta(seconds=10 * self.count)

        def add(kind: str, offset_s: float, properties: dict) -> None:
            self.rows.append(
                {
                    "event_id": f"{conversation_id}-{len(self.rows)}",
                    "conversation_id": conversation_id,
                    "user_id": f"user-{self.count}",
                    "event_type": kind,
                    "timestamp": (at + timedelta(seconds=offset_s)).isoformat() + "Z",
                    "channel": channel,
                    "properties": properties,
                }
            )

        add("conversation_started", 0, {})
        if converts_before:
            add("conversion", 1, {"goal": "email_collected"})
        for index, variant in enumerate(variants):
            add("experiment_exposure", 2 + index, {"test_name": test_name, "variant": variant})
        if converts_after:
            add("conversion", 5, {"goal": "demo_booked"})
        return conversation_id


@pytest.fixture(scope="module")
def reference_warehouse(tmp_path_factory, dbt_target_dir):
    events = Events()
    # greeting_tone, control formal: 28 sessions, 14 converting after exposure;
    # 3 more convert only before their exposure (sessions, not conversions).
    for i in range(28):
        events.conversation("greeting_tone", ["formal"], converts_after=i < 14, converts_before=14 <= i < 17)
    # casual: 30 sessions, 16 converting (2 of them also converted before: counted once).
    for i in range(30):
        events.conversation("greeting_tone", ["casual"], converts_after=i < 16, converts_before=i < 2)
    # contaminated: saw both variants; they convert but are no one's sessions.
    for _ in range(4):
        events.conversation("greeting_tone", ["casual", "formal"], converts_after=True)
    events.conversation("greeting_tone", ["formal", "casual", "formal"], converts_after=True)
    # reply_length: 1000 short vs 1100 long, across two channels.
    for i in range(1000):
        events.conversation("reply_length", ["short"], converts_after=i < 100, channel="web" if i % 2 else "sms")
    for i in range(1100):
        events.conversation("reply_length", ["long"], converts_after=i < 121, channel="web" if i % 2 else "sms")
    # a test that is not in the seed
    for _ in range(5):
        events.conversation("button_color", ["red"])
    warehouse = Warehouse(tmp_path_factory.mktemp("experiments_reference"), dbt_target_dir)
    build_experiment_marts(warehouse, events.rows)
    con = open_warehouse(warehouse.path)  # same configuration as dbt's in-process connection
    yield con
    con.close()


def result_row(con, test_name: str, variant: str) -> dict:
    cursor = con.execute(
        "select * from marts.ab_test_results where test_name = ? and variant = ?", [test_name, variant]
    )
    names = [column[0] for column in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_reference_z_test_through_the_marts(reference_warehouse):
    con = reference_warehouse
    control = result_row(con, "greeting_tone", "formal")
    variant = result_row(con, "greeting_tone", "casual")
    assert (control["sessions"], control["conversions"]) == (28, 14)
    assert (variant["sessions"], variant["conversions"]) == (30, 16)
    assert variant["z_score"] == pytest.approx(0.2539, abs=5e-5)
    assert variant["p_value"] == pytest.approx(0.7996, abs=5e-5)
    assert variant["is_significant"] is False
    assert variant["absolute_lift"] == pytest.approx(16 / 30 - 0.5)
    assert variant["relative_lift"] == pytest.approx((16 / 30 - 0.5) / 0.5)
    assert control["conversion_rate"] == pytest.approx(0.5)
    for column in ("absolute_lift", "relative_lift", "z_score", "p_value", "ci_low", "ci_high", "is_significant"):
        assert control[column] is None, column
    # 28 + 30 sessions, far below 500: not enough sample; 58 >= 16: enough traffic
    assert control["enough_sample"] is False and variant["has_enough_traffic"] is True


def test_reference_srm_through_the_marts(reference_warehouse):
    con = reference_warehouse
    short = result_row(con, "reply_length", "short")
    long = result_row(con, "reply_length", "long")
    assert (short["sessions"], long["sessions"]) == (1000, 1100)
    for row in (short, long):
        assert row["srm_chi_square"] == pytest.approx(4.762, abs=5e-4)
        assert row["srm_p_value"] == pytest.approx(0.0291, abs=5e-5)
        assert row["srm_detected"] is False
    # 1000 and 1100 sessions, 100 and 121 conversions: enough
    assert short["enough_sample"] is True


def test_results_only_for_seed_tests(reference_warehouse):
    con = reference_warehouse
    tests = {row[0] for row in con.execute("select distinct test_name from marts.ab_test_results").fetchall()}
    assert tests == {"greeting_tone", "reply_length"}
    exposures = con.execute(
        "select count(*), count(expected_variant), count(assignment_ok) from marts.ab_test_exposures"
        " where test_name = 'button_color'"
    ).fetchone()
    assert exposures == (5, 0, 0)


def test_contamination_is_counted_in_health(reference_warehouse):
    con = reference_warehouse
    exposed, contaminated, problems = con.execute(
        "select exposed_conversations, contaminated_conversations, problems from marts.ab_test_health"
        " where test_name = 'greeting_tone' and segment_type = 'all'"
    ).fetchone()
    assert (exposed, contaminated) == (63, 5)
    assert "saw several variants" in problems


def test_expected_variant_is_the_python_assignment_for_every_exposure(reference_warehouse):
    con = reference_warehouse
    seed = {"greeting_tone": ["formal", "casual"], "reply_length": ["short", "long"]}
    rows = con.execute(
        "select test_name, conversation_id, variant, expected_variant, assignment_ok from marts.ab_test_exposures"
        " where test_name in ('greeting_tone', 'reply_length')"
    ).fetchall()
    assert len(rows) == 63 + 2100
    for test_name, conversation_id, variant, expected, ok in rows:
        assert expected == assign_variant(test_name, conversation_id, seed[test_name]), conversation_id
        assert ok == (variant == expected)
    mismatches = sum(1 for row in rows if row[1].startswith("reply_length") and not row[4])
    health = con.execute(
        "select assignment_mismatches from marts.ab_test_health where test_name = 'reply_length' and segment_type = 'all'"
    ).fetchone()[0]
    assert health == mismatches


def test_srm_per_channel(reference_warehouse):
    con = reference_warehouse
    rows = con.execute(
        "select segment_value, sessions from marts.ab_test_health"
        " where test_name = 'reply_length' and segment_type = 'channel' order by segment_value"
    ).fetchall()
    assert rows == [("sms", 1050), ("web", 1050)]


def test_metrics_conversion_matches_results_and_holm_family(reference_warehouse):
    con = reference_warehouse
    p_value, adjusted, role = con.execute(
        "select p_value, p_value_adjusted, metric_role from marts.ab_test_metrics"
        " where test_name = 'greeting_tone' and variant = 'casual' and metric_name = 'conversion_rate'"
    ).fetchone()
    assert role == "primary"
    assert p_value == pytest.approx(result_row(con, "greeting_tone", "casual")["p_value"])
    assert adjusted >= p_value
    guardrail_adjusted = con.execute(
        "select count(p_value_adjusted) from marts.ab_test_metrics where metric_role = 'guardrail'"
    ).fetchone()[0]
    assert guardrail_adjusted == 0
