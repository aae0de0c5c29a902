"""Great Expectations suites as code, and the DuckDB queries that feed them.

No Dagster here: each suite is a plain ``gx.ExpectationSuite`` built by a
function, validated against a pandas DataFrame read from DuckDB (GX's SQL
route through duckdb-engine is unreliable). Dagster wraps these in asset
checks (``checks/gx_checks.py``).

Every expectation carries ``meta={"severity": "critical" | "warning"}``:

* ``critical``: something is systemically wrong (a file in the wrong format,
  a broken model). A failure blocks downstream assets.
* ``warning``: worth a look (more bad rows than usual). Reported, not blocking.

The raw suite re-derives no staging rule: it reads staging's verdicts
(``base_events_parsed.rejection_reason``, ``rejected_event_reasons``) per landing
file of the newest load and checks the accounting (critical: a row lost
between raw and staging makes every mart wrong) and the shares quarantined
(warnings naming the file and the fix: the good files flow on).

What a model's contract or a dbt test expresses (keys, ranges, accepted
values, reconciliations) stays in dbt; these suites cover what they cannot
say simply: shares of bad rows per file, a day's volume against the days
before it, odd values worth a warning. The mart suites read the days the
latest build rewrote (``MartSuite.day_column``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # GX is slow to import (it pulls in SciPy): only when a suite is built.
    import great_expectations as gx
    import pandas as pd

CRITICAL = "critical"
WARNING = "warning"

# A landing file with more than this share of its rows quarantined is
# reported (a producer sends something systematically wrong), and so is a
# load with more than this share overall. The generator's demo files carry
# up to ~10 % bad rows on purpose.
RAW_FILE_WARNING_SHARE = 0.25
RAW_LOAD_WARNING_SHARE = 0.05

RAW_EVENTS_SUITE = "raw_events_suite"
FCT_CONVERSATIONS_SUITE = "marts_fct_conversations_suite"
METRICS_DAILY_SUITE = "marts_metrics_daily_suite"
FUNNEL_STAGE_DAILY_SUITE = "marts_funnel_stage_daily_suite"


#: what the suites import from GX (``import_great_expectations_in_background``)
GX_MODULE = "great_expectations.expectations"
#: modules GX's import loads only for what no suite here uses: SciPy's stats and Altair come in
#: with the KL-divergence expectation (every expectation GX ships is imported with any one), and
#: are over a third of the CPU of GX's import (``defer_until_used``)
UNUSED_BY_THE_SUITES = ("scipy.stats", "altair")


class _UntilUsed(types.ModuleType):
    """A module registered before its code ran (``defer_until_used``). The import system takes it
    as imported (its ``__spec__`` is not initializing); the first attribute it lacks loads the real
    module, whose names it then takes, so whoever bound it before reads the real names."""

    def __getattr__(self, attr: str) -> Any:
        with _LOADING:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
                try:
                    real = importlib.import_module(self.__name__)
                except BaseException:
                    sys.modules[self.__name__] = self
                    raise
                vars(self).update(vars(real))
        return getattr(sys.modules[self.__name__], attr)


_LOADING = threading.RLock()


def defer_until_used(names: tuple[str, ...]) -> None:
    """Each module of ``names`` not imported yet is registered without running its code, which runs at
    the module's first use: an ``import`` of it binds it, and a use of it (a p-value of
    ``lib/experiments.py``) loads it whole. The standard library's ``importlib.util.LazyLoader``
    cannot do this on Python 3.11: the ``import`` statement itself reads the module's ``__spec__``,
    and that read loads it. A module the interpreter already holds stays as it is."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        module = _UntilUsed(name)
        module.__spec__ = spec
        sys.modules[name] = module


