"""``convo-dbt`` (lib/dbt_process.py): dbt's command line, with the garbage collector told what lives
on, and the dbt server a run starts so that its dbt processes start with dbt imported."""

import difflib
import gc
import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from convo_warehouse.lib.dbt_process import NODE_START, SERVER_ENV, _FreezeAtFirstNode, crash_signal, dbt_server
from convo_warehouse.lib.long_lived import long_lived
from convo_warehouse.project import dbt_executable


def _event(name: str) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(name=name))


@pytest.fixture
def unfrozen():
    enabled = gc.isenabled()
    gc.unfreeze()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_objects_are_frozen_once_and_the_collector_switched_on_at_the_first_node_start(unfrozen):
    gc.disable()  # as run_dbt leaves it for dbt's start
    freeze = _FreezeAtFirstNode()
    freeze(_event("MainReportVersion"))
    assert gc.get_freeze_count() == 0, "frozen before any node started"
    assert not gc.isenabled(), "the collector switched on before any node started"
    freeze(_event(NODE_START))
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()
    gc.unfreeze()
    # what the nodes allocate afterwards stays collectable
    freeze(_event(NODE_START))
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("enabled_before", [True, False])
def test_long_lived_pauses_the_collector_then_freezes_what_was_built(unfrozen, enabled_before):
    (gc.enable if enabled_before else gc.disable)()
    with long_lived():
        assert not gc.isenabled()
        kept = [object() for _ in range(10)]
    assert gc.get_freeze_count() >= len(kept)
    assert gc.isenabled() is enabled_before, "the collector is left as it was found"


