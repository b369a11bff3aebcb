# The project's verbs. Every target sets up what it needs; CI calls the same targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint unit demo build deploy clean

venv: $(STAMP)

$(STAMP): pyproject.toml layers/iics_monitor/python/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

test: lint
	$(BIN)/python -m pytest

demo: venv
	@echo "make demo arrives with the local stack (issue 3). It will:"
	@echo "  1. start the IICS emulator on 127.0.0.1 and a moto account built from template.yaml;"
	@echo "  2. submit three export jobs through the upstream EventBridge event"
	@echo "     (one succeeds, one fails with failed objects, one survives a 401 and a 429);"
	@echo "  3. show one line per poll per job, then a summary: outcome, polls, S3 key, log, event."
	@echo "Until then, 'make test' runs the same pipeline end to end in moto."

build:
	sam build

deploy: build
	sam deploy --guided

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .aws-sam
