"""Shared pytest fixtures (temporary warehouses: ``support/warehouse.py``) and the order test files start in."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.pipeline import share_parses_under, shared_target
from support.start_order import start_order
from support.warehouse import Warehouse


def pytest_addoption(parser: pytest.Parser) -> None:
    # `make test-embeddings` installs the extra and the model, so there a missing one is a failure
    parser.addoption("--require-embeddings", action="store_true",
                     help="fail, not skip, the tests marked embeddings when the extra or the model is missing")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    names = {item: item.path.relative_to(tests).as_posix() for item in items}
    order = {name: position for position, name in enumerate(start_order(list(dict.fromkeys(names.values()))))}
    items.sort(key=lambda item: order[names[item]])  # stable: a file's tests keep their order


@pytest.hookimpl(trylast=True)  # after pytest's own configure, which sets up the temporary folder
def pytest_configure(config: pytest.Config) -> None:
    """Pipeline runs of this process name their warehouse by one link (``support/pipeline.py``),
    and dbt in this process and its children writes into that folder's target, never the
    checkout's ``target/``: ``DBT_TARGET_PATH`` is set before a test module imports
    ``convo_warehouse.project`` (which reads it once), so a parse made for a test warehouse
    never leaves ``make run`` a manifest of another profile."""
    folder = config._tmp_path_factory.getbasetemp() / "pipeline-runs"
    share_parses_under(folder)
    os.environ["DBT_TARGET_PATH"] = str(shared_target())
    # dbt here and in the processes a test starts builds on profiles.yml's `test` target:
    # DuckDB on one thread, as two pytest processes share the cores
    os.environ.setdefault("CONVO_DBT_TARGET", "test")
    # a process a test starts (a pipeline run's dbt among them) that crashes in a C extension
    # prints every thread's stack, which the test's failure message then shows
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Streamlit's AppTest leaves its temporary script as ``__main__``; a process a later test
    of the same worker starts with multiprocessing's spawn would run that script and die."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


# pytest's own (the test and phase running), and one a library sets once on import (Streamlit
# sets matplotlib's backend)
_NOT_THE_TESTS = frozenset({"PYTEST_CURRENT_TEST", "MPLBACKEND"})


@pytest.fixture(autouse=True)
def _environment_kept() -> Iterator[None]:
    """A test leaves the process's environment as it found it: a command run in the test process
    that sets its settings there (``convo-warehouse run`` does) would hand them to the next tests
    of the same worker, which then read another test's warehouse."""
    before = dict(os.environ)
    yield
    changed = sorted(name for name in set(before) | set(os.environ)
                     if before.get(name) != os.environ.get(name) and name not in _NOT_THE_TESTS)
    assert not changed, f"the test changed the environment variables {changed}: set them with monkeypatch"


@pytest.fixture(scope="session")
def dbt_target_dir() -> Path:
    """In-process dbt's target folder: the pipeline runs' own, whose parse both use (support/pipeline.py)."""
    return shared_target()


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory, dbt_target_dir: Path) -> dict:
    """The manifest (``manifest.json``) of this test session's parse of the project as shipped,
    the one every test build of it uses: tests read it there, not in the checkout's target/,
    which ``make pytest`` neither needs nor writes."""
    return Warehouse(tmp_path_factory.mktemp("manifest"), dbt_target_dir).manifest_json()


@pytest.fixture
def warehouse(tmp_path: Path, dbt_target_dir: Path) -> Iterator[Warehouse]:
    yield Warehouse(tmp_path, dbt_target_dir)


@pytest.fixture
def make_warehouse(tmp_path: Path, dbt_target_dir: Path):
    """Factory for tests that need several independent warehouses."""

    def make(name: str) -> Warehouse:
        return Warehouse(tmp_path / name, dbt_target_dir)

    return make


@pytest.fixture(scope="session")
def embedding_model(request: pytest.FixtureRequest) -> Path:
    """The folder of the real sentence-embedding model (``make embedding-model``); skips (or, with
    --require-embeddings, fails) when it or the embeddings extra is missing."""
    from support.embeddings import model_folder_or_reason

    folder, reason = model_folder_or_reason()
    if folder is None:
        if request.config.getoption("--require-embeddings"):
            pytest.fail(reason)
        pytest.skip(reason)
    return folder
