"""Fired metric alerts: which are new, and the webhook that announces them.

``marts.metric_alerts`` (built by dbt from ``seeds/alert_rules.csv``) holds
every window in which a rule fired, over the whole history. A run announces
only alerts that are *recent* (their window ends within ``lookback_hours`` of
the newest staged event) and *new* (not announced before, remembered in
``audit.alert_notifications``), so an alert is announced once.

The webhook is a hook point: set ``CONVO_ALERT_WEBHOOK_URL`` and each run that
finds new alerts POSTs one JSON document to it (see ``webhook_payload``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
import urllib.request
from typing import Any

import duckdb


WEBHOOK_ENV = "CONVO_ALERT_WEBHOOK_URL"
LOOKBACK_ENV = "CONVO_ALERT_LOOKBACK_HOURS"
DEFAULT_LOOKBACK_HOURS = 24
HIGH = "high"

NOTIFICATIONS_DDL = """
create schema if not exists audit;
create table if not exists audit.alert_notifications (
    rule_name varchar not null,
    metric_name varchar,
    segment_type varchar,
    segment_value varchar,
    window_start timestamp not null,
    severity varchar,
    observed_value double,
    threshold double,
    sample_size bigint,
    notified_at timestamp not null,
    run_id varchar,
    webhook_status varchar
);
"""

def lookback_hours() -> float:
    return float(os.environ.get(LOOKBACK_ENV) or DEFAULT_LOOKBACK_HOURS)


def new_alerts(
    con: duckdb.DuckDBPyConnection, lookback: float | None = None
) -> list[dict[str, Any]]:
    """Recent fired alerts not announced before, high severity first."""
    con.execute(NOTIFICATIONS_DDL)
    lookback = lookback_hours() if lookback is None else lookback
    columns = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'metric_alerts'"
        ).fetchall()
    }
    window_end = "metric_alerts.window_end" if "window_end" in columns else "metric_alerts.window_start"
    frame = con.execute(
        f"""
        with newest_event as (
            -- the warehouse clock of the latest run: the newest staged event
            -- (scope_run, its one definition)
            select scope_run.clock as newest_event_at
            from scope.scope_run as scope_run
        )

        select metric_alerts.*
        from marts.metric_alerts as metric_alerts
        cross join newest_event
        where
            {window_end} >= newest_event.newest_event_at - to_microseconds(
                cast(? * 3600 * 1000000 as bigint)
            )
            and not exists (
                select 1
                from audit.alert_notifications as alert_notifications
                where
                    alert_notifications.rule_name = metric_alerts.rule_name
                    and alert_notifications.segment_type is not distinct from metric_alerts.segment_type
                    and alert_notifications.segment_value is not distinct from metric_alerts.segment_value
                    and alert_notifications.window_start = metric_alerts.window_start
            )
        order by
            case when lower(metric_alerts.severity) = '{HIGH}' then 0 else 1 end,
            metric_alerts.window_start desc,
            metric_alerts.rule_name
        """,
        [lookback],
    ).df()
    return [
        {key: _plain(value) for key, value in record.items()}
        for record in frame.to_dict(orient="records")
    ]


def record_notified(
    con: duckdb.DuckDBPyConnection,
    alerts: list[dict[str, Any]],
    run_id: str | None,
    webhook_status: str,
) -> None:
    """Remember ``alerts`` as announced so later runs stay quiet about them."""
    con.execute(NOTIFICATIONS_DDL)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.executemany(
        "insert into audit.alert_notifications values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                alert.get("rule_name"),
                alert.get("metric_name"),
                alert.get("segment_type"),
                alert.get("segment_value"),
                alert.get("window_start"),
                alert.get("severity"),
                alert.get("observed_value"),
                alert.get("threshold"),
                alert.get("sample_size"),
                now,
                run_id,
                webhook_status,
            )
            for alert in alerts
        ],
    )


def describe(alert: dict[str, Any]) -> str:
    """One line a person can read: which rule, where, observed vs threshold."""
    return (
        f"[{alert.get('severity')}] {alert.get('rule_name')}: {alert.get('metric_name')} "
        f"{alert.get('segment_type')}={alert.get('segment_value')} "
        f"window {alert.get('window_start')} observed {alert.get('observed_value')} "
        f"threshold {alert.get('threshold')} ({alert.get('condition', '')}, "
        f"n={alert.get('sample_size')})"
    )


def webhook_payload(alerts: list[dict[str, Any]], run_id: str | None) -> dict[str, Any]:
    return {
        "source": "convo-warehouse",
        "run_id": run_id,
        "sent_at": dt.datetime.now(dt.UTC).isoformat(),
        "alert_count": len(alerts),
        "high_count": sum(1 for alert in alerts if str(alert.get("severity")).lower() == HIGH),
        "alerts": alerts,
    }


def redact_url(url: str) -> str:
    """The webhook URL as it may appear in logs: scheme and host only. Slack and Teams
    webhooks carry their secret in the path (and some in the query or user info)."""
    parts = urllib.parse.urlsplit(url)
    port = _port_or_none(parts)
    return f"{parts.scheme or '?'}://{parts.hostname or '?'}{'' if port is None else f':{port}'}/<redacted>"


def redact_error(url: str, error: BaseException) -> str:
    """The error of a failed POST as it may be logged and recorded: the URL redacted even
    where the error's text repeats it."""
    return str(error).replace(url, redact_url(url))


def _port_or_none(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # a port that is no number: leave it out
        return None


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10.0) -> int:
    """POST ``payload`` as JSON; return the HTTP status. Raises ``OSError`` on failure."""
    body = json.dumps(payload, default=str).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "convo-warehouse"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # the URL is the user's own setting
        return response.status


def _plain(value: Any) -> Any:
    """JSON-friendly scalars from a pandas record."""
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


__all__ = [
    "WEBHOOK_ENV",
    "redact_url",
    "redact_error",
    "describe",
    "new_alerts",
    "post_webhook",
    "record_notified",
    "webhook_payload",
]
