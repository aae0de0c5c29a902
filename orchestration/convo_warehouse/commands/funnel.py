"""``convo-warehouse funnel``: print funnels from the warehouse's funnel marts.

Reads ``marts.funnel_summary`` (whole history) or, with ``--since``,
``marts.funnel_stage_daily`` summed from that day on, plus
``marts.funnel_dropoffs`` for the last user messages where conversations stop.
Read-only: it never writes to the warehouse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import click


@dataclass
class StageRow:
    """One stage of one funnel, as printed."""

    funnel_name: str
    stage: str
    stage_order: int
    reached: int
    reached_in_order: int
    conversion_rate: float | None
    conversion_from_start: float | None
    drop_off: int
    drop_off_rate: float | None
    is_major_drop_off: bool
    median_seconds: float | None = None


def funnel_rows(con, funnel: str | None, since: dt.date | None, threshold: float) -> list[StageRow]:
    """Stage rows of every funnel (or one), whole history or from ``since`` on.

    With ``since``, the first stage's conversion rate divides by every
    conversation from that day on, like funnel_summary does for the whole
    history; later stages divide by the previous stage's reached.
    """
    if since is None:
        records = con.execute(
            """
            select funnel_name, stage, stage_order, reached, reached_in_order, conversion_rate,
                   conversion_from_start, drop_off, drop_off_rate, is_major_drop_off,
                   median_seconds_from_previous_stage
            from marts.funnel_summary
            where ? is null or funnel_name = ?
            order by funnel_name, stage_order
            """,
            [funnel, funnel],
        ).fetchall()
        return [StageRow(*record) for record in records]

    totals = con.execute(
        """
        with stages as (
            select funnel_name, stage, stage_order
            from marts.funnel_summary
            where ? is null or funnel_name = ?
        ),
        daily as (
            select funnel_name, stage, sum(reached) as reached, sum(reached_in_order) as reached_in_order
            from marts.funnel_stage_daily
            where conversation_date >= ?
            group by funnel_name, stage
        )
        select stages.funnel_name, stages.stage, stages.stage_order,
               coalesce(daily.reached, 0), coalesce(daily.reached_in_order, 0)
        from stages
        left join daily using (funnel_name, stage)
        order by stages.funnel_name, stages.stage_order
        """,
        [funnel, funnel, since],
    ).fetchall()
    population = con.execute(
        "select count(*) from marts.fct_conversations where conversation_date >= ?", [since]
    ).fetchone()[0]
    return rate_stages(totals, population, threshold)


def rate_stages(totals: list[tuple], population: int, threshold: float) -> list[StageRow]:
    """Conversion, drop-off and major drop-off flags from (funnel, stage, order, reached, in order) rows
    sorted by funnel and stage order, with the contract's rules (null for a 0 denominator)."""
    rows: list[StageRow] = []
    previous: StageRow | None = None
    first_reached = 0
    for funnel_name, stage, stage_order, reached, reached_in_order in totals:
        is_first = previous is None or previous.funnel_name != funnel_name
        if is_first:
            first_reached = reached
            conversion = reached / population if population else None
            drop_off, drop_off_rate = 0, None
        else:
            conversion = reached / previous.reached if previous.reached else None
            drop_off = previous.reached - reached
            drop_off_rate = drop_off / previous.reached if previous.reached else None
        row = StageRow(
            funnel_name=funnel_name,
            stage=stage,
            stage_order=stage_order,
            reached=reached,
            reached_in_order=reached_in_order,
            conversion_rate=conversion,
            conversion_from_start=reached / first_reached if first_reached else None,
            drop_off=drop_off,
            drop_off_rate=drop_off_rate,
            is_major_drop_off=drop_off_rate is not None and drop_off_rate > threshold,
        )
        rows.append(row)
        previous = row
    return rows


def worst_step(rows: list[StageRow]) -> StageRow | None:
    """The stage with the largest drop-off rate (ties: the earlier stage), if any stage loses anyone."""
    candidates = [row for row in rows if row.drop_off_rate is not None and row.drop_off_rate > 0]
    return max(candidates, key=lambda row: (row.drop_off_rate, -row.stage_order), default=None)


