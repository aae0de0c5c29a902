"""Start the Dagster UI (``dagster dev``) on 127.0.0.1 for this repository.

``make ui`` and ``convo-warehouse ui`` call ``main``. It

1. parses the dbt project (``dbt parse``) so the definitions can load, unless
   the manifest is already the parse of the project as it is now
   (``ensure_manifest``'s fingerprint),
2. makes a Dagster instance folder (``DAGSTER_HOME``, default
   ``data/.dagster_home``) with a ``dagster.yaml`` that turns telemetry off
   and allows one writing run at a time (others queue),
3. replaces itself with ``dagster dev`` on 127.0.0.1:3000, with the default
   SIGINT/SIGTERM handlers restored, so Ctrl-C or ``kill <pid>`` stops it even
   when started from a background shell that ignores those signals.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from convo_warehouse.concurrency import WRITER_POOL, WRITER_TAG_KEY
from convo_warehouse.project import REPO_ROOT, ensure_manifest

DEFAULT_HOME = "data/.dagster_home"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000

DAGSTER_YAML = f"""\
# Written by convo_warehouse.ui (make ui). Safe to delete: it is recreated.
telemetry:
  enabled: false

concurrency:
  runs:
    # DuckDB allows one writing process: every run of our jobs carries the
    # tag {WRITER_TAG_KEY}=duckdb, and only one such run may be in progress.
    # Others wait in the queue (QUEUED), they do not fail.
    tag_concurrency_limits:
      - key: "{WRITER_TAG_KEY}"
        limit: 1
  pools:
    # Steps that write ({WRITER_POOL} pool, and any other pool) run one at a
    # time across all runs, including ad-hoc materializations from the graph.
    default_limit: 1
"""


def prepare_home(home: Path) -> Path:
    """Create ``home`` with our ``dagster.yaml``; return the yaml's path."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)
    return config


def dagster_dev_command(host: str, port: int) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    return [
        str(dagster) if dagster.exists() else "dagster",
        "dev",
        "--host",
        host,
        "--port",
        str(port),
        "--workspace",
        str(REPO_ROOT / "workspace.yaml"),
    ]


def prepare_environment(home: Path) -> dict[str, str]:
    """The environment ``dagster dev`` runs with (manifest parsed, instance ready)."""
    os.chdir(REPO_ROOT)
    ensure_manifest()
    prepare_home(home)
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(home)
    # dagster-dbt finds `dbt` on PATH: put this venv's bin folder first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return env


def restore_default_signals() -> None:
    """Undo SIG_IGN inherited from a background shell (it survives exec)."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def main(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / DEFAULT_HOME).resolve()
    env = prepare_environment(home)
    warehouse = Path(os.environ.get("CONVO_DUCKDB_PATH") or "data/warehouse.duckdb")
    if not (REPO_ROOT / warehouse).exists():
        print(
            f"note: no warehouse at {warehouse} yet: run `make run` first for the demo data, "
            "or materialize build_all_job from the UI once files are in the landing folder.",
            file=sys.stderr,
        )
    print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home})", file=sys.stderr)
    restore_default_signals()
    command = dagster_dev_command(host, port)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(
        host=os.environ.get("CONVO_UI_HOST", DEFAULT_HOST),
        port=int(os.environ.get("CONVO_UI_PORT", DEFAULT_PORT)),
    )
