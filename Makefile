# The project's verbs. Every target sets up what it needs; CI calls the same targets.
SHELL := /bin/bash
# The tests run on the Lambda runtime's Python (python3.13) when this machine has one: on PATH, or
# under pyenv (`pyenv versions`); otherwise on the default python3. `make test PYTHON=...` chooses.
# (pyenv's shim for python3.13 is on PATH but fails unless 3.13 is selected: ask it where it runs.)
PYTHON ?= $(or $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null),$(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13))),python3)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
# One stamp per Python: a .venv made by another Python is made again.
STAMP := $(VENV)/.installed-$(PYTHON_VERSION)
# The security scanners have a virtualenv of their own: checkov pins an old boto3, and the tests
# must run against the boto3 the functions meet in Lambda.
SECURITY_VENV := .venv-security
SECURITY_BIN := $(SECURITY_VENV)/bin
SECURITY_STAMP := $(SECURITY_VENV)/.installed
# They scan the code as text and need no particular Python: the machine's default one.
SECURITY_PYTHON ?= python3
# The SAM CLI (requirements-sam.txt) has a virtualenv of its own too: it pins its own boto3 and
# cfn-lint. `make validate`, `build` and `deploy` run it from there; docs/deploy.md says what each needs.
SAM_VENV := .venv-sam
SAM_BIN := $(SAM_VENV)/bin
SAM_STAMP := $(SAM_VENV)/.installed
SAM_PYTHON ?= $(PYTHON)
# No telemetry from the project's own runs (`make deploy SAM_CLI_TELEMETRY=1` turns it on). sam build runs
# the layer's Makefile, whose pip is this venv's: a fresh clone needs no python3 with pip on PATH.
SAM_CLI_TELEMETRY ?= 0
SAM := SAM_CLI_TELEMETRY=$(SAM_CLI_TELEMETRY) PYTHON=$(abspath $(SAM_BIN)/python) $(SAM_BIN)/sam
# make test's `sam build`, kept apart from .aws-sam/ (what `make deploy` uploads) and remade only when a
# source changes; tests/unit/bench/test_layer_build.py checks what it holds.
SAM_TEST_BUILD := build/sam
SAM_SOURCES := template.yaml samconfig.toml $(shell find functions layers -type f -not -name '*.pyc' -not -path '*/__pycache__/*')
# checkov also reads the CloudFormation SAM makes of the template (generated rules, permissions,
# event source mappings and the state machine resource exist only there).
TRANSLATED := build/template.translated.json
# pip-audit checks every package installed in .venv (runtime and dev pins and what they pull in).
# `make lint PIP_AUDIT_FLAGS=--strict` also fails on a package it could not look up (off by default:
# some registry mirrors cannot answer its per-version lookups, and then every package is "not
# found"). A vulnerability that cannot reach us is ignored here with --ignore-vuln ID, next to a
# comment saying why (none today).
PIP_AUDIT_FLAGS ?=

.PHONY: venv security-venv sam-venv aws-credentials test lint unit demo bench chaos schema build validate deploy clean

venv: $(STAMP)

$(STAMP): pyproject.toml layers/iics_monitor/python/requirements.txt
	@test -n "$(PYTHON_VERSION)" || { echo "$(PYTHON) does not run: set PYTHON to a Python 3.11+ interpreter"; exit 2; }
	test -f $(STAMP) || rm -rf $(VENV)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

security-venv: $(SECURITY_STAMP)

$(SECURITY_STAMP): requirements-security.txt
	test -x $(SECURITY_BIN)/python || $(SECURITY_PYTHON) -m venv $(SECURITY_VENV)
	$(SECURITY_BIN)/python -m pip install --quiet --upgrade pip
	$(SECURITY_BIN)/python -m pip install --quiet -r requirements-security.txt
	touch $(SECURITY_STAMP)

sam-venv: $(SAM_STAMP)

