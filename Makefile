# The project's verbs. Every target sets up what it needs; CI calls the same targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint unit demo schema build deploy clean

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
	$(BIN)/python -m iics_monitor_local.demo

schema: venv
	$(BIN)/python -m iics_monitor_local.schema

build:
	sam build

deploy: build
	sam deploy --guided

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .aws-sam
