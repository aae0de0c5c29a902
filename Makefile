# convo-warehouse: two commands do everything on a fresh machine.
#   make run    create .venv, install pinned dependencies, generate demo data,
#               run the whole pipeline through Dagster, print a summary
#   make test   every test: dbt build with data tests and unit tests on a
#               generated warehouse, SQL lint, pytest

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Spark (docs/spark.md): its own virtualenv, dbt-core pinned as in pyproject.toml.
SPARK_VENV := .venv-spark
SPARK_INSTALLED := $(SPARK_VENV)/.installed
SPARK_PACKAGES := dbt-core==1.11.16 dbt-spark[session]==1.11.0 pyspark==4.3.0 \
	duckdb==1.5.6 pyarrow==26.0.1 pandas==3.1.1 numpy==2.4.6 scipy==1.17.1 \
	click==8.4.2 tqdm==4.70.1 pyyaml==6.0.3 openai==3.52.0

DEMO_CONVERSATIONS ?= 5000
DEMO_DAYS ?= 14
DEMO_SEED ?= 42

export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_HOME := $(CURDIR)/data/.dagster_home

.PHONY: spark-venv test-spark bench-spark install run demo-data test dbt-test lint pytest bench bench-publish bench-classify bench-capture bench-sentiment classify-eval collect ui dashboard docs clean clean-data

$(INSTALLED): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(INSTALLED)

target/manifest.json: $(INSTALLED) dbt_project.yml $(shell find models macros seeds tests/dbt -type f 2>/dev/null)
	$(BIN)/dbt parse --quiet

# Generated once: a second `make run` loads nothing new and changes nothing.
# `make clean-data` (or new files in data/landing) starts over.
demo-data: data/landing/.generated

data/landing/.generated: $(INSTALLED)
	$(BIN)/convo-warehouse generate --conversations $(DEMO_CONVERSATIONS) --days $(DEMO_DAYS) --seed $(DEMO_SEED) --out data/landing
	@touch $@

run: demo-data target/manifest.json
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/convo-warehouse run --landing data/landing --warehouse data/warehouse.duckdb

# dbt build (models, seeds, data tests, unit tests) on a small generated warehouse.
dbt-test: $(INSTALLED) target/manifest.json
	rm -rf data/ci && mkdir -p data/ci
	$(BIN)/convo-warehouse generate --conversations 1500 --days 5 --seed 7 --out data/ci/landing
	CONVO_DUCKDB_PATH=data/ci/warehouse.duckdb $(BIN)/python -c "import duckdb, pathlib; from convo_warehouse.lib.landing import load_landing; print(load_landing(duckdb.connect('data/ci/warehouse.duckdb'), pathlib.Path('data/ci/landing'), progress=False).summary())"
	CONVO_DUCKDB_PATH=data/ci/warehouse.duckdb $(BIN)/dbt build --quiet

lint: $(INSTALLED)
	$(BIN)/sqlfluff lint models tests/dbt macros

# Test files run on PYTEST_WORKERS processes (one file's tests stay together,
# so module fixtures such as a built warehouse are made once).
PYTEST_WORKERS ?= 2

pytest: $(INSTALLED) target/manifest.json
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: dbt-test lint pytest

$(SPARK_INSTALLED): pyproject.toml Makefile
	$(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install --quiet --upgrade pip
	$(SPARK_VENV)/bin/pip install --quiet $(SPARK_PACKAGES)
	$(SPARK_VENV)/bin/pip install --quiet --no-deps -e .
	@touch $@

spark-venv: $(SPARK_INSTALLED)

# The demo data on DuckDB and on Spark (local session), every contract mart
# compared row by row, after a full and an incremental batch.
test-spark: $(INSTALLED) $(SPARK_INSTALLED) target/manifest.json
	$(BIN)/python tests/spark/check_engines.py

# DuckDB next to Spark local mode, full build of the same events (docs/benchmarks.md#spark).
bench-spark: $(INSTALLED) $(SPARK_INSTALLED) target/manifest.json
	$(BIN)/python benchmarks/bench_spark.py --events $${EVENTS:-1000000}

bench: $(INSTALLED) target/manifest.json
	$(BIN)/python benchmarks/bench_pipeline.py --events $${EVENTS:-2000000}

# Publishing the snapshot: one new day's against a full build's, in one run
# (docs/benchmarks.md). WAREHOUSE=path/to/warehouse.duckdb takes a built
# warehouse (copied, never written to); without it EVENTS are generated and built.
bench-publish: $(INSTALLED) target/manifest.json
	$(BIN)/python benchmarks/bench_publish.py $${WAREHOUSE:+--warehouse "$$WAREHOUSE"} --events $${EVENTS:-2000000}

bench-classify: $(INSTALLED)
	$(BIN)/python benchmarks/bench_classify.py

bench-sentiment: $(INSTALLED)
	$(BIN)/python benchmarks/bench_sentiment.py

# Collector throughput with durable writes and SDK cost per call (docs/capture.md).
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
	CONVO_DUCKDB_PATH=data/warehouse.duckdb CONVO_LANDING_DIR=data/landing $(BIN)/python -m convo_warehouse.ui

# The dashboard on http://127.0.0.1:8501, reading the snapshot `make run`
# published in data/serving (never the warehouse; see docs/serving.md).
dashboard: $(INSTALLED)
	CONVO_DUCKDB_PATH=data/warehouse.duckdb $(BIN)/convo-warehouse dashboard --host 127.0.0.1 --port $${PORT:-8501}

# dbt docs with the exposures (dashboard, BI on metrics_daily), offline, from
# the demo warehouse: open target/index.html or run `dbt docs serve`.
docs: $(INSTALLED) target/manifest.json
	CONVO_DUCKDB_PATH=data/warehouse.duckdb $(BIN)/dbt docs generate --quiet

clean:
	rm -rf target logs data/ci

clean-data:
	rm -rf data/landing data/warehouse.duckdb data/warehouse.duckdb.lock data/warehouse.duckdb.wal data/serving
