"""The Streamlit script of the dashboard (``convo-warehouse dashboard`` runs it).

Reads only the published snapshot (``CONVO_SERVING_DIR``/current), resolved
once per page view, so every number on a page comes from one version; a new
snapshot shows on the next interaction. Pages are found in
``convo_warehouse.dashboard.views``. The sidebar holds the period and the
filters every page applies (``dashboard/filters.py``), bound to the URL's
query parameters, so a link shares the view. With ``CONVO_DASHBOARD_PASSWORD``
set, nothing is shown before the password is given.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import streamlit as st

from convo_warehouse.dashboard import PASSWORD_ENV, filters
from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard.views import Page, ViewContext, discover
from convo_warehouse.lib import access, serving


@st.cache_resource(max_entries=3)
def _connection(database: str) -> duckdb.DuckDBPyConnection:
    """One read-only connection per snapshot version (its files never change)."""
    con = duckdb.connect(database, read_only=True)
    con.execute("set TimeZone = 'UTC'")
    return con


def _signed_in() -> bool:
    """True when no password is configured, or this session gave it; else shows the form."""
    passwords = access.tokens_from_env(PASSWORD_ENV)
    if not passwords or st.session_state.get("signed_in"):
        return True
    st.title("convo-warehouse")
    with st.form("sign-in"):
        given = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            if access.matches_any(given, passwords):
                st.session_state["signed_in"] = True
                st.rerun()
            st.error("Wrong password.")
    return False


def _freshness(snapshot: serving.Snapshot) -> None:
    manifest = snapshot.manifest
    now = dt.datetime.now(dt.UTC)
    published = dt.datetime.fromisoformat(manifest["published_at"])
    newest = manifest.get("newest_event_at")
    lines = [f"**Snapshot published {fmt.since(published, now)}**", f"{published:%Y-%m-%d %H:%M} UTC"]
    if newest:
        newest_at = dt.datetime.fromisoformat(newest).replace(tzinfo=dt.UTC)
        lines.append(f"Data up to {newest_at:%Y-%m-%d %H:%M} UTC ({fmt.since(newest_at, now)})")
    status = (manifest.get("tests") or {}).get("status", "unknown").replace("_", " ")
    lines.append(f"Checks: {status}")
    st.sidebar.markdown("  \n".join(lines))
    st.sidebar.caption(f"version {snapshot.version}")


def _page(page: Page, snapshot: serving.Snapshot, default: bool) -> st.Page:
    def show() -> None:
        cursor = _connection(str(snapshot.database)).cursor()
        try:
            cursor.execute("set TimeZone = 'UTC'")
            chosen = filters.sidebar(cursor)
            page.render(ViewContext(con=cursor, snapshot=snapshot, scope=chosen.scope, choice=chosen))
        finally:
            cursor.close()

    show.__name__ = f"page_{page.url_path}"
    # The default (first) page is served at "/", the others at "/<url_path>".
    return st.Page(show, title=page.title, icon=page.icon, url_path=page.url_path, default=default)


def main() -> None:
    st.set_page_config(page_title="convo-warehouse", page_icon=":material/forum:", layout="wide")
    if not _signed_in():
        st.stop()
    try:
        snapshot = serving.current_snapshot(serving.serving_path())
    except serving.SnapshotNotFoundError as error:
        st.error(str(error))
        st.stop()
    _freshness(snapshot)
    pages = discover()
    st.navigation([_page(page, snapshot, default=index == 0) for index, page in enumerate(pages)]).run()


main()
