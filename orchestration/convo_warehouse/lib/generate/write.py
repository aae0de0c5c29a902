"""Write: a rendered chunk (the DuckDB table ``rows_c``) to Parquet, JSONL, JSONL.gz and CSV files.

Rows are ordered by their delivery time (``order_key``) and event id within a
file; gzip is written with mtime 0, so the files are byte-identical for the
same arguments.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa

from convo_warehouse.lib.generate.render import FILE_COLUMNS, JSONL_LINE_SQL, sql_list
from convo_warehouse.lib.generate.settings import (
    CANONICAL_TYPES,
    SLOT_CSV,
    SLOT_JSONL,
    SLOT_JSONL_GZ,
    SLOT_PARQUET_MS,
    SLOT_PARQUET_STR,
    SLOT_PARQUET_TS,
)


def file_slots(mix: dict[str, float], chunk_no: int) -> tuple[list[int], np.ndarray]:
    """The file slots (formats) a chunk's rows go to, with their probabilities.

    Parquet's share is split 5:2:1 between string, typed and epoch-ms
    timestamps; the first chunk also writes the single CSV file.
    """
    shares = {
        SLOT_PARQUET_STR: mix["parquet"] * 5 / 8,
        SLOT_PARQUET_TS: mix["parquet"] * 2 / 8,
        SLOT_PARQUET_MS: mix["parquet"] * 1 / 8,
        SLOT_JSONL: mix["jsonl"],
        SLOT_JSONL_GZ: mix["jsonl.gz"],
    }
    total = sum(shares.values())
    shares = {k: v / total for k, v in shares.items() if v > 0}
    if chunk_no == 0 and mix["csv"] > 0:
        csv_share = min(mix["csv"], 0.9)
        shares = {k: v * (1 - csv_share) for k, v in shares.items()}
        shares[SLOT_CSV] = csv_share
    slots = list(shares)
    p = np.array([shares[s] for s in slots])
    return slots, p / p.sum()


def write_lines(handle, column: pa.ChunkedArray) -> int:
    """Write an arrow string column whose values already end in newlines; returns bytes written."""
    written = 0
    for chunk in column.chunks:
        if pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
            width = np.int32 if pa.types.is_string(chunk.type) else np.int64
            offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset: chunk.offset + len(chunk) + 1]
            data = memoryview(chunk.buffers()[2])[int(offsets[0]): int(offsets[-1])]
            handle.write(data)
            written += len(data)
        else:  # string_view or anything else: slower but correct
            blob = "".join(chunk.to_pylist()).encode()
            handle.write(blob)
            written += len(blob)
    return written



def write_chunk(con, stem: Path, files: list[Path]) -> None:
    """Write the rendered rows of ``rows_c`` to ``<stem>.<format>`` files, one per slot present;
    append the paths to ``files``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    present = {r[0] for r in con.execute("select distinct slot from rows_c").fetchall()}
    cols = "event_id, conversation_id, session_id, user_id, customer_id, event_type"
    parquet = {
        SLOT_PARQUET_STR: (f"{stem}.parquet", "ts_str as timestamp"),
        SLOT_PARQUET_TS: (f"{stem}_tstype.parquet", "make_timestamp(ts_typed * 1000) as timestamp"),
        SLOT_PARQUET_MS: (f"{stem}_epochms.parquet", "ts_typed as timestamp"),
    }
    for slot, (path, ts_expr) in parquet.items():
        if slot in present:
            con.execute(
                f"copy (select {cols}, {ts_expr}, channel, properties from rows_c where slot = {slot} "
                f"order by order_key, event_id) to '{path}' (format parquet, compression zstd)")
            files.append(Path(path))
    if SLOT_JSONL in present:
        path = Path(f"{stem}.jsonl")
        col = con.execute(JSONL_LINE_SQL.replace("{slots}", str(SLOT_JSONL))).to_arrow_table().column(0)
        with open(path, "wb") as handle:
            write_lines(handle, col)
        files.append(path)
    if SLOT_JSONL_GZ in present:
        path = Path(f"{stem}.jsonl.gz")
        col = con.execute(JSONL_LINE_SQL.replace("{slots}", str(SLOT_JSONL_GZ))).to_arrow_table().column(0)
        with open(path, "wb") as raw_handle:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw_handle, mtime=0, compresslevel=3) as gz:
                write_lines(gz, col)
        files.append(path)
    if SLOT_CSV in present:
        path = Path(f"{stem}.csv")
        rows = con.execute(
            f"select {cols}, ts_str, channel, properties, csv_bad from rows_c where slot = {SLOT_CSV} "
            f"order by order_key, event_id").fetchall()
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(FILE_COLUMNS)
            for row in rows:
                values = ["" if v is None else v for v in row[:-1]]
                if row[-1] == 1:
                    values.append("unexpected_extra_field")
                elif row[-1] == 2:
                    values = values[:6]
                writer.writerow(values)
        files.append(path)


def write_truth(con, path: Path) -> None:
    """The chunk's clean events (id, conversation, canonical type, intended epoch ms, slot) as Parquet."""
    con.execute(
        f"copy (select event_id, cid as conversation_id, "
        f"{sql_list(CANONICAL_TYPES)}[canonical + 1] as event_type, ts_ms, slot "
        f"from rows_c where not is_copy order by event_id) to "
        f"'{path}' (format parquet)")
