"""``convo-warehouse experiments``: A/B test results and health in the terminal."""

from __future__ import annotations

import click

from convo_warehouse.commands._reading import echo_json, json_option, open_marts, read_options
from convo_warehouse.lib import experiments as ex


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_experiments(con, test: str | None = None) -> list[dict]:
    """Each seed test's results, metrics and health from the marts, in test_name order."""
    where, params = ("where test_name = ?", [test]) if test else ("", [])
    try:
        results = _rows(con, f"select * from marts.ab_test_results {where} order by test_name, variant_order", params)
        health = _rows(con, f"select * from marts.ab_test_health {where} order by test_name, segment_type, segment_value", params)
        metrics = _rows(con, f"select * from marts.ab_test_metrics {where} order by test_name, variant, metric_name", params)
    except Exception as error:  # duckdb.CatalogException, without importing duckdb here
        if "does not exist" in str(error):
            raise click.ClickException(
                "no experiment marts in this warehouse: run `convo-warehouse run` first."
            ) from None
        raise
    tests = []
    for name in sorted({row["test_name"] for row in results}):
        tests.append(
            {
                "test_name": name,
                "results": [row for row in results if row["test_name"] == name],
                "health": [row for row in health if row["test_name"] == name],
                "metrics": [row for row in metrics if row["test_name"] == name],
            }
        )
    return tests


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.2f}"


def render_test(test: dict, sequential: bool = False) -> list[str]:
    """The lines printed for one test."""
    results, health, metrics = test["results"], test["health"], test["metrics"]
    overall = next((row for row in health if row["segment_type"] == "all"), None)
    control = next((row for row in results if row["is_control"]), None)
    interval_name = "always-valid 95% CI" if sequential else "95% CI"
    lines = [
        f"{test['test_name']}  (control: {control['variant'] if control else 'none'}; "
        f"{results[0]['total_sessions']:,} sessions; significant at p < {ex.ALPHA})",
        f"  {'variant':<12}{'sessions':>10}{'conv.':>8}{'rate':>9}  {'95% CI of rate':<19}"
        f"{'lift (pts)':>11}  {interval_name + ' (pts)':<28}{'p-value':>8}",
    ]
    for row in results:
        low, high = ex.wilson_interval(row["conversions"], row["sessions"])
        rate_ci = f"[{_pct(low)}, {_pct(high)}]" if low is not None else "n/a"
        if row["is_control"]:
            comparison = "control"
        else:
            ci_low, ci_high = (
                (row["sequential_ci_low"], row["sequential_ci_high"]) if sequential else (row["ci_low"], row["ci_high"])
            )
            interval = f"[{_pts(ci_low)}, {_pts(ci_high)}]" if ci_low is not None else "n/a"
            if sequential:
                call = "" if ci_low is None else ("significant" if ci_low > 0 or ci_high < 0 else "")
            else:
                call = "significant" if row["is_significant"] else ""
            comparison = f"{_pts(row['absolute_lift']):>11}  {interval:<28}{ex.format_p(row['p_value']):>8}  {call}"
        lines.append(
            f"  {row['variant']:<12}{row['sessions']:>10,}{row['conversions']:>8,}{_pct(row['conversion_rate']):>9}"
            f"  {rate_ci:<19}{comparison}".rstrip()
        )
    srm_p = results[0]["srm_p_value"]
    srm = (
        "n/a (no sessions)"
        if srm_p is None
        else f"{'MISMATCH' if results[0]['srm_detected'] else 'ok'} "
        f"(chi-square {results[0]['srm_chi_square']:.3f}, p={ex.format_p(srm_p)})"
    )
    broken_channels = [row["segment_value"] for row in health if row["segment_type"] == "channel" and row["srm_detected"]]
    channels = [row for row in health if row["segment_type"] == "channel"]
    lines.append(
        f"  SRM vs seed weights (mismatch when p < {ex.SRM_ALPHA}): {srm}; by channel: "
        + (f"mismatch in {', '.join(broken_channels)}" if broken_channels else f"ok ({len(channels)} channels)")
    )
    if overall is not None:
        lines.append(
            f"  exposures: {overall['exposed_conversations']:,} conversations; "
            f"{overall['contaminated_conversations']:,} saw several variants ({_pct(overall['contamination_rate'])}, excluded); "
            f"{overall['assignment_mismatches']:,} disagree with the assignment rule ({_pct(overall['assignment_mismatch_rate'])})"
        )
    sample = results[0]["enough_sample"]
    needed = f">= {ex.MIN_SESSIONS:,} sessions and >= {ex.MIN_CONVERSIONS:,} conversions"
    lines.append(
        "  sample: "
        + (f"enough (every variant {needed})" if sample else f"NOT enough (needs {needed} per variant)")
        + ("" if results[0]["has_enough_traffic"]
           else f"; not enough traffic (< {ex.MIN_SESSIONS_PER_VARIANT_FOR_TRAFFIC} sessions per variant)")
    )
    role_order = {"primary": 0, "secondary": 1, "guardrail": 2}
    others = sorted(
        (row for row in metrics if not row["is_control"] and row["metric_name"] != "conversion_rate"),
        key=lambda row: (role_order.get(row["metric_role"], 3), row["variant"], row["metric_name"]),
    )
    if others:
        lines.append("  other metrics (variant vs control):")
        for row in others:
            if row["metric_type"] == "rate":
                change = f"{_pts(row['difference'])} pts"
            else:
                change = "n/a" if row["difference"] is None else f"{row['difference']:+.3g}"
            if row["metric_role"] == "guardrail":
                status = "BREACHED" if row["guardrail_breached"] else "ok"
                detail = f"p={ex.format_p(row['p_value'])}, guardrail {status}"
            else:
                status = "significant" if row["is_significant"] else "not significant"
                detail = f"Holm p={ex.format_p(row['p_value_adjusted'])}, {status}"
            lines.append(f"    {row['variant']:<10}{row['metric_name']:<20}{change:>12}  ({detail})")
    verdict = overall["verdict"] if overall is not None and overall["verdict"] else "n/a"
    if sequential:
        calls = []
        for row in results:
            if row["is_control"] or row["sequential_ci_low"] is None:
                continue
            excludes_zero = row["sequential_ci_low"] > 0 or row["sequential_ci_high"] < 0
            calls.append(f"{row['variant']} {'significant' if excludes_zero else 'not significant'}")
        if calls:
            verdict += f" (always-valid CI: {', '.join(calls)})"
    lines.append(f"  verdict: {verdict}")
    return lines


