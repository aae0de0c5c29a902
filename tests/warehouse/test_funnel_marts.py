"""Funnel marts end to end, the seed-only funnel, the marker compiler and the CLI.

A warehouse is built once per module from generated data by the real loader
and dbt, with classifier rows written into classification.stage_classifications
first (the classifier asset is another area's; here they are fabricated, with
re-classifications, to exercise the source). The reference below reads only
the contract (../shared/contract/marts.md, funnel sections),
stg_events, fct_conversations and the classification table: it shares no code
or seed with the dbt models (the shipped funnels are spelled out here).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from support.warehouse import Warehouse, copy_project, describe_failures, open_warehouse

from convo_warehouse.lib.classify.store import ensure_tables


END_DATE = "2024-03-14"
DAYS = 6
CONVERSATIONS = 1200
SEED = 23
FUNNEL_SELECT = (
    "+fct_conversation_stages +funnel_stage_daily +funnel_summary +funnel_dropoffs "
    "+funnel_stage_daily_breakdown +abandon_turns +funnel_unknown_stage_events fct_conversations +funnel_summary_since"
)
WINDOW_HOURS = 24  # the default of the dbt var funnel_conversion_window_hours

# The contract's shipped funnels: (funnel, stage) in order. How each is reached
# is encoded in reference_stage_reaches below, not read from the seed.
SHIPPED = {
    "support": ["initiated", "greeted", "problem_identified", "solution_proposed", "solution_accepted", "resolved"],
    "sales": ["started", "responded", "qualified", "booked", "attended", "converted"],
    "engagement": ["initialized", "engaged", "completed"],
}
CLASSIFIED = {("support", stage) for stage in SHIPPED["support"][1:]}



# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convo_warehouse.lib.generate import generate_events

    out = tmp_path_factory.mktemp("funnels-generated")
    generate_events(out, conversations=CONVERSATIONS, days=DAYS, seed=SEED, end_date=END_DATE, progress=False)
    return out


def _fabricate_classifications(warehouse: Warehouse) -> None:
    """Classifier rows for about half the conversations: rules first, some
    re-classified later (by llm, or by rules saying the opposite), some rows
    for stages the seed does not classify (they must be ignored)."""
    con = open_warehouse(warehouse.path)
    try:
        ensure_tables(con)
        ids = [row[0] for row in con.execute(
            "select distinct conversation_id from raw.events where conversation_id is not null order by 1"
        ).fetchall()]
        rng = np.random.default_rng(SEED)
        rows = []
        base = dt.datetime(2024, 4, 1)
        for conversation_id in ids:
            if rng.random() < 0.5:
                continue
            for stage in SHIPPED["support"][1:]:
                reached = bool(rng.random() < 0.6)
                row = (conversation_id, "support", stage, reached, 0.7, "rules", None, "v1", "h1", base)
                if rng.random() < 0.2:
                    # classified again a day later by the LLM: the classifier replaces the row
                    row = (conversation_id, "support", stage, not reached, 0.9, "llm", "m", "v2", "h2",
                           base + dt.timedelta(days=1))
                rows.append(row)
            if rng.random() < 0.1:
                rows.append((conversation_id, "sales", "qualified", True, 0.5, "rules", None, "v1", "h1", base))
        con.executemany(
            "insert into classification.stage_classifications (conversation_id, funnel_name, stage, reached, "
            "confidence, classifier, model, prompt_version, transcript_hash, classified_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(generated, tmp_path_factory, dbt_target_dir) -> Warehouse:
    warehouse = Warehouse(tmp_path_factory.mktemp("funnels-warehouse"), dbt_target_dir)
    shutil.rmtree(warehouse.landing)
    shutil.copytree(generated, warehouse.landing)
    warehouse.load()
    _fabricate_classifications(warehouse)
    warehouse.build(FUNNEL_SELECT)
    return warehouse


def frame(warehouse: Warehouse, sql: str) -> pd.DataFrame:
    con = open_warehouse(warehouse.path)
    try:
        result = con.execute(sql).df()
    finally:
        con.close()
    for column in result.columns:  # one time resolution for comparisons
        if pd.api.types.is_datetime64_any_dtype(result[column]):
            result[column] = result[column].astype("datetime64[ns]")
    return result


# --------------------------------------------------------------------------- reference


def reference_stage_reaches(events: pd.DataFrame, conversations: pd.DataFrame,
                            classifications: pd.DataFrame) -> pd.DataFrame:
    """fct_conversation_stages from the contract's words."""
    known = events[events["is_known_type"]]

    def first(event_type: str) -> pd.Series:
        return known[known["event_type"] == event_type].groupby("conversation_id")["event_at"].min()

    candidates: list[pd.DataFrame] = []

    def add(funnel: str, stage: str, times: pd.Series) -> None:
        times = times.dropna()
        candidates.append(pd.DataFrame({
            "conversation_id": times.index, "funnel_name": funnel, "stage": stage,
            "reached_at": times.values, "source": "event",
        }))

    started = conversations.set_index("conversation_id")["started_at"]
    add("support", "initiated", started)
    add("support", "resolved", first("conversation_completed"))
    add("sales", "started", started)
    first_agent = first("agent_message")
    user_messages = known[known["event_type"] == "user_message"][["conversation_id", "event_at"]]
    after_agent = user_messages.join(first_agent.rename("first_agent_at"), on="conversation_id", how="inner")
    add("sales", "responded", after_agent[after_agent["event_at"] > after_agent["first_agent_at"]]
        .groupby("conversation_id")["event_at"].min())
    add("sales", "converted", first("conversion"))
    add("engagement", "initialized", first("interaction_initialized"))
    add("engagement", "engaged", first("user_message"))
    add("engagement", "completed", first("conversation_completed"))
    stage_events = known[known["event_type"] == "stage_reached"]
    for funnel, stages in SHIPPED.items():
        for stage in stages:
            mask = (stage_events["funnel"] == funnel) & (stage_events["stage"] == stage)
            add(funnel, stage, stage_events[mask].groupby("conversation_id")["event_at"].min())
    event_reaches = (
        pd.concat(candidates).groupby(["conversation_id", "funnel_name", "stage"], as_index=False)
        .agg(reached_at=("reached_at", "min"))
    )
    event_reaches["source"] = "event"

    latest = (
        classifications.assign(llm_first=(classifications["classifier"] != "llm").astype(int))
        .sort_values(["classified_at", "llm_first"], ascending=[False, True])
        .drop_duplicates(["conversation_id", "funnel_name", "stage"])
    )
    latest = latest[latest["reached"].astype(bool) & latest["conversation_id"].isin(conversations["conversation_id"])]
    latest = latest[[(f, s) in CLASSIFIED for f, s in zip(latest["funnel_name"], latest["stage"])]]
    # v1.3: at the time of the message the classifier names (none: no time); a named event that is
    # not one of the conversation's messages names none
    messages = known[known["event_type"].isin(["user_message", "agent_message"])]
    message_times = dict(zip(zip(messages["conversation_id"], messages["event_id"]), messages["event_at"], strict=True))
    named = latest["message_event_id"] if "message_event_id" in latest else pd.Series(None, index=latest.index)
    classifier_reaches = latest[["conversation_id", "funnel_name", "stage"]].assign(
        reached_at=[message_times.get((cid, event_id), pd.NaT)
                    for cid, event_id in zip(latest["conversation_id"], named, strict=True)],
        source=latest["classifier"].values)
    keys = ["conversation_id", "funnel_name", "stage"]
    classifier_only = classifier_reaches.merge(event_reaches[keys], on=keys, how="left", indicator=True)
    classifier_only = classifier_only[classifier_only["_merge"] == "left_only"].drop(columns="_merge")
    reaches = pd.concat([event_reaches, classifier_only], ignore_index=True)
    order = {(f, s): i + 1 for f, stages in SHIPPED.items() for i, s in enumerate(stages)}
    reaches["stage_order"] = [order[(f, s)] for f, s in zip(reaches["funnel_name"], reaches["stage"])]
    return reaches


