"""docs/configuration.md lists every CONVO_* environment variable the code reads."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "configuration.md"
# Where settings are read: the package, the capture SDK, the dbt project, the Makefile, CI and benchmarks.
SOURCES = ("orchestration", "capture-sdk/src", "models", "macros", "benchmarks", ".ci", "Makefile", "profiles.yml", "dbt_project.yml")
SUFFIXES = {".py", ".sql", ".yml", ".yaml", ""}
NAME = re.compile(r"\bCONVO_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def names_in_code() -> set[str]:
    names: set[str] = set()
    for source in SOURCES:
        root = REPO_ROOT / source
        files = [root] if root.is_file() else [path for path in root.rglob("*") if path.is_file()]
        for path in files:
            if path.suffix in SUFFIXES and "egg-info" not in path.parts and "__pycache__" not in path.parts:
                names.update(NAME.findall(path.read_text(errors="replace")))
    return names


def documented() -> dict[str, str]:
    """name -> its default cell, from the page's tables."""
    rows = {}
    for line in PAGE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`CONVO_"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_every_convo_variable_is_on_the_configuration_page_with_a_default():
    code = names_in_code()
    page = documented()
    assert len(code) >= 30, code  # the grep finds the settings
    missing = sorted(code - set(page))
    assert not missing, f"add these to docs/configuration.md (with their default): {missing}"
    stale = sorted(set(page) - code)
    assert not stale, f"docs/configuration.md lists variables no code reads: {stale}"
    assert all(default for default in page.values())


def test_the_grep_finds_a_name_that_is_not_documented(tmp_path, monkeypatch):
    """The check can fail: a new name in the code is reported."""
    module = sys.modules[names_in_code.__module__]

    fake = tmp_path / "orchestration"
    fake.mkdir()
    (fake / "new.py").write_text('os.environ.get("CONVO_BRAND_NEW_SETTING")\n')
    monkeypatch.setattr(module, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(module, "SOURCES", ("orchestration",))
    assert module.names_in_code() == {"CONVO_BRAND_NEW_SETTING"}
    assert "CONVO_BRAND_NEW_SETTING" not in documented()
