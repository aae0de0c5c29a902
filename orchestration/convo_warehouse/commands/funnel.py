"""``convo-warehouse funnel``: print funnels from the published snapshot.

Each funnel is shown in the reading its seed declares (``counting``:
``any_order`` or ``in_order``; ``--reading`` shows the other), over any
period and filters, by ``lib/funnel_views.py`` (the same function the
dashboard and the read API use): no rate above 100%, no negative drop-off.
Then the most common last user messages of the conversations that stopped
at the worst step (``marts.funnel_dropoffs``, conversion window closed), and
the turns at which the period's conversations were abandoned most
(``marts.abandon_turn_daily``, ``--abandon-turns``).
Reads the snapshot (``--warehouse`` reads a warehouse file instead); never
writes.
"""

from __future__ import annotations

import click

from convo_warehouse.commands._reading import echo_json, json_option, open_marts, read_options
from convo_warehouse.lib import funnel_views
from convo_warehouse.lib.scope import Scope

READING_WORDS = {
    "any_order": "any order: a stage counts whatever came before it",
    "in_order": "in order: a stage counts only after every earlier one",
}


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


def render_funnel(view: funnel_views.FunnelView) -> str:
    """A fixed-width table of one funnel's stages in the view's reading."""
    header = ("stage", "reached", "of entered", "from prev.", "drop-off", "drop %", "median t")
    body = [
        (
            ("! " if stage.is_major_drop_off else "  ") + stage.stage,
            f"{stage.count:,}",
            _percent(stage.share_of_entered),
            _percent(stage.from_previous),
            f"{stage.drop_off:,}",
            _percent(stage.drop_off_rate),
            _duration(stage.median_seconds_from_previous_stage),
        )
        for stage in view.stages
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


def render_abandon_turns(turns: funnel_views.AbandonTurns) -> str:
    """A fixed-width table of the top abandon turns."""
    header = ("turn", "abandoned", "share")
    body = [(str(turn.turn), f"{turn.conversations:,}", _percent(turn.share)) for turn in turns.turns]
    widths = [max(len(line[index]) for line in [header, *body]) for index in range(len(header))]
    lines = ["  ".join(cell.rjust(widths[index]) for index, cell in enumerate(line)) for line in [header, *body]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _experiment(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    test_name, separator, variant = value.partition(":")
    if not separator or not test_name or not variant:
        raise click.BadParameter("use <test_name>:<variant>, e.g. greeting_tone:casual", param_hint="--variant")
    return test_name, variant


@click.command(
    "funnel",
    help=(
        "Print each funnel (or one) as a table, in the reading its seed declares (counting: any_order or "
        "in_order; --reading shows the other): conversations at each stage, their share of the conversations "
        "that entered the funnel, conversion from the previous stage, drop-off, median time from the previous "
        "stage, and major drop-offs (marked '!': more than the dbt var funnel_major_drop_off_threshold of the "
        "previous stage lost); then the most common last user messages of conversations that stopped at the "
        "worst step, and the user turns at which the period's conversations were abandoned most "
        "(--abandon-turns). Any period (--since, --until) and filters. Reads the published snapshot, so it "
        "works while a run writes. See docs/funnels.md."
    ),
)
@click.option("--funnel", "funnel_name", default=None, help="Only this funnel (a funnel_name of seeds/funnel_stages.csv).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Only conversations whose day (UTC date of the first event) is on or after this date (YYYY-MM-DD).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Only conversations whose day is on or before this date (YYYY-MM-DD).")
@click.option("--reading", type=click.Choice(funnel_views.READINGS), default=None,
              help="Show every funnel in this reading instead of the one its seed declares.")
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeat for several; 'unknown' = none).")
@click.option("--agent", "agents", multiple=True, help="Only this agent_id (repeat for several).")
@click.option("--environment", "environments", multiple=True, help="Only this environment (repeat for several).")
@click.option("--exclude-development", is_flag=True, help="Leave out development traffic (environment development).")
@click.option("--variant", default=None, help="Only conversations of one experiment variant: <test_name>:<variant>.")
@click.option("--messages", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many last user messages to show at the worst step.")
@click.option("--abandon-turns", "abandon_turn_count", type=click.IntRange(min=0),
              default=funnel_views.DEFAULT_ABANDON_TURNS, show_default=True,
              help="How many of the turns at which the period's conversations were abandoned most to show "
                   "(0: none). Channel, agent, environment and development filters apply; --variant does not.")
@json_option
@read_options
def funnel(funnel_name, since, until, reading, channels, agents, environments, exclude_development, variant,
           messages, abandon_turn_count, as_json, warehouse, serving_dir):
    try:
        scope = Scope(
            start=since.date() if since else None,
            end=until.date() if until else None,
            channels=channels, agents=agents, environments=environments,
            include_development=not exclude_development,
            experiment=_experiment(variant),
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since/--until") from None
    with open_marts(warehouse, serving_dir) as (con, source):
        names = [funnel_name] if funnel_name else funnel_views.funnel_names(con)
        try:
            views = [funnel_views.funnel_view(con, name, scope, reading) for name in names]
        except funnel_views.UnknownFunnelError as error:
            raise click.ClickException(str(error)) from None
        stopped = {}
        for view in views:
            worst = view.worst_step()
            if worst is not None and messages:
                stopped[view.funnel_name] = (
                    worst, funnel_views.stopped_before(con, view.funnel_name, worst.stage, scope, messages))
        abandoned = funnel_views.abandon_turns(con, scope, abandon_turn_count) if abandon_turn_count else None
    if as_json:
        echo_json({
            "source": source.as_dict(),
            "scope": scope.describe(),
            "funnels": [
                {
                    **view.as_dict(),
                    "stopped_before": None if view.funnel_name not in stopped else {
                        "stage": stopped[view.funnel_name][0].stage,
                        "last_user_messages": [
                            {"message": message, "conversations": number}
                            for message, number in stopped[view.funnel_name][1]
                        ],
                    },
                }
                for view in views
            ],
            "abandon_turns": None if abandoned is None else abandoned.as_dict(),
        })
        return
    if all(view.entered == 0 for view in views):
        click.echo(f"no conversations in the funnels for {scope.describe()} ({source.describe()}).")
        return
    for index, view in enumerate(views):
        if index:
            click.echo("")
        other = next(name for name in funnel_views.READINGS if name != view.reading)
        declared = "" if view.reading == view.counting else f"; its seed declares {view.counting}"
        click.secho(
            f"funnel {view.funnel_name} ({READING_WORDS[view.reading]}{declared}; {view.entered:,} conversations "
            f"entered; {scope.describe()})",
            bold=True,
        )
        click.echo(render_funnel(view))
        major = sorted((stage for stage in view.stages if stage.is_major_drop_off),
                       key=lambda stage: stage.drop_off_rate or 0.0, reverse=True)
        if major:
            losing = "" if view.major_drop_off_threshold is None else (
                f" (more than {_percent(view.major_drop_off_threshold)} lost)")
            click.echo(f"major drop-offs{losing}, most severe first: " + ", ".join(
                f"-> {stage.stage} {_percent(stage.drop_off_rate)}" for stage in major))
        click.echo(f"other reading: --reading {other}")
        if view.funnel_name in stopped and stopped[view.funnel_name][1]:
            worst, top = stopped[view.funnel_name]
            click.echo(f"last user messages of conversations that stopped before {worst.stage}:")
            for message, number in top:
                click.echo(f"  {number:>6,}  {_shorten(message, 90)}")
    if abandoned is not None:
        click.echo("")
        ignored = " (the variant filter does not apply here)" if abandoned.variant_ignored else ""
        click.secho(f"turns at which conversations were abandoned, most first ({abandoned.abandoned:,} abandoned "
                    f"conversations with a turn; {scope.describe()}){ignored}", bold=True)
        click.echo(render_abandon_turns(abandoned) if abandoned.turns else "no abandoned conversation.")
    click.echo(f"\n(read from {source.describe()})")
