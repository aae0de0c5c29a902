"""Every table the dashboard shows: plain-text cells and a CSV download.

Cells are drawn by ``st.dataframe``, which shows text as text: a last user
message like ``![](https://host/beacon)`` or a tool name with a backtick is
never rendered as Markdown (``st.table`` would show the image). The download
button's label, which Streamlit renders as Markdown, has the title escaped
(a conversation id in it shows as text, never as a link or an image). The
download holds the table's raw values (rates as fractions 0..1, counts as
integers), not the formatted text.
"""

from __future__ import annotations

import re

import pandas as pd

from convo_warehouse.dashboard.format import markdown_safe


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV without the index."""
    return frame.to_csv(index=False).encode("utf-8")


def file_name(title: str) -> str:
    """"Most common paths (failed)" -> "most_common_paths_failed.csv"."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") + ".csv"


def show(shown: pd.DataFrame, raw: pd.DataFrame | None = None, *, title: str, key: str, container=None) -> None:
    """Draw ``shown`` (formatted text) and a button downloading ``raw`` (default: ``shown``) as CSV."""
    import streamlit as st

    target = container or st
    target.dataframe(shown, hide_index=True, key=f"table-{key}")
    target.download_button(
        f"Download CSV: {markdown_safe(title)}",
        csv_bytes(shown if raw is None else raw),
        file_name=file_name(title),
        mime="text/csv",
        key=f"download-{key}",
        icon=":material/download:",
        type="tertiary",
    )
