"""Parquet: DuckDB's reader; timestamp and properties columns of any
supported type are turned into their text form, and columns text cannot
carry (no column of their own, or an identifier of another type than text)
are kept in ``typed_fields`` with their types."""

from __future__ import annotations

from pathlib import Path

import duckdb

from convo_warehouse.lib.landing.files import duckdb_path
from convo_warehouse.lib.landing.rows import (
    FIELDS,
    IDENTIFIER_FIELDS,
    STAGED_ROWS,
    column_name,
    epoch_ms_number_as_text,
    stage_unreadable_file,
)
from convo_warehouse.lib.warehouse import quote_identifier, sql_literal


class ParquetReader:
    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        if failure is None:
            _stage_parquet(con, path)
        else:
            # no other reader: the file becomes one unreadable row
            stage_unreadable_file(con, failure)


def _parquet_text(column: str, duck_type: str) -> str:
    """SQL turning a Parquet column of any supported type into the contract's text form."""
    quoted = quote_identifier(column)
    upper = duck_type.upper()
    if column == "timestamp":
        if upper.startswith("TIMESTAMP WITH TIME ZONE"):
            return f"strftime(timezone('UTC', {quoted}), '%Y-%m-%dT%H:%M:%S.%fZ')"
        if upper.startswith("TIMESTAMP"):
            return f"strftime({quoted}, '%Y-%m-%dT%H:%M:%S.%f')"
        if upper in ("FLOAT", "DOUBLE") or upper.startswith("DECIMAL"):
            return epoch_ms_number_as_text(f"{quoted}::double")
    if column == "properties" and (upper.startswith(("STRUCT", "MAP")) or upper == "JSON"):
        return f"to_json({quoted})::varchar"
    return f"{quoted}::varchar"


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    schema = con.execute("describe select * from read_parquet(?)", [duckdb_path(path)]).fetchall()
    types = {name: duck_type for name, duck_type, *_ in schema}
    selects = [
        f"{_parquet_text(name, types[name]) if name in types else 'null'} as {column_name(name)}"
        for name in FIELDS
    ]
    typed = [
        name
        for name, duck_type in types.items()
        if name not in FIELDS or (name in IDENTIFIER_FIELDS and duck_type.upper() != "VARCHAR")
    ]
    typed_fields = (
        "to_json(struct_pack({}))::varchar".format(
            ", ".join(f"{quote_identifier(name)} := {quote_identifier(name)}" for name in typed)
        )
        if typed
        else "null::varchar"
    )
    # A view, not a copy: the insert reads the file once. Views take no
    # parameters, so the path is inlined as a quoted literal.
    con.execute(
        f"""
        create or replace temp view {STAGED_ROWS} as
        select
            file_row_number + 1 as row_number,
            {", ".join(selects)},
            null::varchar as raw_record,
            null::varchar as parse_error,
            {typed_fields} as typed_fields
        from read_parquet({sql_literal(duckdb_path(path))}, file_row_number = true)
        """
    )


READER = ParquetReader()
