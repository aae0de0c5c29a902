"""The A/B assignment rule: the Python module against the contract and against the SQL macro.

``convo_warehouse.lib.assignment`` is the only Python implementation of the
rule and ``hash_bucket`` (macros/experiments/hash_bucket.sql) the only SQL
one; these tests prove they assign every id alike.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import duckdb
import pytest
from support.warehouse import Warehouse

from convo_warehouse.lib.assignment import assign_variant, assignment_bucket

VARIANT_COUNTS = (1, 2, 3, 7)
# 3,000 ids: the generator's form, other producers' forms, and text that is
# easy to get wrong (empty, non-ASCII, the separator itself, long, digits only).
IDS = (
    [f"c-42-{n:07d}" for n in range(1500)]
    + [f"conv_{n:06d}" for n in range(1000)]
    + [f"{n:08x}-4b1c-9e7a-{n * 7919:012d}" for n in range(490)]
    + ["", "é", "ü-ñ", "a:b", "  ", "x" * 300, "日本", "🙂", "0", "ff"]
)


def test_assign_variant_is_the_contract_formula_on_known_digests():
    # sha256("greeting_tone:c1") and sha256("t:") computed by hand with hashlib
    # below; the point is the formula: int(hex, 16) % len(variants) indexes variants.
    for test_name, conversation_id in (("greeting_tone", "c1"), ("t", ""), ("reply_length", "日本")):
        digest = int(hashlib.sha256(f"{test_name}:{conversation_id}".encode()).hexdigest(), 16)
        for count in VARIANT_COUNTS:
            variants = [f"v{i}" for i in range(count)]
            assert assign_variant(test_name, conversation_id, variants) == variants[digest % count]


def test_assignment_depends_on_the_test_name_and_the_variant_order():
    ids = IDS[:400]
    by_a = [assignment_bucket("a", i, 2) for i in ids]
    by_b = [assignment_bucket("b", i, 2) for i in ids]
    assert by_a != by_b
    assert 150 < sum(by_a) < 250  # sha256 splits evenly
    flipped = [assign_variant("a", i, ["y", "x"]) for i in ids]
    assert [assign_variant("a", i, ["x", "y"]) for i in ids] == ["x" if f == "y" else "y" for f in flipped]


def test_a_test_without_variants_is_a_clear_error():
    with pytest.raises(ValueError, match="'empty' needs at least one variant"):
        assign_variant("empty", "c1", [])


def test_assignment_module_imports_nothing_heavy():
    code = (
        "import sys; import convo_warehouse.lib.assignment; "
        "heavy = [m for m in ('dagster', 'dbt', 'duckdb', 'pandas', 'numpy', 'scipy', 'pyarrow') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == ""


@pytest.fixture(scope="module")
def hash_bucket_sql(tmp_path_factory, dbt_target_dir) -> str:
    """The compiled SQL of ``hash_bucket`` for every variant count, over a table ``ids(id)``."""
    warehouse = Warehouse(tmp_path_factory.mktemp("assignment"), dbt_target_dir)
    buckets = ", ".join(
        f"{{{{ hash_bucket(\"'greeting_tone:' || id\", {count}) }}}} as bucket_{count}" for count in VARIANT_COUNTS
    )
    result = warehouse.dbt("compile", "--inline", f"select id, {buckets} from ids")
    return result.result.results[0].node.compiled_code


def test_sql_hash_bucket_assigns_like_python(hash_bucket_sql):
    con = duckdb.connect()
    con.execute("create table ids (id varchar)")
    con.executemany("insert into ids values (?)", [[i] for i in IDS])
    sql_buckets = {row[0]: row[1:] for row in con.execute(hash_bucket_sql).fetchall()}
    assert len(sql_buckets) == len(IDS)
    for conversation_id in IDS:
        python_buckets = tuple(assignment_bucket("greeting_tone", conversation_id, n) for n in VARIANT_COUNTS)
        assert sql_buckets[conversation_id] == python_buckets, conversation_id
