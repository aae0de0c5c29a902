"""Simulate: conversations, their scripted events and properties, as numpy arrays of codes.

Everything random comes from the ``rng`` passed in per chunk
(``numpy.random.default_rng([seed, day, part])``); the order of the draws is
part of the output, so changing it changes every file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from convo_warehouse.lib.assignment import assignment_bucket
from convo_warehouse.lib.generate import scripts, text
from convo_warehouse.lib.generate.arrow import (
    dict_array,
    join_fragments,
    json_fragment,
    number_fragment,
    vocab_fragment,
)
from convo_warehouse.lib.generate.scripts import NOT_ENGAGED, SALES, SUPPORT
from convo_warehouse.lib.generate.settings import (
    BAD_CLASSES,
    CANONICAL_TYPES,
    CHUNK_SIZE,
    DEFAULT_FORMAT_MIX,
    EXPERIMENTS,
    HOUR_WEIGHTS,
    LATE_SHARE,
    MS_DAY,
    TEST_NAMES,
    TS_FORM_SHARES,
    TS_FORMS,
    VARIANT_NAMES,
    conversation_id,
    parse_format_mix,
)


def _assign_codes(seed: int, conv_n: np.ndarray, test_name: str) -> np.ndarray:
    """Each conversation's variant position in ``test_name`` by the contract's rule."""
    count = len(EXPERIMENTS[test_name])
    return np.array(
        [assignment_bucket(test_name, conversation_id(seed, n), count) for n in conv_n.tolist()], dtype=np.int8
    )


class Simulation:
    """Conversations and their events as numpy arrays of codes, one chunk at a time.

    ``plan_days`` spreads the conversations over the days; per chunk,
    ``conversations`` draws their attributes, ``events`` expands their scripts
    into event rows and ``properties`` draws each event's properties (as JSON
    text fragments). ``stats`` counts what was made, for the summary.
    """

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
        V, N_ = vocab_fragment, number_fragment
        ip_mask = ~init
        ip = pc.binary_join_element_wise(
            '"203.0.', pc.cast(pa.array((conv_n // 256) % 256, mask=ip_mask), pa.string()), ".",
            pc.cast(pa.array(conv_n % 256), pa.string()), '"', "")
        props_a = join_fragments([
            V("device", np.where(ctx & ~(init & (rng.random(total) < 0.05)), c["device"][conv], -1), text.DEVICES),
            V("source", np.where(ctx, c["source"][conv], -1), text.SOURCES),
            V("language", np.where(ctx, c["language"][conv], -1), text.LANGUAGES),
            V("environment", np.where(ctx, c["environment"][conv], -1), text.ENVIRONMENTS),
            V("page_url", np.where(init, c["page"][conv], -1), text.PAGE_URLS),
            json_fragment("customer_ip_address", ip),
            V("agent_id", np.where(started, c["agent"][conv], -1), [a[0] for a in text.AGENTS]),
            N_("lead_score", c["lead_score"][conv], ~(started & (c["kind"][conv] == SALES))),
        ])
        total_turns = from_step("total_turns")
        abandoned_at = from_step("abandoned_at")
        props_b = join_fragments([
            N_("turn", E["turn"], ~(user | agent | (et == T["tool_called"]) | is_fb_row)),
            V("intent", intent_code, self.intents),
            N_("intent_confidence", intent_conf, intent_code < 0),
            N_("sentiment", sent, ~has_sent),
            V("model", np.where(agent, self.agent_model[c["agent"][conv]], -1), self.models),
            N_("latency_ms", E["delay"], ~agent),
            V("tool_name", np.where(et == T["tool_called"], from_step("tool"), -1), self.lookups["tool"]),
            V("topic", np.where(is_fb_row, from_step("topic"), -1), self.lookups["topic"]),
            V("reason", reason, self.reason_names),
            json_fragment("rating", dict_array(rating, text.RATING_FRAGMENTS)),
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
            "agent_name": dict_array(c["agent"][conv], [a[1] for a in text.AGENTS]),
            "tpl": dict_array(tpl, self.tpl_texts),
            "has_slot": pa.array(self.tpl_has_slot[np.where(tpl >= 0, tpl, 0)] & (tpl >= 0)),
            "prefix": dict_array(prefix, text.REPHRASE_PREFIXES),
            "long_suffix": pa.array(long_suffix),
            "is_user": pa.array(user),
            "is_agent": pa.array(agent),
        }
        return P

