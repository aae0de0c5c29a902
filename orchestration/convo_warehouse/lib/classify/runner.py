"""Classify the warehouse's conversations: rules, llm or hybrid, incrementally.

1. Build transcripts (message rows + a hash per conversation) in temp tables:
   of the conversations with events staged since the previous run and those
   without a usable stored classification, when the previous run recorded
   what it read (``transcripts.changed_since_last_prepared``; the others'
   transcripts are unchanged, so cached); of every started conversation
   otherwise, and when the LLM quality judge runs.
2. Skip conversations whose stored rows match the transcript hash and the
   current rules version / prompt version + model (the cache).
3. Run the rules over the rest, set-based, in one query.
4. ``rules``: store that. ``llm``: send every remaining conversation to the
   endpoint. ``hybrid``: only those where some stage's rules confidence is
   below ``hybrid_uncertain_below``. LLM results are stored in chunks (an
   interrupted run keeps what it finished); conversations whose LLM calls
   failed get the rules result with ``fallback_reason`` set, and are tried
   again on the next run.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass, field

import duckdb
import pyarrow as pa

from convo_warehouse.lib.classify import embeddings, judge, sentiment, store
from convo_warehouse.lib.classify.llm import (
    PROMPT_VERSION,
    LLMClassifier,
    LLMResult,
    LLMSettings,
    TranscriptItem,
)
from convo_warehouse.lib.classify.rules import RuleSet, classify_relation, load_rules
from convo_warehouse.lib.classify.transcripts import (
    MESSAGES_TABLE,
    TRANSCRIPTS_TABLE,
    changed_since_last_prepared,
    fetch_transcripts,
    prepare_transcripts,
    record_prepared,
    lifecycle_through,
)
from convo_warehouse.lib.warehouse import table_exists

MODES = ("rules", "llm", "hybrid")
CANDIDATES_TABLE = "classify_candidates"


@dataclass
class ClassifyStats:
    mode: str
    conversations: int = 0
    cached: int = 0
    classified: int = 0
    by_rules: int = 0
    by_llm: int = 0
    sent_to_llm: int = 0
    llm_calls: int = 0
    llm_failed_calls: int = 0
    fell_back_to_rules: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    rules_version: str = ""
    model: str = ""
    sentiment_scored: int = 0
    embedding_model: str = ""
    messages_embedded: int = 0
    judge: bool = False
    judged: int = 0
    judge_failed: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def mode_from_env() -> str:
    mode = (os.environ.get("CONVO_CLASSIFIER") or "rules").strip().lower()
    if mode not in MODES:
        raise ValueError(f"CONVO_CLASSIFIER must be one of {MODES}, got {mode!r}")
    return mode


def classify_warehouse(
    con: duckdb.DuckDBPyConnection,
    mode: str | None = None,
    settings: LLMSettings | None = None,
    rules: RuleSet | None = None,
    chunk_size: int = 500,
    judge: bool | None = None,
    embedding: embeddings.EmbeddingSettings | None = None,
) -> ClassifyStats:
    """Classify new or changed conversations into ``classification.stage_classifications``.

    Also scores user-message sentiment (``classification.message_sentiment``), embeds user
    messages with the sentence-embedding model of ``embedding`` (default:
    ``CONVO_EMBEDDING_MODEL``; none: nothing embedded) into ``classification.message_embeddings``
    and, with ``judge``
    (default: ``CONVO_QUALITY_JUDGE``) in llm/hybrid mode, asks the LLM quality judge
    (``classification.conversation_judgments``).
    """
    started = time.perf_counter()
    run = _resolve(mode, settings, rules, judge, embedding)
    mode, rules, settings, encoder = run.mode, run.rules, run.settings, run.encoder
    stats = ClassifyStats(mode=mode, rules_version=rules.version, model=settings.model if mode != "rules" else "rules")
    stats.judge = run.judge
    stats.embedding_model = encoder.identity if encoder else ""

    store.ensure_tables(con)
    acceptable, acceptable_parameters = run.acceptable()
    prepared_for = run.prepared_for()
    # Staging cannot change during the run (the caller holds the writer lock): read once.
    history = lifecycle_through(con)
    to_read = _to_read(con, history, prepared_for, run.judges(), acceptable, acceptable_parameters)
    stats.conversations = _prepare(con, to_read)

    con.execute(
        f"""
        create or replace temp table classify_todo as
        select {TRANSCRIPTS_TABLE}.conversation_id
        from {TRANSCRIPTS_TABLE}
        where not exists (
            select 1
            from {store.RESULTS} as stored
            where stored.conversation_id = {TRANSCRIPTS_TABLE}.conversation_id
                and stored.funnel_name = 'support'
                and stored.transcript_hash = {TRANSCRIPTS_TABLE}.transcript_hash
                and {acceptable}
        )
        """,
        acceptable_parameters,
    )
    todo = con.execute("select count(*) from classify_todo").fetchone()[0]
    stats.cached = stats.conversations - todo
    if run.scores_sentiment:
        stats.sentiment_scored = sentiment.score_messages(con, MESSAGES_TABLE)
    if encoder is not None:
        stats.messages_embedded = embeddings.embed_messages(con, MESSAGES_TABLE, encoder)
    if todo == 0:
        _run_judge(con, stats, settings, mode)
        record_prepared(con, history, prepared_for)
        stats.seconds = time.perf_counter() - started
        return stats

    classify_relation(
        con,
        f"(select {MESSAGES_TABLE}.* from {MESSAGES_TABLE} semi join classify_todo "
        f"on {MESSAGES_TABLE}.conversation_id = classify_todo.conversation_id)",
        rules,
        into="classify_rules_result",
    )

    if mode == "rules":
        con.execute("begin")
        store.replace_with_rules(con, "classify_todo", "classify_rules_result", TRANSCRIPTS_TABLE, rules.version)
        con.execute("commit")
        stats.classified = stats.by_rules = todo
        record_prepared(con, history, prepared_for)
        stats.seconds = time.perf_counter() - started
        return stats

    if mode == "llm":
        con.execute("create or replace temp table classify_llm_todo as select conversation_id from classify_todo")
    else:
        con.execute(
            f"""
            create or replace temp table classify_llm_todo as
            select classify_rules_result.conversation_id
            from classify_rules_result
            group by classify_rules_result.conversation_id
            having min(classify_rules_result.confidence) < {rules.hybrid_uncertain_below!r}
            """
        )
        con.execute(
            "create or replace temp table classify_rules_only as "
            "select conversation_id from classify_todo "
            "where conversation_id not in (select conversation_id from classify_llm_todo)"
        )
        con.execute("begin")
        stats.by_rules = store.replace_with_rules(
            con, "classify_rules_only", "classify_rules_result", TRANSCRIPTS_TABLE, rules.version
        )
        con.execute("commit")

    stats.sent_to_llm = con.execute("select count(*) from classify_llm_todo").fetchone()[0]
    _run_llm(con, stats, settings, rules, chunk_size)
    stats.classified = stats.by_rules + stats.by_llm + stats.fell_back_to_rules
    _run_judge(con, stats, settings, mode)
    record_prepared(con, history, prepared_for)
    stats.seconds = time.perf_counter() - started
    return stats


def conversations_to_read(
    con: duckdb.DuckDBPyConnection,
    mode: str | None = None,
    judge: bool | None = None,
    embedding: embeddings.EmbeddingSettings | None = None,
) -> str | None:
    """The temp table of the conversation_ids whose transcripts ``classify_warehouse`` with the
    same arguments reads now, or None: it reads every transcript.

    Needs only the tables that say what changed (``scope.scope_conversation_lifecycle``,
    ``classification.transcript_preparations``, ``marts.fct_conversations`` and the stored
    classifications), so an engine that copies the classifier's tables into DuckDB
    (spark/pipeline.py) can copy the transcripts of these conversations only.
    """
    run = _resolve(mode, None, None, judge, embedding)
    store.ensure_tables(con)
    return _to_read(con, lifecycle_through(con), run.prepared_for(), run.judges(), *run.acceptable())


@dataclass(frozen=True)
class _Run:
    """What a classifier run (or the question which transcripts it will read) works with:
    each argument given, or its environment default."""

    mode: str
    rules: RuleSet
    settings: LLMSettings
    judge: bool
    scores_sentiment: bool
    encoder: embeddings.Encoder | None

    def judges(self) -> bool:
        """The LLM quality judge runs (it reads every transcript)."""
        return self.judge and self.mode in ("llm", "hybrid")

    def prepared_for(self) -> str:
        return _prepared_for(self.scores_sentiment, self.encoder)

    def acceptable(self) -> tuple[str, dict]:
        return _acceptable(self.mode, self.rules, self.settings)


def _resolve(
    mode: str | None,
    settings: LLMSettings | None,
    rules: RuleSet | None,
    judge: bool | None,
    embedding: embeddings.EmbeddingSettings | None,
) -> _Run:
    mode = mode or mode_from_env()
    if mode not in MODES:
        raise ValueError(f"classifier must be one of {MODES}, got {mode!r}")
    embedding_settings = embeddings.EmbeddingSettings.from_env() if embedding is None else embedding
    return _Run(
        mode=mode,
        rules=rules or load_rules(),
        settings=settings or LLMSettings.from_env(),
        judge=judge_from_env() if judge is None else judge,
        scores_sentiment=sentiment_from_env(),
        # loaded before anything is read: a model that cannot load fails the run at once
        encoder=embeddings.load_encoder(embedding_settings) if embedding_settings.enabled else None,
    )


def _to_read(con, history, prepared_for: str, judges: bool, acceptable: str, acceptable_parameters: dict) -> str | None:
    """``CANDIDATES_TABLE`` filled with the conversations whose transcript may need work, or
    None: every transcript (nothing recorded for these settings, no conversations mart yet,
    or the judge runs, which reads them all).

    The candidates: those with events staged since the last preparation for the same
    settings (``changed_since_last_prepared``; every other started conversation kept the
    transcript it was classified on, and its messages their sentiment) and the started
    ones without an ``acceptable`` stored classification.
    """
    changed = None if judges else changed_since_last_prepared(con, history, prepared_for)
    if changed is None or not table_exists(con, "marts.fct_conversations"):
        return None
    con.execute(
        f"""
        create or replace temp table {CANDIDATES_TABLE} as
        {changed}
        union
        select fct_conversations.conversation_id
        from marts.fct_conversations
        where fct_conversations.started
            and not exists (
                select 1
                from {store.RESULTS} as stored
                where stored.conversation_id = fct_conversations.conversation_id
                    and stored.funnel_name = 'support'
                    and {acceptable}
            )
        """,
        acceptable_parameters,
    )
    return CANDIDATES_TABLE


def sentiment_from_env() -> bool:
    """``CONVO_SENTIMENT`` (default on): score user messages' sentiment."""
    return os.environ.get("CONVO_SENTIMENT", "1").lower() not in ("0", "false", "no")


