"""The period and filters every page applies, in the sidebar and in the URL.

Each control is bound to a query parameter of the page's URL (Streamlit's
``bind="query-params"``), so copying the address shares the view and opening
it restores it: ``period`` (two days, YYYY-MM-DD), ``channel`` and ``agent``
(repeated), ``development`` (include development traffic: off by default),
``variant`` (``<test_name>:<variant>``). A value equal to its default is left
out of the URL. The default period is the last 28 complete days
(``lib/scope.default_period``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from convo_warehouse.lib.scope import FilterOptions, Scope, default_period, filter_options

ALL_VARIANTS = "all conversations"


@dataclasses.dataclass(frozen=True)
class Choice:
    """What the sidebar says: the Scope, and the words for it."""

    scope: Scope
    options: FilterOptions
    default_start: dt.date | None
    default_end: dt.date | None

    @property
    def period_words(self) -> str:
        if self.scope.start is None:
            return "whole history"
        return f"{self.scope.start:%d %b %Y} – {self.scope.end:%d %b %Y} (UTC conversation days)"


def variant_label(test_name: str, variant: str) -> str:
    return f"{test_name}:{variant}"


def scope_from(period, channels, agents, include_development: bool, variant: str | None) -> Scope:
    """The Scope of the controls' values (a half-picked period counts as one day)."""
    start = end = None
    if period:
        start, end = (period[0], period[-1])
    experiment = None
    if variant and variant != ALL_VARIANTS:
        test_name, _, value = variant.partition(":")
        experiment = (test_name, value)
    return Scope(start=start, end=end, channels=tuple(channels or ()), agents=tuple(agents or ()),
                 include_development=include_development, experiment=experiment)


def sidebar(con) -> Choice:
    """Draw the controls in the sidebar and return what they say."""
    import streamlit as st

    options = filter_options(con)
    default = default_period(con)
    default_start, default_end = default if default else (None, None)
    bar = st.sidebar
    bar.divider()
    bar.markdown("**Period and filters** (every page; the URL keeps them)")
    period = bar.date_input(
        "Period (UTC conversation days)",
        value=(default_start, default_end) if default else None,
        key="period",
        bind="query-params",
        help="Default: the last 28 complete days. Conversations count on the day of their first event.",
    )
    channels = bar.multiselect("Channel", options.channels, key="channel", bind="query-params",
                               placeholder="every channel")
    agents = bar.multiselect("Agent", options.agents, key="agent", bind="query-params", placeholder="every agent")
    include_development = bar.toggle(
        "Include development traffic", value=False, key="development", bind="query-params",
        help="Off: conversations whose environment is development are left out (the production view).",
    )
    variants = [ALL_VARIANTS] + [
        variant_label(test, variant) for test, names in options.experiments.items() for variant in names
    ]
    variant = bar.selectbox("Experiment variant", variants, key="variant", bind="query-params",
                            help="Only conversations exposed to this variant (and no other of the test).")
    bar.caption(
        "Environment: " + ("every environment" if include_development
                           else "production (development traffic left out)")
    )
    scope = scope_from(period if isinstance(period, tuple | list) else ((period,) if period else ()),
                       channels, agents, include_development, variant)
    return Choice(scope=scope, options=options, default_start=default_start, default_end=default_end)
