"""The dbt project's own files, where dbt writes its artifacts, and what a parse depends on.

Imports nothing heavy: the dbt server's standby reads it before dbt parses
(``lib/dbt_process.py``), as do the up-to-date check and the run's start.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

# What decides the build besides the data, relative to the repository.
PROJECT_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests/dbt")


def project_files(root: Path) -> list[Path]:
    files = []
    for name in PROJECT_INPUTS:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(child for child in path.rglob("*") if child.is_file())
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def project_fingerprint(root: Path = REPO_ROOT) -> str:
    """sha256 over the dbt project's own files (models, macros, seeds, vars, profile)."""
    digest = hashlib.sha256()
    for path in project_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def target_dir(project_dir: Path, environ: Mapping[str, str]) -> Path:
    """Where dbt writes its artifacts: ``DBT_TARGET_PATH`` (relative to the project) or ``<project>/target``."""
    value = environ.get("DBT_TARGET_PATH")
    if not value:
        return project_dir / "target"
    path = Path(value)
    return path if path.is_absolute() else project_dir / path


def parse_fingerprint(project_dir: Path, environ: Mapping[str, str]) -> str:
    """What a parse of the project in ``project_dir`` depends on: its files and every setting the
    profile reads.

    dbt parses partially only when the profile's connection (the warehouse's path, its
    settings) is the one of the saved parse, so each environment variable ``profiles.yml``
    reads counts, the warehouse path as written (a folder moved or named another way is
    another profile to dbt)."""
    profiles_dir = Path(environ.get("DBT_PROFILES_DIR") or project_dir)
    profiles = profiles_dir / "profiles.yml"
    # without one, dbt's parse fails and says so: nothing for the fingerprint to read
    profile = profiles.read_text() if profiles.is_file() else ""
    inputs = [project_fingerprint(project_dir), str(profiles_dir)]
    for name in sorted(set(re.findall(r"env_var\(\s*['\"](\w+)['\"]", profile))):
        inputs.append(f"{name}={environ.get(name, '')}")
    return hashlib.sha256("\0".join(inputs).encode()).hexdigest()
