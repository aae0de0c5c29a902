"""The dashboard's pages (``views``, not ``pages``: Streamlit treats a ``pages/`` folder beside the app as pages of its own): every module in this package that defines ``PAGE``.

Add a page by adding one module here with a ``PAGE = Page(...)``; the app
finds it (ordered by ``Page.order``). Keep a page's queries in plain
functions taking a DuckDB connection (and the ``Scope`` of the sidebar's
period and filters), apart from its ``render``, so their numbers can be
tested without Streamlit. Every table goes through ``tables.show`` (plain
text cells and a CSV download).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class ViewContext:
    """What a page draws from: a read-only DuckDB connection to the snapshot, the
    ``lib.serving.Snapshot``, the sidebar's ``Scope`` and the sidebar's whole choice
    (``dashboard.filters.Choice``: options, default period)."""

    con: object
    snapshot: object
    scope: object
    choice: object


@dataclasses.dataclass(frozen=True)
class Page:
    """One page: its title, URL path, icon (a Material symbol), position and render function.

    ``render(context)`` draws the page with Streamlit from a ``ViewContext``.
    """

    title: str
    url_path: str
    icon: str
    order: int
    render: Callable


def discover() -> list[Page]:
    """Every page of this package, in order."""
    pages = []
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        page = getattr(module, "PAGE", None)
        if isinstance(page, Page):
            pages.append(page)
    return sorted(pages, key=lambda page: (page.order, page.title))