def top_last_messages(con, funnel: str, next_stage: str, since: dt.date | None, limit: int = 5) -> list[tuple]:
    """Most frequent last user messages of conversations that stopped right before ``next_stage``
    (conversion window closed)."""
    return con.execute(
        """
        select coalesce(last_user_message, '(no user message)') as message, count(*) as conversations
        from marts.funnel_dropoffs
        where funnel_name = ? and next_stage = ? and not window_open
          and (cast(? as date) is null or conversation_date >= cast(? as date))
        group by 1
        order by conversations desc, message
        limit ?
        """,
        [funnel, next_stage, since, since, limit],
    ).fetchall()


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_funnel(rows: list[StageRow]) -> str:
    """A fixed-width table of one funnel's stages."""
    header = ("stage", "reached", "in order", "conv %", "from start", "drop-off", "drop %", "median t")
    body = [
        (
            ("! " if row.is_major_drop_off else "  ") + row.stage,
            f"{row.reached:,}",
            f"{row.reached_in_order:,}",
            _percent(row.conversion_rate),
            _percent(row.conversion_from_start),
            f"{row.drop_off:,}",
            _percent(row.drop_off_rate),
            _duration(row.median_seconds),
        )
        for row in rows
    ]
    widths = [max(len(str(line[index])) for line in [header, *body]) for index in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[index]) if index == 0 else cell.rjust(widths[index])
            for index, cell in enumerate(line)
        )
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@click.command(
    "funnel",
    help=(
        "Print each funnel (or one) as a table: conversations reaching every stage (any order and in "
        "order), conversion from the previous stage and from the start, drop-off, median time from the "
        "previous stage, and major drop-offs (marked '!', over the dbt var "
        "funnel_major_drop_off_threshold, most severe first), then the most common last user messages "
        "of conversations that stopped at the worst step. Reads the marts built by `convo-warehouse run`. "
        "See docs/funnels.md."
    ),
)
@click.option("--funnel", "funnel_name", default=None, help="Only this funnel (a funnel_name of seeds/funnel_stages.csv).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Only conversations whose day (UTC date of the first event) is on or after this date (YYYY-MM-DD).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Drop-off share above which a step counts as major when --since is given "
                   "(the whole-history view uses the flag built by dbt).")
@click.option("--messages", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many last user messages to show at the worst step.")
@click.option("--database", type=click.Path(dir_okay=False), default=None,
              help="DuckDB file. Default: $CONVO_DUCKDB_PATH, else data/warehouse.duckdb.")
def funnel(funnel_name, since, threshold, messages, database):
    from convo_warehouse.lib.warehouse import WarehouseBusyError, connect, warehouse_path

    since_date = since.date() if since is not None else None
    try:
        con = connect(warehouse_path(database), read_only=True)
    except (FileNotFoundError, WarehouseBusyError) as error:
        raise click.ClickException(str(error)) from error
    try:
        try:
            rows = funnel_rows(con, funnel_name, since_date, threshold)
        except Exception as error:  # noqa: BLE001 - turned into a readable CLI error
            if "does not exist" in str(error):
                raise click.ClickException(
                    "the funnel marts are not built yet: run `convo-warehouse run` first."
                ) from error
            raise
        if not rows:
            known = [name for (name,) in con.execute(
                "select distinct funnel_name from marts.funnel_summary order by 1").fetchall()]
            raise click.ClickException(
                f"no funnel named {funnel_name!r}; known funnels: {', '.join(known) or 'none'}"
            )
        funnels = sorted({row.funnel_name for row in rows})
        scope = f"conversations from {since_date} on" if since_date else "whole history"
        for index, name in enumerate(funnels):
            stages = [row for row in rows if row.funnel_name == name]
            if index:
                click.echo("")
            click.secho(f"funnel {name} ({scope})", bold=True)
            click.echo(render_funnel(stages))
            major = sorted(
                (row for row in stages if row.is_major_drop_off),
                key=lambda row: row.drop_off_rate or 0.0,
                reverse=True,
            )
            if major:
                click.echo("major drop-offs, most severe first: " + ", ".join(
                    f"-> {row.stage} {_percent(row.drop_off_rate)}" for row in major))
            worst = worst_step(stages)
            if worst is None or messages == 0:
                continue
            top = top_last_messages(con, name, worst.stage, since_date, messages)
            if top:
                click.echo(f"last user messages of conversations that stopped before {worst.stage}:")
                for message, count in top:
                    click.echo(f"  {count:>6,}  {_shorten(message, 90)}")
    finally:
        con.close()
