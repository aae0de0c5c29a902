"""dbt's own auditor, dbt-labs/dbt-project-evaluator, on a scratch copy of this project.

The package is never part of the project (no dbt hub here): this copies the
project to a scratch folder, adds the package (and dbt-utils, which it needs)
from local checkouts or from the dbt hub, sets the package's vars for our
layout (``tools/dbt_project_evaluator_vars.yml``), loads our exceptions
(``tools/dbt_project_evaluator_exceptions.csv``: every rule we keep breaking,
with the reason) as the package's exceptions seed, builds the package's
models and tests against a scratch DuckDB file, and prints each rule's
violations, with their rows. Exit status 1 when any violation is left.

    .venv/bin/python tools/project_audit.py --evaluator PATH --dbt-utils PATH   # local checkouts
    .venv/bin/python tools/project_audit.py                                     # from the dbt hub (network)
    make audit EVALUATOR=PATH DBT_UTILS=PATH
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
EXCEPTIONS = REPO_ROOT / "tools" / "dbt_project_evaluator_exceptions.csv"
SETTINGS = REPO_ROOT / "tools" / "dbt_project_evaluator_vars.yml"
PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
PROJECT_FOLDERS = ("models", "macros", "seeds", "tests/dbt")
HUB_VERSIONS = {"dbt-labs/dbt_project_evaluator": '">=1.0.0", "<2.0.0"', "dbt-labs/dbt_utils": '">=1.0.0", "<2.0.0"'}


def scratch_project(folder: Path, evaluator: Path | None, dbt_utils: Path | None) -> None:
    for name in PROJECT_FILES:
        shutil.copy2(REPO_ROOT / name, folder / name)
    for name in PROJECT_FOLDERS:
        shutil.copytree(REPO_ROOT / name, folder / name)
    shutil.copy2(EXCEPTIONS, folder / "seeds" / EXCEPTIONS.name)
    packages = []
    if evaluator is not None and dbt_utils is not None:
        # local checkouts: the evaluator's own packages.yml names dbt-utils on the hub
        shutil.copytree(evaluator, folder / "pk_evaluator")
        shutil.copytree(dbt_utils, folder / "pk_utils")
        (folder / "pk_evaluator" / "packages.yml").write_text("packages:\n  - local: pk_utils\n")
        packages = ["  - local: pk_evaluator", "  - local: pk_utils"]
    else:
        packages = [f"  - package: {name}\n    version: [{versions}]" for name, versions in HUB_VERSIONS.items()]
    (folder / "packages.yml").write_text("packages:\n" + "\n".join(packages) + "\n")
    project_file = folder / "dbt_project.yml"
    project = yaml.safe_load(project_file.read_text())
    # vars under the package's name are the package's alone
    project.setdefault("vars", {})["dbt_project_evaluator"] = yaml.safe_load(SETTINGS.read_text())
    # our exceptions replace the package's empty seed of the same name
    project.setdefault("seeds", {})["dbt_project_evaluator"] = {"dbt_project_evaluator_exceptions": {"+enabled": False}}
    project_file.write_text(yaml.safe_dump(project, sort_keys=False))


def violation_rows(database: Path, rule: str) -> list[str]:
    """The rows of a rule's table (the package's ``fct_`` model of that name), one line each."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        cursor = con.execute(f"select * from main.{rule}")
        names = [column[0] for column in cursor.description]
        return [", ".join(f"{name}={value}" for name, value in zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluator", type=Path, help="a local checkout of dbt-labs/dbt-project-evaluator")
    parser.add_argument("--dbt-utils", type=Path, help="a local checkout of dbt-labs/dbt-utils")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    if (args.evaluator is None) != (args.dbt_utils is None):
        parser.error("give both --evaluator and --dbt-utils (local checkouts), or neither (the dbt hub)")
    dbt = str(Path(sys.executable).with_name("dbt"))
    with tempfile.TemporaryDirectory(prefix="convo-audit-") as temporary:
        folder = args.keep or Path(temporary)
        if args.keep and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        scratch_project(folder, args.evaluator, args.dbt_utils)
        env = {
            **os.environ,
            "DBT_PROFILES_DIR": str(folder),
            "DBT_TARGET_PATH": str(folder / "target"),
            "DBT_LOG_PATH": str(folder / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            # not named after a schema of the project (a catalog called `audit` would shadow it)
            "CONVO_DUCKDB_PATH": str(folder / "evaluated.duckdb"),
        }
        for command in (["deps"], ["build", "--select", "package:dbt_project_evaluator", "dbt_project_evaluator_exceptions"]):
            completed = subprocess.run([dbt, *command], cwd=folder, env=env, capture_output=True, text=True)
            if completed.returncode != 0 and command[0] == "deps":
                print(completed.stdout + completed.stderr, file=sys.stderr)
                return 2
        found = re.findall(r"WARN (\d+) (?:dbt_project_evaluator\.)?is_empty_(fct_[a-z_]+?)_\s", completed.stdout)
        total = sum(int(count) for count, _ in found)
        for count, rule in sorted(found, key=lambda item: -int(item[0])):
            print(f"{int(count):5d}  {rule}")
            for row in violation_rows(Path(env["CONVO_DUCKDB_PATH"]), rule):
                print(f"       {row}")
        print(f"{total:5d}  violations in {len(found)} rules (exceptions: {EXCEPTIONS.relative_to(REPO_ROOT)})")
        if "ERROR" in completed.stdout.split("Done.")[-1].split("TOTAL")[0] and "ERROR=0" not in completed.stdout:
            print(completed.stdout[-3000:], file=sys.stderr)
            return 2
        return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
