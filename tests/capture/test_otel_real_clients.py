"""The standard OpenTelemetry packages, unmodified, sending to ``convo-warehouse collect``.

An agent process (a subprocess: the instrumentation patches ``openai``
globally) uses ``opentelemetry-sdk`` with the real OTLP/HTTP exporters (binary
protobuf, the only form the Python exporter sends) and
``opentelemetry-instrumentation-openai-v2`` around the real ``openai`` client,
which calls the local fake OpenAI-compatible server. Configuration is only the
endpoint and the header, plus content capture (``SPAN_AND_EVENT``: the
messages reach the collector through ``/v1/traces`` and ``/v1/logs`` both, and
count once). The spans and log events land,
stage, and show model, tokens and content in ``stg_events`` and
``fct_messages``, and the ``convo.outcome`` attribute makes the conversation
completed in ``fct_conversations``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from support.capture import CollectorProcess, wait_for
from support.fake_llm_server import FakeLLMServer

AGENT = r"""
import sys
import openai
from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

resource = Resource.create({"service.name": "support-bot", "deployment.environment.name": "production"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
set_logger_provider(logger_provider)
trace.set_tracer_provider(tracer_provider)
OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)

client = openai.OpenAI(base_url=sys.argv[1], api_key="test", max_retries=0)
tracer = trace.get_tracer("agent")
history = [{"role": "system", "content": "You are a support agent."}]
with tracer.start_as_current_span("invoke_agent support-bot", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "c-otel-real",
        "user.id": "u-77"}) as agent:
    for question in ("Where is my order?", "Thanks, bye"):
        history.append({"role": "user", "content": question})
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=history)
        history.append({"role": "assistant", "content": answer.choices[0].message.content})
    agent.set_attribute("convo.outcome", "completed")
tracer_provider.force_flush()
logger_provider.force_flush()
tracer_provider.shutdown()
logger_provider.shutdown()
"""


def test_standard_otel_packages_reach_the_marts(warehouse):
    collector = CollectorProcess(warehouse.landing, None, "otel-token", "--rotate-seconds", "0.2").start()
    try:
        with FakeLLMServer(default=lambda body: {"kind": "ok", "content": "It shipped today."}) as llm:
            env = {**os.environ,
                   "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                   "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer otel-token",
                   # content on the spans and as log events: both signals, each message counted once
                   "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                   "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"}
            result = subprocess.run([sys.executable, "-c", AGENT, llm.base_url], env=env, capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, result.stderr[-3000:]
            assert "Failed to export" not in result.stderr, result.stderr[-3000:]
        wait_for(lambda: list((warehouse.landing / "collector").rglob("*.jsonl")), 10, "a collector file")
    finally:
        collector.stop()
    warehouse.load()
    warehouse.build("+fct_messages +fct_conversations")
    staged = warehouse.query(
        "select event_type, model, input_tokens, output_tokens from staging.stg_events "
        "where conversation_id = 'c-otel-real' order by event_at, event_type")
    assert [row[0] for row in staged] == ["conversation_started", "user_message", "agent_message", "user_message",
                                          "agent_message", "conversation_completed"]
    agent_rows = [row for row in staged if row[0] == "agent_message"]
    assert all(row[1] == "gpt-4o-mini" and row[2] > 0 and row[3] == len("It shipped today.") // 4
               for row in agent_rows)
    messages = warehouse.query(
        "select * from marts.fct_messages where conversation_id = 'c-otel-real'")
    columns = [row[0] for row in warehouse.query(
        "select column_name from information_schema.columns where table_name = 'fct_messages' "
        "order by ordinal_position")]
    texts = {row[columns.index("content")] for row in messages} if "content" in columns else set()
    assert {"Where is my order?", "Thanks, bye", "It shipped today."} <= texts, messages
    outcome = warehouse.query(
        "select outcome from marts.fct_conversations where conversation_id = 'c-otel-real'")
    assert outcome == [("completed",)]
