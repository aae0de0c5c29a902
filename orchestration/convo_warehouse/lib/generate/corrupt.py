"""Corrupt: the messiness the event contract allows, added to a chunk's clean events.

Aliased event types, ``session_id`` / ``customer_id`` in place of the
canonical names, duplicates (same or another file, some with a different
timestamp form), bad rows of every class in ``BAD_CLASSES``, unknown event
types, double-encoded properties and blank lines (JSONL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from convo_warehouse.lib.generate import text
from convo_warehouse.lib.generate.arrow import dict_array, nullable, set_column
from convo_warehouse.lib.generate.settings import (
    ALIAS_SHARE,
    ALIASES,
    BAD_CLASSES,
    BAD_SHARE,
    CANONICAL_TYPES,
    DUPLICATE_SHARE,
    ET,
    ETYPE_NAMES,
    MS_DAY,
    OFFSETS_MIN,
    SLOT_CSV,
    SLOT_JSONL,
    SLOT_JSONL_GZ,
    SLOT_LATE,
    SLOT_PARQUET_STR,
    TS_FORMS,
    UNKNOWN_TYPE_SHARE,
)

if TYPE_CHECKING:
    from convo_warehouse.lib.generate.simulate import Simulation


def messy_rows(sim: Simulation, rng, c, E, P, slots: list[int], slot_p: np.ndarray, chunk_no: int) -> pa.Table:
    """One row per file row of the chunk: the clean events, then duplicates and bad rows.

    Each row gets its file slot (format), its event type name (an alias for
    some), its identifiers' form (``session_id`` / ``customer_id``
    instead of the canonical names for some) and the values the renderer fills
    message slots with. Duplicates are copies (half in the same file, some
    with a differing timestamp form or a redelivery marker); bad rows are
    copies with one defect each (``BAD_CLASSES``) and a few unknown event
    types. ``sim.stats`` counts them.
    """
    total = len(E["conv"])
    conv = E["conv"]
    et = E["etype"].astype(np.int64)
    # aliases
    alias_code = et.copy()
    r = rng.random(total)
    for canon, names in ALIASES.items():
        ci = CANONICAL_TYPES.index(canon)
        p = 0.10 if canon == "experiment_exposure" else ALIAS_SHARE
        m = (et == ci) & (r < p)
        if m.any():
            pick = rng.integers(0, len(names), int(m.sum()))
            alias_code[m] = np.array([ET[nm] for nm in names])[pick]
    slot = np.asarray(slots)[rng.choice(len(slots), size=total, p=slot_p)]
    slot = np.where(c["late"][conv], SLOT_LATE, slot)
    channel = np.where(~E["first"] & (rng.random(total) < 0.15), -1, c["channel"][conv])
    id_mode = rng.choice(3, size=total, p=[0.96, 0.03, 0.01])
    uid_mode = rng.choice(3, size=total, p=[0.96, 0.03, 0.01])
    cols = {
        "conv_n": pa.array(c["conv_n"][conv]),
        "seq": pa.array(E["seq"].astype(np.int32)),
        "eid_fresh": pa.array(np.full(total, -1, dtype=np.int64)),
        "canonical": pa.array(et.astype(np.int16)),
        "etype_code": pa.array(alias_code.astype(np.int16)),
        "ts_ms": pa.array(E["ts"]),
        "ts_kind": pa.array(E["ts_kind"].astype(np.int8)),
        "off_min": pa.array(np.array(OFFSETS_MIN)[rng.integers(0, len(OFFSETS_MIN), total)].astype(np.int32)),
        "slot": pa.array(slot.astype(np.int8)),
        "order_key": pa.array(E["ts"]),
        "id_mode": pa.array(id_mode.astype(np.int8)),
        "uid_mode": pa.array(uid_mode.astype(np.int8)),
        "user_n": nullable(c["user_n"][conv], c["user_n"][conv] < 0),
        "channel": dict_array(channel, text.CHANNELS),
        "bad": pa.array(np.full(total, -1, dtype=np.int8)),
        "redeliver": pa.array(np.zeros(total, dtype=bool)),
        "is_copy": pa.array(np.zeros(total, dtype=bool)),
    }
    cols.update(P)
    table = pa.table(cols)
    late = c["late"][conv]
    sim.stats["late_events"] += int(late.sum())
    sim.stats["late_conversations"] += int(c["late"].sum())
    candidates = np.nonzero(~late)[0]
    parts = [table]
    # duplicates: half in the same file, half in another file of this chunk
    n_dup = int(round(DUPLICATE_SHARE * len(candidates)))
    if n_dup:
        idx = np.sort(rng.choice(candidates, size=n_dup, replace=False))
        dup = table.take(pa.array(idx))
        same = rng.random(n_dup) < 0.5
        other = np.asarray(slots)[rng.choice(len(slots), size=n_dup, p=slot_p)]
        dslot = np.where(same, slot[idx], other)
        differ = rng.random(n_dup) < 0.3
        new_kind = rng.choice(7, size=n_dup)
        dkind = np.where(differ & (rng.random(n_dup) < 0.5), new_kind, E["ts_kind"][idx])
        redeliver = differ & (dkind == E["ts_kind"][idx])
        dup = set_column(dup, "slot", pa.array(dslot.astype(np.int8)))
        dup = set_column(dup, "order_key", pa.array(E["ts"][idx] + rng.integers(60_000, 6 * 3_600_000, n_dup)))
        dup = set_column(dup, "ts_kind", pa.array(dkind.astype(np.int8)))
        dup = set_column(dup, "redeliver", pa.array(redeliver))
        dup = set_column(dup, "is_copy", pa.array(np.ones(n_dup, dtype=bool)))
        parts.append(dup)
        sim.stats["duplicates_injected"] += n_dup
        sim.stats["duplicates_differing"] += int(differ.sum())
    # bad rows (copies of real rows with one defect) and unknown event types
    string_slots = [s for s in slots if s in (SLOT_PARQUET_STR, SLOT_JSONL, SLOT_JSONL_GZ, SLOT_CSV)]
    allowed = {}
    for bi, name in enumerate(BAD_CLASSES):
        if name == "bad_json_line":
            allowed[bi] = [s for s in slots if s in (SLOT_JSONL, SLOT_JSONL_GZ)]
        elif name == "csv_wrong_column_count":
            allowed[bi] = [s for s in slots if s == SLOT_CSV]
        elif name == "unparseable_timestamp":
            allowed[bi] = string_slots
        else:
            allowed[bi] = list(slots)
    usable = [bi for bi in allowed if allowed[bi]]
    n_bad = int(rng.binomial(len(candidates), BAD_SHARE)) if len(candidates) else 0
    classes = rng.choice(usable, size=n_bad) if n_bad else np.zeros(0, dtype=np.int64)
    if chunk_no == 0:
        classes = np.concatenate([np.repeat(usable, 2), classes])
    n_unknown = int(rng.binomial(len(candidates), UNKNOWN_TYPE_SHARE)) + (2 if chunk_no == 0 else 0)
    nb = len(classes)
    if nb + n_unknown and len(candidates):
        idx = rng.choice(candidates, size=nb + n_unknown)
        bad = table.take(pa.array(idx))
        bclass = np.concatenate([classes, np.full(n_unknown, -1)]).astype(np.int8)
        bslot = np.array([allowed[b][rng.integers(len(allowed[b]))] if b >= 0 else
                          slots[rng.integers(len(slots))] for b in bclass.tolist()], dtype=np.int8)
        fresh = (bclass == -1) | (rng.random(len(bclass)) < 0.5)
        base = chunk_no * 10_000_000
        bad = set_column(bad, "eid_fresh", pa.array(np.where(fresh, base + np.arange(len(bclass)), -1)))
        bad = set_column(bad, "bad", pa.array(bclass))
        bad = set_column(bad, "slot", pa.array(bslot))
        bad = set_column(bad, "order_key", pa.array(E["ts"][idx] - 1))
        bad = set_column(bad, "is_copy", pa.array(np.ones(len(bclass), dtype=bool)))
        future = bclass == BAD_CLASSES.index("future_timestamp")
        ts = np.where(future, sim.limit_ms + rng.integers(3 * MS_DAY, 400 * MS_DAY, len(bclass)), E["ts"][idx])
        bad = set_column(bad, "ts_ms", pa.array(ts))
        kinds = np.where(future, 0, E["ts_kind"][idx])
        bad = set_column(bad, "ts_kind", pa.array(kinds.astype(np.int8)))
        unk = rng.integers(0, len(text.UNKNOWN_EVENT_TYPES), len(bclass)) + ET[text.UNKNOWN_EVENT_TYPES[0]]
        ecode = np.where(bclass == -1, unk, np.asarray(bad.column("etype_code")))
        bad = set_column(bad, "etype_code", pa.array(ecode.astype(np.int16)))
        parts.append(bad)
        for b in bclass.tolist():
            if b >= 0:
                sim.stats["bad_rows_by_class"][BAD_CLASSES[b]] += 1
        sim.stats["unknown_type_rows"] += n_unknown
    out = pa.concat_tables(parts)
    out = out.append_column("etype_name", dict_array(np.asarray(out.column("etype_code")), ETYPE_NAMES))
    cn = np.asarray(out.column("conv_n"))
    emails = [f"{first}.{last}@example.com" for last in text.LAST_NAMES for first in text.FIRST_NAMES]
    out = out.append_column("s_email", dict_array(cn % 20 + 20 * ((cn // 20) % 10), emails))
    out = out.append_column("s_product", dict_array((cn * 7) % 10, text.PRODUCTS))
    out = out.append_column("s_plan", dict_array((cn * 3) % 4, text.PLANS))
    out = out.append_column("s_amount", dict_array((cn * 13) % 300, [f"{9.99 + i:.2f}" for i in range(300)]))
    out = out.append_column("s_last4", dict_array((cn * 31) % 10000, [f"{i:04d}" for i in range(10000)]))
    out = out.append_column("s_company", dict_array((cn * 17) % 10, text.COMPANIES))
    out = out.append_column("s_day", dict_array((cn * 5) % 5, text.DAYS))
    out = out.append_column("s_time", dict_array((cn * 3) % 5, text.TIMES))
    # JSONL-only messiness: double-encoded properties, blank lines
    m = len(out)
    out = out.append_column("double_enc", pa.array(rng.random(m) < 0.05))
    out = out.append_column("blank_after", pa.array(rng.random(m) < 0.005))
    out = out.append_column("pick", pa.array(rng.integers(0, 1 << 30, m)))
    return out



def tally(stats: dict, raw: pa.Table) -> None:
    """Add the chunk's rows, events and injected defects to ``stats``."""
    st = stats
    is_copy = np.asarray(raw.column("is_copy"))
    bad = np.asarray(raw.column("bad"))
    slot = np.asarray(raw.column("slot"))
    code = np.asarray(raw.column("etype_code"))
    st["events"] += int((~is_copy).sum())
    st["rows_written"] += len(raw)
    st["alias_rows"] += int(((code >= len(CANONICAL_TYPES)) & (code < ET[text.UNKNOWN_EVENT_TYPES[0]])).sum())
    st["session_id_rows"] += int((np.asarray(raw.column("id_mode")) >= 1).sum())
    user_known = ~np.asarray(raw.column("user_n").is_null())
    st["customer_id_rows"] += int(((np.asarray(raw.column("uid_mode")) >= 1) & user_known).sum())
    jsonl = np.isin(slot, [SLOT_JSONL, SLOT_JSONL_GZ, SLOT_LATE])
    st["double_encoded_rows"] += int((np.asarray(raw.column("double_enc")) & jsonl).sum())
    st["blank_lines"] += int((np.asarray(raw.column("blank_after")) & jsonl).sum())
    kinds = np.asarray(raw.column("ts_kind"))
    counts = np.bincount(kinds[bad < 0], minlength=len(TS_FORMS))
    for i, f in enumerate(TS_FORMS):
        st["timestamp_forms"][f] += int(counts[i])
    good_ts = np.asarray(raw.column("ts_ms"))[bad != BAD_CLASSES.index("future_timestamp")]
    if len(good_ts):
        st["max_event_ms"] = max(st["max_event_ms"], int(good_ts.max()))
