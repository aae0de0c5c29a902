"""Transcripts -> ``classification.stage_classifications``: the support-stage classifier.

One multi-asset writing three tables: the stage classifications; user
messages' sentiment from an offline lexicon in ``classification.message_sentiment``
(``CONVO_SENTIMENT=0`` turns it off); and, with ``CONVO_QUALITY_JUDGE=1`` and the
llm or hybrid classifier, the LLM quality judge's labels in
``classification.conversation_judgments``.

Configured by environment (read when the asset runs, not at import):
``CONVO_CLASSIFIER`` = rules (default) | llm | hybrid; for llm/hybrid
``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``CONVO_LLM_MODEL``,
``CONVO_LLM_CONCURRENCY``, ``CONVO_LLM_TIMEOUT``, ``CONVO_LLM_MAX_ATTEMPTS``,
``CONVO_LLM_JSON_MODE``, ``CONVO_LLM_PRICE_INPUT_PER_1M`` /
``CONVO_LLM_PRICE_OUTPUT_PER_1M``; ``CONVO_STAGE_RULES`` for another rules file.
See docs/classification.md. With ``CONVO_TARGET=spark`` the transcripts are read
from Spark and the results written there (docs/spark.md).
"""

import json

import dagster as dg

from convo_warehouse.concurrency import WRITER_POOL, retry_when_busy
from convo_warehouse.lib.classify.runner import ClassifyStats, classify_warehouse, table_counts
from convo_warehouse.lib.warehouse import writer_lock
from convo_warehouse.resources import WarehouseResource
from convo_warehouse.spark.target import on_spark, run_spark_step

STAGE_CLASSIFICATIONS = dg.AssetKey(["classification", "stage_classifications"])
MESSAGE_SENTIMENT = dg.AssetKey(["classification", "message_sentiment"])
CONVERSATION_JUDGMENTS = dg.AssetKey(["classification", "conversation_judgments"])
CLASSIFICATION_KEYS = (STAGE_CLASSIFICATIONS, MESSAGE_SENTIMENT, CONVERSATION_JUDGMENTS)
_INPUTS = [dg.AssetKey(["staging", "stg_events"]), dg.AssetKey(["marts", "fct_conversations"])]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            STAGE_CLASSIFICATIONS,
            deps=_INPUTS,
            group_name="classification",
            kinds={"python", "duckdb"},
            description=(
                "One row per started conversation with messages x classified support stage "
                "(greeted, problem_identified, solution_proposed, solution_accepted, resolved): "
                "reached, confidence, classifier (rules | llm), model, prompt_version, "
                "transcript_hash, fallback_reason. Only new or changed transcripts are classified."
            ),
        ),
        dg.AssetSpec(
            MESSAGE_SENTIMENT,
            deps=_INPUTS,
            group_name="classification",
            kinds={"python", "duckdb"},
            description=(
                "One row per user message of a started conversation: its lexicon sentiment -1..1 "
                "(sentiment_source, sentiment_model). Scored once per lexicon version."
            ),
        ),
        dg.AssetSpec(
            CONVERSATION_JUDGMENTS,
            deps=_INPUTS,
            group_name="classification",
            kinds={"python", "duckdb"},
            description=(
                "One row per conversation judged by the optional LLM quality judge "
                "(CONVO_QUALITY_JUDGE=1 with the llm or hybrid classifier): resolution, "
                "user_frustration, reason. Cached by transcript hash, prompt version and model."
            ),
        ),
    ],
    pool=WRITER_POOL,
)
def stage_classifications(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Classify new or changed transcripts with the configured classifier, score sentiment, judge."""
    if on_spark():
        # transcripts read from Spark, results written back there (docs/spark.md)
        result = json.loads(run_spark_step(["classify", "--json"]))
        stats, counts = ClassifyStats(**result["stats"]), result["counts"]
    else:
        with retry_when_busy(context), writer_lock(warehouse.database), warehouse.connect() as con:
            stats = classify_warehouse(con)
            counts = table_counts(con)
    rows, reached = counts["stage_rows"], counts["stage_rows_reached"]
    sentiment_rows, judgment_rows = counts["sentiment_rows"], counts["judgment_rows"]
    context.log.info(
        f"{stats.mode}: {stats.classified} classified, {stats.cached} cached, "
        f"{stats.llm_calls} LLM calls, {stats.fell_back_to_rules} fell back to rules"
    )
    if stats.fell_back_to_rules:
        context.log.warning(f"LLM failed for {stats.fell_back_to_rules} conversations: {stats.fallback_reasons}")
    yield dg.MaterializeResult(
        asset_key=MESSAGE_SENTIMENT,
        metadata={"scored_this_run": stats.sentiment_scored, "dagster/row_count": sentiment_rows},
    )
    yield dg.MaterializeResult(
        asset_key=CONVERSATION_JUDGMENTS,
        metadata={
            "judge_enabled": stats.judge and stats.mode != "rules",
            "judged_this_run": stats.judged,
            "judge_failed": stats.judge_failed,
            "dagster/row_count": judgment_rows,
        },
    )
    yield dg.MaterializeResult(
        asset_key=STAGE_CLASSIFICATIONS,
        metadata={
            "classifier": stats.mode,
            "model": stats.model,
            "rules_version": stats.rules_version,
            "conversations": stats.conversations,
            "classified": stats.classified,
            "cached_skipped": stats.cached,
            "by_rules": stats.by_rules,
            "by_llm": stats.by_llm,
            "sent_to_llm": stats.sent_to_llm,
            "llm_calls": stats.llm_calls,
            "llm_failed_calls": stats.llm_failed_calls,
            "fell_back_to_rules": stats.fell_back_to_rules,
            "fallback_reasons": dg.MetadataValue.json(stats.fallback_reasons),
            "user_messages_sentiment_scored": stats.sentiment_scored,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "estimated_cost_usd": round(stats.cost_usd, 6),
            "seconds": round(stats.seconds, 3),
            "dagster/row_count": rows,
            "rows_reached": reached,
        }
    )