def reference_sequences(reaches: pd.DataFrame) -> pd.DataFrame:
    """One row per conversation x funnel x stage for conversations in the funnel,
    with reached and the strict in-order reading (consecutive pairs compared
    where both times are known)."""
    index = reaches.set_index(["conversation_id", "funnel_name", "stage"])["reached_at"].to_dict()
    rows = []
    for (conversation_id, funnel), _ in reaches.groupby(["conversation_id", "funnel_name"]):
        chain = True
        previous = None  # (reached, time)
        for position, stage in enumerate(SHIPPED[funnel]):
            key = (conversation_id, funnel, stage)
            reached = key in index
            time = index.get(key)
            if not reached:
                chain = False
            elif position > 0 and previous[1] is not None and not pd.isna(previous[1]) \
                    and time is not None and not pd.isna(time) and previous[1] > time:
                chain = False
            rows.append((conversation_id, funnel, stage, position + 1, reached, reached and chain))
            previous = (reached, time)
    return pd.DataFrame(rows, columns=["conversation_id", "funnel_name", "stage", "stage_order",
                                       "is_reached", "is_reached_in_order"])


@pytest.fixture(scope="module")
def reference(built):
    events = frame(built, "select * from staging.stg_events")
    conversations = frame(built, "select * from marts.fct_conversations")
    classifications = frame(built, "select * from classification.stage_classifications")
    reaches = reference_stage_reaches(events, conversations, classifications)
    return {
        "events": events,
        "conversations": conversations,
        "reaches": reaches,
        "sequences": reference_sequences(reaches),
    }


# --------------------------------------------------------------------------- end to end


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    df = df.copy()
    for column in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[column]):
            df[column] = df[column].astype("datetime64[ns]")
    return df.sort_values(keys).reset_index(drop=True)


def test_conversation_stages_match_the_reference(built, reference):
    keys = ["conversation_id", "funnel_name", "stage"]
    columns = [*keys, "stage_order", "reached_at", "source", "is_reached_in_order"]
    actual = _sorted(frame(built, "select * from marts.fct_conversation_stages")[columns], keys)
    in_order = reference["sequences"][[*keys, "is_reached_in_order"]]
    expected = _sorted(reference["reaches"].merge(in_order, on=keys, how="left")[columns], keys)
    assert len(actual) > 1000
    assert set(actual["source"]) == {"event", "rules", "llm"}
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)


def expected_summary(sequences: pd.DataFrame, all_conversations: int) -> list[dict]:
    """funnel_summary's counting columns from the contract's words, over ``sequences``."""
    expected_rows = []
    for funnel, stages in SHIPPED.items():
        reached = [int(sequences[(sequences["funnel_name"] == funnel) & (sequences["stage"] == s)]["is_reached"].sum())
                   for s in stages]
        in_order = [int(sequences[(sequences["funnel_name"] == funnel)
                                  & (sequences["stage"] == s)]["is_reached_in_order"].sum()) for s in stages]
        for i, stage in enumerate(stages):
            denominator = all_conversations if i == 0 else reached[i - 1]
            conversion_rate = reached[i] / denominator if denominator else np.nan
            # v1.2: the nested reading; the first stage's rate is conversion_rate
            in_order_rate = conversion_rate if i == 0 else (
                in_order[i] / in_order[i - 1] if in_order[i - 1] else np.nan)
            expected_rows.append({
                "funnel_name": funnel, "stage": stage, "stage_order": i + 1, "reached": reached[i],
                "conversion_rate": conversion_rate,
                "conversion_from_start": reached[i] / reached[0] if reached[0] else np.nan,
                "drop_off": 0 if i == 0 else reached[i - 1] - reached[i],
                "reached_in_order": in_order[i],
                "conversion_rate_in_order": in_order_rate,
                "drop_off_in_order": 0 if i == 0 else in_order[i - 1] - in_order[i],
            })
    return expected_rows


def test_funnel_summary_matches_the_reference(built, reference):
    sequences = reference["sequences"]
    expected_rows = expected_summary(sequences, len(reference["conversations"]))
    entered = sequences.groupby("funnel_name")["conversation_id"].nunique()  # reached any of its stages
    for row in expected_rows:
        row["entered"] = int(entered.get(row["funnel_name"], 0))
    expected = _sorted(pd.DataFrame(expected_rows), ["funnel_name", "stage_order"])
    actual = _sorted(frame(built, "select * from marts.funnel_summary"), ["funnel_name", "stage_order"])
    pd.testing.assert_frame_equal(actual[expected.columns], expected, check_dtype=False, rtol=1e-12)
    # a major drop-off is a stage losing more than 30% of the previous stage
    losing = (actual["drop_off"] / actual.groupby("funnel_name")["reached"].shift(1)) > 0.3
    assert (actual["is_major_drop_off"] == losing.fillna(False)).all()
    # the nested reading never exceeds the stage before; the data has skipped stages where the other one does
    assert (actual["drop_off_in_order"] >= 0).all() and (actual["drop_off"] < 0).any()
    readings = dict(zip(actual["funnel_name"], actual["counting"], strict=True))
    assert readings == {"support": "any_order", "sales": "in_order", "engagement": "in_order"}


