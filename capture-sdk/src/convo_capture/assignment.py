"""The applications' A/B assignment rule, as the event contract writes it.

A conversation in test ``test_name`` is assigned

    variants[int(sha256(f"{test_name}:{conversation_id}"), 16) % len(variants)]

where ``variants`` are the test's variants in the seed's ``variant_order``.
This module is the only Python implementation of that rule: the capture SDK
uses it, and the warehouse (generator, experiment statistics) imports it
through ``convo_warehouse.lib.assignment``. The SQL side is the
``hash_bucket`` macro (``ab_test_exposures.expected_variant``);
``tests/experiments/test_assignment.py`` proves the two agree.

Pure standard library: importable without Dagster, dbt or DuckDB.
"""

from __future__ import annotations

import hashlib
from typing import Sequence


def assignment_bucket(test_name: str, conversation_id: str, variant_count: int) -> int:
    """The 0-based position of the assigned variant among ``variant_count`` variants."""
    if variant_count < 1:
        raise ValueError(f"test {test_name!r} needs at least one variant to assign to")
    digest = hashlib.sha256(f"{test_name}:{conversation_id}".encode()).hexdigest()
    return int(digest, 16) % variant_count


def assign_variant(test_name: str, conversation_id: str, variants: Sequence[str]) -> str:
    """The variant the contract's rule assigns ``conversation_id`` to in ``test_name``.

    ``variants`` must be in the seed's ``variant_order`` (control first, as a rule).
    """
    return variants[assignment_bucket(test_name, conversation_id, len(variants))]