def _prepared_for(scores_sentiment: bool, encoder: embeddings.Encoder | None) -> str:
    """What else the transcripts feed (sentiment and embeddings per message): a preparation
    for other settings says nothing about what changed since."""
    prepared_for = f"sentiment={sentiment.MODEL if scores_sentiment else 'off'}"
    if encoder is not None:  # (unchanged without a model: warehouses prepared before embeddings existed)
        prepared_for += f" embeddings={encoder.identity}"
    return prepared_for


def _acceptable(mode: str, rules: RuleSet, settings: LLMSettings) -> tuple[str, dict]:
    """The condition a stored row (``stored``) meets to be reused in ``mode``, and its parameters."""
    rules_ok = "(stored.classifier = 'rules' and stored.prompt_version = $rules_version"
    rules_ok += " and stored.fallback_reason is null)" if mode == "hybrid" else ")"
    llm_ok = "(stored.classifier = 'llm' and stored.model = $model and stored.prompt_version = $prompt_version)"
    acceptable = {"rules": "(stored.classifier = 'rules' and stored.prompt_version = $rules_version)",
                  "llm": llm_ok, "hybrid": f"({rules_ok} or {llm_ok})"}[mode]
    parameters = {
        name: value
        for name, value in {
            "rules_version": rules.version,
            "model": settings.model,
            "prompt_version": PROMPT_VERSION,
        }.items()
        if f"${name}" in acceptable
    }
    return acceptable, parameters


