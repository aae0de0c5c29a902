"""``convo-dbt``: dbt's own command line, as every dbt process the pipeline starts runs it.

The same arguments, output and exit codes as ``dbt`` (it is dbt's click command,
run with one event callback). Two things differ.

Python's cyclic garbage collector. Once dbt has loaded the manifest and the
adapter, their objects (every node, macro and config of the project) live until
the process ends, yet each full collection walks them all again, and the
interpreter's last collection at exit walks them once more, while nothing is
left to free. They are moved out of the collector's sight (``gc.freeze``) when
the first node starts, and everything is at the end; what the nodes allocate in
between is collected as usual.

Where dbt starts. Importing dbt costs seconds of CPU in every dbt process,
while a run spends its own first seconds importing Dagster. ``convo-warehouse
run`` starts a dbt server first (``dbt_server``): a process that imports dbt
once, beside Dagster's start, then waits on a Unix socket in an owner-only folder.
``convo-dbt``, given that socket in ``CONVO_DBT_SERVER``, sends its arguments,
folder, environment and standard streams there; the server forks a child that
runs dbt with them, already imported, and the exit code comes back. Without a
server (or one of another Python) ``convo-dbt`` runs dbt itself.
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
import time
from collections.abc import Iterator
from pathlib import Path

NODE_START = "NodeStart"
SERVER_ENV = "CONVO_DBT_SERVER"
# dbt's own modules, pure Python: no library that starts threads (DuckDB, NumPy,
# Arrow), since a fork copies only the forking thread (``_single_threaded``)
PRELOADED = ("dbt.cli.main", "dbt.task.build", "dbt.adapters.factory", "dbt.parser.manifest",
             "dbt.context.providers")
_LENGTH = struct.Struct("!q")


class _FreezeAtFirstNode:
    """An event callback: ``gc.freeze()`` once, at the first node's start."""

    def __init__(self) -> None:
        self.frozen = False

    def __call__(self, event) -> None:
        if not self.frozen and event.info.name == NODE_START:
            self.frozen = True
            gc.freeze()


def run_dbt(args: list[str]) -> None:
    """dbt's command line on ``args``; ends the process with dbt's exit code (click's standalone main)."""
    from dbt.cli.main import cli

    try:
        # `obj` is where dbt's own programmatic runner passes its callbacks
        cli.main(args=args, prog_name="dbt", obj={"callbacks": [_FreezeAtFirstNode()]})
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
            return _LENGTH.unpack(_receive(connection))[0]
        except OSError as error:
            print(f"convo-dbt: the dbt server stopped before dbt {child} ended ({error})", file=sys.stderr)
            return 1


def serve(path: str, parent: int) -> None:
    """Import dbt, then fork a dbt child for each request on ``path`` while the process ``parent``
    is this one's parent (until a SIGTERM, or it ends)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # clients wait in the backlog while the imports below run
    listener.listen(8)
    import importlib

    for module in PRELOADED:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    gc.freeze()
    forkable = _single_threaded()
    listener.settimeout(1.0)
    while os.getppid() == parent:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        with connection:
            connection.settimeout(None)
            # a request that breaks off or makes no sense ends only itself
            with contextlib.suppress(Exception):
                _serve_one(listener, connection, forkable)
    # the parent ended without stopping this server (killed): its socket and folder go too
    with contextlib.suppress(OSError):
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


def _single_threaded() -> bool:
    """Whether this process runs one thread (Linux: its tasks; elsewhere Python's threads)."""
    tasks = Path("/proc/self/task")
    return len(list(tasks.iterdir())) == 1 if tasks.is_dir() else threading.active_count() == 1


def _serve_one(listener: socket.socket, connection: socket.socket, forkable: bool) -> None:
    _, streams, _, _ = socket.recv_fds(connection, 1, 3)
    try:
        request = json.loads(_receive(connection))
        if not forkable or request["python"] != sys.executable or len(streams) != 3:
            _send(connection, _LENGTH.pack(0))
            return
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            _child(listener, connection, streams, request)
    finally:
        for stream in streams:
            os.close(stream)
    _send(connection, _LENGTH.pack(child))
    _, status = os.waitpid(child, 0)
    _send(connection, _LENGTH.pack(os.waitstatus_to_exitcode(status)))


def _child(listener: socket.socket, connection: socket.socket, streams: list[int], request: dict) -> None:
    """In the forked child: become the client's dbt process, then exit with dbt's code."""
    code = 1
    try:
        listener.close()
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
        run_dbt(request["args"])
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
def dbt_server() -> Iterator[None]:
    """A dbt server for the dbt processes this process starts while inside (``CONVO_DBT_SERVER``)."""
    folder = Path(tempfile.mkdtemp(prefix="convo-dbt-"))  # mode 0700: only this user connects
    path = folder / "server.sock"
    if len(str(path)) > 100:  # longer than a Unix socket's address may be: dbt starts as usual
        folder.rmdir()
        yield
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "convo_warehouse.lib.dbt_process", "--serve", str(path), str(os.getpid())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )
    # it binds the socket before importing dbt: from then on a dbt process waits for it
    deadline = time.monotonic() + 10
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    previous = os.environ.get(SERVER_ENV)
    os.environ[SERVER_ENV] = str(path)
    try:
        yield
    finally:
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
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
