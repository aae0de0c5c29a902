"""Synthetic raw events: numpy builds the event skeleton, DuckDB renders and writes it.

Per chunk (one day's conversations, at most ``CHUNK_SIZE`` of them):

1. numpy draws conversation attributes and expands their scripts into event
   rows (type, time, turn, codes for every property);
2. copies of some rows become duplicates and bad rows;
3. DuckDB turns codes into strings (message text with slots filled, the
   ``properties`` JSON text, the timestamp in one of several forms) and writes
   Parquet / JSONL / JSONL.gz / CSV files.

Everything random comes from ``numpy.random.default_rng([seed, day, part])``,
so output is byte-identical for the same arguments.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from convo_warehouse.lib.assignment import assignment_bucket
from convo_warehouse.lib.generate import scripts, text
from convo_warehouse.lib.generate.scripts import NOT_ENGAGED, SALES, SUPPORT

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


def _assign_codes(seed: int, conv_n: np.ndarray, test_name: str) -> np.ndarray:
    """Each conversation's variant position in ``test_name`` by the contract's rule."""
    count = len(EXPERIMENTS[test_name])
    return np.array(
        [assignment_bucket(test_name, conversation_id(seed, n), count) for n in conv_n.tolist()], dtype=np.int8
    )


def _dict_array(codes: np.ndarray, values: list) -> pa.DictionaryArray:
    codes = np.asarray(codes)
    mask = codes < 0
    idx = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask)
    # decoded to plain strings: DuckDB scans arrow dictionaries far slower than strings
    return pa.array(values, pa.string()).take(idx)


def _nullable(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    return pa.array(values, mask=mask)


def _frag(key: str, json_values: pa.Array) -> pa.Array:
    """'"key":<value>,' where the value is already JSON text; null where the value is null."""
    return pc.binary_join_element_wise(f'"{key}":', json_values, ",", "")


def _vocab_frag(key: str, codes: np.ndarray, vocab: list) -> pa.Array:
    return _frag(key, _dict_array(codes, [json.dumps(v, ensure_ascii=False) for v in vocab]))


def _num_frag(key: str, values: np.ndarray, mask: np.ndarray) -> pa.Array:
    return _frag(key, pc.cast(pa.array(values, mask=mask), pa.string()))


def _join(fragments: list[pa.Array]) -> pa.Array:
    """Concatenate the non-null fragments of each row (each ends in a comma; '' when none).

    (pyarrow 26's ``null_handling="skip"`` drops rows whose inputs are all null, so nulls
    are replaced by '' instead and the writer trims the trailing comma.)
    """
    return pc.binary_join_element_wise(*fragments, "", null_handling="replace", null_replacement="")


class Generator:
    def __init__(self, out_dir, conversations, days, seed, end_date=None, incident=None, ab_effect=0.02,
                 format_mix=DEFAULT_FORMAT_MIX, now=None, truth_dir=None, chunk_size=CHUNK_SIZE):
        if conversations < 1:
            raise ValueError("conversations must be >= 1")
        if days < 1:
            raise ValueError("days must be >= 1")
        if incident in (None, "", "none"):
            incident = None
        if incident not in (None, "fallback_spike", "srm", "contamination"):
            raise ValueError(f"unknown incident {incident!r}")
        if not 0 <= ab_effect <= 0.5:
            raise ValueError("ab_effect must be between 0 and 0.5")
        self.out = Path(out_dir)
        self.n_total = int(conversations)
        self.days = int(days)
        self.seed = int(seed)
        self.incident = incident
        self.ab_effect = float(ab_effect)
        self.mix = parse_format_mix(format_mix) if isinstance(format_mix, str) else dict(format_mix)
        self.truth_dir = Path(truth_dir) if truth_dir else None
        self.chunk_size = int(chunk_size)
        now = now or dt.datetime.now(dt.timezone.utc)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.timezone.utc)
        self.now_ms = int(now.timestamp() * 1000)
        if end_date is None:
            end_date = now.astimezone(dt.timezone.utc).date()
        elif isinstance(end_date, str):
            end_date = dt.date.fromisoformat(end_date)
        self.end_date = end_date
        self.start_date = end_date - dt.timedelta(days=self.days - 1)
        epoch = dt.date(1970, 1, 1)
        self.day0_ms = (self.start_date - epoch).days * MS_DAY
        end_of_end = (end_date - epoch).days * MS_DAY + MS_DAY - 1
        self.limit_ms = min(end_of_end, self.now_ms)
        if self.limit_ms < self.day0_ms + 60_000:
            raise ValueError("the date range lies entirely in the future")
        self.incident_day = max(self.days - 3, 0)
        self.registry = scripts.StepRegistry()
        self.script_cache: dict[int, list[int]] = {}
        self._build_lookups()
        self.stats: dict = {
            "events": 0, "rows_written": 0, "duplicates_injected": 0, "duplicates_differing": 0,
            "bad_rows_by_class": {c: 0 for c in BAD_CLASSES}, "unknown_type_rows": 0, "alias_rows": 0,
            "session_id_rows": 0, "customer_id_rows": 0, "double_encoded_rows": 0, "blank_lines": 0,
            "timestamp_forms": {f: 0 for f in TS_FORMS}, "late_events": 0, "late_conversations": 0,
            "exposures": {t: 0 for t in TEST_NAMES}, "mismatched_exposures": 0,
            "contaminated_conversations": 0, "dropped_exposures_srm": 0, "clipped_events": 0,
            "max_event_ms": 0,
        }
        self.files: list[Path] = []

    # ------------------------------------------------------------------ setup
    def _build_lookups(self) -> None:
        cats = list(text.TEMPLATES)
        self.cat_index = {c: i for i, c in enumerate(cats)}
        tpl_texts, cat_start, cat_len = [], [], []
        for c in cats:
            cat_start.append(len(tpl_texts))
            cat_len.append(len(text.TEMPLATES[c]))
            tpl_texts.extend(text.TEMPLATES[c])
        self.tpl_texts = tpl_texts
        self.tpl_has_slot = np.array(["{" in t for t in tpl_texts])
        self.cat_start = np.array(cat_start, dtype=np.int32)
        self.cat_len = np.array(cat_len, dtype=np.int32)
        # greeting categories without tone map to their formal entry (+1 = casual)
        lookup_cats = cats + ["greet.support", "greet.sales"]
        self.greet_base = {lookup_cats.index("greet.support"): self.cat_index["greet.support.formal"],
                           lookup_cats.index("greet.sales"): self.cat_index["greet.sales.formal"]}
        self.lookups = {
            "etype": CANONICAL_TYPES,
            "delay": scripts.DELAY_KINDS,
            "cat": lookup_cats,
            "tool": sorted(set(text.TOOLS_LOOKUP.values()) | set(text.TOOLS_ACTION.values()) | {"book_meeting"}),
            "topic": text.SUPPORT_TOPICS + text.SALES_TOPICS,
            "end_reason": text.END_REASONS + ["user_left"],
            "goal": ["demo_booked", "email_collected"],
            "funnel": ["sales"],
            "stage": ["qualified", "booked", "attended", "converted"],
            "flow": text.FLOWS,
            "button": text.BUTTONS,
        }
        self.user_cat_intent = np.full(len(lookup_cats), -1, dtype=np.int32)
        self.user_cat_sent = np.zeros(len(lookup_cats), dtype=float)
        self.intents = sorted({m[0] for m in text.USER_CATEGORY_META.values()})
        for c, (intent, sent) in text.USER_CATEGORY_META.items():
            self.user_cat_intent[lookup_cats.index(c)] = self.intents.index(intent)
            self.user_cat_sent[lookup_cats.index(c)] = sent
        self.cat_is_agent = np.array([c.startswith(("a.", "greet.")) for c in lookup_cats])
        self.cat_is_greet = np.array([c.startswith("greet.") for c in lookup_cats])
        # template pool per lookup category (greeting: formal pool; tone applied per event)
        self.pool_start = np.zeros(len(lookup_cats), dtype=np.int32)
        self.pool_len = np.ones(len(lookup_cats), dtype=np.int32)
        for i, c in enumerate(lookup_cats):
            ci = self.cat_index.get(c, self.greet_base.get(i))
            self.pool_start[i] = self.cat_start[ci]
            self.pool_len[i] = self.cat_len[ci]
        self.greet_casual_start = np.zeros(len(lookup_cats), dtype=np.int32)
        for i, formal in self.greet_base.items():
            self.greet_casual_start[i] = self.cat_start[formal + 1]
        self.fallback_cat = lookup_cats.index("a.fallback")
        self.reason_names = text.HANDOFF_REASONS + self.lookups["end_reason"]
        self.models = sorted({a[3] for a in text.AGENTS})
        self.agent_model = np.array([self.models.index(a[3]) for a in text.AGENTS])
        self.agent_fallback = np.array([a[4] for a in text.AGENTS])

    # ------------------------------------------------------------------ plan
    def plan_days(self) -> list[tuple[int, int, int]]:
        """(day index, first conversation number, count) per day."""
        rng = np.random.default_rng([self.seed, 0xDA75])
        weights = np.empty(self.days)
        self.hour_avail = []
        for d in range(self.days):
            date = self.start_date + dt.timedelta(days=d)
            dow = 0.72 if date.weekday() >= 5 else 1.0
            day_ms = self.day0_ms + d * MS_DAY
            frac = np.clip((self.limit_ms - (day_ms + np.arange(24) * 3_600_000)) / 3_600_000, 0, 1)
            avail = HOUR_WEIGHTS * frac
            self.hour_avail.append((avail, frac))
            weights[d] = dow * (1 + 0.01 * d) * avail.sum() / HOUR_WEIGHTS.sum()
        counts = rng.multinomial(self.n_total, weights / weights.sum())
        plan, first = [], 0
        for d, c in enumerate(counts):
            plan.append((d, first, int(c)))
            first += int(c)
        return plan

    # ------------------------------------------------------------------ conversations
    def conversations(self, rng, day: int, first_n: int, n: int) -> dict[str, np.ndarray]:
        c: dict[str, np.ndarray] = {}
        c["conv_n"] = np.arange(first_n, first_n + n, dtype=np.int64)
        avail, frac = self.hour_avail[day]
        hour = rng.choice(24, size=n, p=avail / avail.sum())
        within = (rng.random(n) * frac[hour] * 3_600_000).astype(np.int64)
        start = self.day0_ms + day * MS_DAY + hour * 3_600_000 + within
        c["start_ms"] = np.minimum(start, self.limit_ms - 1000)
        c["hour"] = hour
        kind = rng.choice(3, size=n, p=[0.55, 0.30, 0.15])
        c["kind"] = kind
        chan = rng.choice(5, size=n, p=text.CHANNEL_WEIGHTS + [1 - sum(text.CHANNEL_WEIGHTS)])
        c["channel"] = np.where(chan == 4, -1, chan)
        c["device"] = rng.choice(3, size=n, p=text.DEVICE_WEIGHTS)
        c["device"][chan == 2] = 1  # voice calls come from phones
        c["source"] = rng.choice(5, size=n, p=text.SOURCE_WEIGHTS)
        c["language"] = rng.choice(4, size=n, p=text.LANGUAGE_WEIGHTS)
        c["environment"] = rng.choice(2, size=n, p=text.ENVIRONMENT_WEIGHTS)
        c["page"] = rng.integers(0, len(text.PAGE_URLS), size=n)
        sup_agents = [i for i, a in enumerate(text.AGENTS) if a[2] in ("support", "any")]
        sal_agents = [i for i, a in enumerate(text.AGENTS) if a[2] in ("sales", "any")]
        agent = np.where(kind == SALES, np.array(sal_agents)[rng.integers(0, len(sal_agents), n)],
                         np.array(sup_agents)[rng.choice(len(sup_agents), n, p=[0.3, 0.3, 0.25, 0.15])])
        c["agent"] = agent
        user = rng.integers(0, max(1, int(self.n_total * 0.7)), size=n)
        c["user_n"] = np.where(rng.random(n) < 0.05, -1, user)
        c["topic"] = np.where(kind == SUPPORT, rng.choice(5, size=n, p=[0.3, 0.2, 0.2, 0.15, 0.15]),
                              rng.choice(3, size=n, p=[0.4, 0.4, 0.2]))
        ne_sub = rng.choice(3, size=n, p=[0.6, 0.25, 0.15])
        c["ne_sub"] = np.where(kind == NOT_ENGAGED, ne_sub, 0)
        started = (kind != NOT_ENGAGED) | (ne_sub > 0)
        c["started"] = started
        # experiments: assignment by the contract's hash rule, exposure for most started ones
        for test in TEST_NAMES:
            assigned = _assign_codes(self.seed, c["conv_n"], test)
            exposed = started & (rng.random(n) < 0.80)
            mismatch = exposed & (rng.random(n) < 0.005)
            shown = np.where(mismatch, 1 - assigned, assigned)
            contam_p = 0.01 + (0.05 if self.incident == "contamination" else 0.0)
            contaminated = exposed & (rng.random(n) < contam_p)
            logged = exposed.copy()
            if self.incident == "srm" and test == "greeting_tone":
                drop = exposed & (shown == 1) & (rng.random(n) < 0.15)
                logged &= ~drop
                self.stats["dropped_exposures_srm"] += int(drop.sum())
            c[f"{test}.assigned"] = assigned
            c[f"{test}.exposed"] = exposed
            c[f"{test}.logged"] = logged
            c[f"{test}.shown"] = shown
            c[f"{test}.contaminated"] = contaminated
            c[f"{test}.mismatch"] = mismatch & logged
        casual = c["greeting_tone.exposed"] & (c["greeting_tone.shown"] == 1)
        c["casual"] = casual
        c["long_reply"] = c["reply_length.exposed"] & (c["reply_length.shown"] == 1)
        # conversion: ~10% of exposed conversations at base, casual + ab_effect
        lift = np.where(casual, (0.10 + self.ab_effect) / 0.10, 1.0)
        p_conv = np.where(kind == SALES, 0.26, np.where(kind == SUPPORT, 0.026, 0.0)) * lift
        converted = rng.random(n) < p_conv
        c["converted"] = converted
        # dimensions
        lvl_support = rng.choice(4, size=n, p=[0.08, 0.17, 0.17, 0.58])
        lvl_sales = rng.choice([1, 2, 3], size=n, p=[0.35, 0.40, 0.25])
        level = np.where(kind == SUPPORT, lvl_support, lvl_sales)
        level = np.where(converted, 3, level)
        level = np.where(kind == NOT_ENGAGED, 0, level)
        c["level"] = level
        c["vague"] = (rng.random(n) < 0.2) | ((kind == SUPPORT) & (level == 0))
        c["rephrase"] = rng.random(n) < 0.12
        end_open = rng.choice(3, size=n, p=[0.30, 0.45, 0.25])
        end_done = np.where(rng.random(n) < 0.92, scripts.END_COMPLETED, scripts.END_RESOLVED_NO_EVENT)
        c["ending"] = np.where(level >= 3, end_done, end_open)
        good = level >= 3
        c["good"] = good
        c["feedback"] = rng.random(n) < np.where(good, 0.30, 0.15)
        c["rating_int"] = rng.random(n) < 0.5
        c["extras"] = rng.random(n) < 0.1
        c["has_init"] = np.where(c["channel"] == 0, True, rng.random(n) < 0.5)
        c["thanks"] = rng.random(n) < 0.4
        c["attended"] = rng.random(n) < 0.6
        c["won"] = rng.random(n) < 0.35
        c["lead_score"] = np.round(np.where(converted, rng.beta(5, 2, n), rng.beta(2, 3, n)) * 100, 1)
        late_ok = day <= self.days - 4 if self.days >= 4 else (day == 0 and self.days >= 2)
        c["late"] = (rng.random(n) < LATE_SHARE) if late_ok else np.zeros(n, dtype=bool)
        return c

    def keys(self, c) -> tuple[np.ndarray, np.ndarray]:
        cols = {name: c[name] for name, _ in scripts.DIMENSIONS}
        key = scripts.encode({k: np.asarray(v) for k, v in cols.items()})
        ukeys, inverse = np.unique(key, return_inverse=True)
        return ukeys, inverse

    def script_table(self, ukeys) -> tuple[np.ndarray, np.ndarray]:
        seqs = []
        for k in ukeys.tolist():
            seq = self.script_cache.get(k)
            if seq is None:
                seq = [self.registry.id(s) for s in scripts.build_script(scripts.decode(k))]
                self.script_cache[k] = seq
            seqs.append(seq)
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        table = np.full((len(seqs), int(lens.max())), -1, dtype=np.int32)
        for i, s in enumerate(seqs):
            table[i, : len(s)] = s
        return table, lens

    # ------------------------------------------------------------------ events
    def events(self, rng, day, c) -> dict[str, np.ndarray]:
        n = len(c["conv_n"])
        # dimensions that must be 0 where irrelevant (fewer distinct scripts)
        kind = c["kind"]
        ne = kind == NOT_ENGAGED
        for name in ("level", "vague", "rephrase", "ending", "feedback", "converted", "extras", "thanks",
                     "attended", "won", "topic"):
            c[name] = np.where(ne, 0, c[name])
        c["has_init"] = np.where(ne, 0, c["has_init"])
        ukeys, inverse = self.keys(c)
        table, lens = self.script_table(ukeys)
        sa = self.registry.arrays(self.lookups)
        L = lens[inverse]
        total = int(L.sum())
        conv = np.repeat(np.arange(n), L)
        starts = np.cumsum(L) - L
        pos = np.arange(total) - np.repeat(starts, L)
        step = table[inverse[conv], pos]
        etype = sa["etype"][step]
        # delays (ms)
        dk = sa["delay"][step]
        delay = np.zeros(total, dtype=np.int64)

        def fill(kind_name, values_fn):
            m = dk == scripts.DELAY_KINDS.index(kind_name)
            k = int(m.sum())
            if k:
                delay[m] = values_fn(k)

        fill("start", lambda k: np.clip(rng.lognormal(np.log(8000), 0.6, k), 800, 90_000))
        fill("greet", lambda k: rng.integers(300, 2000, k))
        fill("user", lambda k: np.clip(rng.lognormal(np.log(18_000), 0.7, k), 2000, 300_000))
        fill("agent", lambda k: np.clip(rng.lognormal(np.log(2200), 0.55, k), 500, 8000))
        fill("tool", lambda k: rng.integers(150, 1500, k))
        fill("sys", lambda k: rng.integers(20, 400, k))
        fill("timeout", lambda k: rng.integers(10 * 60_000, 30 * 60_000, k))
        fill("feedback", lambda k: rng.integers(5000, 90_000, k))
        fill("days", lambda k: rng.integers(1 * MS_DAY, 6 * MS_DAY, k))
        fill("weeks", lambda k: rng.integers(7 * MS_DAY, 25 * MS_DAY, k))
        delay[starts] = 0
        cs = np.cumsum(delay)
        ts = c["start_ms"][conv] + cs - np.repeat(cs[starts], L)
        is_user = etype == CANONICAL_TYPES.index("user_message")
        cu = np.cumsum(is_user)
        turn = cu - np.repeat(cu[starts] - is_user[starts], L)
        cat = sa["cat"][step].copy()
        # optional fallbacks: kept at the agent's rate, or the incident rate
        fb_opt = sa["fb_opt"][step]
        rate = self.agent_fallback[c["agent"]][conv]
        hour_of_event = (ts // 3_600_000) % 24
        spike = np.zeros(total, dtype=bool)
        if self.incident == "fallback_spike" and day == self.incident_day:
            rate = np.full(total, 0.55)
            spike = (hour_of_event >= 9) & (hour_of_event < 14)
            rate = np.where(spike, 0.75, rate)
        keep_fb = fb_opt & (rng.random(total) < rate)
        idx = np.nonzero(keep_fb)[0]
        off = sa["reply_off"][step[idx]]
        idx, off = idx[off > 0], off[off > 0]
        cat[idx + off] = self.fallback_cat
        keep = ~fb_opt | keep_fb
        keep &= ts <= self.limit_ms
        self.stats["clipped_events"] += int(((~fb_opt | keep_fb) & (ts > self.limit_ms)).sum())
        E = {
            "conv": conv[keep], "step": step[keep], "etype": etype[keep], "ts": ts[keep], "turn": turn[keep],
            "cat": cat[keep], "delay": delay[keep], "spike": spike[keep],
        }
        # exposures
        started_ms = np.full(n, -1, dtype=np.int64)
        m = E["etype"] == CANONICAL_TYPES.index("conversation_started")
        started_ms[E["conv"][m]] = E["ts"][m]
        conv_ms = np.full(n, -1, dtype=np.int64)
        m = E["etype"] == CANONICAL_TYPES.index("conversion")
        conv_ms[E["conv"][::-1][m[::-1]]] = E["ts"][::-1][m[::-1]]  # first conversion wins
        ex_parts = []
        for ti, test in enumerate(TEST_NAMES):
            logged = c[f"{test}.logged"] & (started_ms >= 0)
            ids = np.nonzero(logged)[0]
            t = started_ms[ids] + rng.integers(10, 250, len(ids))
            late_exp = (conv_ms[ids] >= 0) & (rng.random(len(ids)) < 0.02)
            t = np.where(late_exp, conv_ms[ids] + rng.integers(1000, 30_000, len(ids)), t)
            variant = c[f"{test}.shown"][ids].astype(np.int64) + 2 * ti
            ex_parts.append((ids, t, variant, np.full(len(ids), ti)))
            self.stats["exposures"][test] += len(ids)
            self.stats["mismatched_exposures"] += int(c[f"{test}.mismatch"][ids].sum())
            cont = ids[c[f"{test}.contaminated"][ids]]
            tc = started_ms[cont] + rng.integers(5000, 120_000, len(cont))
            other = (1 - c[f"{test}.shown"][cont]).astype(np.int64) + 2 * ti
            ex_parts.append((cont, tc, other, np.full(len(cont), ti)))
            if ti == 0:
                self.stats["contaminated_conversations"] += len(cont)
        ex_conv = np.concatenate([p[0] for p in ex_parts])
        ex_ts = np.concatenate([p[1] for p in ex_parts])
        ok = ex_ts <= self.limit_ms
        ex_conv, ex_ts = ex_conv[ok], ex_ts[ok]
        ex_var = np.concatenate([p[2] for p in ex_parts])[ok]
        ex_test = np.concatenate([p[3] for p in ex_parts])[ok]
        k = len(ex_conv)
        E["variant"] = np.concatenate([np.full(len(E["conv"]), -1), ex_var])
        E["test"] = np.concatenate([np.full(len(E["conv"]), -1), ex_test])
        for name, fillv in (("step", -1), ("turn", -1), ("cat", -1), ("delay", 0), ("spike", False)):
            E[name] = np.concatenate([E[name], np.full(k, fillv, dtype=E[name].dtype)])
        E["conv"] = np.concatenate([E["conv"], ex_conv])
        E["etype"] = np.concatenate([E["etype"], np.full(k, CANONICAL_TYPES.index("experiment_exposure"))])
        E["ts"] = np.concatenate([E["ts"], ex_ts])
        total = len(E["conv"])
        # timestamp forms; whole-second form only for non-message events (ts rounded down)
        ts_kind = rng.choice(len(TS_FORMS), size=total, p=TS_FORM_SHARES)
        msg = (E["etype"] == 2) | (E["etype"] == 3)
        ts_kind = np.where((ts_kind == 7) & msg, 0, ts_kind)
        E["ts"] = np.where(ts_kind == 7, E["ts"] // 1000 * 1000, E["ts"])
        E["ts_kind"] = ts_kind
        order = np.lexsort((np.arange(total), E["ts"], E["conv"]))
        E = {k2: v[order] for k2, v in E.items()}
        conv = E["conv"]
        first = np.r_[True, conv[1:] != conv[:-1]]
        grp_start = np.maximum.accumulate(np.where(first, np.arange(total), 0))
        E["seq"] = np.arange(total) - grp_start
        E["first"] = first
        return E

    # ------------------------------------------------------------------ properties
    def properties(self, rng, c, E) -> dict[str, pa.Array]:
        total = len(E["conv"])
        conv = E["conv"]
        et = E["etype"]
        T = {name: i for i, name in enumerate(CANONICAL_TYPES)}
        sa = self.registry.arrays(self.lookups)
        step = E["step"]
        stepv = np.where(step >= 0, step, 0)
        has_step = step >= 0

        def from_step(attr):
            return np.where(has_step, sa[attr][stepv], -1)

        init = et == T["interaction_initialized"]
        started = et == T["conversation_started"]
        ctx = init | started
        user = et == T["user_message"]
        agent = et == T["agent_message"]
        cat = E["cat"]
        catv = np.where(cat >= 0, cat, 0)
        # template: same choice for the same category within one conversation (rephrase repeats it)
        conv_n = c["conv_n"][conv]
        h = (conv_n * 2654435761 + catv * 40503) % 1000003
        pool_start = np.where(self.cat_is_greet[catv] & c["casual"][conv], self.greet_casual_start[catv],
                              self.pool_start[catv])
        tpl = np.where(cat >= 0, pool_start + h % self.pool_len[catv], -1)
        rephrase = from_step("rephrase") == 1
        prefix = np.where(rephrase & (cat >= 0), rng.integers(0, len(text.REPHRASE_PREFIXES), total), -1)
        long_suffix = agent & c["long_reply"][conv] & ~self.cat_is_greet[catv] & (cat != self.fallback_cat)
        # user message extras
        intent_code = np.where(user & (rng.random(total) < 0.6), self.user_cat_intent[catv], -1)
        intent_conf = np.round(rng.uniform(0.55, 0.99, total), 3)
        sent = self.user_cat_sent[catv] + rng.normal(0, 0.25, total)
        sent = np.where(rephrase, -0.5 + rng.normal(0, 0.2, total), sent)
        sent = np.where(E["spike"], -0.75 + rng.normal(0, 0.15, total), sent)
        sent = np.round(np.clip(sent, -1, 1), 2)
        has_sent = user & (rng.random(total) < 0.7)
        # feedback rating fragments
        fb = et == T["feedback_received"]
        good = c["good"][conv]
        rint = c["rating_int"][conv]
        pos = rng.random(total) < np.where(good, 0.85, 0.3)
        case = rng.choice(3, size=total, p=[0.8, 0.15, 0.05])
        bin_code = np.where(pos, 0, 3) + case
        stars = np.where(good, rng.choice([3, 4, 5], total, p=[0.15, 0.35, 0.5]),
                         rng.choice([1, 2, 3], total, p=[0.4, 0.35, 0.25]))
        int_code = np.where(rng.random(total) < 0.3, 10 + stars, 5 + stars)
        rating = np.where(fb, np.where(rint, int_code, bin_code), -1)
        positive = np.where(rint, stars >= 4, pos)
        comment = np.where(fb & (rng.random(total) < 0.3),
                           np.where(positive, 0, len(text.COMMENTS_POSITIVE)) + rng.integers(0, 4, total), -1)
        reason = np.where(from_step("handoff") == 1, rng.integers(0, len(text.HANDOFF_REASONS), total),
                          np.where(from_step("end_reason") >= 0,
                                   from_step("end_reason") + len(text.HANDOFF_REASONS), -1))
        is_fb_row = et == T["fallback_triggered"]
        V, N_ = _vocab_frag, _num_frag
        ip_mask = ~init
        ip = pc.binary_join_element_wise(
            '"203.0.', pc.cast(pa.array((conv_n // 256) % 256, mask=ip_mask), pa.string()), ".",
            pc.cast(pa.array(conv_n % 256), pa.string()), '"', "")
        props_a = _join([
            V("device", np.where(ctx & ~(init & (rng.random(total) < 0.05)), c["device"][conv], -1), text.DEVICES),
            V("source", np.where(ctx, c["source"][conv], -1), text.SOURCES),
            V("language", np.where(ctx, c["language"][conv], -1), text.LANGUAGES),
            V("environment", np.where(ctx, c["environment"][conv], -1), text.ENVIRONMENTS),
            V("page_url", np.where(init, c["page"][conv], -1), text.PAGE_URLS),
            _frag("customer_ip_address", ip),
            V("agent_id", np.where(started, c["agent"][conv], -1), [a[0] for a in text.AGENTS]),
            N_("lead_score", c["lead_score"][conv], ~(started & (c["kind"][conv] == SALES))),
        ])
        total_turns = from_step("total_turns")
        abandoned_at = from_step("abandoned_at")
        props_b = _join([
            N_("turn", E["turn"], ~(user | agent | (et == T["tool_called"]) | is_fb_row)),
            V("intent", intent_code, self.intents),
            N_("intent_confidence", intent_conf, intent_code < 0),
            N_("sentiment", sent, ~has_sent),
            V("model", np.where(agent, self.agent_model[c["agent"][conv]], -1), self.models),
            N_("latency_ms", E["delay"], ~agent),
            V("tool_name", np.where(et == T["tool_called"], from_step("tool"), -1), self.lookups["tool"]),
            V("topic", np.where(is_fb_row, from_step("topic"), -1), self.lookups["topic"]),
            V("reason", reason, self.reason_names),
            _frag("rating", _dict_array(rating, text.RATING_FRAGMENTS)),
            V("comment", comment, text.COMMENTS_POSITIVE + text.COMMENTS_NEGATIVE),
            V("goal", from_step("goal"), self.lookups["goal"]),
            V("funnel", from_step("funnel"), self.lookups["funnel"]),
            V("stage", from_step("stage"), self.lookups["stage"]),
            V("test_name", E["test"], TEST_NAMES),
            V("variant", E["variant"], VARIANT_NAMES),
            V("button", from_step("button"), self.lookups["button"]),
            V("flow_name", from_step("flow"), self.lookups["flow"]),
            N_("total_turns", total_turns, total_turns < 0),
            N_("abandoned_at_turn", abandoned_at, abandoned_at < 0),
        ])
        P = {
            "props_a": props_a,
            "props_b": props_b,
            "agent_name": _dict_array(c["agent"][conv], [a[1] for a in text.AGENTS]),
            "tpl": _dict_array(tpl, self.tpl_texts),
            "has_slot": pa.array(self.tpl_has_slot[np.where(tpl >= 0, tpl, 0)] & (tpl >= 0)),
            "prefix": _dict_array(prefix, text.REPHRASE_PREFIXES),
            "long_suffix": pa.array(long_suffix),
            "is_user": pa.array(user),
            "is_agent": pa.array(agent),
        }
        return P

    # ------------------------------------------------------------------ raw rows and messiness
    def raw_table(self, rng, c, E, P, slots: list[int], slot_p: np.ndarray, chunk_no: int) -> pa.Table:
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
            "user_n": _nullable(c["user_n"][conv], c["user_n"][conv] < 0),
            "channel": _dict_array(channel, text.CHANNELS),
            "bad": pa.array(np.full(total, -1, dtype=np.int8)),
            "redeliver": pa.array(np.zeros(total, dtype=bool)),
            "is_copy": pa.array(np.zeros(total, dtype=bool)),
        }
        cols.update(P)
        table = pa.table(cols)
        late = c["late"][conv]
        self.stats["late_events"] += int(late.sum())
        self.stats["late_conversations"] += int(c["late"].sum())
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
            dup = _set(dup, "slot", pa.array(dslot.astype(np.int8)))
            dup = _set(dup, "order_key", pa.array(E["ts"][idx] + rng.integers(60_000, 6 * 3_600_000, n_dup)))
            dup = _set(dup, "ts_kind", pa.array(dkind.astype(np.int8)))
            dup = _set(dup, "redeliver", pa.array(redeliver))
            dup = _set(dup, "is_copy", pa.array(np.ones(n_dup, dtype=bool)))
            parts.append(dup)
            self.stats["duplicates_injected"] += n_dup
            self.stats["duplicates_differing"] += int(differ.sum())
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
            bad = _set(bad, "eid_fresh", pa.array(np.where(fresh, base + np.arange(len(bclass)), -1)))
            bad = _set(bad, "bad", pa.array(bclass))
            bad = _set(bad, "slot", pa.array(bslot))
            bad = _set(bad, "order_key", pa.array(E["ts"][idx] - 1))
            bad = _set(bad, "is_copy", pa.array(np.ones(len(bclass), dtype=bool)))
            future = bclass == BAD_CLASSES.index("future_timestamp")
            ts = np.where(future, self.limit_ms + rng.integers(3 * MS_DAY, 400 * MS_DAY, len(bclass)), E["ts"][idx])
            bad = _set(bad, "ts_ms", pa.array(ts))
            kinds = np.where(future, 0, E["ts_kind"][idx])
            bad = _set(bad, "ts_kind", pa.array(kinds.astype(np.int8)))
            unk = rng.integers(0, len(text.UNKNOWN_EVENT_TYPES), len(bclass)) + ET[text.UNKNOWN_EVENT_TYPES[0]]
            ecode = np.where(bclass == -1, unk, np.asarray(bad.column("etype_code")))
            bad = _set(bad, "etype_code", pa.array(ecode.astype(np.int16)))
            parts.append(bad)
            for b in bclass.tolist():
                if b >= 0:
                    self.stats["bad_rows_by_class"][BAD_CLASSES[b]] += 1
            self.stats["unknown_type_rows"] += n_unknown
        out = pa.concat_tables(parts)
        out = out.append_column("etype_name", _dict_array(np.asarray(out.column("etype_code")), ETYPE_NAMES))
        cn = np.asarray(out.column("conv_n"))
        emails = [f"{f}.{l}@example.com" for l in text.LAST_NAMES for f in text.FIRST_NAMES]
        out = out.append_column("s_email", _dict_array(cn % 20 + 20 * ((cn // 20) % 10), emails))
        out = out.append_column("s_product", _dict_array((cn * 7) % 10, text.PRODUCTS))
        out = out.append_column("s_plan", _dict_array((cn * 3) % 4, text.PLANS))
        out = out.append_column("s_amount", _dict_array((cn * 13) % 300, [f"{9.99 + i:.2f}" for i in range(300)]))
        out = out.append_column("s_last4", _dict_array((cn * 31) % 10000, [f"{i:04d}" for i in range(10000)]))
        out = out.append_column("s_company", _dict_array((cn * 17) % 10, text.COMPANIES))
        out = out.append_column("s_day", _dict_array((cn * 5) % 5, text.DAYS))
        out = out.append_column("s_time", _dict_array((cn * 3) % 5, text.TIMES))
        # JSONL-only messiness: double-encoded properties, blank lines
        m = len(out)
        out = out.append_column("double_enc", pa.array(rng.random(m) < 0.05))
        out = out.append_column("blank_after", pa.array(rng.random(m) < 0.005))
        out = out.append_column("pick", pa.array(rng.integers(0, 1 << 30, m)))
        return out


def _set(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def render_sql(seed: int) -> str:
    """SQL over the registered arrow table ``raw``: one output row per raw row, strings rendered."""
    b = {name: i for i, name in enumerate(BAD_CLASSES)}
    fill = "tpl::varchar"
    slots = {
        "{agent_name}": "agent_name::varchar",
        "{order}": "'A' || (100000 + (conv_n * 7919) % 900000)::varchar",
        "{email}": "s_email::varchar",
        "{product}": "s_product::varchar",
        "{plan}": "s_plan::varchar",
        "{amount}": "s_amount::varchar",
        "{last4}": "s_last4::varchar",
        "{tracking}": "'1Z' || (10000000 + (conv_n * 97) % 90000000)::varchar",
        "{seats}": "(5 + (conv_n * 11) % 200)::varchar",
        "{company}": "s_company::varchar",
        "{day}": "s_day::varchar",
        "{time}": "s_time::varchar",
    }
    for slot, expr in slots.items():
        fill = f"replace({fill}, '{slot}', {expr})"
    suffix = text.LONG_REPLY_SUFFIX.replace("'", "''")

    props = """nullif(rtrim(props_a, ','), ''),
            case when content is not null then '"content":"' || content || '"' end,
            case when is_user and content is not null then '"message_length":' || length(content)::varchar end,
            case when is_agent and content is not null then '"response_length":' || length(content)::varchar end,
            nullif(rtrim(props_b, ','), ''),
            case when redeliver then '"delivery_attempt":2' end"""
    ts_forms = f"""case ts_kind
            when 0 then strftime(t, '%Y-%m-%dT%H:%M:%S.%g') || 'Z'
            when 1 then strftime(lt, '%Y-%m-%dT%H:%M:%S.%g') || offs
            when 2 then strftime(lt, '%Y-%m-%dT%H:%M:%S.%g') || replace(offs, ':', '')
            when 3 then strftime(t, '%Y-%m-%d %H:%M:%S.%g')
            when 4 then strftime(t, '%Y-%m-%dT%H:%M:%S.%g')
            when 5 then ts_ms::varchar
            when 6 then ts_ms::varchar
            when 7 then strftime(t, '%Y-%m-%dT%H:%M:%SZ')
            else strftime(lt, '%Y-%m-%d %H:%M:%S.%g') || offs
        end"""
    return f"""
