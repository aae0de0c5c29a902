"""``convo-dbt``: dbt's own command line, as every dbt process the pipeline starts runs it.

The same arguments, output and exit codes as ``dbt`` (it is dbt's click command,
run with two event callbacks). Three things differ.

What dbt's logs cost. Each log drops the events below its level before it formats
them (``_LevelBeforeFormat``), not after; what each log holds is the same.

Python's cyclic garbage collector. Once dbt has loaded the manifest and the
adapter, their objects (every node, macro and config of the project) live until
the process ends, yet each full collection walks them all again, and the
interpreter's last collection at exit walks them once more, while nothing is
left to free. The collector is off until the first node starts (as it is while
the server imports dbt and a standby loads the manifest: ``lib/long_lived.py``);
then what exists is moved out of its sight (``gc.freeze``), and everything is at
the end; what the nodes allocate in between is collected as usual.

Where dbt starts. Importing dbt costs seconds of CPU in every dbt process,
while a run spends its own first seconds importing Dagster. ``convo-warehouse
run`` starts a dbt server first (``dbt_server``): a process that imports dbt
(and SciPy's stats, for the Python models) once, beside Dagster's start, then
waits on a Unix socket in an owner-only folder.
``convo-dbt``, given that socket in ``CONVO_DBT_SERVER``, sends its arguments,
folder, environment and standard streams there; the server forks a child that
runs dbt with them, already imported, and the exit code comes back. Without a
server (or one of another Python) ``convo-dbt`` runs dbt itself.

The manifest, too. Each ``dbt build`` would read the project's parse again (its
first seconds). Once the run has parsed the project, it asks the server for a
standby (``preload_manifest``): a child forked at once that loads the manifest
while the run starts Dagster, then waits. The next dbt command is handed to it
rather than to a new child, and a ``build`` starts from that manifest (dbt's own
way: the ``manifest`` of its context object) if its project, target, warehouse
and every environment variable the project reads are those of the load and it
passes none of the options that change what dbt parses; anything else parses as
usual. The standby runs the command itself: loading the manifest imports DuckDB,
which starts a thread, and a process with threads is not forked. A parse keeps
its manifest in the target folder (``_ManifestCache``), and the next standby of
the project loads that rather than parsing again.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from convo_warehouse.lib.long_lived import long_lived

NODE_START = "NodeStart"
SERVER_ENV = "CONVO_DBT_SERVER"
# What the server imports before it forks: no library that starts a thread (DuckDB, Arrow),
# since a fork copies only the forking thread (``_single_threaded``). dbt's own modules, pure
# Python, and what the Python models' statistics import (``lib/experiments.py``,
# ``lib/patterns.py``): SciPy's stats took a second and more of every build, with the other
# nodes waiting on the interpreter lock. NumPy starts no thread when its BLAS is told to use one
# (``PRELOAD_ENV``, set in the server only: a dbt child keeps its one-thread BLAS).
PRELOADED = ("dbt.cli.main", "dbt.task.build", "dbt.adapters.factory", "dbt.parser.manifest",
             "dbt.context.providers", "scipy.stats")
PRELOAD_ENV = {"OPENBLAS_NUM_THREADS": "1"}
_LENGTH = struct.Struct("!q")
# the signals a process dies of by a fault in its own C code, not by being stopped: DuckDB's
# Python binding has crashed so, rarely, under dbt's threads (a run's build then fails once)
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT)
PRELOAD = "preload"
# what a parse depends on besides the project's files and the environment variables its
# files read (which dbt records in the manifest): a request differing in one parses itself
MANIFEST_ENV = ("DBT_PROFILES_DIR", "CONVO_DBT_TARGET", "CONVO_DUCKDB_PATH")
# options that change what dbt parses: a build given one of them parses itself
PARSE_OPTIONS = {"--vars", "--target", "-t", "--profile", "--project-dir", "--profiles-dir"}
# how a standby parses; the packages whose code a parse's result holds (its macros included)
PARSE_ARGS = ("parse", "--no-write-json", "--quiet", "--log-level-file", "none")
DBT_DISTRIBUTIONS = ("dbt-core", "dbt-adapters", "dbt-common", "dbt-duckdb", "dbt-spark", "dbt-semantic-interfaces")


class _FreezeAtFirstNode:
    """An event callback: at the first node's start, what dbt built to get there is frozen and the
    collector, off until then (``run_dbt``), is switched on (``lib/long_lived.py``)."""

    def __init__(self) -> None:
        self.frozen = False

    def __call__(self, event) -> None:
        if not self.frozen and event.info.name == NODE_START:
            self.frozen = True
            gc.freeze()
            gc.enable()


class _LevelBeforeFormat:
    """An event callback: at the first event, each of dbt's loggers (stdout, ``dbt.log``) is made
    to drop an event below its level before it formats it.

    dbt's loggers format every event as a JSON line (the protobuf message turned into a dict,
    then dumped) and only then let Python's logging drop it by level. A build fires a debug
    event or three for every SQL statement it runs (the statement, its status, the connection),
    so on info-level logs most of that formatting is thrown away, and it held dbt's interpreter
    lock for a tenth of a build. What reaches each log is unchanged (``test_dbt_process.py``
    compares them event by event with plain dbt's); the first event, fired before any callback
    can run, is formatted as before.
    """

    def __init__(self) -> None:
        self.done = False

    def __call__(self, event) -> None:
        if self.done:
            return
        self.done = True
        from dbt_common.events.event_manager_client import get_event_manager
        from dbt_common.events.logger import PRINT_EVENT_NAMES, _log_level_map

        def at_level(logger):
            threshold, keep = _log_level_map[logger.level], logger.filter

            def level_then_filter(msg) -> bool:
                # print events go out whatever the level (dbt sends them as errors); an event's
                # level is a string, equal to dbt's EventLevel of that name
                if msg.info.name not in PRINT_EVENT_NAMES and _log_level_map[msg.info.level] < threshold:
                    return False
                return keep(msg)

            return level_then_filter

        for logger in getattr(get_event_manager(), "loggers", []):
            logger.filter = at_level(logger)


def run_dbt(args: list[str], manifest=None) -> None:
    """dbt's command line on ``args`` (from ``manifest`` rather than a parse, when given); ends the
    process with dbt's exit code (click's standalone main)."""
    import faulthandler

    from dbt.cli.main import cli

    # a crash of a library's C code (SIGSEGV) leaves every thread's Python stack on stderr
    faulthandler.enable()
    # dbt's start (its project, adapter and graph) lives until the end: no collection until its
    # first node (_FreezeAtFirstNode)
    gc.disable()
    try:
        # `obj` is where dbt's own programmatic runner passes its callbacks and manifest
        obj = {
            "callbacks": [_LevelBeforeFormat(), _FreezeAtFirstNode()],
            **({"manifest": manifest} if manifest is not None else {}),
        }
        try:
            cli.main(args=args, prog_name="dbt", obj=obj)
        except SystemExit as exit_:
            # a parse's manifest (dbt left it in `obj`) is kept for the standbys that follow
            if exit_.code in (0, None) and args[:1] == ["parse"] and obj.get("manifest") is not None:
                request = {"cwd": os.getcwd(), "env": dict(os.environ)}
                _ManifestCache(request).write((_manifest_key(request, obj["manifest"].env_vars), obj["manifest"]))
            raise
    finally:
        gc.freeze()


def main() -> None:
    server = os.environ.get(SERVER_ENV)
    if server:
        code = _delegate(server, sys.argv[1:])
        if code is not None:
            sys.exit(code)
    run_dbt(sys.argv[1:])


def _send(connection: socket.socket, payload: bytes) -> None:
    connection.sendall(_LENGTH.pack(len(payload)) + payload)


def _receive(connection: socket.socket) -> bytes:
    def exactly(size: int) -> bytes:
        chunks = b""
        while len(chunks) < size:
            chunk = connection.recv(size - len(chunks))
            if not chunk:
                raise ConnectionError("the dbt server closed the connection")
            chunks += chunk
        return chunks

    return exactly(_LENGTH.unpack(exactly(_LENGTH.size))[0])


def _delegate(path: str, args: list[str]) -> int | None:
    """dbt run by the server at ``path`` on this process's streams: its exit code, or None when no
    server of this Python answers or it cannot fork safely (the caller then runs dbt itself)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        socket.send_fds(connection, [b"\0"], [0, 1, 2])
        request = {"python": sys.executable, "args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
        _send(connection, json.dumps(request).encode())
        child = _LENGTH.unpack(_receive(connection))[0]
    except OSError:
        connection.close()
        return None
    if child <= 0:  # refused: a server of another Python, or one that cannot fork safely
        connection.close()
        return None

    # a stop asked of this process (Dagster cancelling the step) stops dbt
    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    with connection:
        try:
            code = _LENGTH.unpack(_receive(connection))[0]
        except OSError as error:
            print(f"convo-dbt: the dbt server stopped before dbt {child} ended ({error})", file=sys.stderr)
            return 1
    if code >= 0:
        return code
    # dbt died of a signal: said here (its own process would say nothing), and exited with as a
    # shell does (128 + the signal), which crash_signal reads
    crash = crash_signal(code)
    print(f"convo-dbt: dbt (process {child}) died of signal {-code} ({signal.strsignal(-code)})"
          + (": a crash in C code, not a dbt error; every thread's stack is above" if crash else ""),
          file=sys.stderr)
    return 128 - code


def crash_signal(code: int | None) -> signal.Signals | None:
    """The signal a dbt process that ended with ``code`` died of, when it is a crash in C code
    (``CRASH_SIGNALS``): ``-N`` from a process of its own (``subprocess``' return code), ``128 + N``
    from ``convo-dbt`` served (``_delegate``); else None (dbt's own codes are 0, 1 and 2)."""
    if code is None:
        return None
    number = -code if code < 0 else code - 128
    return next((crash for crash in CRASH_SIGNALS if crash.value == number), None)


def preload_manifest() -> None:
    """Ask this process's dbt server, if any, to load the project's manifest for the builds this
    process starts next (with its current folder and environment); returns at once, and a build
    asked for meanwhile waits for the load."""
    path = os.environ.get(SERVER_ENV)
    if not path:
        return
    request = {"python": sys.executable, PRELOAD: True, "cwd": os.getcwd(), "env": dict(os.environ)}
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(path)
        socket.send_fds(connection, [b"\0"], [0, 1, 2])
        _send(connection, json.dumps(request).encode())


def serve(descriptor: int, parent: int) -> None:
    """Import dbt, then fork a dbt child for each request on the listening socket ``descriptor``
    while the process ``parent`` is this one's parent (until a SIGTERM, or it ends)."""
    listener = socket.socket(fileno=descriptor)
    path = listener.getsockname()
    with long_lived():
        preload()
    state = {"forkable": _single_threaded(), "standby": None}
    listener.settimeout(1.0)
    # stopped (SIGTERM from dbt_server) or orphaned, the server ends its standby with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while os.getppid() == parent:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(None)
                # a request that breaks off or makes no sense ends only itself
                with contextlib.suppress(Exception):
                    _serve_one(listener, connection, state)
    finally:
        if state["standby"] is not None:
            with contextlib.suppress(OSError):
                os.kill(state["standby"][0], signal.SIGKILL)
                os.waitpid(state["standby"][0], 0)
        # the parent ended without stopping this server (killed): its socket and folder go too
        if os.getppid() != parent:
            with contextlib.suppress(OSError):
                os.unlink(path)
                os.rmdir(os.path.dirname(path))


def preload() -> None:
    """Import ``PRELOADED`` as the server does (a module that is not installed is skipped)."""
    import importlib

    os.environ.update(PRELOAD_ENV)
    for module in PRELOADED:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def _single_threaded() -> bool:
    """Whether this process runs one thread (Linux: its tasks; elsewhere Python's threads)."""
    tasks = Path("/proc/self/task")
    return len(list(tasks.iterdir())) == 1 if tasks.is_dir() else threading.active_count() == 1


def _project_dir(request: dict) -> Path:
    """The dbt project a request's dbt reads: ``DBT_PROJECT_DIR``, else its current folder (a
    ``--project-dir`` option makes a build parse itself: ``PARSE_OPTIONS``)."""
    return Path(request["env"].get("DBT_PROJECT_DIR") or request["cwd"]).resolve()


def _manifest_key(request: dict, names) -> tuple:
    """What a manifest parsed for ``request`` depends on, beside the project's files: the project,
    ``MANIFEST_ENV`` and the environment variables ``names`` (those the project's files read)."""
    env = request["env"]
    project = _project_dir(request)
    values = {name: env.get(name) for name in sorted({*MANIFEST_ENV, *names})}
    # the profile's folder, not how it was named: dbt's default when unset is the current folder if
    # it holds a profiles.yml (a run's own parse names it; dagster-dbt names it for every build)
    cwd = Path(request["cwd"])
    named = env.get("DBT_PROFILES_DIR")
    values["DBT_PROFILES_DIR"] = str((cwd / named).resolve() if named else (
        cwd.resolve() if (cwd / "profiles.yml").is_file() else Path.home() / ".dbt"))
    return str(project), tuple(values.items())


def _load_manifest(request: dict):
    """The manifest of the project ``request`` names, parsed as its dbt would, with what it
    depends on (``_manifest_key``); None if dbt fails.

    The parse's result is kept (``_ManifestCache``) for the next standby of the same project, which
    then starts from it: dbt's parse reads the saved partial parse into objects whose
    (de)serializers it first generates, in every process, a second of CPU beside Dagster's start.
    From a kept manifest, the standby still runs dbt's start up to the manifest (the same command
    given the manifest: project, profile, adapter), so the build finds that done."""
    from dbt.adapters.factory import reset_adapters
    from dbt.cli.main import dbtRunner

    directory, environment = os.getcwd(), dict(os.environ)
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        cache = _ManifestCache(request)
        kept = cache.read()
        if kept is not None and kept[0] != _manifest_key(request, kept[1].env_vars):
            kept = None  # a variable the project reads changed: parsed again, and kept anew
        result = dbtRunner(manifest=kept[1] if kept else None).invoke(list(PARSE_ARGS))
        if not result.success or result.result is None:
            return None
        if kept:
            return kept
        loaded = _manifest_key(request, result.result.env_vars), result.result
        cache.write(loaded)
        return loaded
    finally:
        # the adapter is the build's own: it registers it from its own profile
        reset_adapters()
        os.chdir(directory)
        os.environ.clear()
        os.environ.update(environment)


class _ManifestCache:
    """A standby's parsed manifest, kept in the target folder for the next standby of the project.

    ``<target>/convo_manifest.pickle``: one line naming what the parse read (``_parse_inputs``:
    the project's files, the profile and the settings it reads, the versions of Python and dbt),
    then the manifest with its ``_manifest_key``, pickled. A kept manifest is used only when that
    line is the one of the project now, and only from a file of this user that nobody else may
    write (unpickling runs code, as the project's own Python models do); anything else parses."""

    FILE = "convo_manifest.pickle"

    def __init__(self, request: dict) -> None:
        from convo_warehouse.lib.project_files import target_dir

        project = _project_dir(request)
        self.path = target_dir(project, request["env"]) / self.FILE
        self.inputs = _parse_inputs(project, request["env"])

    def read(self):
        import pickle

        with contextlib.suppress(OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError,
                                 ImportError), open(self.path, "rb") as kept:
            status = os.fstat(kept.fileno())
            if status.st_uid != os.getuid() or status.st_mode & 0o022:
                return None
            if kept.readline().rstrip(b"\n").decode() != self.inputs:
                return None
            return pickle.load(kept)
        return None

    def write(self, loaded) -> None:
        import pickle

        from dbt.contracts.graph.manifest import Manifest

        class Pickler(pickle.Pickler):
            def reducer_override(self, obj):
                # dbt's own Manifest.__reduce_ex__ passes its fields by position and misses two of
                # them, so the lookups it rebuilds land in the wrong fields: pickled by its state
                if type(obj) is Manifest:
                    return _manifest_from_state, (Manifest, {k: v for k, v in vars(obj).items() if k != "_lock"})
                return NotImplemented

        with contextlib.suppress(OSError, pickle.PicklingError):
            descriptor, partial = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.FILE}.")  # mode 0600
            try:
                with os.fdopen(descriptor, "wb") as kept:
                    kept.write(self.inputs.encode() + b"\n")
                    Pickler(kept, protocol=pickle.HIGHEST_PROTOCOL).dump(loaded)
                os.replace(partial, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)


