"""Does a run have anything to do? Landing files, seeds, vars and settings.

A run of a job has nothing to do, and builds nothing, when all three hold:

1. every file in the landing folder has the size and modification time the
   loader recorded when it last read it (``raw.landing_files_seen``), so no
   file is opened, let alone re-hashed, to find that out;
2. nothing was loaded since the last *complete* run of the job (the highest
   ``load_id`` in ``raw.loaded_files`` is the one that run built from);
3. the build fingerprint is the one of that run: a hash of everything besides
   the data that decides what the warehouse holds (the dbt project's models,
   macros, seeds and vars, the profile, the stage classifier's rules file and
   its settings from the environment).

A run is complete when its last asset, ``audit/pipeline_runs``, ran: every
step before it succeeded. A run that failed half-way is therefore redone.
A complete ``build_all_job`` run also stands for ``load_and_rebuild_job``,
whose assets are a subset of it.

The mtime test has the usual limit of size+mtime checks (make, rsync): a file
rewritten with the same size within the file system's timestamp resolution
looks unchanged.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from convo_warehouse.lib.landing import discover_files, file_signature
from convo_warehouse.lib.project_files import REPO_ROOT, project_fingerprint
from convo_warehouse.lib.warehouse import table_exists

DEFAULT_STAGE_RULES = REPO_ROOT / "orchestration" / "convo_warehouse" / "lib" / "classify" / "stage_rules.yml"

# Environment variables that change what a run computes (not where it
# writes, how loudly it logs, or secrets such as OPENAI_API_KEY).
SETTINGS_ENVIRONMENT = (
    "CONVO_DBT_TARGET",
    "CONVO_CLASSIFIER",
    "CONVO_LLM_MODEL",
    "CONVO_LLM_JSON_MODE",
    "CONVO_SENTIMENT",
    "CONVO_STAGE_RULES",
    "CONVO_EMBEDDING_MODEL",
    "CONVO_EMBEDDING_BACKEND",
    "OPENAI_BASE_URL",
)

# A complete run of the key job also stands for each job in its value.
COVERING_JOBS = {"load_and_rebuild_job": ("load_and_rebuild_job", "build_all_job")}

PIPELINE_RUNS_DDL = """
create schema if not exists audit;
create table if not exists audit.pipeline_runs (
    run_id varchar not null,
    job_name varchar not null,
    build_fingerprint varchar not null,
    loaded_through_load_id integer not null,
    started_at timestamp not null,
    completed_at timestamp
);
"""


def build_fingerprint(root: Path | None = None, environ: dict[str, str] | None = None) -> str:
    """sha256 over the project files, the stage rules file and the settings in the environment.

    ``root`` defaults to the dbt project the run builds: ``CONVO_DBT_PROJECT_DIR`` (as
    ``project.py`` reads it), else the repository."""
    env = os.environ if environ is None else environ
    root = root or Path(env.get("CONVO_DBT_PROJECT_DIR") or REPO_ROOT)
    digest = hashlib.sha256(project_fingerprint(root).encode())
    rules = Path(env.get("CONVO_STAGE_RULES") or DEFAULT_STAGE_RULES)
    digest.update(rules.read_bytes() if rules.is_file() else b"(no rules file)")
    for name in SETTINGS_ENVIRONMENT:
        digest.update(f"\0{name}={env.get(name, '')}".encode())
    return digest.hexdigest()


def changed_landing_files(con: duckdb.DuckDBPyConnection, landing_dir: Path) -> list[str]:
    """Landing files (relative paths) that are new, or whose size or mtime changed, since last read."""
    seen = _seen_signatures(con)
    changed = []
    for path in discover_files(Path(landing_dir)):
        relative = path.relative_to(landing_dir).as_posix()
        if seen.get(relative) != file_signature(path):
            changed.append(relative)
    return changed


def _seen_signatures(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    if not table_exists(con, "raw.landing_files_seen"):
        return {}
    rows = con.execute("select source_file, file_bytes, modified_ns from raw.landing_files_seen").fetchall()
    return {source_file: (size, modified) for source_file, size, modified in rows}


def loaded_through(con: duckdb.DuckDBPyConnection) -> int:
    """The newest load run in the warehouse (0 when nothing was ever loaded)."""
    if not table_exists(con, "raw.loaded_files"):
        return 0
    return con.execute("select coalesce(max(load_id), 0) from raw.loaded_files").fetchone()[0]


@dataclass(frozen=True)
class Verdict:
    """Whether a run can skip building, and why (one line for the log)."""

    up_to_date: bool
    reason: str


def build_verdict(con: duckdb.DuckDBPyConnection, job_name: str, fingerprint: str) -> Verdict:
    """Compare the warehouse with the last complete run of ``job_name`` (or a job covering it).

    Landing files are not looked at here: call it after the loader, or after
    ``changed_landing_files`` came back empty.
    """
    if not table_exists(con, "audit.pipeline_runs"):
        return Verdict(False, f"no complete run of {job_name} yet")
    jobs = COVERING_JOBS.get(job_name, (job_name,))
    last = con.execute(
        f"""
        select build_fingerprint, loaded_through_load_id, completed_at
        from audit.pipeline_runs
        where completed_at is not null and job_name in ({", ".join("?" for _ in jobs)})
        order by completed_at desc
        limit 1
        """,
        list(jobs),
    ).fetchone()
    if last is None:
        return Verdict(False, f"no complete run of {job_name} yet")
    previous_fingerprint, previous_load_id, completed_at = last
    current_load_id = loaded_through(con)
    if current_load_id != previous_load_id:
        return Verdict(False, f"new data: load runs {previous_load_id + 1}..{current_load_id} not built yet")
    if previous_fingerprint != fingerprint:
        return Verdict(False, "the dbt project, a seed, a var or a classifier setting changed")
    return Verdict(
        True,
        f"nothing new since the complete run of {completed_at:%Y-%m-%d %H:%M:%S} UTC: "
        "no new or changed landing file, same seeds, vars and settings; nothing built",
    )


def quick_verdict(con: duckdb.DuckDBPyConnection, landing_dir: Path, job_name: str) -> Verdict:
    """Before any loading: up to date only if no landing file changed and ``build_verdict`` agrees."""
    changed = changed_landing_files(con, landing_dir)
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return Verdict(False, f"new or changed landing files: {', '.join(changed[:3])}{more}")
    return build_verdict(con, job_name, build_fingerprint())


def record_run_started(
    con: duckdb.DuckDBPyConnection, run_id: str, job_name: str, fingerprint: str
) -> None:
    """Note what a run builds from (the fingerprint and the newest load), not yet complete."""
    con.execute(PIPELINE_RUNS_DDL)
    con.execute(
        "insert into audit.pipeline_runs values (?, ?, ?, ?, ?, null)",
        [run_id, job_name, fingerprint, loaded_through(con), _now()],
    )


def record_run_complete(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Mark ``run_id`` complete; returns how many started records it closed (0 or 1)."""
    con.execute(PIPELINE_RUNS_DDL)
    (closed,) = con.execute(
        "update audit.pipeline_runs set completed_at = ? where run_id = ? and completed_at is null",
        [_now(), run_id],
    ).fetchone()
    return closed


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