$(SAM_STAMP): requirements-sam.txt
	@$(SAM_PYTHON) -c '' 2>/dev/null || { echo "$(SAM_PYTHON) does not run: set SAM_PYTHON to a Python 3.10+ interpreter (SAM CLI 1.170.0 needs one)" >&2; exit 2; }
	test -x $(SAM_BIN)/python || $(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_BIN)/python -m pip install --quiet --upgrade pip
	$(SAM_BIN)/python -m pip install --quiet -r requirements-sam.txt
	touch $(SAM_STAMP)

$(TRANSLATED): template.yaml $(STAMP)
	mkdir -p $(@D)
	$(BIN)/python -m iics_monitor_local.template > $@.tmp
	mv $@.tmp $@

# The security checks, their settings and every skip with its reason: docs/security.md. bandit
# runs every test on the deployed code (layers/, functions/). On the local harness (src/, never
# deployed) it skips what pyproject.toml already settles for ruff's port of the same tests: asserts
# (S101), binding all interfaces and non-cryptographic random for the emulators' faults (S104, S311),
# and the emulators' made-up credentials, which ruff checks line by line (S105-S107, each noqa says why).
lint: venv security-venv $(TRANSLATED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(SECURITY_BIN)/checkov -f template.yaml -f $(TRANSLATED)
	$(SECURITY_BIN)/bandit -q -r layers functions
	$(SECURITY_BIN)/bandit -q -r src --skip B101,B104,B105,B106,B107,B311
	$(BIN)/python -m pip freeze --exclude-editable > build/requirements-audited.txt
	$(SECURITY_BIN)/pip-audit --progress-spinner off --no-deps --disable-pip $(PIP_AUDIT_FLAGS) \
		-r build/requirements-audited.txt

# Three workers, one test file each (--dist loadfile: a file's stack and fixtures stay in one
# process). Most of an end-to-end test is waiting (state machine Wait states, retries, sleeps).
PYTEST_WORKERS ?= 3

test: lint validate $(SAM_TEST_BUILD)/template.yaml
	@echo "Testing on $$($(BIN)/python --version) ($(PYTHON)); Lambda runs python3.13"
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

demo: venv
	$(BIN)/python -m iics_monitor_local.demo

bench: venv
	$(BIN)/python -m bench.poll_policy
	$(BIN)/python -m bench.state_size
	$(BIN)/python -m bench.cold_start
	$(BIN)/python -m bench.archive
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.cost

chaos: venv
	$(BIN)/python -m iics_monitor_local.chaos --jobs 100 --fault-rate 0.2 --seed 7

schema: venv
	$(BIN)/python -m iics_monitor_local.schema

# sam build needs no Docker and no AWS account: the functions have no requirements.txt (sam copies
# them), and the layer's Makefile has pip fetch python3.13 arm64 wheels (docs/deploy.md).
build: sam-venv
	$(SAM) build

$(SAM_TEST_BUILD)/template.yaml: $(SAM_STAMP) $(SAM_SOURCES)
	rm -rf $(SAM_TEST_BUILD)
	$(SAM) build --no-cached --build-dir $(SAM_TEST_BUILD)

validate: sam-venv
	$(SAM) validate --lint

# The credentials are looked for first, the way sam deploy will (boto3's chain: environment, ~/.aws
# files, SSO, a container or instance role), so a missing one is said before anything is built.
AWS_CREDENTIALS_FOUND := import boto3, sys; sys.exit(boto3.Session().get_credentials() is None)

aws-credentials: sam-venv
	@$(SAM_BIN)/python -c '$(AWS_CREDENTIALS_FOUND)' || { \
		echo "make deploy needs AWS credentials, and none were found: set AWS_PROFILE, run 'aws configure' or"; \
		echo "'aws sso login', or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (docs/deploy.md)."; \
		exit 2; } >&2

deploy: aws-credentials build
	$(SAM) deploy --guided

clean:
	rm -rf $(VENV) $(SECURITY_VENV) $(SAM_VENV) build .pytest_cache .ruff_cache .aws-sam
