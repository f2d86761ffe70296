# The two commands of the README: `make run` and `make test`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
export PORT

.PHONY: run test demo demo-slow reliability bench lint format migrate clean

# Runtime packages only: what the Dockerfile installs too.
$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## make run: migrate the database, start the job worker, serve on 127.0.0.1:$(PORT) with gunicorn.
run: $(VENV)/.runtime
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi market keys
	# The job worker runs beside gunicorn and stops with it.
	$(BIN)/flask --app wsgi market worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## make test: formatting, lint and the whole test suite.
test: $(VENV)/.dev lint
	$(BIN)/pytest

## make demo: server + mock marketplace here, every lifecycle run against them, then stop.
demo: $(VENV)/.runtime
	$(BIN)/python -m app.marketplace.demo

## make demo-slow: the same with an 8-second provisioner; the calls still answer at once.
demo-slow: $(VENV)/.runtime
	$(BIN)/python -m app.marketplace.demo --slow-provisioner

## make reliability: real gunicorn under load, kill -9, database down, replays; one table.
# RELIABILITY_ARGS="--profile full --database sqlite" picks the profile and the databases.
RELIABILITY_ARGS ?= --profile short --database both
reliability: $(VENV)/.runtime
	$(BIN)/python -m reliability.run $(RELIABILITY_ARGS)

## make bench: throughput, latency and memory of the hot paths as ratios to a baseline.
BENCH_ARGS ?=
bench: $(VENV)/.runtime
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(VENV)/.runtime
	$(BIN)/flask --app wsgi db upgrade

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