def import_great_expectations_in_background() -> None:
    """Import GX in a daemon thread, so the suites after dbt find it imported.

    The dbt step calls this once its subprocess runs: importing GX (seconds of
    CPU) leaves the path between the dbt build and the suites, where every
    run would wait for it, and the modules it would load for no suite
    (``UNUSED_BY_THE_SUITES``) are deferred until something uses them. A
    suite built meanwhile waits for the thread (Python's import lock); a
    failed import is logged here and raised again where the suite imports GX.
    """
    import logging

    def load() -> None:
        try:
            importlib.import_module(GX_MODULE)
        except Exception as error:  # noqa: BLE001 - the suite's own import raises it
            logging.getLogger(__name__).warning("importing %s in the background failed: %s", GX_MODULE, error)

    # GX imports SQLAlchemy's ORM, which hooks itself into SQLAlchemy's core as it loads, while this
    # thread's Dagster reads its event log through that core: half loaded, it failed a run's step
    # (a "partially initialized module" error). Loaded here first (0.06 s), before the thread starts.
    importlib.import_module("sqlalchemy.orm")
    # registered here, in this thread, before the import that would load them whole
    defer_until_used(UNUSED_BY_THE_SUITES)
    threading.Thread(target=load, name="import great_expectations", daemon=True).start()


def _meta(severity: str, why: str) -> dict[str, str]:
    return {"severity": severity, "why": why}


# ---------------------------------------------------------------------------
# raw.events
# ---------------------------------------------------------------------------


def raw_events_suite() -> gx.ExpectationSuite:
    """Checks on the newest load, one row per landing file, after staging ran."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=RAW_EVENTS_SUITE,
        expectations=[
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="raw_rows",
                column_B="parsed_rows",
                meta=_meta(CRITICAL, "every raw row of the file reached staging (parsed, staged or quarantined)"),
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="valid_rows",
                column_B="staged_rows",
                or_equal=True,
                meta=_meta(CRITICAL, "no more staged rows than valid rows (dedupe only removes)"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="quarantined_share",
                max_value=RAW_FILE_WARNING_SHARE,
                meta=_meta(WARNING, f"at most {RAW_FILE_WARNING_SHARE:.0%} of a file's rows quarantined"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="load_quarantined_share",
                max_value=RAW_LOAD_WARNING_SHARE,
                meta=_meta(WARNING, f"at most {RAW_LOAD_WARNING_SHARE:.0%} of the load's rows quarantined"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="raw_rows",
                min_value=1,
                meta=_meta(WARNING, "a landing file holds at least one row"),
            ),
        ],
    )


# One row per landing file of the newest load: what staging made of it.
RAW_EVENTS_QUERY = """
with newest_load as (
    select max(loaded_files.load_id) as load_id
    from raw.loaded_files as loaded_files
),

files as (
    select
        loaded_files.load_id,
        loaded_files.source_file,
        loaded_files.raw_rows
    from raw.loaded_files as loaded_files
    inner join newest_load on loaded_files.load_id = newest_load.load_id
),

parsed as (
    select
        base_events_parsed.source_file,
        count(*) as parsed_rows,
        count(base_events_parsed.rejection_reason) as quarantined_rows,
        count(*) - count(base_events_parsed.rejection_reason) as valid_rows
    from staging.base_events_parsed as base_events_parsed
    inner join newest_load on base_events_parsed.load_id = newest_load.load_id
    group by base_events_parsed.source_file
),

staged as (
    select
        stg_events.source_file,
        count(*) as staged_rows
    from staging.stg_events as stg_events
    inner join newest_load on stg_events.load_id = newest_load.load_id
    group by stg_events.source_file
),

reasons as (
    select
        rejected_event_reasons.source_file,
        rejected_event_reasons.reason,
        count(*) as reason_rows,
        min(rejected_event_reasons.reason_detail) as example_detail
    from quarantine.rejected_event_reasons as rejected_event_reasons
    inner join newest_load on rejected_event_reasons.load_id = newest_load.load_id
    group by rejected_event_reasons.source_file, rejected_event_reasons.reason
),

top_reasons as (
    select
        reasons.source_file,
        arg_max(reasons.reason, reasons.reason_rows) as top_reason,
        arg_max(reasons.example_detail, reasons.reason_rows) as top_reason_detail
    from reasons
    group by reasons.source_file
)

