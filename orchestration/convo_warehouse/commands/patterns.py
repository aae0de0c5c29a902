"""``convo-warehouse patterns``: print the top paths and divergence points.

Reads ``marts.top_paths`` and ``marts.path_divergence`` of the published
snapshot (``--warehouse`` reads a warehouse file instead). Read-only.
"""

from __future__ import annotations

import click

from convo_warehouse.commands._reading import echo_json, json_option, open_marts, read_options

DIVERGENCE_COLUMNS = ("rank", "depth", "step", "more_common_in", "share_successful", "share_failed", "statistic",
                      "p_value_adjusted", "test_method", "is_first_divergence")


def _percent(value) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _p_value(value) -> str:
    if value is None:
        return "-"
    return "<1e-300" if value == 0 else f"{value:.2g}"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def render_table(header: tuple[str, ...], body: list[tuple[str, ...]], left_aligned: tuple[int, ...] = ()) -> str:
    """Columns padded to their widest cell; columns in ``left_aligned`` left-aligned, the rest right-aligned."""
    widths = [max(len(str(line[index])) for line in [header, *body]) for index in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[index]) if index in left_aligned else cell.rjust(widths[index])
            for index, cell in enumerate(line)
        ).rstrip()
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def top_paths(con, limit: int) -> dict[str, list[tuple]]:
    """Per success group, the ``limit`` most common paths: (rank, conversations, share, path)."""
    rows = con.execute(
        """
        select success_group, path_rank, conversations, share_of_group, path
        from marts.top_paths
        where path_rank <= ?
        order by success_group desc, path_rank
        """,
        [limit],
    ).fetchall()
    groups: dict[str, list[tuple]] = {"successful": [], "failed": []}
    for group, rank, conversations, share, path in rows:
        groups[group].append((rank, conversations, share, path))
    return groups


def divergence_points(con, comparison: str, segment_type: str, segment_value: str, scope: str, limit: int):
    """The ``limit`` highest-ranked divergence rows of one comparison, segment and scope."""
    return con.execute(
        """
        select divergence_rank, depth, step, more_common_in, share_successful, share_failed,
               statistic, p_value_adjusted, test_method, is_first_divergence
        from marts.path_divergence
        where comparison = ? and segment_type = ? and segment_value = ? and scope = ?
          and divergence_rank <= ?
        order by divergence_rank
        """,
        [comparison, segment_type, segment_value, scope, limit],
    ).fetchall()


def first_divergence(con, comparison: str, segment_type: str, segment_value: str):
    return con.execute(
        """
        select depth, step, more_common_in, share_successful, share_failed, p_value_adjusted
        from marts.path_divergence
        where comparison = ? and segment_type = ? and segment_value = ? and is_first_divergence
        """,
        [comparison, segment_type, segment_value],
    ).fetchone()


@click.command(
    "patterns",
    help=(
        "Print the most common paths of successful and failed conversations, and the steps where "
        "they diverge most (chi-square / Fisher test per step, Bonferroni-adjusted p-values) with the "
        "first point of divergence. Success = converted, or completed without a handoff; a funnel "
        "comparison's success = reaching its last stage. Reads marts.top_paths and "
        "marts.path_divergence built by `convo-warehouse run`. See docs/patterns.md."
    ),
)
@click.option("--comparison", default="overall", show_default=True,
              help="`overall` or `funnel:<funnel_name>` (e.g. funnel:sales).")
@click.option("--segment", default="all", show_default=True,
              help="`all`, or `<test_name>:<variant>` for one A/B variant (e.g. greeting_tone:casual).")
@click.option("--paths", "path_limit", type=click.IntRange(min=0), default=5, show_default=True,
              help="Top paths shown per group.")
@click.option("--steps", "step_limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Divergence points shown.")
@click.option("--by-depth", is_flag=True, help="Rank steps at each depth instead of steps anywhere in the path.")
@click.option("--width", type=click.IntRange(min=20), default=110, show_default=True,
              help="Longer paths are cut at the start to this many characters.")
@json_option
@read_options
def patterns(comparison, segment, path_limit, step_limit, by_depth, width, as_json, warehouse, serving_dir):
    if segment == "all":
        segment_type, segment_value = "all", "all"
    elif ":" in segment:
        test_name, segment_value = segment.split(":", 1)
        segment_type = f"experiment:{test_name}"
    else:
        raise click.BadParameter("use `all` or `<test_name>:<variant>`", param_hint="--segment")
    scope = "at_depth" if by_depth else "anywhere"
    with open_marts(warehouse, serving_dir) as (con, source):
        groups = top_paths(con, path_limit)
        rows = divergence_points(con, comparison, segment_type, segment_value, scope, step_limit)
        first = first_divergence(con, comparison, segment_type, segment_value)
        known = [
            comparison_name + " " + ("all" if kind == "all" else kind.removeprefix("experiment:") + ":" + value)
            for comparison_name, kind, value in con.execute(
                "select distinct comparison, segment_type, segment_value from marts.path_divergence order by 1, 2, 3"
            ).fetchall()
        ]
    if not rows:
        raise click.ClickException(
            f"no divergence rows for --comparison {comparison} --segment {segment}; "
            f"available (comparison segment): {', '.join(known) or 'none (too few conversations)'}"
        )
    if as_json:
        echo_json({
            "source": source.as_dict(),
            "comparison": comparison,
            "segment": segment,
            "scope": scope,
            "top_paths": {
                group: [{"rank": rank, "conversations": conversations, "share": share, "path": path}
                        for rank, conversations, share, path in paths]
                for group, paths in groups.items()
            },
            "divergence": [dict(zip(DIVERGENCE_COLUMNS, row, strict=True)) for row in rows],
        })
        return
    if path_limit:
        for group in ("successful", "failed"):
            click.secho(f"top paths of {group} conversations", bold=True)
            body = [
                (f"{rank}", f"{conversations:,}", _percent(share), _shorten(path, width))
                for rank, conversations, share, path in groups[group]
            ]
            click.echo(render_table(("#", "convs", "share", "path"), body, left_aligned=(3,))
                       if body else "  (none)")
            click.echo("")
    title = f"where successful and failed conversations diverge ({comparison}, segment {segment}"
    click.secho(title + (", by depth)" if by_depth else ", step anywhere in the path)"), bold=True)
    body = [
        (
            f"{rank}",
            "-" if depth is None else f"{depth}",
            step + (" *" if is_first else ""),
            more_common_in,
            _percent(share_successful),
            _percent(share_failed),
            f"{statistic:,.1f}",
            _p_value(p_adjusted),
            method,
        )
        for rank, depth, step, more_common_in, share_successful, share_failed, statistic, p_adjusted, method,
        is_first in rows
    ]
    click.echo(render_table(
        ("#", "depth", "step", "more in", "successful", "failed", "chi2", "p (adj.)", "test"), body,
        left_aligned=(2, 3),
    ))
    if first is None:
        click.echo("first point of divergence: none significant")
    else:
        depth, step, more_common_in, share_successful, share_failed, p_adjusted = first
        click.echo(
            f"first point of divergence (*): depth {depth}, {step} "
            f"({_percent(share_successful)} of successful vs {_percent(share_failed)} of failed, "
            f"p adj. {_p_value(p_adjusted)})"
        )
