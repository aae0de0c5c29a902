"""``convo-dbt`` (lib/dbt_process.py): dbt's command line, with the garbage collector told what lives on."""

import gc
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from convo_warehouse.lib.dbt_process import NODE_START, _FreezeAtFirstNode
from convo_warehouse.project import dbt_executable


def _event(name: str) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(name=name))


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_are_frozen_once_at_the_first_node_start(unfrozen):
    freeze = _FreezeAtFirstNode()
    freeze(_event("MainReportVersion"))
    assert gc.get_freeze_count() == 0, "frozen before any node started"
    freeze(_event(NODE_START))
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    # what the nodes allocate afterwards stays collectable
    freeze(_event(NODE_START))
    assert gc.get_freeze_count() == 0


def test_the_pipeline_runs_convo_dbt_and_it_exits_as_dbt_does():
    assert Path(dbt_executable()).name == "convo-dbt"
    plain = Path(sys.executable).with_name("dbt")
    for command in ([dbt_executable(), "no-such-command"], [str(plain), "no-such-command"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 2, result
        assert "No such command 'no-such-command'" in result.stderr