def test_funnel_summary_since_matches_the_reference_for_every_start_date(built, reference):
    conversations = reference["conversations"]
    sequences = reference["sequences"].merge(conversations[["conversation_id", "conversation_date"]],
                                             on="conversation_id")
    actual = frame(built, "select * from marts.funnel_summary_since")
    actual["start_date"] = pd.to_datetime(actual["start_date"])
    start_dates = sorted(pd.to_datetime(conversations["conversation_date"]).unique())
    assert len(start_dates) == DAYS and sorted(actual["start_date"].unique()) == start_dates
    for start_date in start_dates:
        on_or_after = pd.to_datetime(sequences["conversation_date"]) >= start_date
        population = int((pd.to_datetime(conversations["conversation_date"]) >= start_date).sum())
        expected = _sorted(pd.DataFrame(expected_summary(sequences[on_or_after], population)),
                           ["funnel_name", "stage_order"])
        rows = _sorted(actual[actual["start_date"] == start_date], ["funnel_name", "stage_order"])
        pd.testing.assert_frame_equal(rows[expected.columns], expected, check_dtype=False, rtol=1e-12)
        assert (rows["all_conversations"] == population).all()


def test_funnel_summary_since_first_start_date_is_funnel_summary(built):
    columns = ("funnel_name, stage, stage_order, previous_stage, reached, reached_in_order, conversion_rate, "
               "conversion_from_start, drop_off, drop_off_rate, is_major_drop_off")
    whole = frame(built, f"select {columns} from marts.funnel_summary")
    first = frame(built, f"select {columns} from marts.funnel_summary_since "
                         "where start_date = (select min(start_date) from marts.funnel_summary_since)")
    keys = ["funnel_name", "stage_order"]
    pd.testing.assert_frame_equal(_sorted(first, keys), _sorted(whole, keys), check_dtype=False, rtol=1e-12)
    assert whole["is_major_drop_off"].any()


def test_funnel_stage_daily_matches_the_reference(built, reference):
    sequences = reference["sequences"].merge(
        reference["conversations"][["conversation_id", "conversation_date", "channel"]], on="conversation_id")
    sequences["channel"] = sequences["channel"].fillna("unknown")
    first_stage = sequences[sequences["stage_order"] == 1][["conversation_id", "funnel_name", "is_reached"]]
    sequences = sequences.merge(first_stage.rename(columns={"is_reached": "in_population"}),
                                on=["conversation_id", "funnel_name"])
    expected = (
        sequences.groupby(["funnel_name", "conversation_date", "channel", "stage", "stage_order"], as_index=False)
        .agg(conversations=("in_population", "sum"), reached=("is_reached", "sum"),
             reached_in_order=("is_reached_in_order", "sum"))
    )
    keys = ["funnel_name", "conversation_date", "channel", "stage"]
    actual = frame(built, "select * from marts.funnel_stage_daily")
    actual["conversation_date"] = pd.to_datetime(actual["conversation_date"])
    expected["conversation_date"] = pd.to_datetime(expected["conversation_date"])
    pd.testing.assert_frame_equal(_sorted(actual[expected.columns], keys), _sorted(expected, keys), check_dtype=False)
    assert (actual["reached"] > actual["conversations"]).any(), "skipped stages should show up in the data"


