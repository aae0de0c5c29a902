"""``convo-warehouse`` commands run in the test process, by click's runner, with a given
environment set around them and restored after (``conftest.py`` fails a test that leaves one
changed): the command's own code without a Python start-up, the definitions' imports and Great
Expectations' import that a ``convo-warehouse run`` process pays each time. A test that needs
the entry point itself, or a second process beside a run, starts one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping


def invoke(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess:
    """``convo-warehouse ARGS`` with exactly ``env`` as its environment (variables of this
    process that ``env`` lacks are unset around it), as a ``CompletedProcess``; an unexpected
    exception is in its ``stderr``."""
    from click.testing import CliRunner

    from convo_warehouse.cli import main

    changed: dict[str, str | None] = {name: value for name, value in env.items() if os.environ.get(name) != value}
    changed.update({name: None for name in os.environ if name not in env})
    result = CliRunner().invoke(main, list(args), env=changed)
    unexpected = result.exception is not None and not isinstance(result.exception, SystemExit)
    error = result.stderr + (f"\n{result.exception!r}" if unexpected else "")
    return subprocess.CompletedProcess(["convo-warehouse", *args], result.exit_code, result.stdout, error)
