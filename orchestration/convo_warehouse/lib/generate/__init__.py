"""Synthetic demo data: raw conversation events per the event contract.

``generate_events(out_dir, conversations, days, seed, ...)`` writes Parquet,
JSONL, JSONL.gz and CSV files into a landing folder and returns a summary.
See docs/generator.md.
"""

from convo_warehouse.lib.generate.core import (  # noqa: F401
    BAD_CLASSES,
    DEFAULT_FORMAT_MIX,
    EXPERIMENTS,
    TS_FORMS,
    conversation_id,
    generate_events,
    parse_format_mix,
)
