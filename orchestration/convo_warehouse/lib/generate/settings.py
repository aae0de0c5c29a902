"""What the generator makes, in numbers: event types and aliases, experiments,
timestamp forms, bad-row classes and their shares, file slots, traffic by hour.

Light on purpose (numpy and the text vocabulary only), so every step imports it.
"""

from __future__ import annotations

import numpy as np

from convo_warehouse.lib.generate import text

CHUNK_SIZE = 100_000
MS_DAY = 86_400_000

CANONICAL_TYPES = [
    "interaction_initialized", "conversation_started", "user_message", "agent_message", "tool_called",
    "fallback_triggered", "handoff_requested", "feedback_received", "conversion", "stage_reached",
    "experiment_exposure", "button_clicked", "flow_started", "flow_completed", "flow_abandoned",
    "conversation_completed", "conversation_abandoned", "conversation_ended",
]
ALIASES = {
    "conversation_started": ["started", "session_start"],
    "user_message": ["message_sent"],
    "agent_message": ["message_received", "agent_response"],
    "handoff_requested": ["escalation_requested"],
    "feedback_received": ["feedback_submitted"],
    "conversation_completed": ["completed"],
    "conversation_abandoned": ["abandoned"],
    "conversation_ended": ["session_end"],
    "experiment_exposure": ["ab_exposure"],
}
ALIAS_NAMES = [a for names in ALIASES.values() for a in names]
ETYPE_NAMES = CANONICAL_TYPES + ALIAS_NAMES + text.UNKNOWN_EVENT_TYPES
ET = {name: i for i, name in enumerate(ETYPE_NAMES)}

EXPERIMENTS = {"greeting_tone": ["formal", "casual"], "reply_length": ["short", "long"]}
TEST_NAMES = list(EXPERIMENTS)
VARIANT_NAMES = ["formal", "casual", "short", "long"]

# timestamp forms (ts_kind)
TS_FORMS = ["iso_z", "offset_colon", "offset_nocolon", "space_naive", "naive_t", "epoch_ms_number",
            "epoch_ms_string", "iso_z_no_fraction", "space_offset"]
TS_FORM_SHARES = [0.40, 0.15, 0.05, 0.08, 0.08, 0.10, 0.05, 0.05, 0.04]
OFFSETS_MIN = [-480, -420, -300, -240, 0, 60, 120, 330, 540, 600]

# bad-row classes
BAD_CLASSES = ["missing_event_id", "missing_conversation_id", "missing_event_type", "missing_timestamp",
               "unparseable_timestamp", "future_timestamp", "properties_not_object", "bad_json_line",
               "csv_wrong_column_count"]
BAD_SHARE = 0.005
UNKNOWN_TYPE_SHARE = 0.001
DUPLICATE_SHARE = 0.02
ALIAS_SHARE = 0.06
LATE_SHARE = 0.02

# file slots
SLOT_PARQUET_STR, SLOT_PARQUET_TS, SLOT_PARQUET_MS, SLOT_JSONL, SLOT_JSONL_GZ, SLOT_CSV, SLOT_LATE = range(7)
DEFAULT_FORMAT_MIX = "parquet=0.80,jsonl=0.10,jsonl.gz=0.10,csv=0.05"

# hourly traffic pattern (UTC), peaks in the European afternoon / US morning
HOUR_WEIGHTS = np.array([2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 6, 7.5, 8.5, 9, 9.5, 10, 10, 9.5, 9, 8.5, 7.5, 6.5,
                         5.5, 4.5, 3.5, 2.5], dtype=float)

# Message text is written into JSON as '"' || content || '"' without escaping (fast), so no
# template, prefix, suffix or slot value may hold a character JSON would escape.
for _t in [*(t for ts in text.TEMPLATES.values() for t in ts), *text.REPHRASE_PREFIXES, text.LONG_REPLY_SUFFIX,
           *text.FIRST_NAMES, *text.LAST_NAMES, *text.PRODUCTS, *text.PLANS, *text.COMPANIES]:
    assert '"' not in _t and "\\" not in _t and all(ord(ch) >= 32 for ch in _t), _t



def parse_format_mix(spec: str) -> dict[str, float]:
    """``"parquet=0.8,jsonl=0.1,jsonl.gz=0.1,csv=0.05"`` -> shares per format.

    parquet, jsonl and jsonl.gz shares are normalised per chunk; csv is the
    share of the first chunk's events written to the single CSV file.
    """
    mix = {"parquet": 0.0, "jsonl": 0.0, "jsonl.gz": 0.0, "csv": 0.0}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name not in mix:
            raise ValueError(f"unknown format {name!r} in format mix (use parquet, jsonl, jsonl.gz, csv)")
        mix[name] = float(value) if value else 1.0
        if mix[name] < 0:
            raise ValueError("format shares must be >= 0")
    if mix["parquet"] + mix["jsonl"] + mix["jsonl.gz"] <= 0:
        raise ValueError("format mix needs a positive share for parquet, jsonl or jsonl.gz")
    return mix


def conversation_id(seed: int, n: int) -> str:
    return f"c-{seed}-{n:07d}"

