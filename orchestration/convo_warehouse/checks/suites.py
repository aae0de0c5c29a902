"""Great Expectations suites as code, and the DuckDB queries that feed them.

No Dagster here: each suite is a plain ``gx.ExpectationSuite`` built by a
function, validated against a pandas DataFrame read from DuckDB (GX's SQL
route through duckdb-engine is unreliable). Dagster wraps these in asset
checks (``checks/gx_checks.py``).

Every expectation carries ``meta={"severity": "critical" | "warning"}``:

* ``critical``: something is systemically wrong (a file in the wrong format,
  a broken model). A failure blocks downstream assets.
* ``warning``: worth a look (more bad rows than usual). Reported, not blocking.

The raw suite tolerates the bad rows the contract expects (they go to
quarantine): the same rule appears twice, a strict ``mostly`` as a warning
and a loose one as critical.

What dbt tests express simply (unique keys, accepted values) stays in dbt;
these suites cover shares of bad rows, bounds and cross-table counts.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:  # GX costs ~3 s to import: only when a suite is built.
    import great_expectations as gx
    import pandas as pd

CRITICAL = "critical"
WARNING = "warning"

# A raw batch may hold up to this share of bad rows before the run stops
# (critical), and this share before it is reported (warning).
RAW_CRITICAL_MOSTLY = 0.90
RAW_WARNING_MOSTLY = 0.98
# Largest raw batch validated row by row; a bigger load is sampled.
RAW_MAX_ROWS = 500_000
# Earliest plausible event time, and how far ahead of its load an event may be.
EARLIEST_EVENT_AT = dt.datetime(2000, 1, 1)
MAX_HOURS_AHEAD_OF_LOAD = 24

RAW_EVENTS_SUITE = "raw_events_suite"
FCT_CONVERSATIONS_SUITE = "marts_fct_conversations_suite"
METRICS_DAILY_SUITE = "marts_metrics_daily_suite"
FUNNEL_STAGE_DAILY_SUITE = "marts_funnel_stage_daily_suite"
AB_TEST_RESULTS_SUITE = "marts_ab_test_results_suite"


def _meta(severity: str, why: str) -> dict[str, str]:
    return {"severity": severity, "why": why}


# ---------------------------------------------------------------------------
# raw.events
# ---------------------------------------------------------------------------


def known_event_types(seeds_dir: Path) -> list[str]:
    """Canonical event types and their aliases, from the seed CSVs (lower case)."""
    values: set[str] = set()
    for name, column in (("event_types.csv", "event_type"), ("event_type_aliases.csv", "alias")):
        path = seeds_dir / name
        if not path.exists():
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            values.update(
                row[column].strip().lower() for row in csv.DictReader(handle) if row.get(column)
            )
    return sorted(values)


def raw_events_suite(event_types: Iterable[str]) -> gx.ExpectationSuite:
    """Checks on the newest raw batch, before staging reads it."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    event_types = sorted(event_types)
    expectations: list[Any] = []
    for severity, mostly in ((CRITICAL, RAW_CRITICAL_MOSTLY), (WARNING, RAW_WARNING_MOSTLY)):
        share = f"at least {mostly:.0%} of the batch"
        for column in ("event_id", "conversation_id", "event_type", "event_timestamp"):
            expectations.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=column,
                    mostly=mostly,
                    meta=_meta(severity, f"required field {column} present in {share}"),
                )
            )
        expectations += [
            gxe.ExpectColumnValuesToBeInSet(
                column="event_type_normalised",
                value_set=event_types,
                mostly=mostly,
                meta=_meta(severity, f"event type known or an alias in {share}"),
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="event_at",
                mostly=mostly,
                meta=_meta(severity, f"timestamp parses in {share}"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="event_at",
                min_value=EARLIEST_EVENT_AT,
                mostly=mostly,
                meta=_meta(severity, f"timestamp after {EARLIEST_EVENT_AT:%Y-%m-%d} in {share}"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="hours_ahead_of_load",
                max_value=MAX_HOURS_AHEAD_OF_LOAD,
                mostly=mostly,
                meta=_meta(
                    severity,
                    f"timestamp at most {MAX_HOURS_AHEAD_OF_LOAD} h after load time in {share}",
                ),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="properties_kind",
                value_set=["object"],
                mostly=mostly,
                meta=_meta(severity, f"properties parse as a JSON object in {share}"),
            ),
        ]
    return gx.ExpectationSuite(name=RAW_EVENTS_SUITE, expectations=expectations)


RAW_EVENTS_QUERY = """
with batch as (
    select *
    from raw.events
    where load_id = (select max(raw_events.load_id) from raw.events as raw_events)
),

sampled as (
    select * from batch
    {sample}
)

select
    sampled.load_id,
    sampled.source_file,
    sampled.row_number,
    nullif(trim(sampled.event_id), '') as event_id,
    coalesce(nullif(trim(sampled.conversation_id), ''), nullif(trim(sampled.session_id), ''))
        as conversation_id,
    nullif(trim(sampled.event_type), '') as event_type,
    lower(nullif(trim(sampled.event_type), '')) as event_type_normalised,
    nullif(trim(sampled.event_timestamp), '') as event_timestamp,
    case
        when regexp_full_match(trim(sampled.event_timestamp), '[0-9]{{1,15}}')
            then epoch_ms(cast(trim(sampled.event_timestamp) as bigint))
        when regexp_full_match(trim(sampled.event_timestamp), '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ].+')
            then cast(
                try_cast(trim(sampled.event_timestamp) as timestamptz) at time zone 'UTC'
                as timestamp
            )
    end as event_at,
    sampled.loaded_at,
    case
        when sampled.properties is null then null
        when not json_valid(sampled.properties) then 'invalid'
        when json_type(sampled.properties) = 'OBJECT' then 'object'
        when json_type(sampled.properties) = 'VARCHAR'
            and json_valid(sampled.properties ->> '$')
            and json_type(sampled.properties ->> '$') = 'OBJECT'
            then 'object'
        else lower(json_type(sampled.properties))
    end as properties_kind
from sampled
"""


def raw_events_frame(con: duckdb.DuckDBPyConnection, max_rows: int = RAW_MAX_ROWS) -> pd.DataFrame:
    """The newest load's raw rows (sampled above ``max_rows``) with parsed helper columns."""
    sample = f"using sample {int(max_rows)} rows" if max_rows else ""
    frame = con.execute(RAW_EVENTS_QUERY.format(sample=sample)).df()
    frame["hours_ahead_of_load"] = (
        frame["event_at"] - frame["loaded_at"]
    ).dt.total_seconds() / 3600.0
    return frame


RAW_EVENTS_INDEX = ["source_file", "row_number"]


# ---------------------------------------------------------------------------
# marts
# ---------------------------------------------------------------------------


def fct_conversations_suite() -> gx.ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=FCT_CONVERSATIONS_SUITE,
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(
                column="conversation_id", meta=_meta(CRITICAL, "no null conversation key")
            ),
            gxe.ExpectColumnValuesToBeUnique(
                column="conversation_id", meta=_meta(CRITICAL, "one row per conversation")
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="conversation_date", meta=_meta(CRITICAL, "every conversation has a day")
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="satisfaction_score",
                min_value=0,
                max_value=1,
                meta=_meta(CRITICAL, "satisfaction within 0..1"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="feedback_score",
                min_value=0,
                max_value=1,
                meta=_meta(CRITICAL, "feedback score within 0..1"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="user_turns", min_value=0, meta=_meta(CRITICAL, "no negative counts")
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="duration_seconds",
                min_value=0,
                meta=_meta(WARNING, "a conversation does not end before it starts"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="first_response_ms",
                min_value=0,
                meta=_meta(WARNING, "the first reply comes at or after the first message"),
            ),
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="conversations",
                column_B="staged_conversations",
                meta=_meta(CRITICAL, "fct rows reconcile with distinct staged conversations"),
            ),
        ],
    )


FCT_CONVERSATIONS_QUERY = """
with facts as (
    select
        fct_conversations.conversation_id,
        fct_conversations.conversation_date,
        fct_conversations.satisfaction_score,
        fct_conversations.feedback_score,
        fct_conversations.user_turns,
        fct_conversations.duration_seconds,
        fct_conversations.first_response_ms
    from marts.fct_conversations as fct_conversations
),

staged as (
    select count(distinct stg_events.conversation_id) as staged_conversations
    from staging.stg_events as stg_events
)

select
    facts.*,
    count(*) over () as conversations,
    staged.staged_conversations
from facts
cross join staged
"""


def metrics_daily_suite() -> gx.ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=METRICS_DAILY_SUITE,
        expectations=[
            *(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=column, meta=_meta(CRITICAL, f"no null key column {column}")
                )
                for column in ("metric_date", "metric_name", "segment_type", "segment_value")
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="rate_value",
                min_value=0,
                max_value=1,
                meta=_meta(CRITICAL, "every *_rate metric within 0..1"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="satisfaction_value",
                min_value=0,
                max_value=1,
                meta=_meta(CRITICAL, "avg_satisfaction_score within 0..1"),
            ),
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="conversations_metric",
                column_B="conversations_in_facts",
                ignore_row_if="both_values_are_missing",
                meta=_meta(
                    CRITICAL, "daily `conversations` (segment all) reconciles with fct_conversations"
                ),
            ),
        ],
    )