def test_funnel_dropoffs_match_the_reference(built, reference):
    sequences = reference["sequences"]
    conversations = reference["conversations"].set_index("conversation_id")
    newest = reference["events"]["event_at"].max()
    rows = []
    for (conversation_id, funnel), group in sequences.groupby(["conversation_id", "funnel_name"]):
        highest = int(group[group["is_reached"]]["stage_order"].max())
        stages = SHIPPED[funnel]
        if highest == len(stages) or conversations.at[conversation_id, "outcome"] == "in_progress":
            continue
        first_event_at = conversations.at[conversation_id, "first_event_at"]
        rows.append({
            "conversation_id": conversation_id, "funnel_name": funnel,
            "last_stage": stages[highest - 1], "next_stage": stages[highest],
            "last_user_message": conversations.at[conversation_id, "last_user_message"],
            "outcome": conversations.at[conversation_id, "outcome"],
            "window_open": bool(first_event_at + pd.Timedelta(hours=WINDOW_HOURS) > newest),
        })
    expected = pd.DataFrame(rows)
    keys = ["conversation_id", "funnel_name"]
    actual = frame(built, "select * from marts.funnel_dropoffs")
    assert len(actual) > 100
    pd.testing.assert_frame_equal(_sorted(actual[expected.columns], keys), _sorted(expected, keys),
                                  check_dtype=False)


def test_abandon_turns_match_fct_conversations(built, reference):
    conversations = reference["conversations"]
    abandoned = conversations[conversations["was_abandoned"].fillna(False) & conversations["abandoned_at_turn"].notna()]
    expected = abandoned.groupby("abandoned_at_turn").size()
    actual = frame(built, "select turn, conversations from marts.abandon_turns").set_index("turn")["conversations"]
    assert actual.sort_index().to_dict() == {int(k): int(v) for k, v in expected.sort_index().items()}


def test_breakdown_channel_rows_equal_funnel_stage_daily(built):
    """The channel slice of the breakdown is the contract table, row for row."""
    daily = frame(built, "select funnel_name, conversation_date, channel, stage, conversations, reached, "
                         "reached_in_order from marts.funnel_stage_daily")
    breakdown = frame(built, "select funnel_name, conversation_date, segment_value as channel, stage, conversations, "
                             "reached, reached_in_order from marts.funnel_stage_daily_breakdown "
                             "where segment_type = 'channel'")
    keys = ["funnel_name", "conversation_date", "channel", "stage"]
    pd.testing.assert_frame_equal(_sorted(breakdown, keys), _sorted(daily, keys), check_dtype=False)
    segment_types = set(frame(built, "select distinct segment_type from marts.funnel_stage_daily_breakdown")
                        ["segment_type"])
    assert {"channel", "agent_id"} <= segment_types
    assert any(segment.startswith("experiment:") for segment in segment_types)


# --------------------------------------------------------------------------- CLI


def test_cli_prints_every_funnel_in_its_reading_without_impossible_numbers(built, tmp_path):
    from convo_warehouse.commands.funnel import funnel

    database = built.file_copy(tmp_path / "copy.duckdb")
    result = CliRunner().invoke(funnel, ["--warehouse", str(database)])
    assert result.exit_code == 0, result.output
    for name, stages in SHIPPED.items():
        reading = "any order" if name == "support" else "in order"
        assert f"funnel {name} ({reading}:" in result.output
        for stage in stages:
            assert stage in result.output
    assert "last user messages of conversations that stopped before" in result.output
    assert "other reading: --reading in_order" in result.output
    # no rate above 100% and no negative drop-off, in either reading
    for reading in ("any_order", "in_order"):
        shown = CliRunner().invoke(funnel, ["--warehouse", str(database), "--reading", reading])
        assert shown.exit_code == 0, shown.output
        percents = [float(cell[:-1]) for cell in shown.output.split() if cell.endswith("%") and cell[:-1]
                    .replace(".", "", 1).lstrip("-").isdigit()]
        assert percents and max(percents) <= 100.0 and min(percents) >= 0.0, reading
        table_rows = [line.split() for line in shown.output.splitlines() if line.startswith(("  ", "! "))]
        drop_offs = [int(row[-3].replace(",", "")) for row in table_rows if len(row) >= 7 and row[-3]
                     .replace(",", "").lstrip("-").isdigit()]
        assert drop_offs and min(drop_offs) >= 0, reading

    # the old option name still works (hidden), the snapshot is the default source
    old = CliRunner().invoke(funnel, ["--database", str(database), "--funnel", "sales", "--since", END_DATE])
    assert old.exit_code == 0, old.output
    assert "funnel sales (in order" in old.output and f"{END_DATE}..last day" in old.output
    assert "funnel support" not in old.output
    unknown = CliRunner().invoke(funnel, ["--warehouse", str(database), "--funnel", "nope"])
    assert unknown.exit_code != 0 and "known funnels" in unknown.output
    empty = CliRunner().invoke(funnel, ["--warehouse", str(database), "--since", "2099-01-01"])
    assert empty.exit_code == 0 and "no conversations in the funnels for 2099-01-01..last day" in empty.output
    no_snapshot = CliRunner().invoke(funnel, ["--serving-dir", str(tmp_path / "none")])
    assert no_snapshot.exit_code != 0 and "no published snapshot" in no_snapshot.output


