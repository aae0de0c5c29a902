"""The order test files start in under xdist (tests/support/start_order.py LONGEST_FIRST): the longest first."""

from __future__ import annotations

import subprocess
import sys

from support.start_order import LONGEST_FIRST, start_order
from support.warehouse import REPO_ROOT


def test_every_listed_file_exists_once():
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    missing = [name for name in LONGEST_FIRST if not (REPO_ROOT / "tests" / name).is_file()]
    assert missing == [], f"tests/support/start_order.py LONGEST_FIRST names files that do not exist: {missing}"


def test_listed_files_start_first_in_their_order_and_the_rest_keep_theirs():
    collected = ["test_a.py", LONGEST_FIRST[2], "test_b.py", LONGEST_FIRST[0], "test_c.py"]
    assert start_order(collected) == [LONGEST_FIRST[0], LONGEST_FIRST[2], "test_a.py", "test_b.py", "test_c.py"]


def test_collection_follows_the_order_and_make_keeps_it_under_xdist():
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/project/test_locks.py", f"tests/{LONGEST_FIRST[3]}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    files = [line.split("::")[0] for line in listed.stdout.splitlines() if "::" in line]
    assert files[0] == f"tests/{LONGEST_FIRST[3]}" and files[-1] == "tests/project/test_locks.py"
    # xdist's default would reorder files by their number of tests
    # (the command `make pytest` runs, as make expands it)
    dry_run = subprocess.run(["make", "-n", "--no-print-directory", "pytest"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60)
    pytest_line = next(line for line in dry_run.stdout.splitlines() if "bin/pytest -q" in line)
    assert "--dist loadfile" in pytest_line and "--no-loadscope-reorder" in pytest_line
