"""Support-stage classification of conversation transcripts.

Pure helpers (no Dagster imports): transcripts read from the warehouse, a
set-based rules classifier driven by ``stage_rules.yml``, an LLM classifier for
any OpenAI-compatible endpoint, PII masking, the result store (with its cache)
and golden-set evaluation. ``runner.classify_warehouse`` ties them together.
"""

from convo_warehouse.lib.classify.stages import FUNNEL_NAME, STAGES

__all__ = ["FUNNEL_NAME", "STAGES"]