METRICS_DAILY_QUERY = """
with metrics as (
    select
        metrics_daily.metric_date,
        metrics_daily.metric_name,
        metrics_daily.segment_type,
        metrics_daily.segment_value,
        metrics_daily.value
    from marts.metrics_daily as metrics_daily
),

facts_per_day as (
    select
        fct_conversations.conversation_date,
        count(*) as conversations_in_facts
    from marts.fct_conversations as fct_conversations
    group by fct_conversations.conversation_date
),

metrics_reconciled as (
    select
        metrics.*,
        case when metrics.metric_name like '%\\_rate' escape '\\' then metrics.value end
            as rate_value,
        case when metrics.metric_name = 'avg_satisfaction_score' then metrics.value end
            as satisfaction_value,
        case
            when metrics.metric_name = 'conversations' and metrics.segment_type = 'all'
                then metrics.value
        end as conversations_metric,
        case
            when metrics.metric_name = 'conversations' and metrics.segment_type = 'all'
                then coalesce(facts_per_day.conversations_in_facts, 0)
        end as conversations_in_facts
    from metrics
    left join facts_per_day
        on metrics.metric_date = facts_per_day.conversation_date
)

select * from metrics_reconciled
"""


def funnel_stage_daily_suite() -> gx.ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=FUNNEL_STAGE_DAILY_SUITE,
        expectations=[
            *(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=column, meta=_meta(CRITICAL, f"no null key column {column}")
                )
                for column in ("funnel_name", "conversation_date", "stage", "stage_order")
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="previous_reached_in_order",
                column_B="reached_in_order",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=_meta(CRITICAL, "reached_in_order never grows along a funnel's stages"),
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="reached",
                column_B="reached_in_order",
                or_equal=True,
                meta=_meta(CRITICAL, "reached_in_order <= reached"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="reached_in_order",
                min_value=0,
                meta=_meta(WARNING, "no negative counts"),
            ),
        ],
    )