@click.command()
@click.option("--test", "test_name", default=None, help="Show only this test (default: every test in the seed).")
@click.option("--sequential", is_flag=True,
              help="Show the always-valid (sequential) 95% interval of each lift instead of the fixed-horizon one: "
                   "safe to look at daily and stop early.")
@json_option
@read_options
def experiments(test_name: str | None, sequential: bool, as_json: bool, warehouse: str | None,
                serving_dir: str | None) -> None:
    """Print each A/B test's results and health from the experiment marts.

    Per test: variants with sessions, conversions and rates (Wilson 95% CI),
    lift against the control with its 95% CI and p-value (pooled z-test), the
    sample ratio mismatch check (overall and per channel), contamination and
    assignment mismatches, sample sufficiency, secondary and guardrail
    metrics, and a one-line verdict. Reads the published snapshot (so it works
    while `convo-warehouse run` writes), or a warehouse with --warehouse.
    """
    with open_marts(warehouse, serving_dir) as (con, _source):
        tests = read_experiments(con, test_name)
    if test_name and not tests:
        raise click.ClickException(
            f"no test named {test_name!r} in the experiments seed (seeds/experiments.csv)."
        )
    if as_json:
        # one object per test: results, metrics and health rows as the marts hold them
        echo_json(tests)
        return
    if not tests:
        click.echo("no tests in the experiments seed.")
        return
    for index, test in enumerate(tests):
        if index:
            click.echo("")
        for line in render_test(test, sequential=sequential):
            click.echo(line)
