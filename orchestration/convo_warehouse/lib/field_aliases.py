"""Contract v1.1 field names (``seeds/field_aliases.csv``) read in plain Python.

The warehouse applies the seed in dbt (``base_events_parsed`` through
``stg_seeds__field_aliases``); this module is the same rule for Python code
that handles events before they land, such as the HTTP collector:

* a field sent under an alias (``id``, ``message_id`` -> ``event_id``;
  ``metadata`` -> ``properties``) is read as its canonical field;
* the canonical name wins when both are sent; among several aliases of one
  field, the first by alias name wins;
* a value is present unless it is null or text that is empty after trimming.

``tests/warehouse/test_contract_v11_fields.py`` checks that this and staging agree.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convo_warehouse.lib.warehouse import REPO_ROOT

FIELD_ALIASES_SEED = REPO_ROOT / "seeds" / "field_aliases.csv"


def read_field_aliases(path: Path = FIELD_ALIASES_SEED) -> dict[str, str]:
    """``{alias_field: canonical_field}`` from the seed (names trimmed)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            row["alias_field"].strip(): row["canonical_field"].strip()
            for row in csv.DictReader(handle)
            if (row.get("alias_field") or "").strip()
        }


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def apply_field_aliases(record: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """The record with aliased fields under their canonical names (alias keys dropped)."""
    mapped = {name: value for name, value in record.items() if name not in aliases}
    for alias in sorted(aliases):
        canonical = aliases[alias]
        if alias in record and not _present(mapped.get(canonical)) and _present(record[alias]):
            mapped[canonical] = record[alias]
    return mapped
