"""Shared pytest fixtures (temporary warehouses: ``support/warehouse.py``) and the order test files start in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.start_order import start_order
from support.warehouse import Warehouse


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    names = {item: item.path.relative_to(tests).as_posix() for item in items}
    order = {name: position for position, name in enumerate(start_order(list(dict.fromkeys(names.values()))))}
    items.sort(key=lambda item: order[names[item]])  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def dbt_target_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt-target")


@pytest.fixture
def warehouse(tmp_path: Path, dbt_target_dir: Path) -> Iterator[Warehouse]:
    yield Warehouse(tmp_path, dbt_target_dir)


@pytest.fixture
def make_warehouse(tmp_path: Path, dbt_target_dir: Path):
    """Factory for tests that need several independent warehouses."""

    def make(name: str) -> Warehouse:
        return Warehouse(tmp_path / name, dbt_target_dir)

    return make
