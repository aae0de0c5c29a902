"""A Spark Thrift server on this machine, over the warehouse and metastore the session uses.

The pyspark distribution on PyPI ships the Thrift server's classes
(``jars/spark-hive-thriftserver_*.jar``: ``HiveThriftServer2`` and the Hive
service it serves) and ``bin/spark-submit``, but not ``sbin/start-thriftserver.sh``;
that script only runs ``spark-submit --class ...HiveThriftServer2 spark-internal``,
which this does. The server gets the session's settings
(``convo_warehouse.spark.session.spark_settings``): the same warehouse
folder and Derby metastore, so it serves the tables the loader and the
session wrote. Derby is embedded: one JVM at a time holds the metastore, so
the server and a local session (the loader, the Python models) take turns
here; on a cluster a shared metastore service lets them run side by side.
The ``spark_thrift`` output of profiles.yml (``method: thrift``) is the one
a cluster user copies.

Given a Spark Connect port, the same JVM also serves Spark Connect (the
plugin in ``jars/spark-connect_*.jar``, bound to 127.0.0.1 too): the
Dagster job's Python steps (the loader, the classifier, the statistics)
then reach this one server as clients and hold no metastore of their own,
so the server runs for the whole job and no step starts a JVM.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from convo_warehouse.spark.session import spark_dir, spark_settings
from convo_warehouse.spark.target import SPARK_TARGET_PATHS

HOST = "127.0.0.1"


def thrift_port() -> int:
    return int(os.environ.get("CONVO_SPARK_THRIFT_PORT", "10001"))


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


# Warnings only, but each statement the server runs and its start: Spark's
# INFO lines (every task, broadcast and metastore call) made megabytes per batch.
LOG_SETTINGS = """\
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.thriftserver.name = org.apache.spark.sql.hive.thriftserver
logger.thriftserver.level = info
logger.connect.name = org.apache.spark.sql.connect.service.SparkConnectExecutionManager
logger.connect.level = info
"""

# What the server logs for each statement it runs through Thrift, and for each operation a
# Spark Connect client sends (make test-spark counts both)
STATEMENT_LINE = "SparkExecuteStatementOperation: Submitting query"
CONNECT_OPERATION_LINE = "SparkConnectExecutionManager: ExecuteHolder"
SERVER_STARTED_LINE = "HiveThriftServer2 started"


# Closing a Thrift session can initialise Hive's function registry (SessionState.close ->
# Hive.get on a handler thread that has no metastore client yet). Its static initialiser
# registers a table function whose class names LlapSigner.Signable, from hive-llap-common,
# which pyspark 4 no longer ships (apache/spark SPARK-51041 added it back for Spark's own
# tests only), so the close failed with NoClassDefFoundError whenever a session closed on
# such a thread, and dbt reported the model that connection had built as failed. An empty
# interface of that name is all the initialiser needs; nothing calls it.
MISSING_HIVE_INTERFACE = "org/apache/hadoop/hive/llap/security/LlapSigner$Signable"


def _interface_class_file(name: str) -> bytes:
    """The class file of an empty public interface ``name`` (slashes between packages), Java 8's format."""
    def utf8(text: str) -> bytes:
        data = text.encode()
        return b"\x01" + len(data).to_bytes(2, "big") + data

    constants = [utf8(name), b"\x07" + (1).to_bytes(2, "big"),  # 1: the name, 2: this class
                 utf8("java/lang/Object"), b"\x07" + (3).to_bytes(2, "big")]  # 3, 4: its super class
    public_interface = 0x0001 | 0x0200 | 0x0400  # ACC_PUBLIC | ACC_INTERFACE | ACC_ABSTRACT
    return b"".join([
        bytes.fromhex("cafebabe"), (0).to_bytes(2, "big"), (52).to_bytes(2, "big"),
        (len(constants) + 1).to_bytes(2, "big"), *constants,
        public_interface.to_bytes(2, "big"), (2).to_bytes(2, "big"), (4).to_bytes(2, "big"),
        bytes(8),  # no interfaces, fields, methods or attributes
    ])


def hive_stub_jar(directory: Path) -> Path:
    """A jar in ``directory`` holding ``MISSING_HIVE_INTERFACE``, for the server's class path."""
    import zipfile

    jar = directory / "hive-llap-signable-stub.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr(f"{MISSING_HIVE_INTERFACE}.class", _interface_class_file(MISSING_HIVE_INTERFACE))
    return jar


def server_command(directory: Path, port: int, spark_home: Path | None = None,
                   connect_port: int | None = None) -> list[str]:
    """``spark-submit`` of HiveThriftServer2 with the session's settings, bound to 127.0.0.1:``port``;
    serving Spark Connect on 127.0.0.1:``connect_port`` too when given."""
    command = [str((spark_home or _spark_home()) / "bin" / "spark-submit"),
               "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
               "--name", "convo-warehouse-thrift",
               "--driver-class-path", str(hive_stub_jar(directory))]
    log_settings = directory / "thrift-log4j2.properties"
    settings = spark_settings(directory)
    if connect_port is not None:
        settings.update({
            "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
            "spark.connect.grpc.binding.address": HOST,
            "spark.connect.grpc.binding.port": str(connect_port),
        })
    for key, value in settings.items():
        if key == "spark.driver.extraJavaOptions":
            value += f" -Dlog4j2.configurationFile={log_settings}"
        command += ["--conf", f"{key}={value}"]
    command += ["--hiveconf", f"hive.server2.thrift.bind.host={HOST}",
                "--hiveconf", f"hive.server2.thrift.port={port}",
                "--hiveconf", "hive.server2.transport.mode=binary",
                "spark-internal"]
    return command


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


