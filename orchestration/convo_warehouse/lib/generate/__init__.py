"""Synthetic demo data: raw conversation events per the event contract.

``generate_events(out_dir, conversations, days, seed, ...)`` writes Parquet,
JSONL, JSONL.gz and CSV files into a landing folder and returns a summary.
The work is split by job: ``simulate`` (conversations and events),
``corrupt`` (duplicates, bad rows, aliases), ``render`` (strings, JSON,
timestamps), ``write`` (files); ``run`` drives them chunk by chunk and
``settings`` holds the numbers. See docs/generator.md.
"""

from convo_warehouse.lib.generate.run import generate_events
from convo_warehouse.lib.generate.settings import (
    BAD_CLASSES,
    DEFAULT_FORMAT_MIX,
    EXPERIMENTS,
    TS_FORMS,
    conversation_id,
    parse_format_mix,
)

__all__ = [
    "BAD_CLASSES",
    "DEFAULT_FORMAT_MIX",
    "EXPERIMENTS",
    "TS_FORMS",
    "conversation_id",
    "generate_events",
    "parse_format_mix",
]