def _prepare(con, to_read: str | None) -> int:
    """Prepare the transcripts of ``to_read`` (``_to_read``; None: all); return how many
    started conversations have one: the others are cached and counted without being read."""
    if to_read is None:
        return prepare_transcripts(con)
    prepared = prepare_transcripts(con, to_read)
    unread = con.execute(
        "select count(*) from marts.fct_conversations where fct_conversations.started and "
        f"fct_conversations.conversation_id not in (select conversation_id from {to_read})"
    ).fetchone()[0]
    return prepared + unread


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows in the classifier's tables after a run (for run metadata), on any engine's copy."""
    judge.ensure_table(con)
    embeddings.ensure_table(con)
    rows, reached = con.execute(
        "select count(*), count(*) filter (where reached) from classification.stage_classifications"
    ).fetchone()
    return {
        "stage_rows": rows,
        "stage_rows_reached": reached,
        "sentiment_rows": con.execute("select count(*) from classification.message_sentiment").fetchone()[0],
        "embedding_rows": con.execute(f"select count(*) from {embeddings.EMBEDDINGS_TABLE}").fetchone()[0],
        "judgment_rows": con.execute(f"select count(*) from {judge.JUDGMENTS}").fetchone()[0],
    }


def judge_from_env() -> bool:
    """``CONVO_QUALITY_JUDGE=1`` turns the LLM quality judge on (it only runs with the llm and hybrid classifiers)."""
    return os.environ.get("CONVO_QUALITY_JUDGE", "0").strip().lower() in ("1", "true", "yes")


def _run_judge(con, stats: ClassifyStats, settings: LLMSettings, mode: str, chunk_size: int = 500) -> None:
    """Judge the conversations the LLM reads (all with llm; with hybrid, those sent to it) not judged yet."""
    if mode not in ("llm", "hybrid") or not stats.judge:
        return
    judge.ensure_table(con)
    sent_to_llm = "" if mode == "llm" else f"""
        where exists (
            select 1 from {store.RESULTS} as stored
            where stored.conversation_id = {TRANSCRIPTS_TABLE}.conversation_id
                and stored.funnel_name = 'support'
                and (stored.classifier = 'llm' or stored.fallback_reason is not null)
        )"""
    con.execute(
        f"create or replace temp table judge_candidates as "
        f"select {TRANSCRIPTS_TABLE}.conversation_id from {TRANSCRIPTS_TABLE}{sent_to_llm}"
    )
    con.execute(
        "create or replace temp table judge_todo as " + judge.uncached_sql("judge_candidates", TRANSCRIPTS_TABLE),
        {"model": settings.model},
    )
    ids = [row[0] for row in con.execute("select conversation_id from judge_todo order by 1").fetchall()]
    if not ids:
        return
    classifier = LLMClassifier(settings, task=judge.JUDGE_TASK)

    async def run_all() -> None:
        async with classifier._client() as client:
            for start in range(0, len(ids), chunk_size):
                chunk = ids[start : start + chunk_size]
                con.register("judge_chunk_arrow", pa.table({"conversation_id": chunk}))
                con.execute("create or replace temp table judge_chunk_ids as select * from judge_chunk_arrow")
                con.unregister("judge_chunk_arrow")
                items = [
                    TranscriptItem(cid, digest, messages)
                    for cid, digest, messages in fetch_transcripts(con, "judge_chunk_ids")
                ]
                results = await classifier.classify_with_client(client, items)
                calls = [call for result in results for call in result.calls]
                con.execute("begin")
                store.record_calls(con, calls)
                stats.judged += judge.store_judgments(con, results, settings.model)
                con.execute("commit")
                stats.judge_failed += sum(result.labels is None for result in results)
                stats.llm_calls += len(calls)
                stats.llm_failed_calls += sum(call.status != "ok" for call in calls)
                stats.prompt_tokens += sum(call.prompt_tokens for call in calls)
                stats.completion_tokens += sum(call.completion_tokens for call in calls)
                stats.cost_usd += sum(call.cost_usd for call in calls)

    asyncio.run(run_all())


def _run_llm(con, stats: ClassifyStats, settings: LLMSettings, rules: RuleSet, chunk_size: int) -> None:
    ids = [row[0] for row in con.execute("select conversation_id from classify_llm_todo order by 1").fetchall()]
    classifier = LLMClassifier(settings)

    def flush(results: list[LLMResult]) -> None:
        calls = [call for result in results for call in result.calls]
        failed = [result for result in results if result.labels is None]
        con.execute("begin")
        store.record_calls(con, calls)
        store.replace_with_llm(con, results, settings.model, PROMPT_VERSION)
        if failed:
            failed_ids = pa.table({"conversation_id": [result.conversation_id for result in failed]})
            con.register("classify_failed_arrow", failed_ids)
            con.execute("create or replace temp table classify_fallback_ids as select * from classify_failed_arrow")
            con.unregister("classify_failed_arrow")
            reason = "llm_failed: " + (failed[0].error or "unknown")[:200]
            store.replace_with_rules(
                con, "classify_fallback_ids", "classify_rules_result", TRANSCRIPTS_TABLE, rules.version, reason
            )
        con.execute("commit")
        stats.llm_calls += len(calls)
        stats.llm_failed_calls += sum(call.status != "ok" for call in calls)
        stats.prompt_tokens += sum(call.prompt_tokens for call in calls)
        stats.completion_tokens += sum(call.completion_tokens for call in calls)
        stats.cost_usd += sum(call.cost_usd for call in calls)
        stats.by_llm += len(results) - len(failed)
        stats.fell_back_to_rules += len(failed)
        for result in failed:
            key = (result.error or "unknown").split(":")[0]
            stats.fallback_reasons[key] = stats.fallback_reasons.get(key, 0) + 1

    async def run_all() -> None:
        async with classifier._client() as client:
            for start in range(0, len(ids), chunk_size):
                chunk = ids[start : start + chunk_size]
                con.register("classify_chunk_arrow", pa.table({"conversation_id": chunk}))
                con.execute("create or replace temp table classify_chunk_ids as select * from classify_chunk_arrow")
                con.unregister("classify_chunk_arrow")
                items = [
                    TranscriptItem(cid, digest, messages)
                    for cid, digest, messages in fetch_transcripts(con, "classify_chunk_ids")
                ]
                results = await classifier.classify_with_client(client, items)
                flush(results)

    asyncio.run(run_all())
