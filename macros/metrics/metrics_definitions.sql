{#- One flow mapping per metric, its fields in _metrics__macros.yml; a test
    reads this block's text (tests/serving/test_semantic_layer.py). -#}
{% macro metrics_definitions() %}
{%- set definitions -%}
- {name: conversations, kind: count, unit: conversations,
   numerator: "1",
   numerator_definition: conversations whose first event is in the period,
   description: "Number of conversations (every conversation, started or not)."}
- {name: started_conversations, kind: count, unit: conversations,
   numerator_if: started,
   numerator_definition: conversations with started = true,
   description: Number of conversations that started (an event other than interaction_initialized / experiment_exposure). 0 is a real value and has a row.}
- {name: interaction_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: initialized and engaged, denominator_if: initialized,
   numerator_definition: initialized conversations that are engaged (at least one user_message),
   denominator_definition: initialized conversations (interaction_initialized event),
   description: Share of initialized conversations (widget shown) in which the user wrote.}
- {name: completion_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: was_completed, denominator_if: started,
   numerator_definition: conversations with a conversation_completed event,
   denominator_definition: started conversations,
   description: Share of started conversations that the agent completed.}
- {name: abandonment_rate, kind: ratio, proportion: true, better: lower, unit: fraction 0..1,
   numerator_if: was_abandoned, denominator_if: started,
   numerator_definition: "conversations abandoned (explicit conversation_abandoned event, or inferred after 30 minutes of silence)",
   denominator_definition: started conversations,
   description: Share of started conversations that the user abandoned.}
- {name: handoff_rate, kind: ratio, proportion: true, better: lower, unit: fraction 0..1,
   numerator_if: had_handoff, denominator_if: started,
   numerator_definition: conversations with a handoff_requested event,
   denominator_definition: started conversations,
   description: Share of started conversations escalated to a human.}
- {name: resolution_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: "was_completed and not coalesce(had_handoff, false)", denominator_if: started,
   numerator_definition: completed conversations without a handoff,
   denominator_definition: started conversations,
   description: Share of started conversations the agent completed on its own (no handoff). Never above completion_rate.}
- {name: conversion_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: converted, denominator_if: started,
   numerator_definition: conversations with a conversion event,
   denominator_definition: started conversations,
   description: Share of started conversations that reached their goal.}
- {name: fallback_rate, kind: ratio, better: lower, unit: fallbacks per user message,
   numerator: "coalesce(fallback_count, 0)", denominator: "coalesce(user_turns, 0)",
   numerator_definition: sum of fallback_count (fallback_triggered events),
   denominator_definition: sum of user_turns (user_message events),
   description: Fallbacks per user message. Usually 0..1 but not bounded by 1 (an agent may fall back twice on one message).}
- {name: avg_user_turns, kind: ratio, unit: user messages per started conversation,
   numerator: "coalesce(user_turns, 0)", denominator_if: started,
   numerator_definition: sum of user_turns,
   denominator_definition: started conversations,
   description: Average number of user messages per started conversation.}
- {name: avg_duration_seconds, kind: ratio, unit: seconds,
   numerator: "coalesce(duration_seconds, 0)", denominator_if: started,
   numerator_definition: sum of duration_seconds (last event - started_at),
   denominator_definition: started conversations,
   description: "Average duration of a started conversation, in seconds."}
- {name: avg_first_response_ms, kind: ratio, better: lower, unit: milliseconds,
   numerator: "coalesce(first_response_ms, 0)", denominator_if: first_response_ms is not null,
   numerator_definition: sum of first_response_ms,
   denominator_definition: conversations with a first_response_ms (a user_message answered by an agent_message),
   description: "Average time from the first user message to the first agent reply, in milliseconds."}
- {name: avg_satisfaction_score, kind: ratio, better: higher, unit: score 0..1,
   numerator: "coalesce(satisfaction_score, 0)", denominator_if: started,
   numerator_definition: sum of satisfaction_score (explicit + implicit signals),
   denominator_definition: started conversations,
   description: Average satisfaction score (0..1) of started conversations.}
- {name: feedback_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: started and feedback_score is not null, denominator_if: started,
   numerator_definition: started conversations with a usable rating (feedback_score not null),
   denominator_definition: started conversations,
   description: Share of started conversations in which the user left a rating.}
- {name: positive_feedback_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: "feedback_score >= 0.5", denominator_if: feedback_score is not null,
   numerator_definition: "conversations with feedback_score >= 0.5",
   denominator_definition: conversations with feedback_score not null,
   description: "Share of rated conversations whose rating is positive (feedback_score >= 0.5)."}
- {name: rephrase_rate, kind: ratio, proportion: true, better: lower, unit: fraction 0..1,
   numerator_if: "started and rephrase_count > 0", denominator_if: started,
   numerator_definition: "started conversations with at least one rephrase (rephrase_count > 0)",
   denominator_definition: started conversations,
   description: Share of started conversations in which the user had to rephrase.}
- {name: response_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: engaged and first_response_ms is not null, denominator_if: engaged,
   numerator_definition: engaged conversations whose first user message got an agent_message at or after it,
   denominator_definition: engaged conversations (at least one user_message),
   description: Share of engaged conversations in which the agent answered the user. Not in the contract; used by the alerts.}
- {name: avg_sentiment, kind: ratio, better: higher, unit: sentiment -1..1,
   numerator: "coalesce(sentiment_sum, 0)", denominator: "coalesce(sentiment_count, 0)",
   numerator_definition: "sum of the sentiment of user_message events (properties.sentiment in -1..1, else the offline lexicon's score)",
   denominator_definition: user_message events with a sentiment,
   description: "Average sentiment of user messages (message-weighted; the event's sentiment property, else the lexicon score of the classification asset), assigned to the conversation's day/hour. Not in the contract; used by the negative_sentiment alert."}
- {name: quality_score, kind: ratio, better: higher, unit: score 0..1,
   numerator: "coalesce(quality_score, 0)", denominator_if: quality_score is not null,
   numerator_definition: "sum of quality_score (int_conversation_quality_scored, every started conversation; fct_conversation_quality publishes those with a scored user message: weighted resolution, efficiency, sentiment and goal completion)",
   denominator_definition: conversations with a quality_score (started conversations),
   description: Average conversation quality score (0..1) of started conversations; formula in docs/quality.md. Not in the contract.}
- {name: sales_response_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: started and sales_responded_in_order, denominator_if: started,
   numerator_definition: "started conversations that reached the sales stage responded in order (a user_message strictly after the first agent_message, not earlier than started)",
   denominator_definition: started conversations,
   description: "Sales funnel step rate (contract v1.2): share of started conversations in which the user answered the agent. Counted in order, as reached_in_order. Differs from response_rate (the agent answering the user)."}
- {name: qualification_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: sales_qualified_in_order, denominator_if: sales_responded_in_order,
   numerator_definition: conversations that reached the sales stage qualified in order,
   denominator_definition: conversations that reached the sales stage responded in order,
   description: "Sales funnel step rate (contract v1.2): qualified / responded, both counted in order."}
- {name: booking_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: sales_booked_in_order, denominator_if: sales_qualified_in_order,
   numerator_definition: conversations that reached the sales stage booked in order,
   denominator_definition: conversations that reached the sales stage qualified in order,
   description: "Sales funnel step rate (contract v1.2): booked / qualified, both counted in order."}
- {name: show_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: sales_attended_in_order, denominator_if: sales_booked_in_order,
   numerator_definition: conversations that reached the sales stage attended in order,
   denominator_definition: conversations that reached the sales stage booked in order,
   description: "Sales funnel step rate (contract v1.2): attended / booked, both counted in order."}
- {name: sales_conversion_rate, kind: ratio, proportion: true, better: higher, unit: fraction 0..1,
   numerator_if: sales_converted_in_order, denominator_if: sales_attended_in_order,
   numerator_definition: conversations that reached the sales stage converted in order (not earlier than attended),
   denominator_definition: conversations that reached the sales stage attended in order,
   description: "Sales funnel step rate (contract v1.2): converted / attended, both counted in order. A conversion dated before the meeting was attended does not count."}
- {name: sentiment_change, kind: ratio, better: higher, unit: sentiment change -2..2,
   numerator: "coalesce(sentiment_end - sentiment_start, 0)", denominator_if: sentiment_start is not null and sentiment_end is not null,
   numerator_definition: "sum of sentiment_end - sentiment_start (mean sentiment of the last third of the scored user messages minus the first third's, at least one message each)",
   denominator_definition: conversations with both sentiment_start and sentiment_end (at least one scored user message),
   description: "Mean change of user sentiment within a conversation (end - start; positive: users leave happier than they came): the mean of fct_conversation_quality.sentiment_trend. Not in the contract."}
- {name: semantic_rephrase_rate, kind: ratio, proportion: true, better: lower, unit: fraction 0..1,
   numerator_if: "started and semantic_rephrase_count > 0", denominator_if: started and semantic_rephrase_count is not null,
   numerator_definition: "started conversations with at least one semantic rephrase (fct_conversation_rephrases.semantic_rephrase_count > 0)",
   denominator_definition: started conversations whose every user message has a sentence embedding (semantic_rephrase_count not null),
   description: "Share of started conversations in which the user said the same thing in other words (sentence embeddings, cosine > 0.85; needs CONVO_EMBEDDING_MODEL, no rows without it). Not in the contract; rephrase_rate is the contract's word-overlap reading."}
- {name: frustration_rate, kind: ratio, proportion: true, better: lower, unit: fraction 0..1,
   numerator_if: started and is_frustrated, denominator_if: started,
   numerator_definition: "started conversations with fct_conversation_rephrases.is_frustrated (at least 3 rephrases, then abandoned or handed off)",
   denominator_definition: started conversations,
   description: "Share of started conversations in which the user rephrased at least three times and then gave up or was handed off (rephrases by sentence embeddings where the conversation has them, else by word overlap). Not in the contract."}
- {name: cost_per_conversation, kind: ratio, better: lower, unit: USD per conversation,
   numerator: case when started and conversation_cost_usd is not null then conversation_cost_usd else 0 end, denominator_if: started and conversation_cost_usd is not null,
   numerator_definition: "sum of what the agent's model calls cost (fct_conversation_models.cost_usd over the conversation's models) of started conversations whose every agent message has a price",
   denominator_definition: started conversations whose every agent message has a price in seeds/model_prices.csv at its time (one without agent messages costs 0),
   description: "Average cost of the agent's model calls per started conversation, in USD, as Langfuse shows it: tokens times the price per million valid at the message's time. Conversations with an unpriced model call are left out (counted by unpriced_conversations), never guessed. Not in the contract."}
- {name: unpriced_conversations, kind: count, better: lower, unit: conversations,
   numerator_if: has_unpriced_model_calls,
   numerator_definition: conversations with at least one agent message whose model has no price in seeds/model_prices.csv at its time (unknown models included),
   description: "Conversations left out of cost_per_conversation because a model they used has no price at the time: add the model to seeds/model_prices.csv. Not in the contract."}
- {name: first_response_ms_p50, kind: percentile, better: lower, unit: milliseconds,
   expression: first_response_ms, percentile: 0.5,
   description: "Median first_response_ms over conversations that have one (continuous percentile, linear interpolation). Value only."}
- {name: first_response_ms_p95, kind: percentile, better: lower, unit: milliseconds,
   expression: first_response_ms, percentile: 0.95,
   description: "95th percentile of first_response_ms over conversations that have one (continuous percentile, linear interpolation). Value only."}
- {name: duration_seconds_p50, kind: percentile, unit: seconds,
   expression: duration_seconds, percentile: 0.5,
   description: "Median duration_seconds over started conversations (continuous percentile, linear interpolation). Value only."}
{%- endset -%}
    {%- set flag = metric_flag_format() -%}
    {%- set metrics = fromyaml(definitions) -%}
    {%- for metric in metrics -%}
        {%- for key in ['proportion', 'better', 'numerator', 'denominator', 'expression', 'percentile',
                        'numerator_definition', 'denominator_definition'] -%}
            {%- do metric.setdefault(key, false if key == 'proportion' else none) -%}
        {%- endfor -%}
        {%- for part in ['numerator', 'denominator'] if metric.get(part ~ '_if') is not none -%}
            {%- do metric.update({part: flag.format(metric.pop(part ~ '_if'))}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(metrics) }}
{% endmacro %}

{% macro metric_flag_format() -%}
    {{ return("case when {} then 1 else 0 end") }}
{%- endmacro %}
