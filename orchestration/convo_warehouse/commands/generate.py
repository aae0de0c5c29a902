"""``convo-warehouse generate``: write synthetic raw events into a landing folder."""

from __future__ import annotations

import datetime as dt
import json

import click


@click.command(
    "generate",
    help=(
        "Write realistic synthetic conversation events (Parquet, JSONL, JSONL.gz and one CSV) "
        "into a landing folder, with the messiness the event contract allows: aliases, mixed "
        "timestamp forms, duplicates, a late file in late/, and a small share of bad rows. "
        "The same arguments (with --end-date) give byte-identical files. See docs/generator.md."
    ),
)
@click.option("--conversations", "-n", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Number of conversations to generate.")
@click.option("--days", type=click.IntRange(min=1), default=14, show_default=True,
              help="Number of days the conversations are spread over, ending on --end-date.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (output is deterministic for it).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Landing folder to write into. Default: $CONVO_LANDING_DIR, else data/landing.")
@click.option("--end-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last day (YYYY-MM-DD, UTC). Default: today; no event is later than now.")
@click.option("--incident", type=click.Choice(["none", "fallback_spike", "srm", "contamination"]),
              default="none", show_default=True,
              help="Inject an incident: fallback_spike (3rd-last day: >40% of user turns hit a fallback, "
                   "negative sentiment 09-14 UTC), srm (15% of 'casual' greeting_tone exposures lost), "
                   "contamination (about 6% of exposed conversations also see the other variant).")
@click.option("--ab-effect", type=click.FloatRange(0, 0.5), default=0.02, show_default=True,
              help="Absolute conversion lift of greeting_tone 'casual' over 'formal' (base ~10%).")
@click.option("--format-mix", default="parquet=0.80,jsonl=0.10,jsonl.gz=0.10,csv=0.05", show_default=True,
              help="Shares of events per format. csv is the share of the first chunk written to the "
                   "single CSV file; e.g. 'parquet=1' for Parquet only.")
@click.option("--truth-dir", type=click.Path(file_okay=False), default=None,
              help="Also write the intended clean events (id, type, epoch ms) as Parquet here "
                   "(keep it outside the landing folder).")
@click.option("--plant", type=click.Choice(["none", "tool_then_handoff"]), default="none", show_default=True,
              help="Add a known pattern for testing pattern finding: tool_then_handoff (40% of engaged, "
                   "non-converted conversations call check_warranty and are handed off), in planted/.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; print only the JSON summary.")
def generate(conversations, days, seed, out_dir, end_date, incident, ab_effect, format_mix, truth_dir, plant,
             quiet):
    from convo_warehouse.lib.generate import generate_events
    from convo_warehouse.lib.warehouse import landing_path

    target = landing_path(out_dir)
    try:
        summary = generate_events(
            target, conversations=conversations, days=days, seed=seed,
            end_date=end_date.date() if isinstance(end_date, dt.datetime) else None,
            incident=incident, ab_effect=ab_effect, progress=not quiet, format_mix=format_mix,
            truth_dir=truth_dir, plant=plant,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if quiet:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"wrote {summary['rows_written']:,} rows ({summary['events']:,} events, "
        f"{summary['duplicates_injected']:,} duplicates, {summary['bad_rows_injected']:,} bad rows, "
        f"{summary['unknown_type_rows']:,} unknown types) for {summary['conversations']:,} conversations "
        f"{summary['start_date']}..{summary['end_date']} into {summary['out_dir']} "
        f"in {len(summary['files'])} files ({summary['seconds']} s)"
    )
    if summary.get("planted"):
        planted = summary["planted"]
        click.echo(f"planted {planted['pattern']}: {planted['conversations']:,} conversations in {planted['file']}")
    if summary["late_file"]:
        click.echo(f"late file: {summary['late_file']} ({summary['late_events']:,} events)")
