"""Landing folder -> ``raw.events``: every raw row kept, each file loaded once.

The loader does no validation beyond "can this line or row be read at all".
It copies each row's contract fields as text into ``raw.events`` together with
where it came from (file, row number, load run). What text cannot carry is
kept as JSON in ``typed_fields`` (fields without a column of their own, and
identifiers not sent as text), so staging can tell ``"123"`` from ``123``.
Typing, validation, alias mapping and dedupe happen in dbt, so every rule
lives in one place and a raw row can never disappear between the two.

Modules, one job each:

* :mod:`.files`: which files of the landing folder are loaded, and their
  content hash;
* :mod:`.registry`: the raw tables, and what was seen and loaded before;
* :mod:`.rows`: the columns every reader produces, and the reader interface;
* :mod:`.jsonl`, :mod:`.parquet`, :mod:`.csv_file`, :mod:`.otlp`: one reader
  per format;
* :mod:`.load`: one load run, in one transaction.
"""

from convo_warehouse.lib.landing.files import (
    SUFFIXES,
    LandingError,
    content_hash,
    discover_files,
    file_format,
    file_signature,
)
from convo_warehouse.lib.landing.load import LoadReport, load_landing
from convo_warehouse.lib.landing.registry import ensure_raw_tables
from convo_warehouse.lib.landing.rows import FIELDS, IDENTIFIER_FIELDS

__all__ = [
    "FIELDS",
    "IDENTIFIER_FIELDS",
    "SUFFIXES",
    "LandingError",
    "LoadReport",
    "content_hash",
    "discover_files",
    "ensure_raw_tables",
    "file_format",
    "file_signature",
    "load_landing",
]