select
    files.load_id,
    files.source_file,
    files.raw_rows,
    coalesce(parsed.parsed_rows, 0) as parsed_rows,
    coalesce(parsed.valid_rows, 0) as valid_rows,
    coalesce(staged.staged_rows, 0) as staged_rows,
    coalesce(parsed.quarantined_rows, 0) as quarantined_rows,
    coalesce(parsed.quarantined_rows, 0) / greatest(files.raw_rows, 1) as quarantined_share,
    sum(coalesce(parsed.quarantined_rows, 0)) over ()
        / greatest(sum(files.raw_rows) over (), 1) as load_quarantined_share,
    top_reasons.top_reason,
    top_reasons.top_reason_detail
from files
left join parsed on files.source_file = parsed.source_file
left join staged on files.source_file = staged.source_file
left join top_reasons on files.source_file = top_reasons.source_file
order by files.source_file
"""

RAW_EVENTS_INDEX = ["source_file"]
RAW_EVENTS_READS = (
    "raw.loaded_files",
    "staging.base_events_parsed",
    "staging.stg_events",
    "quarantine.rejected_event_reasons",
)

# What a person can do about a file whose rows are mostly quarantined.
FIXES = {
    "missing_required_field": (
        "send event_id, conversation_id, event_type and timestamp; if the producer uses other field names, "
        "map them in seeds/field_aliases.csv and re-run (rows loaded before are re-parsed)"
    ),
    "invalid_field_type": "send identifiers as text or numbers, not JSON objects, arrays or booleans",
    "unparseable_timestamp": "send ISO-8601 timestamps (with an offset or Z) or epoch milliseconds",
    "future_timestamp": "check the producer's clock and time zone (more than 24 h ahead of the load)",
    "properties_not_object": "send properties as a JSON object",
    "unreadable_line": "write one JSON object per line (JSONL) or the header's number of fields (CSV)",
    "unreadable_file": "re-export the file (it cannot be opened as its extension says)",
}


def raw_files_to_fix(frame: pd.DataFrame) -> list[str]:
    """One line per file above the warning share: the file, how many rows, why, and the fix."""
    lines = []
    for row in frame.itertuples(index=False):
        if row.quarantined_share <= RAW_FILE_WARNING_SHARE:
            continue
        lines.append(
            f"{row.source_file}: {row.quarantined_rows} of {row.raw_rows} rows quarantined, mostly "
            f"{row.top_reason} ({row.top_reason_detail}). Fix: {FIXES.get(row.top_reason, 'see the rows')}. "
            f"The rows are in quarantine.rejected_events (source_file = '{row.source_file}'); "
            "the other files were staged."
        )
    return lines


# ---------------------------------------------------------------------------
# marts
# ---------------------------------------------------------------------------


def fct_conversations_suite() -> gx.ExpectationSuite:
    """The days the latest build rewrote: what the model's contract cannot say.

    Keys, ranges and accepted values are the mart's contract (enforced on
    every row a build writes); these are the data's own oddities, worth a
    look, never blocking.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=FCT_CONVERSATIONS_SUITE,
        expectations=[
            gxe.ExpectColumnValuesToBeBetween(
                column="duration_seconds",
                min_value=0,
                meta=_meta(WARNING, "a conversation does not end before it starts (producer clocks disagree?)"),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="first_response_ms",
                min_value=0,
                meta=_meta(WARNING, "the first reply comes at or after the first message"),
            ),
            gxe.ExpectColumnMeanToBeBetween(
                column="is_not_engaged",
                max_value=NOT_ENGAGED_WARNING_SHARE,
                meta=_meta(
                    WARNING,
                    f"at most {NOT_ENGAGED_WARNING_SHARE:.0%} of the conversations of a day never get a user "
                    "message (is the agent's first message reaching users?)",
                ),
            ),
        ],
    )


# Share of a day's conversations without any user message above which the
# fct_conversations suite warns (the demo data has about 15 %).
NOT_ENGAGED_WARNING_SHARE = 0.6

