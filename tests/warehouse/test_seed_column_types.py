"""Fractional seed columns are 8-byte doubles all the way through staging: a 4-byte float made
the SRM p-value of a 0.4/0.3/0.3 test differ from the exact one by 1.5e-6 relative."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from scipy import stats

from support.warehouse import REPO_ROOT, parsing_from_the_session
from convo_warehouse.lib.experiments import sample_ratio_mismatch

SESSIONS = [430, 290, 280]  # against 0.4 / 0.3 / 0.3 of 1,000


@pytest.fixture(scope="module")
def staged_three_way_test(tmp_path_factory):
    """A copy of the project whose experiments seed is a 0.4/0.3/0.3 test, its seeds built
    and staged by dbt into a fresh warehouse."""
    root = tmp_path_factory.mktemp("seed_types")
    project = root / "project"
    project.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(REPO_ROOT / name, project / name)
    for folder in ("models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(REPO_ROOT / folder, project / folder)
    (project / "seeds" / "experiments.csv").write_text(
        "test_name,variant,variant_order,is_control,weight\n"
        "three_way,a,0,true,0.4\n"
        "three_way,b,1,false,0.3\n"
        "three_way,c,2,false,0.3\n"
    )
    database = root / "warehouse.duckdb"
    env = {
        **os.environ,
        **parsing_from_the_session(root, root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--quiet", "--project-dir", str(project),
         "--select", "resource_type:seed", "stg_seeds__experiments", "stg_seeds__alert_rules",
         "--indirect-selection", "cautious", "--exclude-resource-type", "unit_test"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]
    con = duckdb.connect(str(database), read_only=True)
    yield con
    con.close()


def test_srm_p_value_of_a_three_way_test_is_exact(staged_three_way_test):
    weights = [
        row[0]
        for row in staged_three_way_test.execute(
            "select weight from staging.stg_seeds__experiments where test_name = 'three_way' order by variant_order"
        ).fetchall()
    ]
    exact = stats.chisquare(SESSIONS, [sum(SESSIONS) * share for share in (0.4, 0.3, 0.3)])
    srm = sample_ratio_mismatch(SESSIONS, weights)
    assert srm.p_value == pytest.approx(exact.pvalue, rel=1e-12)
    assert srm.chi_square == pytest.approx(exact.statistic, rel=1e-12)


def test_every_fractional_seed_column_is_a_double(staged_three_way_test):
    types = dict(
        staged_three_way_test.execute(
            "select table_schema || '.' || table_name || '.' || column_name, data_type"
            " from information_schema.columns"
            " where column_name in ('weight', 'threshold')"
        ).fetchall()
    )
    assert types == {
        "seeds.experiments.weight": "DOUBLE",
        "staging.stg_seeds__experiments.weight": "DOUBLE",
        "seeds.alert_rules.threshold": "DOUBLE",
        "staging.stg_seeds__alert_rules.threshold": "DOUBLE",
        "seeds.quality_weights.weight": "DOUBLE",
    }
