"""The HTTP collector: contract events and OTLP/JSON GenAI traces in, landing files out.

See ``convo_warehouse.collector.app`` and docs/capture.md.
"""