def test_cli_json_for_a_period_equals_the_reference_in_both_readings(built, reference, tmp_path):
    """--since / --until / --json: every count against the reference's sequences of those days;
    rates are fractions, counts integers."""
    import json

    from convo_warehouse.commands.funnel import funnel

    database = built.file_copy(tmp_path / "copy.duckdb")
    end = dt.date.fromisoformat(END_DATE)
    since, until = end - dt.timedelta(days=3), end - dt.timedelta(days=1)
    conversations = reference["conversations"]
    days = pd.to_datetime(conversations["conversation_date"]).dt.date
    in_period = set(conversations[(days >= since) & (days <= until)]["conversation_id"])
    sequences = reference["sequences"][reference["sequences"]["conversation_id"].isin(in_period)]
    for reading in ("any_order", "in_order"):
        result = CliRunner().invoke(funnel, ["--warehouse", str(database), "--since", since.isoformat(),
                                             "--until", until.isoformat(), "--reading", reading, "--json"])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.output)
        assert payload["source"]["kind"] == "warehouse"
        for shown in payload["funnels"]:
            name = shown["funnel_name"]
            funnel_rows = sequences[sequences["funnel_name"] == name]
            assert shown["entered"] == funnel_rows["conversation_id"].nunique()
            reached = {stage: set(funnel_rows[(funnel_rows["stage"] == stage) & funnel_rows["is_reached"]]
                                  ["conversation_id"]) for stage in SHIPPED[name]}
            in_order = {stage: set(funnel_rows[(funnel_rows["stage"] == stage) & funnel_rows["is_reached_in_order"]]
                                   ["conversation_id"]) for stage in SHIPPED[name]}
            for index, stage in enumerate(shown["stages"]):
                name_of_stage = SHIPPED[name][index]
                assert stage["stage"] == name_of_stage
                assert isinstance(stage["count"], int) and isinstance(stage["drop_off"], int)
                assert stage["reached"] == len(reached[name_of_stage])
                assert stage["reached_in_order"] == len(in_order[name_of_stage])
                if index == 0:
                    base, went_on = shown["entered"], stage["count"]
                elif reading == "in_order":
                    previous = SHIPPED[name][index - 1]
                    base, went_on = len(in_order[previous]), len(in_order[name_of_stage])
                else:
                    previous = SHIPPED[name][index - 1]
                    base, went_on = len(reached[previous]), len(reached[previous] & reached[name_of_stage])
                assert stage["drop_off"] == base - went_on >= 0
                if base:
                    assert stage["from_previous"] == pytest.approx(went_on / base)
                    assert 0 <= stage["from_previous"] <= 1
                assert stage["share_of_entered"] is None or 0 <= stage["share_of_entered"] <= 1


def test_funnel_views_over_the_whole_history_equal_funnel_summary(built):
    """The one computation behind the dashboard, the CLI and the API agrees with the mart."""
    from convo_warehouse.lib import funnel_views

    con = open_warehouse(built.path)
    try:
        summary = con.execute(
            "select funnel_name, stage, reached, reached_in_order, entered, median_seconds_from_previous_stage "
            "from marts.funnel_summary order by funnel_name, stage_order"
        ).fetchall()
        shown = [
            (view.funnel_name, stage.stage, stage.reached, stage.reached_in_order, view.entered,
             stage.median_seconds_from_previous_stage)
            for name in funnel_views.funnel_names(con)
            for view in [funnel_views.funnel_view(con, name)]
            for stage in view.stages
        ]
    finally:
        con.close()
    assert [row[:5] for row in shown] == [row[:5] for row in summary]
    # the view's median is exact (quantile_cont over the conversations); the
    # mart's comes from the daily histogram, within 0.5% (docs/funnels.md)
    for (*_, median), (*_, expected) in zip(shown, summary, strict=True):
        assert (median is None and expected is None) or median == pytest.approx(expected, rel=0.005)


