# The two commands of the README are `make demo` and `make test`; everything else is a helper.
VENV ?= .venv
PY := $(VENV)/bin/python
PROVGRAPH := $(VENV)/bin/provgraph

.PHONY: setup demo test bench bench-full lint neo4j-start neo4j-stop clean

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

# The console's graph library comes from npm at the versions package-lock.json pins. No package
# script runs: the console only serves their files, and swagger-ui-dist's dependency
# @scarf/scarf has an install script (usage analytics that calls out) we never want to run.
ui/node_modules/.installed: ui/package.json ui/package-lock.json
	npm ci --prefix ui --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed ui/node_modules/.installed

## Start Neo4j, ingest the bundled sample data, run the rules and serve the API.
demo: setup
	$(PROVGRAPH) demo

## The whole test suite, against a real Neo4j.
test: setup
	bash scripts/bootstrap.sh --test
	$(PY) -m pytest

bench: setup
	$(PY) -m bench.run --quick

bench-full: setup
	$(PY) -m bench.run --full

## ruff (lint and format) over the whole tree, mypy over the product code.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/typecheck.py

neo4j-start: setup
	$(PROVGRAPH) neo4j start

neo4j-stop: setup
	$(PROVGRAPH) neo4j stop

clean:
	rm -rf $(VENV) .pytest_cache