with base as (
    select
        *,
        make_timestamp(ts_ms * 1000) as t,
        make_timestamp(ts_ms * 1000) + to_minutes(off_min) as lt,
        (case when off_min < 0 then '-' else '+' end) || lpad((abs(off_min) // 60)::varchar, 2, '0')
            || ':' || lpad((abs(off_min) % 60)::varchar, 2, '0') as offs,
        case when tpl is null then null
            when not has_slot then coalesce(prefix::varchar, '') || tpl::varchar
                || case when long_suffix then '{suffix}' else '' end
            else coalesce(prefix::varchar, '') || {fill}
                || case when long_suffix then '{suffix}' else '' end
        end as content,
        printf('c-{seed}-%07d', conv_n) as cid,
        printf('u-{seed}-%06d', user_n) as uid
    from raw
),
rendered as (
    select
        slot, order_key, pick, is_copy, double_enc, blank_after, canonical, ts_ms, bad, cid,
        case
            when bad = {b['missing_event_id']} then case when pick % 2 = 0 then null else '' end
            when eid_fresh >= 0 then printf('e-{seed}-%07d-x%d', conv_n, eid_fresh)
            else printf('e-{seed}-%07d-%03d', conv_n, seq)
        end as event_id,
        case
            when bad = {b['missing_conversation_id']} then case when pick % 2 = 0 then null else '' end
            when id_mode = 1 then null
            else cid
        end as conversation_id,
        case when bad = {b['missing_conversation_id']} then null when id_mode >= 1 then cid end as session_id,
        case when uid_mode = 1 then null else uid end as user_id,
        case when uid_mode >= 1 then uid end as customer_id,
        case
            when bad = {b['missing_event_type']} then case when pick % 2 = 0 then null else '' end
            else etype_name::varchar
        end as event_type,
        case
            when bad = {b['missing_timestamp']} then case when pick % 2 = 0 then null else '' end
            when bad = {b['unparseable_timestamp']} then
                ['now', 'epoch', strftime(t, '%Y-%m-%d'), 'not a timestamp', '31/12/2025 10:00', 'yesterday'][1 + pick % 6]
            else {ts_forms}
        end as ts_str,
        (ts_kind = 5 and bad not in ({b['missing_timestamp']}, {b['unparseable_timestamp']})) as ts_is_number,
        case when bad = {b['missing_timestamp']} then null else ts_ms end as ts_typed,
        channel::varchar as channel,
        case
            when bad = {b['properties_not_object']} then ['[1, 2, 3]', '42', '"just text"', 'true'][1 + pick % 4]
            else '{{' || concat_ws(',',
            {props}
            ) || '}}'
        end as properties,
        bad = {b['bad_json_line']} as bad_json,
        case when bad = {b['csv_wrong_column_count']} then 1 + pick % 2 else 0 end as csv_bad
    from base
)
select * from rendered
"""


FILE_COLUMNS = ["event_id", "conversation_id", "session_id", "user_id", "customer_id", "event_type",
                "timestamp", "channel", "properties"]

# Contract v1.1 vocabulary, on JSONL events only (pick % 20): `id` (3) or
# `message_id` (4) for event_id, `metadata` for properties (3, 5); a message
# sent as message_received with a sender (6, 7: the user's side names a
# user-side sender, the agent's side `assistant` or none); a sales `booked`
# stage_reached sent as meeting_booked (8).
V11_USER_SENDERS = ["prospect", "customer", " Visitor", "LEAD", "user"]
_V11_MESSAGE_TYPES = ["user_message", "agent_message", *ALIASES["user_message"], *ALIASES["agent_message"]]
V11_SQL = f"""
select
    *,
    case pick % 20 when 3 then '"id":' when 4 then '"message_id":' else '"event_id":' end as id_key,
    case when pick % 20 in (3, 5) then '"metadata":' else '"properties":' end as properties_key,
    pick % 20 in (6, 7) and event_type in ({", ".join(f"'{name}'" for name in _V11_MESSAGE_TYPES)})
        and properties like '{{%}}' as is_v11_message,
    case
        when canonical = {CANONICAL_TYPES.index("user_message")}
            then {_sql_list(V11_USER_SENDERS)}[1 + (pick // 20) % {len(V11_USER_SENDERS)}]
        when pick % 20 = 6 then 'assistant'
    end as v11_sender,
    pick % 20 = 8 and event_type = 'stage_reached'
        and properties like '%"funnel":"sales"%' and properties like '%"stage":"booked"%' as is_meeting_booked
from rows_c
"""

JSONL_LINE_SQL = """
select
    case when bad_json then left(line, length(line) // 2) else line end
        || chr(10) || case when blank_after then chr(10) else '' end as line
from (
    select
        bad_json, blank_after, order_key, event_id,
        '{' || concat_ws(',',
            case when event_id is not null then id_key || to_json(event_id) end,
            case when conversation_id is not null then '"conversation_id":' || to_json(conversation_id) end,
            case when session_id is not null then '"session_id":' || to_json(session_id) end,
            case when user_id is not null then '"user_id":' || to_json(user_id) end,
            case when customer_id is not null then '"customer_id":' || to_json(customer_id) end,
            case when is_v11_message then '"event_type":"message_received"'
                when is_meeting_booked then '"event_type":"meeting_booked"'
                when event_type is not null then '"event_type":' || to_json(event_type) end,
            case when ts_str is null then null
                when ts_is_number then '"timestamp":' || ts_str
                else '"timestamp":' || to_json(ts_str) end,
            case when channel is not null then '"channel":' || to_json(channel) end,
            case when properties is null then null
                when double_enc then properties_key || to_json(json_properties)
                else properties_key || json_properties end
        ) || '}' as line
    from (
        select
            *,
            case
                when is_v11_message and v11_sender is not null
                    then '{"sender":' || to_json(v11_sender)
                        || case when properties = '{}' then '}' else ',' || substr(properties, 2) end
                else properties
            end as json_properties
        from (V11_SQL)
    )
    where slot in ({slots})
)
order by order_key, event_id
""".replace("V11_SQL", V11_SQL)


def _write_lines(handle, column: pa.ChunkedArray) -> int:
    """Write an arrow string column whose values already end in newlines; returns bytes written."""
    written = 0
    for chunk in column.chunks:
        if pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
            width = np.int32 if pa.types.is_string(chunk.type) else np.int64
            offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset: chunk.offset + len(chunk) + 1]
            data = memoryview(chunk.buffers()[2])[int(offsets[0]): int(offsets[-1])]
            handle.write(data)
            written += len(data)
        else:  # string_view or anything else: slower but correct
            blob = "".join(chunk.to_pylist()).encode()
            handle.write(blob)
            written += len(blob)
    return written


class _Runner(Generator):
    def run(self, progress: bool = True) -> dict:
        from tqdm import tqdm

        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        if self.truth_dir:
            self.truth_dir.mkdir(parents=True, exist_ok=True)
        plan = self.plan_days()
        con = duckdb.connect()
        con.execute("set enable_progress_bar = false")
        sql = render_sql(self.seed)
        late_path = self.out / "late" / f"events_late_{self.end_date.isoformat()}.jsonl"
        late_handle = None
        chunk_no = 0
        bar = tqdm(total=self.n_total, unit="conv", desc="generating", disable=not progress)
        try:
            for day, first_n, count in plan:
                for part, lo in enumerate(range(0, count, self.chunk_size)):
                    n = min(self.chunk_size, count - lo)
                    rng = np.random.default_rng([self.seed, day, part])
                    c = self.conversations(rng, day, first_n + lo, n)
                    E = self.events(rng, day, c)
                    P = self.properties(rng, c, E)
                    slots, slot_p = self._slots(chunk_no)
                    raw = self.raw_table(rng, c, E, P, slots, slot_p, chunk_no)
                    del E, P
                    self._count(raw)
                    con.register("raw", raw)
                    con.execute(f"create or replace temp table rows_c as {sql}")
                    con.unregister("raw")
                    del raw
                    date = (self.start_date + dt.timedelta(days=day)).isoformat()
                    stem = self.out / date / f"events_{date}_p{part:02d}"
                    self._write_chunk(con, stem, slots)
                    if c["late"].any():
                        if late_handle is None:
                            late_path.parent.mkdir(parents=True, exist_ok=True)
                            late_handle = open(late_path, "wb")
                            self.files.append(late_path)
                        col = con.execute(JSONL_LINE_SQL.replace("{slots}", str(SLOT_LATE))).to_arrow_table().column(0)
                        _write_lines(late_handle, col)
                    if self.truth_dir:
                        con.execute(
                            f"copy (select event_id, cid as conversation_id, "
                            f"{_sql_list(CANONICAL_TYPES)}[canonical + 1] as event_type, ts_ms, slot "
                            f"from rows_c where not is_copy order by event_id) to "
                            f"'{self.truth_dir / f'truth_{chunk_no:04d}.parquet'}' (format parquet)")
                    chunk_no += 1
                    bar.update(n)
        finally:
            bar.close()
            if late_handle is not None:
                late_handle.close()
            con.close()
        files = sorted(self.files)
        by_format: dict[str, int] = {}
        for f in files:
            key = "jsonl.gz" if f.name.endswith(".jsonl.gz") else f.suffix.lstrip(".")
            by_format[key] = by_format.get(key, 0) + 1
        bad = self.stats["bad_rows_by_class"]
        summary = {
            "out_dir": str(self.out),
            "seed": self.seed,
            "conversations": self.n_total,
            "days": self.days,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "incident": self.incident or "none",
            "incident_day": ((self.start_date + dt.timedelta(days=self.incident_day)).isoformat()
                             if self.incident == "fallback_spike" else None),
            "ab_effect": self.ab_effect,
            "files": [str(f.relative_to(self.out)) for f in files],
            "files_by_format": by_format,
            "late_file": str(late_path.relative_to(self.out)) if late_handle is not None else None,
            **{k: v for k, v in self.stats.items() if k != "max_event_ms"},
            "bad_rows_injected": sum(bad.values()),
            "max_event_at": dt.datetime.fromtimestamp(self.stats["max_event_ms"] / 1000, dt.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "seconds": round(time.monotonic() - started, 2),
        }
        return summary

    def _slots(self, chunk_no: int) -> tuple[list[int], np.ndarray]:
        mix = self.mix
        shares = {
            SLOT_PARQUET_STR: mix["parquet"] * 5 / 8,
            SLOT_PARQUET_TS: mix["parquet"] * 2 / 8,
            SLOT_PARQUET_MS: mix["parquet"] * 1 / 8,
            SLOT_JSONL: mix["jsonl"],
            SLOT_JSONL_GZ: mix["jsonl.gz"],
        }
        total = sum(shares.values())
        shares = {k: v / total for k, v in shares.items() if v > 0}
        if chunk_no == 0 and mix["csv"] > 0:
            csv_share = min(mix["csv"], 0.9)
            shares = {k: v * (1 - csv_share) for k, v in shares.items()}
            shares[SLOT_CSV] = csv_share
        slots = list(shares)
        p = np.array([shares[s] for s in slots])
        return slots, p / p.sum()

    def _count(self, raw: pa.Table) -> None:
        st = self.stats
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

    def _write_chunk(self, con, stem: Path, slots: list[int]) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        present = {r[0] for r in con.execute("select distinct slot from rows_c").fetchall()}
        cols = "event_id, conversation_id, session_id, user_id, customer_id, event_type"
        parquet = {
            SLOT_PARQUET_STR: (f"{stem}.parquet", "ts_str as timestamp"),
            SLOT_PARQUET_TS: (f"{stem}_tstype.parquet", "make_timestamp(ts_typed * 1000) as timestamp"),
            SLOT_PARQUET_MS: (f"{stem}_epochms.parquet", "ts_typed as timestamp"),
        }
        for slot, (path, ts_expr) in parquet.items():
            if slot in present:
                con.execute(
                    f"copy (select {cols}, {ts_expr}, channel, properties from rows_c where slot = {slot} "
                    f"order by order_key, event_id) to '{path}' (format parquet, compression zstd)")
                self.files.append(Path(path))
        if SLOT_JSONL in present:
            path = Path(f"{stem}.jsonl")
            col = con.execute(JSONL_LINE_SQL.replace("{slots}", str(SLOT_JSONL))).to_arrow_table().column(0)
            with open(path, "wb") as handle:
                _write_lines(handle, col)
            self.files.append(path)
        if SLOT_JSONL_GZ in present:
            path = Path(f"{stem}.jsonl.gz")
            col = con.execute(JSONL_LINE_SQL.replace("{slots}", str(SLOT_JSONL_GZ))).to_arrow_table().column(0)
            with open(path, "wb") as raw_handle:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw_handle, mtime=0, compresslevel=3) as gz:
                    _write_lines(gz, col)
            self.files.append(path)
        if SLOT_CSV in present:
            path = Path(f"{stem}.csv")
            rows = con.execute(
                f"select {cols}, ts_str, channel, properties, csv_bad from rows_c where slot = {SLOT_CSV} "
                f"order by order_key, event_id").fetchall()
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(FILE_COLUMNS)
                for row in rows:
                    values = ["" if v is None else v for v in row[:-1]]
                    if row[-1] == 1:
                        values.append("unexpected_extra_field")
                    elif row[-1] == 2:
                        values = values[:6]
                    writer.writerow(values)
            self.files.append(path)


def generate_events(out_dir, conversations: int, days: int, seed: int, end_date=None, incident=None,
                    ab_effect: float = 0.02, progress: bool = True, format_mix: str = DEFAULT_FORMAT_MIX,
                    now=None, truth_dir=None, chunk_size: int = CHUNK_SIZE, plant=None) -> dict:
    """Write synthetic raw events for ``conversations`` conversations over ``days`` days.

    ``end_date`` (date or ``YYYY-MM-DD``, default today UTC) is the last day;
    no event is later than ``now`` (default: the current time). ``truth_dir``,
    if given, receives Parquet files with every clean event's id, canonical
    type and intended epoch milliseconds (outside the landing folder!).
    ``plant`` (see ``planted.PATTERNS``) adds a known pattern in
    ``<out>/planted/`` (summary key ``planted``).
    Returns a summary dict (files, counts of every injected defect).
    """
    if plant in (None, "", "none"):
        gen = _Runner(out_dir, conversations, days, seed, end_date=end_date, incident=incident,
                      ab_effect=ab_effect, format_mix=format_mix, now=now, truth_dir=truth_dir,
                      chunk_size=chunk_size)
        return gen.run(progress=progress)
    from convo_warehouse.lib.generate import planted

    if plant not in planted.PATTERNS:
        raise ValueError(f"unknown planted pattern {plant!r}; choose one of: {', '.join(planted.PATTERNS)}")
    with tempfile.TemporaryDirectory() as scratch:
        truth = truth_dir or scratch
        summary = generate_events(out_dir, conversations, days, seed, end_date=end_date, incident=incident,
                                  ab_effect=ab_effect, progress=progress, format_mix=format_mix, now=now,
                                  truth_dir=truth, chunk_size=chunk_size)
        summary["planted"] = planted.plant_pattern(plant, truth, out_dir, seed)
    return summary