class ThriftServer:
    """Start with ``start()`` (returns once it accepts connections), stop with ``stop()``."""

    def __init__(self, directory: Path | None = None, port: int | None = None, log: Path | None = None,
                 spark_home: Path | None = None, connect_port: int | None = None) -> None:
        self.directory = directory or spark_dir()
        self.port = port or thrift_port()
        # Spark Connect beside the Thrift service, in the same JVM (None: Thrift only)
        self.connect_port = connect_port
        self.log = log or self.directory / "thrift-server.log"
        # pyspark's folder (its jars, bin/spark-submit): this Python's, or the Spark virtualenv's
        self.spark_home = spark_home or _spark_home()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> None:
        ports = [self.port] if self.connect_port is None else [self.port, self.connect_port]
        for port in ports:
            if _listening(port):
                raise RuntimeError(f"something already listens on {HOST}:{port}")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "thrift-log4j2.properties").write_text(LOG_SETTINGS)
        env = {**os.environ, "SPARK_HOME": str(self.spark_home)}
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                server_command(self.directory, self.port, self.spark_home, self.connect_port),
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while not all(_listening(port) for port in ports):
            if self.process.poll() is not None:
                raise RuntimeError(f"the Thrift server exited ({self.process.returncode}): see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Thrift server did not listen on {HOST}:{ports} within {timeout:.0f} s")
            time.sleep(0.5)

    @property
    def connect_url(self) -> str | None:
        """``sc://127.0.0.1:<port>`` for a Spark Connect client, if the server serves it."""
        return None if self.connect_port is None else f"sc://{HOST}:{self.connect_port}"

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        # the port closes with the JVM; the metastore lock with it
        while _listening(self.port):
            time.sleep(0.5)

    def __enter__(self) -> "ThriftServer":
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


THRIFT_TARGET_PATH = SPARK_TARGET_PATHS["spark_thrift"]


def run_through_thrift(landing_dir: Path, server: ThriftServer) -> str:
    """The pipeline with every dbt step sent to ``server`` through the ``spark_thrift`` output.

    The loader and the Python models (stage classifier, statistics) run as
    processes (``python -m convo_warehouse.spark load`` / ``python-models``)
    that are Spark Connect clients of the same server when it serves Spark
    Connect (``connect_port``); otherwise each starts a Spark session of its
    own, and with an embedded Derby metastore the server is stopped while one
    runs and started again for the next dbt step. The run is recorded last,
    through the server (``record_steps_scope``). This process starts no JVM.
    """
    import sys

    from convo_warehouse.lib.dbt_commands import production_build
    from convo_warehouse.spark.pipeline import (
        PROJECT_DIR, SparkPipelineError, python_model_steps, record_steps_args, run_started,
    )

    env = {**os.environ, "CONVO_SPARK_THRIFT_PORT": str(server.port), "DBT_PROFILES_DIR": str(PROJECT_DIR),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt_executable = str(Path(sys.executable).parent / "dbt")

    def spark_step(*args: str) -> None:
        step_env = env
        if server.connect_url is None:
            server.stop()
        else:
            if server.process is None:
                server.start()
            step_env = {**env, "CONVO_SPARK_CONNECT": server.connect_url}
        completed = subprocess.run([sys.executable, "-m", "convo_warehouse.spark", *args], cwd=PROJECT_DIR,
                                   env=step_env)
        if completed.returncode != 0:
            raise SparkPipelineError(f"python -m convo_warehouse.spark {' '.join(args)} failed")

    def thrift_dbt(*args: str) -> None:
        if server.process is None:
            server.start()
        completed = subprocess.run(
            [dbt_executable, *args, "--project-dir", str(PROJECT_DIR), "--target", "spark_thrift",
             "--target-path", str(PROJECT_DIR / THRIFT_TARGET_PATH)],
            cwd=PROJECT_DIR, env=env,
        )
        if completed.returncode != 0:
            raise SparkPipelineError(f"dbt {' '.join(args[:1])} through the Thrift server failed")

    started = run_started()
    spark_step("load", "--landing", str(landing_dir))
    subprocess.run([dbt_executable, "parse", "--quiet", "--project-dir", str(PROJECT_DIR), "--target",
                    "spark_thrift", "--target-path", str(PROJECT_DIR / THRIFT_TARGET_PATH)],
                   cwd=PROJECT_DIR, env=env, check=True)
    steps = python_model_steps(THRIFT_TARGET_PATH)
    python_models = [name for kind, names in steps if kind == "python" for name in names]
    for kind, arguments in steps:
        if kind == "python":
            # their dbt tests through the server when the steps are its clients (else in their session)
            target = [] if server.connect_url is None else ["--target", "spark_thrift"]
            spark_step("python-models", *target, *(item for name in arguments for item in ("--select", name)))
            continue
        excluded = arguments[arguments.index("--exclude") + 1:] if "--exclude" in arguments else []
        selection = arguments[: arguments.index("--exclude")] if "--exclude" in arguments else arguments
        thrift_dbt(*production_build(multi_step=True, exclude=[*excluded, *python_models]), *selection)
    thrift_dbt(*record_steps_args(started))
    server.stop()
    where = "in sessions" if server.connect_url is None else f"through Spark Connect on {server.connect_url}"
    return f"built through the Thrift server on {HOST}:{server.port}; Python models {where}: {', '.join(python_models)}"