def test_the_pipeline_runs_convo_dbt_and_it_exits_as_dbt_does():
    assert Path(dbt_executable()).name == "convo-dbt"
    plain = Path(sys.executable).with_name("dbt")
    for command in ([dbt_executable(), "no-such-command"], [str(plain), "no-such-command"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 2, result
        assert "No such command 'no-such-command'" in result.stderr


# --- the dbt server (dbt_server): dbt imported once per run, each dbt process forked from it

def _imports_of(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, str]:
    """``convo-dbt`` run as ``python -X importtime``: the result, and the modules this process imported
    itself (a dbt run by the server imports nothing here)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "convo_warehouse.lib.dbt_process", *command],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
    )
    return result, "\n".join(line for line in result.stderr.splitlines() if line.startswith("import time:"))


def test_the_server_runs_dbt_with_the_clients_arguments_folder_and_exit_code(tmp_path):
    with dbt_server():
        env = dict(os.environ)
        folder = Path(env[SERVER_ENV]).parent
        assert folder.stat().st_mode & 0o777 == 0o700, "anyone else could ask the server to run dbt"
        failed, imported = _imports_of(["no-such-command"], env)
        assert failed.returncode == 2, failed
        assert "No such command 'no-such-command'" in failed.stderr
        assert "dbt.cli.main" not in imported, "the client imported dbt: it was not served"
        # dbt init writes into the client's folder, not the server's
        served, imported = _imports_of(["init", "served_project", "--skip-profile-setup"], env, cwd=tmp_path)
        assert served.returncode == 0, served.stderr[-2000:]
        assert (tmp_path / "served_project" / "dbt_project.yml").is_file()
        assert "dbt.cli.main" not in imported
    assert not folder.exists(), "the server's socket folder outlived it"


def test_without_a_server_of_its_own_python_convo_dbt_runs_dbt_itself(tmp_path):
    env = {**os.environ, SERVER_ENV: str(tmp_path / "no-server.sock")}
    result, imported = _imports_of(["no-such-command"], env)
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
    assert "dbt.cli.main" in imported
    # a server answers another Python's convo-dbt with a refusal: that one runs dbt itself
    python3 = Path(sys.executable).with_name("python3")
    if python3.exists() and str(python3) != sys.executable:
        with dbt_server():
            other = subprocess.run(
                [str(python3), "-X", "importtime", "-m", "convo_warehouse.lib.dbt_process", "no-such-command"],
                capture_output=True, text=True, timeout=120,
            )
        assert other.returncode == 2
        assert "dbt.cli.main" in other.stderr


def test_the_server_forks_from_one_thread():
    # a fork copies only the forking thread: a library whose import starts one (DuckDB, Arrow,
    # NumPy's BLAS unless told to use one thread) must not be among what the server imports
    script = (
        "import sys\n"
        "from convo_warehouse.lib import dbt_process\n"
        "dbt_process.preload()\n"
        "assert {'dbt.cli.main', 'scipy.stats'} <= set(sys.modules), 'not preloaded'\n"
        "assert dbt_process._single_threaded()\n"
        "import duckdb\n"
        "assert not dbt_process._single_threaded(), 'the check cannot see threads'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def _small_project(root: Path, name: str, file: str, text: str) -> Path:
    """A dbt project ``root/name`` on an in-memory DuckDB, with its own profile and one ``file``
    (relative to the project) holding ``text``."""
    project = root / name
    (project / file).parent.mkdir(parents=True)
    (project / "dbt_project.yml").write_text(f"name: {name}\nversion: '1.0.0'\nconfig-version: 2\nprofile: {name}\n")
    (project / "profiles.yml").write_text(
        f"{name}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: ':memory:'\n"
    )
    (project / file).write_text(text)
    return project


def test_stopping_convo_dbt_stops_the_dbt_it_asked_for_and_the_server_serves_on(tmp_path):
    # loops for hours: the sandbox's ranges are bounded, their product is not
    project = _small_project(
        tmp_path, "spin", "macros/spin.sql",
        "{% macro spin() %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endmacro %}\n",
    )
    command = [dbt_executable(), "run-operation", "spin", "--project-dir", str(project), "--profiles-dir", str(project)]
    manifest = project / "target" / "manifest.json"
    with dbt_server():
        # its own target folder: the session's DBT_TARGET_PATH holds the parse the other tests read
        env = {**os.environ, "DBT_TARGET_PATH": str(manifest.parent)}
        assert SERVER_ENV in env
        client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            # parsed (into the client's target folder: the served dbt has the client's environment),
            # so spinning in the macro
            deadline = time.monotonic() + 120
            while not manifest.is_file() and client.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert manifest.is_file(), "the served dbt did not write its parse where the client's environment says"
            time.sleep(1)
            assert client.poll() is None, client.stdout.read()
            client.send_signal(signal.SIGTERM)
            client.wait(timeout=30)
        finally:
            client.kill()
        assert client.returncode != 0
        after = subprocess.run([dbt_executable(), "no-such-command"], capture_output=True, text=True, timeout=60)
        assert after.returncode == 2, "the server did not serve after a stopped dbt"


def test_the_server_ends_when_the_process_that_started_it_ends(tmp_path):
    script = (
        "import os, sys\n"
        "from convo_warehouse.lib.dbt_process import dbt_server, SERVER_ENV\n"
        "with dbt_server():\n"
        "    print(os.environ[SERVER_ENV], os.getpid(), flush=True)\n"
        "    os._exit(0)\n"  # no clean-up: as if killed
    )
    started = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    socket_path, parent = started.stdout.split()
    assert socket_path, started.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", f"dbt_process --serve [0-9]+ {parent}$"], capture_output=True, text=True)
        if not left.stdout.strip():
            break
        time.sleep(0.5)
    assert not left.stdout.strip(), f"the server of {socket_path} outlived its parent"
    assert not Path(socket_path).parent.exists(), "the server left its socket folder behind"


def test_the_build_after_a_preload_starts_from_the_manifest_the_standby_loaded(tmp_path, monkeypatch):
    """``preload_manifest``: the server's standby loads the project's manifest, and the build handed
    to it does not parse (dbt logs no parse); a build after it, with no standby left, parses as
    usual, and so does a build whose options change what dbt parses."""
    from convo_warehouse.lib.dbt_process import preload_manifest
    from convo_warehouse.project import REPO_ROOT, ensure_manifest
    from support.pipeline import pipeline_env

    for name, value in pipeline_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    ensure_manifest()
    build = [dbt_executable(), "build", "--select", "event_types", "--resource-type", "seed", "--log-level", "debug", "--log-format", "text"]

    def parsed(command: list[str]) -> bool:
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:]
        assert "1 of 1 OK loaded seed file" in result.stdout
        return "Partial parsing enabled" in result.stdout

    with dbt_server():
        preload_manifest()
        assert not parsed(build), "the build handed to the standby parsed the project again"
        assert parsed(build), "no standby was left: this build parses"
        preload_manifest()
        assert parsed([*build, "--vars", "{}"]), "--vars changes what dbt parses: the standby's manifest is not used"


# --- what dbt logs: unchanged, though events below a log's level are no longer formatted for it

def _env_of(project: Path) -> dict[str, str]:
    """The environment a dbt process of ``project`` runs in: its own target and logs, no usage stats sent."""
    return {**os.environ, "DBT_TARGET_PATH": str(project / "target"), "DBT_LOG_PATH": str(project / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def _logged(project: Path, command: list[str], level: str) -> tuple[list[tuple], list[tuple]]:
    """(name, level, message without timings) of every JSON line ``command`` wrote to stdout and
    to the project's dbt.log, both at ``level``."""
    import json
    import re

    log = project / "logs" / "dbt.log"
    log.unlink(missing_ok=True)
    result = subprocess.run(
        [*command, "build", "--project-dir", str(project), "--profiles-dir", str(project), "--log-format", "json",
         "--log-format-file", "json", "--log-level", level, "--log-level-file", level],
        capture_output=True, text=True, timeout=300, cwd=project, env=_env_of(project),
    )
    assert result.returncode == 0, result.stdout[-3000:]

    def events(text: str) -> list[tuple]:
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        # seconds, temporary names and addresses change from one process to the next, and a debug
        # message may name the process's own command line
        return [
            (line["info"]["name"], line["info"]["level"],
             "" if line["info"]["level"] == "debug" else re.sub(r"[0-9a-f]{6,}|\d+(\.\d+)?", "#", line["info"]["msg"]))
            for line in lines
        ]

    return events(result.stdout), events(log.read_text())


def test_dbt_logs_what_it_logs_without_formatting_what_no_log_keeps(tmp_path):
    """convo-dbt's loggers drop an event below their level before formatting it
    (``_LevelBeforeFormat``): stdout and dbt.log hold the same events as plain dbt's, at info
    and at debug, and a debug event on an info log is not formatted at all."""
    from dbt_common.events.logger import _JsonLogger

    from convo_warehouse.lib.dbt_process import _LevelBeforeFormat

    project = tmp_path / "logged"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: logged\nversion: '1.0.0'\nconfig-version: 2\nprofile: logged\n")
    (project / "profiles.yml").write_text(
        f"logged:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{project / 'w.duckdb'}'\n"
    )
    (project / "models" / "answer.sql").write_text("select 42 as answer\n")
    (project / "models" / "answers.sql").write_text(
        "{{ config(materialized='view') }}\nselect * from {{ ref('answer') }}\n"
    )
    convo_dbt = [sys.executable, "-m", "convo_warehouse.lib.dbt_process"]
    plain = [str(Path(sys.executable).with_name("dbt"))]
    subprocess.run([*plain, "parse", "--project-dir", str(project), "--profiles-dir", str(project)],
                   capture_output=True, timeout=300, cwd=project, env=_env_of(project))
    logged = {
        level: (_logged(project, convo_dbt, level), _logged(project, plain, level)) for level in ("info", "debug")
    }
    # which connection a statement gets, and when the last one closes, depend on timing: at debug,
    # the events about connections are not compared
    logged["debug"] = tuple(
        tuple([event for event in events if "Connection" not in event[0] and event[0] != "FlushEvents"]
              for events in run)
        for run in logged["debug"]
    )
    for level, (ours, theirs) in logged.items():
        for where, mine, dbts in zip(("stdout", "dbt.log"), ours, theirs, strict=True):
            assert mine == dbts, f"at {level}, convo-dbt's {where} differs from dbt's: " + "\n".join(
                difflib.unified_diff([str(event) for event in dbts], [str(event) for event in mine], lineterm="", n=1))
    statements = [[name for name, _, _ in logged[level][0][1] if name == "SQLQuery"] for level in ("info", "debug")]
    assert statements[1] and not statements[0], "no debug event to compare: the test shows nothing"

    # the filter itself: a debug event never reaches an info logger's formatting
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager_client import get_event_manager
    from dbt_common.events.functions import get_stdout_config
    from dbt_common.events.logger import LineFormat

    manager = get_event_manager()
    saved = list(manager.loggers)
    try:
        manager.loggers[:] = [_JsonLogger(get_stdout_config(LineFormat.Json, False, EventLevel.INFO, False))]
        _LevelBeforeFormat()(_event("MainReportVersion"))
        keep = manager.loggers[0].filter
        message = lambda name, level: SimpleNamespace(info=SimpleNamespace(name=name, level=level, code=""))
        assert not keep(message("SQLQuery", "debug"))
        assert keep(message("LogModelResult", "info"))
        assert keep(message("ShowNode", "debug")), "print events go out whatever the level"
    finally:
        manager.loggers[:] = saved


@pytest.mark.parametrize("target", ["duckdb", "spark"])
def test_dagster_dbt_is_imported_without_dbt_core_on_duckdb_only(target):
    """Every DuckDB dbt command is a process of its own: the process that loads the definitions
    imports dagster-dbt without dbt-core (without_dbt_core), and dbt-core imports as usual
    after. Spark's run selects its nodes with dbt's selector, in its own process: it keeps it."""
    probe = (
        "import sys\n"
        "from convo_warehouse.lib.dbt_process import without_dbt_core\n"
        "with without_dbt_core():\n"
        "    from dagster_dbt import compat\n"
        "print(compat.DBT_PYTHON_VERSION, 'dbt' in sys.modules)\n"
        "import dbt.version\n"
        "print(dbt.version.__version__)\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "CONVO_TARGET": target},
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    imported, version = completed.stdout.strip().splitlines()[-2:]
    installed = importlib.metadata.version("dbt-core")
    assert imported == ("None False" if target == "duckdb" else f"{installed} True")
    assert version == installed


def test_the_definitions_load_without_dbt_core():
    """Loading the definitions (what a run's process does before its first step) imports no
    module of dbt-core: a second of CPU at every start, beside the dbt server importing it."""
    probe = (
        "import sys\n"
        "import convo_warehouse.definitions\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'dagster_dbt', 'dbt', 'dbt_common'}))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "CONVO_TARGET": "duckdb"},
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().splitlines()[-1] == "['dagster_dbt']"


# --- the manifest a parse kept for the standbys that follow

_STANDBY_LOADS = """
import json, os, sys
from pathlib import Path
from dbt.parser import manifest as parser
from convo_warehouse.lib import dbt_process

request = {"cwd": os.getcwd(), "env": dict(os.environ)}
cache = dbt_process._ManifestCache(request)
kept = cache.read()
def no_parse(*args, **kwargs):
    raise AssertionError("the standby parsed the project")
if sys.argv[1] == "kept":
    parser.ManifestLoader.get_full_manifest = no_parse
loaded = dbt_process._load_manifest(request)
print(json.dumps({"kept": kept is not None, "loaded": loaded is not None,
                  "nodes": sorted(loaded[1].nodes) if loaded else None}))
"""


def test_a_parse_keeps_its_manifest_and_the_next_standby_starts_from_it(tmp_path, monkeypatch):
    """``_ManifestCache``: the run's parse (``ensure_manifest``) keeps the manifest it made, owner-only,
    and a standby of the same project loads it without parsing; without it, a standby parses and
    keeps its own. A kept file that others may write, or made from other inputs, is not used."""
    import json

    from convo_warehouse.lib.dbt_process import _ManifestCache
    from convo_warehouse.project import REPO_ROOT, ensure_manifest, target_path
    from support.pipeline import pipeline_env

    for name, value in pipeline_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    ensure_manifest(force=True)
    kept = target_path() / _ManifestCache.FILE
    assert kept.stat().st_mode & 0o777 == 0o600

    def standby(mode: str) -> dict:
        done = subprocess.run([sys.executable, "-c", _STANDBY_LOADS, mode], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    nodes = sorted(json.loads((target_path() / "manifest.json").read_text())["nodes"])
    assert standby("kept") == {"kept": True, "loaded": True, "nodes": nodes}
    kept.chmod(0o620)  # another user of the group could have written it
    assert standby("parse") == {"kept": False, "loaded": True, "nodes": nodes}
    # the standby that parsed kept its manifest anew, owner-only
    assert kept.stat().st_mode & 0o777 == 0o600 and standby("kept")["kept"]
    lines = kept.read_bytes().split(b"\n", 1)
    kept.write_bytes(b"0" * 64 + b"\n" + lines[1])  # made from other files or settings
    assert standby("parse")["kept"] is False


def test_what_a_kept_manifest_was_parsed_from_covers_the_files_and_the_profile(tmp_path):
    """``_parse_inputs``: a model, a macro or the profile's settings changed, the kept manifest is not the project's."""
    import shutil

    from convo_warehouse.lib.dbt_process import _parse_inputs
    from convo_warehouse.lib.project_files import PROJECT_INPUTS
    from convo_warehouse.project import REPO_ROOT

    project = tmp_path / "project"
    project.mkdir()
    for name in PROJECT_INPUTS:
        source = REPO_ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, project / name)
    env = {"CONVO_DUCKDB_PATH": str(tmp_path / "a.duckdb")}
    first = _parse_inputs(project, env)
    assert _parse_inputs(project, dict(env)) == first
    assert _parse_inputs(project, {"CONVO_DUCKDB_PATH": str(tmp_path / "b.duckdb")}) != first
    model = next((project / "models").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- changed\n")
    assert _parse_inputs(project, env) != first


# --- a dbt that crashes in C code: said, and told apart from dbt's own failures

@pytest.mark.parametrize(("code", "crash"), [
    (-signal.SIGSEGV, signal.SIGSEGV), (128 + signal.SIGSEGV, signal.SIGSEGV), (128 + signal.SIGABRT, signal.SIGABRT),
    (-signal.SIGBUS, signal.SIGBUS), (0, None), (1, None), (2, None), (None, None),
    # stopped, not crashed: a retry would be stopped again, or killed again for its memory
    (-signal.SIGTERM, None), (128 + signal.SIGKILL, None), (-signal.SIGINT, None),
])
def test_a_crash_in_c_code_is_told_from_dbts_own_codes_and_from_being_stopped(code, crash):
    assert crash_signal(code) == crash


def test_a_served_dbt_that_crashes_says_so_with_every_threads_stack(tmp_path):
    # a Python model runs in dbt's process: as a fault in a C extension would end it
    project = _small_project(
        tmp_path, "crash", "models/faults.py",
        "def model(dbt, session):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    return session.sql('select 1')\n",
    )
    command = [dbt_executable(), "run", "--project-dir", str(project), "--profiles-dir", str(project)]
    env = {**os.environ, "DBT_TARGET_PATH": str(project / "target")}
    alone = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    with dbt_server():
        served = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert crash_signal(alone.returncode) == signal.SIGSEGV, alone.returncode
    assert served.returncode == 128 + signal.SIGSEGV, served.stderr[-2000:]
    assert crash_signal(served.returncode) == signal.SIGSEGV
    for result in (alone, served):
        assert "Fatal Python error: Segmentation fault" in result.stderr, "no thread's stack"
        assert "faults.py" in result.stderr or "model" in result.stderr
    assert f"died of signal {int(signal.SIGSEGV)}" in served.stderr

