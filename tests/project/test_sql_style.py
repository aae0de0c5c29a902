"""The project's SQL (models, macros, tests/dbt) passes sqlfluff (.sqlfluff: the dbt templater).

`make lint` runs the check alone, on every core; `make test` runs it here, as one file of the
suite, so xdist fits it in beside the others like any file (it used to run beside pytest at a
lower priority, and then often ended after it, alone on one core). It runs the Makefile's own
`lint` target, in one process (``LINT_PROCESSES=1``: pytest's workers keep both cores busy, and a
second lint process would only add the CPU of sending each file's parse tree back to the first).
``-o`` keeps make from reinstalling the virtualenv this test runs in when the Makefile or a lock
is newer than it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LINT_TIMEOUT_SECONDS = 1200


def test_sqlfluff_finds_no_violation_in_models_macros_and_dbt_tests():
    # the lint's dbt has its own target, profile path and warehouse (Makefile), not this session's
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DBT_", "CONVO_"))}
    completed = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "lint", "LINT_PROCESSES=1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=LINT_TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, (
        f"sqlfluff found violations (fix them, or `make lint` to see them alone):\n"
        f"{completed.stdout[-8000:]}\n{completed.stderr[-3000:]}"
    )
    assert "All Finished" in completed.stdout + completed.stderr
