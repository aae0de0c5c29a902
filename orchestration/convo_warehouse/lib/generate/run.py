"""Synthetic raw events, chunk by chunk: simulate, corrupt, render, write.

Per chunk (one day's conversations, at most ``CHUNK_SIZE`` of them):

1. ``simulate``: numpy draws conversation attributes and expands their
   scripts into event rows (type, time, turn, codes for every property);
2. ``corrupt``: copies of some rows become duplicates and bad rows, some
   names become aliases;
3. ``render``: DuckDB turns codes into strings (message text with slots
   filled, the ``properties`` JSON text, the timestamp in one of several forms);
4. ``write``: Parquet / JSONL / JSONL.gz / CSV files.

Everything random comes from ``numpy.random.default_rng([seed, day, part])``,
so output is byte-identical for the same arguments.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time

import duckdb
import numpy as np

from convo_warehouse.lib.generate.corrupt import messy_rows, tally
from convo_warehouse.lib.generate.render import JSONL_LINE_SQL, render_sql
from convo_warehouse.lib.generate.settings import CHUNK_SIZE, DEFAULT_FORMAT_MIX, SLOT_LATE
from convo_warehouse.lib.generate.simulate import Simulation
from convo_warehouse.lib.generate.write import file_slots, write_chunk, write_lines, write_truth


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
        sim = Simulation(out_dir, conversations, days, seed, end_date=end_date, incident=incident,
                         ab_effect=ab_effect, format_mix=format_mix, now=now, truth_dir=truth_dir,
                         chunk_size=chunk_size)
        return run(sim, progress=progress)
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


def run(sim: Simulation, progress: bool = True) -> dict:
    """Simulate, corrupt, render and write every chunk of ``sim``; return the summary."""
    from tqdm import tqdm

    started = time.monotonic()
    sim.out.mkdir(parents=True, exist_ok=True)
    if sim.truth_dir:
        sim.truth_dir.mkdir(parents=True, exist_ok=True)
    plan = sim.plan_days()
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    sql = render_sql(sim.seed)
    late_path = sim.out / "late" / f"events_late_{sim.end_date.isoformat()}.jsonl"
    late_handle = None
    chunk_no = 0
    bar = tqdm(total=sim.n_total, unit="conv", desc="generating", disable=not progress)
    try:
        for day, first_n, count in plan:
            for part, lo in enumerate(range(0, count, sim.chunk_size)):
                n = min(sim.chunk_size, count - lo)
                rng = np.random.default_rng([sim.seed, day, part])
                c = sim.conversations(rng, day, first_n + lo, n)
                E = sim.events(rng, day, c)
                P = sim.properties(rng, c, E)
                slots, slot_p = file_slots(sim.mix, chunk_no)
                raw = messy_rows(sim, rng, c, E, P, slots, slot_p, chunk_no)
                del E, P
                tally(sim.stats, raw)
                con.register("raw", raw)
                con.execute(f"create or replace temp table rows_c as {sql}")
                con.unregister("raw")
                del raw
                date = (sim.start_date + dt.timedelta(days=day)).isoformat()
                stem = sim.out / date / f"events_{date}_p{part:02d}"
                write_chunk(con, stem, sim.files)
                if c["late"].any():
                    if late_handle is None:
                        late_path.parent.mkdir(parents=True, exist_ok=True)
                        late_handle = open(late_path, "wb")
                        sim.files.append(late_path)
                    col = con.execute(JSONL_LINE_SQL.replace("{slots}", str(SLOT_LATE))).to_arrow_table().column(0)
                    write_lines(late_handle, col)
                if sim.truth_dir:
                    write_truth(con, sim.truth_dir / f"truth_{chunk_no:04d}.parquet")
                chunk_no += 1
                bar.update(n)
    finally:
        bar.close()
        if late_handle is not None:
            late_handle.close()
        con.close()
    files = sorted(sim.files)
    by_format: dict[str, int] = {}
    for f in files:
        key = "jsonl.gz" if f.name.endswith(".jsonl.gz") else f.suffix.lstrip(".")
        by_format[key] = by_format.get(key, 0) + 1
    bad = sim.stats["bad_rows_by_class"]
    summary = {
        "out_dir": str(sim.out),
        "seed": sim.seed,
        "conversations": sim.n_total,
        "days": sim.days,
        "start_date": sim.start_date.isoformat(),
        "end_date": sim.end_date.isoformat(),
        "incident": sim.incident or "none",
        "incident_day": ((sim.start_date + dt.timedelta(days=sim.incident_day)).isoformat()
                         if sim.incident == "fallback_spike" else None),
        "ab_effect": sim.ab_effect,
        "files": [str(f.relative_to(sim.out)) for f in files],
        "files_by_format": by_format,
        "late_file": str(late_path.relative_to(sim.out)) if late_handle is not None else None,
        **{k: v for k, v in sim.stats.items() if k != "max_event_ms"},
        "bad_rows_injected": sum(bad.values()),
        "max_event_at": dt.datetime.fromtimestamp(sim.stats["max_event_ms"] / 1000, dt.timezone.utc)
        .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "seconds": round(time.monotonic() - started, 2),
    }
    return summary
