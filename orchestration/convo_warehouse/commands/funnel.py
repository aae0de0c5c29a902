"""``convo-warehouse funnel``: print funnels from the warehouse's funnel marts.

Reads ``marts.funnel_summary`` (whole history) or, with ``--since``,
``marts.funnel_summary_since`` (the same rates over the conversations from a
day on), plus ``marts.funnel_dropoffs`` for the last user messages where
conversations stop. Every number printed is a mart value: nothing is
recomputed here. Read-only: it never writes to the warehouse.
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


STAGE_COLUMNS = (
    "funnel_name, stage, stage_order, reached, reached_in_order, conversion_rate, "
    "conversion_from_start, drop_off, drop_off_rate, is_major_drop_off"
)


def funnel_rows(con, funnel: str | None, start_date: dt.date | None) -> list[StageRow]:
    """Stage rows of every funnel (or one): funnel_summary, or with
    ``start_date`` the funnel_summary_since rows of that start date."""
    if start_date is None:
        records = con.execute(
            f"""
            select {STAGE_COLUMNS}, median_seconds_from_previous_stage
            from marts.funnel_summary
            where ? is null or funnel_name = ?
            order by funnel_name, stage_order
            """,
            [funnel, funnel],
        ).fetchall()
    else:
        records = con.execute(
            f"""
            select {STAGE_COLUMNS}
            from marts.funnel_summary_since
            where (? is null or funnel_name = ?) and start_date = ?
            order by funnel_name, stage_order
            """,
            [funnel, funnel, start_date],
        ).fetchall()
    return [StageRow(*record) for record in records]


def first_start_date(con, since: dt.date) -> dt.date | None:
    """The first start date of funnel_summary_since on or after ``since``.

    Start dates are the days that have conversations, so its rows count
    exactly the conversations from ``since`` on; None when none is that recent.
    """
    return con.execute(
        "select min(start_date) from marts.funnel_summary_since where start_date >= ?", [since]
    ).fetchone()[0]


def major_drop_off_threshold(con) -> float | None:
    """The threshold the marts' is_major_drop_off was built with (the dbt var)."""
    row = con.execute("select max(major_drop_off_threshold) from marts.funnel_summary_since").fetchone()
    return None if row is None else row[0]


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
        "previous stage, and major drop-offs (marked '!': more than the dbt var "
        "funnel_major_drop_off_threshold of the previous stage lost; most severe first), then the most "
        "common last user messages "
        "of conversations that stopped at the worst step. Reads the marts built by `convo-warehouse run`. "
        "See docs/funnels.md."
    ),
)
@click.option("--funnel", "funnel_name", default=None, help="Only this funnel (a funnel_name of seeds/funnel_stages.csv).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Only conversations whose day (UTC date of the first event) is on or after this date (YYYY-MM-DD).")
@click.option("--messages", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many last user messages to show at the worst step.")
@click.option("--database", type=click.Path(dir_okay=False), default=None,
              help="DuckDB file. Default: $CONVO_DUCKDB_PATH, else data/warehouse.duckdb.")
def funnel(funnel_name, since, messages, database):
    from convo_warehouse.lib.warehouse import WarehouseBusyError, connect, warehouse_path

    since_date = since.date() if since is not None else None
    try:
        con = connect(warehouse_path(database), read_only=True)
    except (FileNotFoundError, WarehouseBusyError) as error:
        raise click.ClickException(str(error)) from error
    try:
        try:
            start_date = None if since_date is None else first_start_date(con, since_date)
            if since_date is not None and start_date is None:
                latest = con.execute("select max(start_date) from marts.funnel_summary_since").fetchone()[0]
                click.echo(f"no conversations from {since_date} on (the latest day with conversations is {latest}).")
                return
            rows = funnel_rows(con, funnel_name, start_date)
            threshold = major_drop_off_threshold(con)
        except Exception as error:  # turned into a readable CLI error below
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
                losing = "" if threshold is None else f" (more than {_percent(threshold)} lost)"
                click.echo(f"major drop-offs{losing}, most severe first: " + ", ".join(
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
