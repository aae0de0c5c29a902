"""One row per run of the stage classifier (docs/classification.md).

The classifier is a step of the dbt build, so one dbt invocation builds
everything: it reads the staged transcripts (stg_events), classifies the new
or changed ones (rules, an LLM or both: CONVO_CLASSIFIER), scores the user
messages' sentiment, embeds them with CONVO_EMBEDDING_MODEL (when set) and,
with CONVO_QUALITY_JUDGE, asks the LLM quality judge. Its results go to its own tables, the `classification` source
(lib/classify/store.py), which stg_stage_classifications,
stg_message_sentiment, stg_message_embeddings and stg_conversation_judgments
read after it; this
model's rows say what each run did. Unchanged transcripts are not classified
again (cached by transcript hash, rules or prompt version and model).

On Spark (orchestration/convo_warehouse/spark/pipeline.py runs the Python
models) the transcripts are copied into an in-process DuckDB, where the same
classifier runs, and its tables are written back to Spark.
"""


def model(dbt, session):
    import datetime as dt

    import pandas as pd

    # appended, one row per run (dbt reads a Python model's materialization
    # from its own config, not dbt_project.yml's folder settings)
    dbt.config(materialized="incremental", incremental_strategy="append", schema="classification")
    dbt.ref("stg_events")  # the transcripts: the run reads the staged events
    # the conversations recomputed since the classifier last ran (lib/classify/transcripts.py)
    dbt.ref("scope_conversation_lifecycle")
    started_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    if type(session).__module__.startswith("pyspark"):
        from convo_warehouse.spark.pipeline import classify_on_spark

        stats, counts = classify_on_spark(session)
    else:
        from convo_warehouse.lib.classify.runner import classify_warehouse, table_counts

        stats = classify_warehouse(session)
        counts = table_counts(session)
    run = {
        "run_started_at": started_at,
        "classifier": stats.mode,
        "model": stats.model,
        "rules_version": stats.rules_version,
        "conversations": stats.conversations,
        "classified": stats.classified,
        "cached": stats.cached,
        "by_rules": stats.by_rules,
        "by_llm": stats.by_llm,
        "sent_to_llm": stats.sent_to_llm,
        "llm_calls": stats.llm_calls,
        "llm_failed_calls": stats.llm_failed_calls,
        "fell_back_to_rules": stats.fell_back_to_rules,
        "fallback_reasons": ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.fallback_reasons.items())),
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "estimated_cost_usd": round(stats.cost_usd, 6),
        "sentiment_scored": stats.sentiment_scored,
        "embedding_model": stats.embedding_model,
        "messages_embedded": stats.messages_embedded,
        "judged": stats.judged,
        "judge_failed": stats.judge_failed,
        "stage_rows": counts["stage_rows"],
        "sentiment_rows": counts["sentiment_rows"],
        "embedding_rows": counts["embedding_rows"],
        "judgment_rows": counts["judgment_rows"],
        "seconds": round(stats.seconds, 3),
    }
    return pd.DataFrame([run])