def _manifest_from_state(cls, state: dict):
    """A manifest ``_ManifestCache`` pickled, with a lock of its own (a lock is not pickled)."""
    from dbt.mp_context import get_mp_context

    manifest = cls.__new__(cls)
    vars(manifest).update(state)
    manifest._lock = get_mp_context().Lock()
    return manifest


def _parse_inputs(project: Path, env: dict) -> str:
    """A hash of what dbt's parse of ``project`` read besides the environment variables its files
    read (which ``_manifest_key`` compares): its files, the profile and the settings it reads
    (``parse_fingerprint``), and the Python and dbt that parsed."""
    import hashlib
    from importlib import metadata

    from convo_warehouse.lib.project_files import parse_fingerprint

    parts = [sys.version, str(project), parse_fingerprint(project, env)]
    for distribution in DBT_DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{distribution}=={metadata.version(distribution)}")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _standby(listener: socket.socket, channel: socket.socket, preload: dict) -> None:
    """In a child forked for ``preload``: load the manifest, then run the one dbt command the
    server hands over on ``channel`` (from the manifest if it fits: ``_manifest_key``) and exit."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's handler is not the standby's
    listener.close()
    loaded = None
    with long_lived(), contextlib.suppress(Exception):
        loaded = _load_manifest(preload)
    try:
        _, streams, _, _ = socket.recv_fds(channel, 1, 3)
        request = json.loads(_receive(channel))
    except (OSError, ValueError):  # the server stopped, or sent nothing usable
        os._exit(1)
    manifest = None
    if loaded is not None and request["args"][:1] == ["build"] and not any(
        arg.split("=")[0] in PARSE_OPTIONS for arg in request["args"]
    ):
        key, candidate = loaded
        manifest = candidate if _manifest_key(request, candidate.env_vars) == key else None
    _child(channel, streams, request, manifest)


def _serve_one(listener: socket.socket, connection: socket.socket, state: dict) -> None:
    _, streams, _, _ = socket.recv_fds(connection, 1, 3)
    child = 0
    try:
        request = json.loads(_receive(connection))
        usable = state["forkable"] and request["python"] == sys.executable
        if request.get(PRELOAD):
            if usable and state["standby"] is None:
                channel, theirs = socket.socketpair()
                pid = os.fork()
                if pid == 0:
                    channel.close()
                    connection.close()
                    _standby(listener, theirs, request)
                theirs.close()
                state["standby"] = (pid, channel)
            return
        if not usable or len(streams) != 3:
            _send(connection, _LENGTH.pack(0))
            return
        if state["standby"] is not None:
            child, channel = state["standby"]
            state["standby"] = None
            with channel:
                socket.send_fds(channel, [b"\0"], streams)
                _send(channel, json.dumps(request).encode())
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            child = os.fork()
            if child == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's handler is not dbt's
                listener.close()
                _child(connection, streams, request, None)
    finally:
        for stream in streams:
            os.close(stream)
    if not child:
        return
    _send(connection, _LENGTH.pack(child))
    _, status = os.waitpid(child, 0)
    _send(connection, _LENGTH.pack(os.waitstatus_to_exitcode(status)))


def _child(connection: socket.socket, streams: list[int], request: dict, manifest) -> None:
    """In a forked child: become the client's dbt process, then exit with dbt's code."""
    code = 1
    try:
        connection.close()
        for target, stream in enumerate(streams):
            os.dup2(stream, target)
        for stream in streams:
            if stream > 2:
                os.close(stream)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["dbt", *request["args"]]
        run_dbt(request["args"], manifest)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # reported on the client's stderr, as a crash of dbt itself would be
        import traceback

        traceback.print_exc()
    finally:
        # what an interpreter's exit runs (dbt's and multiprocessing's clean-ups), then out
        # without returning into the server's loop
        with contextlib.suppress(BaseException):
            import atexit

            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


@contextlib.contextmanager
def without_dbt_core() -> Iterator[None]:
    """Around the import of dagster-dbt: on DuckDB, dbt-core's modules cannot be imported inside.

    Every dbt command of a DuckDB run is a process of its own (this module's ``convo-dbt``, forked
    by the dbt server), and dagster-dbt needs nothing of dbt-core in the process that loads the
    definitions: it reads the manifest's JSON and dbt's JSON log lines, and ``dbt_models``
    asks it for no selection (``assets/dbt.py``). Finding dbt-core importable, dagster-dbt
    imports its adapters, results and version at its own import: a second of CPU at every
    run's start, on the path that ends at dbt's first node, while the dbt server imports dbt
    for the build. Finding it not importable, dagster-dbt uses its own stand-ins for those types
    (the mode it has for dbt Fusion, which has no Python package). Spark's run keeps dbt-core:
    it selects the multi-asset's nodes with dbt's selector and runs dbt in-process
    (``spark/pipeline.py``). A process that has imported dbt or dagster-dbt already is left as
    it is; after the block, dbt-core imports as usual.
    """
    from convo_warehouse.spark.target import on_spark

    if on_spark() or "dbt" in sys.modules or "dagster_dbt" in sys.modules:
        yield
        return
    sys.modules["dbt"] = None  # type: ignore[assignment]  # ``import dbt.x`` raises ImportError
    try:
        yield
    finally:
        if sys.modules.get("dbt", ...) is None:
            del sys.modules["dbt"]


# the socket of the dbt server this process runs, while it runs
_serving: str | None = None


@contextlib.contextmanager
def dbt_server() -> Iterator[None]:
    """A dbt server for the dbt processes this process starts while inside (``CONVO_DBT_SERVER``);
    inside another ``dbt_server()`` of this process (a resident run's), that one serves."""
    global _serving
    if _serving is not None and os.environ.get(SERVER_ENV) == _serving:
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="convo-dbt-"))  # mode 0700: only this user connects
    path = folder / "server.sock"
    if len(str(path)) > 100:  # longer than a Unix socket's address may be: dbt starts as usual
        folder.rmdir()
        yield
        return
    # bound here, so a dbt process asking before the server has imported dbt waits in its backlog
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener:
        listener.bind(str(path))
        listener.listen(8)
        process = subprocess.Popen(
            [sys.executable, "-m", "convo_warehouse.lib.dbt_process", "--serve", str(listener.fileno()),
             str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=[listener.fileno()],
        )
    previous = os.environ.get(SERVER_ENV)
    os.environ[SERVER_ENV] = _serving = str(path)
    try:
        yield
    finally:
        _serving = None
        if previous is None:
            os.environ.pop(SERVER_ENV, None)
        else:
            os.environ[SERVER_ENV] = previous
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
        path.unlink(missing_ok=True)
        folder.rmdir()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        # out without the interpreter's teardown of dbt's modules (the run waits for it): the server
        # opened no file or connection that needs closing, and ended its standby itself
        code = 1
        try:
            serve(int(sys.argv[2]), int(sys.argv[3]))
            code = 0
        except SystemExit as stopped:
            code = stopped.code if isinstance(stopped.code, int) else 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    else:
        main()
