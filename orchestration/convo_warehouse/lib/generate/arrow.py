"""Small pyarrow helpers: code arrays to string arrays, and JSON text fragments.

Properties are assembled as JSON text column by column (one fragment per key,
null where the key is absent) instead of row by row, which is what makes the
generator fast.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def dict_array(codes: np.ndarray, values: list) -> pa.DictionaryArray:
    codes = np.asarray(codes)
    mask = codes < 0
    idx = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask)
    # decoded to plain strings: DuckDB scans arrow dictionaries far slower than strings
    return pa.array(values, pa.string()).take(idx)


def nullable(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    return pa.array(values, mask=mask)


def json_fragment(key: str, json_values: pa.Array) -> pa.Array:
    """'"key":<value>,' where the value is already JSON text; null where the value is null."""
    return pc.binary_join_element_wise(f'"{key}":', json_values, ",", "")


def vocab_fragment(key: str, codes: np.ndarray, vocab: list) -> pa.Array:
    return json_fragment(key, dict_array(codes, [json.dumps(v, ensure_ascii=False) for v in vocab]))


def number_fragment(key: str, values: np.ndarray, mask: np.ndarray) -> pa.Array:
    return json_fragment(key, pc.cast(pa.array(values, mask=mask), pa.string()))


def join_fragments(fragments: list[pa.Array]) -> pa.Array:
    """Concatenate the non-null fragments of each row (each ends in a comma; '' when none).

    (pyarrow 26's ``null_handling="skip"`` drops rows whose inputs are all null, so nulls
    are replaced by '' instead and the writer trims the trailing comma.)
    """
    return pc.binary_join_element_wise(*fragments, "", null_handling="replace", null_replacement="")


def set_column(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)