FUNNEL_STAGE_DAILY_QUERY = """
with stages as (
    select
        funnel_stage_daily.funnel_name,
        funnel_stage_daily.conversation_date,
        funnel_stage_daily.channel,
        funnel_stage_daily.stage,
        funnel_stage_daily.stage_order,
        funnel_stage_daily.conversations,
        funnel_stage_daily.reached,
        funnel_stage_daily.reached_in_order
    from marts.funnel_stage_daily as funnel_stage_daily
),

stages_with_previous as (
    select
        stages.*,
        lag(stages.reached_in_order) over (
            partition by stages.funnel_name, stages.conversation_date, stages.channel
            order by stages.stage_order
        ) as previous_reached_in_order
    from stages
)

select * from stages_with_previous
"""


def ab_test_results_suite() -> gx.ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=AB_TEST_RESULTS_SUITE,
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(
                column="test_name", meta=_meta(CRITICAL, "no null test key")
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="variant", meta=_meta(CRITICAL, "no null variant key")
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="conversion_rate",
                min_value=0,
                max_value=1,
                meta=_meta(CRITICAL, "conversion_rate within 0..1"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="p_value",
                min_value=0,
                max_value=1,
                meta=_meta(CRITICAL, "p_value within 0..1"),
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="sessions",
                column_B="conversions",
                or_equal=True,
                meta=_meta(CRITICAL, "conversions <= sessions"),
            ),
        ],
    )


AB_TEST_RESULTS_QUERY = """
select
    ab_test_results.test_name,
    ab_test_results.variant,
    ab_test_results.sessions,
    ab_test_results.conversions,
    ab_test_results.conversion_rate,
    ab_test_results.p_value
from marts.ab_test_results as ab_test_results
"""


@dataclass(frozen=True)
class MartSuite:
    """A suite on one mart: which table, how to read it, which columns name a row."""

    schema: str
    table: str
    build_suite: Any
    query: str
    index_columns: tuple[str, ...]
    # Other tables the query reads (must exist for the suite to run).
    reads: tuple[str, ...] = field(default_factory=tuple)


MART_SUITES: tuple[MartSuite, ...] = (
    MartSuite(
        "marts",
        "fct_conversations",
        fct_conversations_suite,
        FCT_CONVERSATIONS_QUERY,
        ("conversation_id",),
        ("staging.stg_events",),
    ),
    MartSuite(
        "marts",
        "metrics_daily",
        metrics_daily_suite,
        METRICS_DAILY_QUERY,
        ("metric_date", "metric_name", "segment_type", "segment_value"),
        ("marts.fct_conversations",),
    ),
    MartSuite(
        "marts",
        "funnel_stage_daily",
        funnel_stage_daily_suite,
        FUNNEL_STAGE_DAILY_QUERY,
        ("funnel_name", "conversation_date", "channel", "stage"),
    ),
    MartSuite(
        "marts",
        "ab_test_results",
        ab_test_results_suite,
        AB_TEST_RESULTS_QUERY,
        ("test_name", "variant"),
    ),
)
