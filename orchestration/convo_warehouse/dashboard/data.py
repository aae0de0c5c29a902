"""Small query helpers shared by the pages (no Streamlit here)."""

from __future__ import annotations

import pandas as pd


def frame(con, sql: str, params: list | None = None) -> pd.DataFrame:
    """The result of ``sql`` as a DataFrame."""
    return con.execute(sql, params or []).df()


def records(con, sql: str, params: list | None = None) -> list[dict]:
    """The result of ``sql`` as a list of dicts."""
    cursor = con.execute(sql, params or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def has_table(con, table: str) -> bool:
    """Whether ``schema.table`` exists in the snapshot (older snapshots may lack newer marts)."""
    schema, name = table.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )
