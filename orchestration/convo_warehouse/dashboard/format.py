"""Numbers as people read them: 12.3%, 1,234, +1.2 pts, 2m 05s, "5 minutes ago"."""

from __future__ import annotations

import datetime as dt
import math
import re

from convo_warehouse.lib.experiments import format_p

__all__ = ["count", "duration", "format_p", "markdown_safe", "milliseconds", "number", "percent", "points",
           "relative_change", "since"]

MISSING = "–"


# Every ASCII punctuation character may be backslash-escaped in CommonMark,
# Streamlit's Markdown; these are the ones that start Markdown or HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def markdown_safe(text: str) -> str:
    """``text`` escaped for Streamlit's Markdown (captions, st.markdown), so values that came
    from events or from the URL (a channel named ``![](https://host/beacon)``) show as text."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(value: float | None, decimals: int = 1) -> str:
    """A fraction 0..1 as a percentage: 0.1234 -> "12.3%"."""
    return MISSING if _missing(value) else f"{100 * value:.{decimals}f}%"


def points(value: float | None, decimals: int = 1) -> str:
    """A difference of two fractions in percentage points: 0.012 -> "+1.2 pts"."""
    return MISSING if _missing(value) else f"{100 * value:+.{decimals}f} pts"


def relative_change(value: float | None) -> str:
    """A relative change: 0.05 -> "+5.0%"."""
    return MISSING if _missing(value) else f"{100 * value:+.1f}%"


def count(value: float | None) -> str:
    """A whole number with thousands separators: 12345 -> "12,345"."""
    return MISSING if _missing(value) else f"{round(value):,}"


def number(value: float | None, decimals: int = 2) -> str:
    """A plain number: 3.14159 -> "3.14"."""
    return MISSING if _missing(value) else f"{value:,.{decimals}f}"


def duration(seconds: float | None) -> str:
    """Seconds for people: 42 -> "42s", 125 -> "2m 05s", 5400 -> "1h 30m"."""
    if _missing(seconds):
        return MISSING
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def milliseconds(value: float | None) -> str:
    """Milliseconds: 850 -> "850 ms", 1234 -> "1.23 s"."""
    if _missing(value):
        return MISSING
    return f"{value:,.0f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def since(moment: dt.datetime, now: dt.datetime) -> str:
    """How long ago: "just now", "5 minutes ago", "3 hours ago", "2 days ago"."""
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            amount = int(seconds // size)
            return f"{amount} {unit}{'s' if amount != 1 else ''} ago"
    return "just now"


def is_fraction(unit: str | None) -> bool:
    """Whether a metric of this ``dim_metrics.unit`` is a share shown as a percentage."""
    return bool(unit) and (unit.startswith("fraction") or unit.endswith("per user message"))


def metric_value(value: float | None, unit: str | None) -> str:
    """A metric value in its unit (from ``dim_metrics.unit``): 12.3%, 1,234, 2m 05s, 850 ms, 0.62."""
    if is_fraction(unit):
        return percent(value)
    if unit == "conversations":
        return count(value)
    if unit == "seconds":
        return duration(value)
    if unit == "milliseconds":
        return milliseconds(value)
    return number(value)


def metric_change(current: float | None, previous: float | None, unit: str | None) -> str:
    """Change of a metric: percentage points for shares, relative change for everything else."""
    if _missing(current) or _missing(previous):
        return MISSING
    if is_fraction(unit):
        return points(current - previous)
    return MISSING if previous == 0 else relative_change((current - previous) / previous)
