"""Fired metric alerts surface in Dagster as an asset check on ``marts/metric_alerts``.

New, recent alerts (see ``lib/alerts.py``) are logged one per line and shown
in the check's metadata. Any ``high`` alert fails the check with severity
ERROR and then fails the run; other severities give a WARN result. When
``CONVO_ALERT_WEBHOOK_URL`` is set, the new alerts are POSTed to it as JSON
(a webhook that cannot be reached is logged, not fatal: the alert is still in
the check and in ``audit.alert_notifications``).
"""


import os

import dagster as dg

from convo_warehouse.concurrency import WRITER_POOL, retry_when_busy
from convo_warehouse.lib import alerts as alert_lib
from convo_warehouse.lib.warehouse import writer_lock
from convo_warehouse.resources import WarehouseResource

METRIC_ALERTS = dg.AssetKey(["marts", "metric_alerts"])
CHECK_NAME = "metric_alerts_fired"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=METRIC_ALERTS,
            description=(
                "Fails (ERROR, and fails the run) when a new `high` alert fired in the last "
                "CONVO_ALERT_LOOKBACK_HOURS (default 24) of data; warns on other new alerts. "
                "Posts new alerts to CONVO_ALERT_WEBHOOK_URL when set."
            ),
        )
    ],
    pool=WRITER_POOL,
)
def metric_alerts_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    with retry_when_busy(context), writer_lock(warehouse.database), warehouse.connect() as con:
        fired = alert_lib.new_alerts(con)
        webhook_status = "not configured"
        url = os.environ.get(alert_lib.WEBHOOK_ENV)
        if fired and url:
            try:
                status = alert_lib.post_webhook(url, alert_lib.webhook_payload(fired, context.run.run_id))
                webhook_status = f"HTTP {status}"
            except OSError as error:  # URLError, HTTPError, timeouts
                # The URL is a secret (Slack, Teams): logs and the audit table get it redacted.
                webhook_status = f"failed: {alert_lib.redact_error(url, error)}"
                context.log.warning(f"alert webhook {alert_lib.redact_url(url)} {webhook_status}")
        if fired:
            alert_lib.record_notified(con, fired, context.run.run_id, webhook_status)

    high = [alert for alert in fired if str(alert.get("severity")).lower() == alert_lib.HIGH]
    for alert in fired:
        line = alert_lib.describe(alert)
        (context.log.error if alert in high else context.log.warning)(line)
    if not fired:
        context.log.info("no new metric alerts")

    yield dg.AssetCheckResult(
        check_name=CHECK_NAME,
        asset_key=METRIC_ALERTS,
        passed=not fired,
        severity=dg.AssetCheckSeverity.ERROR if high else dg.AssetCheckSeverity.WARN,
        metadata={
            "new_alerts": len(fired),
            "high_alerts": len(high),
            "webhook": webhook_status,
            "alerts": dg.MetadataValue.md(
                "\n".join(f"- {alert_lib.describe(alert)}" for alert in fired[:50])
                or "no new alerts"
            ),
        },
    )
    if high:
        raise dg.Failure(
            description=f"{len(high)} high-severity metric alert(s) fired: "
            + "; ".join(alert_lib.describe(alert) for alert in high[:5]),
            metadata={"high_alerts": len(high)},
            allow_retries=False,
        )