# The rows of the days the latest build rewrote ({rewritten}, see
# MartSuite.day_column).
FCT_CONVERSATIONS_QUERY = """
select
    fct_conversations.conversation_id,
    fct_conversations.conversation_date,
    fct_conversations.duration_seconds,
    fct_conversations.first_response_ms,
    case when fct_conversations.engaged then 0 else 1 end as is_not_engaged
from marts.fct_conversations as fct_conversations
where {rewritten}
"""


# A complete day's conversations (metrics_daily, segment all) outside this
# range of the median of the 28 days before it is reported.
VOLUME_RATIO_RANGE = (0.2, 5.0)


def metrics_daily_suite() -> gx.ExpectationSuite:
    """The days the latest build rewrote, against the 28 days before each.

    The metrics' definitions (rates within 0..1, numerator over denominator)
    are the mart's contract; its reconciliation with fct_conversations a dbt
    test. This is a volume check: a day with a fifth or five times the usual
    conversations is worth a look (a producer stopped, or sent twice).
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    low, high = VOLUME_RATIO_RANGE
    return gx.ExpectationSuite(
        name=METRICS_DAILY_SUITE,
        expectations=[
            gxe.ExpectColumnValuesToBeBetween(
                column="volume_ratio",
                min_value=low,
                max_value=high,
                meta=_meta(
                    WARNING,
                    f"a complete day has {low}x to {high}x the median daily conversations of the 28 days before it",
                ),
            ),
        ],
    )


METRICS_DAILY_QUERY = """
with daily as (
    select
        metrics_daily.metric_date,
        metrics_daily.value as conversations
    from marts.metrics_daily as metrics_daily
    where
        metrics_daily.metric_name = 'conversations'
        and metrics_daily.segment_type = 'all'
),

-- the newest day may still be in progress
checked_days as (
    select daily.metric_date
    from daily
    where
        {rewritten}
        and daily.metric_date < (select max(newest.metric_date) from daily as newest)
),

days_before as (
    select
        checked_days.metric_date,
        median(history.conversations) as trailing_median,
        count(history.metric_date) as trailing_days
    from checked_days
    inner join daily as history
        on
            history.metric_date >= checked_days.metric_date - interval 28 day
            and history.metric_date < checked_days.metric_date
    group by checked_days.metric_date
)

select
    daily.metric_date,
    'conversations' as metric_name,
    'all' as segment_type,
    'all' as segment_value,
    daily.conversations,
    days_before.trailing_median,
    days_before.trailing_days,
    daily.conversations / nullif(days_before.trailing_median, 0) as volume_ratio
from daily
inner join days_before on daily.metric_date = days_before.metric_date
"""


def funnel_stage_daily_suite() -> gx.ExpectationSuite:
    """Across a day's stages: what the contract (one row at a time) cannot say."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=FUNNEL_STAGE_DAILY_SUITE,
        expectations=[
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="previous_reached_in_order",
                column_B="reached_in_order",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=_meta(CRITICAL, "reached_in_order never grows along a funnel's stages"),
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
    # An incremental model: the query's ``{rewritten}`` is a condition on
    # this date column, the days the model's latest run recorded in
    # audit.partitions_rewritten (validation.rewritten_by_latest_build).
    # None: the query reads the whole table.
    day_column: str | None = None


MART_SUITES: tuple[MartSuite, ...] = (
    MartSuite(
        "marts",
        "fct_conversations",
        fct_conversations_suite,
        FCT_CONVERSATIONS_QUERY,
        ("conversation_id",),
        day_column="fct_conversations.conversation_date",
    ),
    MartSuite(
        "marts",
        "metrics_daily",
        metrics_daily_suite,
        METRICS_DAILY_QUERY,
        ("metric_date", "metric_name", "segment_type", "segment_value"),
        day_column="daily.metric_date",
    ),
    MartSuite(
        "marts",
        "funnel_stage_daily",
        funnel_stage_daily_suite,
        FUNNEL_STAGE_DAILY_QUERY,
        ("funnel_name", "conversation_date", "channel", "stage"),
    ),
)
