# lyrics-to-song: `make demo` runs the whole pipeline locally; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins boto3 and botocore far below the functions' own: it gets a virtualenv of its own.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
LYRICS ?=
REAL_API ?=
CALLBACK ?=
WORKFLOW ?=

# The suite's workers: its end-to-end tests mostly wait on loopback, so three keep two cores busy.
TEST_WORKERS ?= 3

.PHONY: help demo local test check lint fmt bench chaos emulator build deploy clean

## help: this list
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed -e 's/^## //'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CHECKOV_STAMP): .ci/checkov-requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r .ci/checkov-requirements.txt
	touch $(CHECKOV_STAMP)

## demo: the whole pipeline on the local stack; LYRICS=file.txt for your own, REAL_API=1 (with MUSIC_API_KEY) for the real API, CALLBACK=1 for a signed webhook too, WORKFLOW=1 to ask from the example Step Functions workflow
demo: $(STAMP)
	$(PY) -m local_cloud.demo $(if $(LYRICS),--lyrics "$(LYRICS)") $(if $(REAL_API),--real-api) $(if $(CALLBACK),--callback) $(if $(WORKFLOW),--workflow)

## local: keep the local stack running for `lyrics-to-song --local ...` (Ctrl-C stops it)
local: $(STAMP)
	$(PY) -m local_cloud.serve

## test: the whole suite, offline, on parallel workers, with line and branch coverage (about 3 min)
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --cov --cov-report=term

## check: the quick loop, every test but the end-to-end ones (about 75 s)
check: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not e2e"

## lint: ruff, mypy, complexity (xenon), cfn-lint (with the serverless rules) and checkov
lint: $(STAMP) $(CHECKOV_STAMP)
	$(VENV)/bin/ruff check functions infra tests
	$(VENV)/bin/ruff format --check functions infra tests
	$(VENV)/bin/mypy
	$(VENV)/bin/xenon --max-absolute C --max-modules B --max-average A functions infra
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact \
		--skip-download  # offline: no guidelines fetched from Prisma Cloud

fmt: $(STAMP)
	$(VENV)/bin/ruff format functions infra tests
	$(VENV)/bin/ruff check --fix functions infra tests

## bench: speed and memory, each against its baseline in the same run (BENCH_QUICK=1: smaller; BENCH_SMOKE=1: tiny, no targets)
bench: $(STAMP)
	$(PY) -m tests.bench $(BENCH)

## chaos: 240 jobs (some asked by waiting workflows) and 12 hostile requests (then their ids reused) through the local stack under faults, duplicates, overlap and kills (CHAOS="--jobs N --seed S")
chaos: $(STAMP)
	$(PY) -m tests.chaos $(CHAOS)

## emulator: serve the music API emulator on 127.0.0.1:8787
emulator: $(STAMP)
	$(PY) -m local_cloud.emulator --port 8787

## build, deploy: the same code on AWS (needs the SAM CLI and AWS credentials)
build:
	sam build --config-file $(CURDIR)/infra/samconfig.toml

deploy: build
	sam deploy --guided --config-file $(CURDIR)/infra/samconfig.toml

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam out .pytest_cache .mypy_cache .ruff_cache