# --------------------------------------------------------------------------- seed-only funnel


# counting left empty: the funnel is shown in the default reading (in_order)
NEW_FUNNEL_ROWS = """\
self_service,10,opened,event_type,conversation_started,Test funnel: the conversation opened.,
self_service,20,smooth,marker,no_fallback,Test funnel: no fallback at all.,
self_service,30,solved_alone,marker,completed_without_handoff,Test funnel: completed without a human.,
self_service,40,rated,event_type,feedback_received,Test funnel: the user left a rating.,
self_service,40,rated,stage_reached,,Test funnel: or the application said so.,
"""


def test_a_funnel_added_by_seed_rows_alone_appears_everywhere(generated, tmp_path):
    project = copy_project(tmp_path / "project")
    seed = project / "seeds" / "funnel_stages.csv"
    seed.write_text(seed.read_text().rstrip("\n") + "\n" + NEW_FUNNEL_ROWS)
    warehouse = Warehouse(tmp_path / "warehouse", tmp_path / "target", project_dir=project)
    shutil.rmtree(warehouse.landing)
    shutil.copytree(generated, warehouse.landing)
    warehouse.load()
    warehouse.dbt("build", "--select", FUNNEL_SELECT, "--indirect-selection", "cautious",
                  "--exclude", "test_type:unit")

    counts = {
        table: warehouse.scalar(f"select count(*) from marts.{table} where funnel_name = 'self_service'")
        for table in ("fct_conversation_stages", "funnel_stage_daily", "funnel_summary", "funnel_dropoffs")
    }
    assert all(count > 0 for count in counts.values()), counts
    summary = dict(warehouse.query(
        "select stage, reached from marts.funnel_summary where funnel_name = 'self_service'"))
    assert list(summary) == ["opened", "smooth", "solved_alone", "rated"] or set(summary) == {
        "opened", "smooth", "solved_alone", "rated"}

    # independent counts straight from the staged events
    events = frame(warehouse, "select * from staging.stg_events where is_known_type")
    by_conversation = events.groupby("conversation_id")["event_type"].agg(set)
    expected = {
        "opened": sum("conversation_started" in types for types in by_conversation),
        "smooth": sum("fallback_triggered" not in types for types in by_conversation),
        "solved_alone": sum("conversation_completed" in types and "handoff_requested" not in types
                            for types in by_conversation),
        "rated": sum("feedback_received" in types for types in by_conversation),
    }
    assert summary == expected
    assert warehouse.scalar(
        "select distinct counting from marts.funnel_summary where funnel_name = 'self_service'") == "in_order"
    # the other funnels are untouched by the new rows
    assert warehouse.scalar("select count(distinct funnel_name) from marts.funnel_summary") == 4


# --------------------------------------------------------------------------- marker compiler errors


@pytest.mark.parametrize(
    ("markers", "message"),
    [
        ("{bad: {rule: {sometimes: {event_type: x}}}}", "unknown event condition 'sometimes'"),
        ("{bad: {rule: {seq: {event_type: x}}}}", "seq needs a non-empty list"),
        ("{bad: {rule: {at_least_once: {property: {name: 'a-b', equals: 1}}}}}", "property name"),
        ("{bad: {rule: {and: [{event_type: x}], or: [{event_type: y}]}}}", "one operator per mapping"),
        ("{Bad: {rule: {event_type: x}}}", "must be lower-case"),
    ],
)
def test_bad_marker_rules_fail_at_compile_time_with_a_clear_message(markers, message, warehouse):
    # in-process on the session's parse: the var given to the compile is the one the model
    # renders with (a `dbt compile --vars` of its own would parse the whole project again)
    result = warehouse.dbt("compile", "--select", "int_conversation_markers_evaluated",
                           "--vars", f"{{funnel_markers: {markers}}}", check=False)
    assert not result.success
    assert message in describe_failures(result)
