# eventsvc — every developer and CI entry point. `make help` lists them.
# Two virtualenvs: .venv (the service, tests, lint, the dev stack, secgate) and
# .venv-scan (security scanners, pinned separately so their pins never hold
# back ours). Both are installed from hash-locked requirements only.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
SCAN_VENV := .venv-scan
WAPITI_VENV := .venv-wapiti
MUTATION_VENV := .venv-mutation
LOADTEST_VENV := .venv-loadtest
PY := $(VENV)/bin/python
SCAN_BIN := $(SCAN_VENV)/bin
SECGATE := $(PY) -m secgate
# secgate starts the DAST target through this command and stops it after the scan.
DAST_TARGET := $(abspath $(PY)) -m devstack dast-target
PIP_INSTALL := --require-hashes --no-deps --disable-pip-version-check -q
export SEMGREP_ENABLE_VERSION_CHECK := 0
# SCA's advisory data (src/secgate/advisories.py): SECGATE_ADVISORY_DB=DIR names a local copy
# (air-gapped: nothing is fetched); otherwise the cache in SECGATE_ADVISORY_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/secgate/advisories), refreshed when older than a day.
ADVISORIES_IF_OLD := $(SECGATE) advisories --refresh-after-hours 24
# The gate's own configuration (policy, waivers, rules, baseline...) is compared with this git
# ref and every relaxation is listed first in the reports (secgate.configreview).
CONFIG_BASE ?= main
# `make test` leaves its results here; the scan keeps them in the bundle and judges every control
# of security/controls.yml by them (run `make test` first for a complete report).
TEST_RESULTS := $(if $(wildcard build/junit-tests.xml),--test-results build/junit-tests.xml)

.PHONY: help venv scan-venv run run-ha test-faults faults-doc up down dev-token test lint fmt openapi advisories scan scan-static sast sca secrets config config-review controls sign-report verify-report dast bench loadtest-venv loadtest loadtest-smoke sizing clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/pip.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_INSTALL) -r requirements/pip.txt
	$(PY) -m pip install $(PIP_INSTALL) -r requirements/dev.txt
	$(PY) -m pip install --no-deps --no-build-isolation -q -e .
	# devstack and secgate are not in the eventsvc wheel: this .pth puts src/ on the venv's path.
	echo "$(abspath src)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/eventsvc-dev-src.pth"
	touch $@

$(SCAN_VENV)/.installed: requirements/pip.txt requirements/scan.txt requirements/wapiti.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_BIN)/python -m pip install $(PIP_INSTALL) -r requirements/pip.txt
	$(SCAN_BIN)/python -m pip install --require-hashes --disable-pip-version-check -q -r requirements/scan.txt
	# wapiti's pins clash with schemathesis': its own venv, its command linked beside the others.
	$(PYTHON) -m venv $(WAPITI_VENV)
	$(WAPITI_VENV)/bin/python -m pip install $(PIP_INSTALL) -r requirements/pip.txt
	$(WAPITI_VENV)/bin/python -m pip install --require-hashes --disable-pip-version-check -q -r requirements/wapiti.txt
	ln -sf $(abspath $(WAPITI_VENV))/bin/wapiti $(SCAN_BIN)/wapiti
	touch $@

# cosmic-ray in its own venv: it mutates files and runs the tests with .venv's pytest.
$(MUTATION_VENV)/.installed: requirements/pip.txt requirements/mutation.txt
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install $(PIP_INSTALL) -r requirements/pip.txt
	$(MUTATION_VENV)/bin/python -m pip install $(PIP_INSTALL) -r requirements/mutation.txt
	touch $@

# locust (and matplotlib for the report's plots) in its own venv: locust pins its own flask and
# gevent. The harness runs in .venv and starts locust and the plotting step from this one.
$(LOADTEST_VENV)/.installed: requirements/pip.txt requirements/loadtest.txt
	$(PYTHON) -m venv $(LOADTEST_VENV)
	$(LOADTEST_VENV)/bin/python -m pip install $(PIP_INSTALL) -r requirements/pip.txt
	$(LOADTEST_VENV)/bin/python -m pip install $(PIP_INSTALL) -r requirements/loadtest.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv from the locked requirements
scan-venv: $(SCAN_VENV)/.installed ## Create .venv-scan (security scanners)

run: venv ## Start the whole local stack and the API in the foreground (Ctrl-C stops it)
	$(PY) -m devstack run

run-ha: venv ## A 3-member replica set and 2 API instances in the foreground (state in .run/ha/)
	$(PY) -m devstack run-ha $(HA_ARGS)

up: venv ## Start the local stack in the background (state in .run/)
	$(PY) -m devstack up

down: venv ## Stop what `make up` started
	$(PY) -m devstack down

SCOPES ?= tokens:admin,audit:read
dev-token: venv ## On the running local stack: a token with SCOPES in .run/dev-token.toml (0600)
	$(PY) -m devstack token --scopes "$(SCOPES)"

# .venv-loadtest: tests/e2e/test_loadtest_smoke.py runs the load test's smoke (make loadtest-smoke).
test: venv scan-venv loadtest-venv ## Run the whole test suite with branch coverage (build/coverage.xml)
	mkdir -p build
	$(VENV)/bin/pytest -p no:cacheprovider --cov --cov-branch \
		--cov-report=term --cov-report=xml:build/coverage.xml \
		--junitxml=build/junit-tests.xml $(PYTEST_ARGS)

test-faults: venv ## Fault tests on the HA stack (tests/faults, also in make test); results in build/faults/
	mkdir -p build
	$(VENV)/bin/pytest -p no:cacheprovider tests/faults $(PYTEST_ARGS)
	PYTHONPATH=tests $(PY) -m faults.report

faults-doc: venv ## Write build/faults/*.json (from make test-faults) into docs/reliability.md
	PYTHONPATH=tests $(PY) -m faults.report --write docs/reliability.md

lint: venv ## ruff (incl. bandit rules), formatting, mypy --strict
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

fmt: venv ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests
	$(VENV)/bin/ruff format src tests

openapi: venv ## Regenerate the committed openapi.json from the code
	$(PY) -m eventsvc.openapi openapi.json

advisories: venv ## Fetch the current PyPA advisory database (or say which SECGATE_ADVISORY_DB copy is used)
	$(SECGATE) advisories

scan: venv scan-venv ## Every security stage, DAST included, then the gate verdict
	$(ADVISORIES_IF_OLD)
	$(SECGATE) scan --config-base "$(CONFIG_BASE)" $(TEST_RESULTS) --dast-target-command "$(DAST_TARGET)"

scan-static: venv scan-venv ## SAST, SCA, secrets and workflow config only (no running stack)
	$(ADVISORIES_IF_OLD)
	$(SECGATE) scan --config-base "$(CONFIG_BASE)" $(TEST_RESULTS) --stages sast,sca,secrets,config

sast: venv scan-venv ## bandit + our semgrep rules
	$(SECGATE) scan --stages sast

sca: venv scan-venv ## Dependency audit, SBOM, licences
	$(ADVISORIES_IF_OLD)
	$(SECGATE) scan --stages sca

secrets: venv scan-venv ## detect-secrets against the audited baseline
	$(SECGATE) scan --stages secrets

config: venv scan-venv ## zizmor + workflow schema checks
	$(SECGATE) scan --stages config

controls: venv ## Check security/controls.yml and regenerate SECURITY.md's control table from it
	$(SECGATE) controls --write SECURITY.md

REPORT ?= security/reports/latest
sign-report: venv ## Sign REPORT's manifest with the running stack's Vault transit key (make up first)
	$(PY) -m devstack sign-report "$(REPORT)"

verify-report: venv ## Check REPORT: every hash, and its signature with the key read as auditor
	$(PY) -m devstack report-key .run/secgate-report.pub
	$(SECGATE) verify-report "$(REPORT)" --public-key .run/secgate-report.pub --require-signature

config-review: venv ## List how the gate's configuration differs from CONFIG_BASE (default main)
	$(SECGATE) config-review --base "$(CONFIG_BASE)"

dast: venv scan-venv ## Start a throwaway HTTPS stack and attack it
	$(SECGATE) scan --stages dast --dast-target-command "$(DAST_TARGET)"

mutation-venv: $(MUTATION_VENV)/.installed ## Create .venv-mutation (cosmic-ray)

# Mutates src/ in place (restored after each mutant): run nothing else in this tree meanwhile.
# scan-venv too: the gate's tests (src/secgate/gate.py's list) run the real scanners.
mutation: venv scan-venv mutation-venv ## Mutation tests of the security modules (security/mutation.toml, build/mutation/)
	$(PY) -m mutation --cosmic-ray $(MUTATION_VENV)/bin/cosmic-ray $(MUTATION_ARGS)

bench: venv ## Micro-benchmarks (ratios against a baseline in the same run)
	PYTHONPATH=tests $(PY) -m perf.bench $(BENCH_ARGS)

loadtest-venv: $(LOADTEST_VENV)/.installed ## Create .venv-loadtest (locust, matplotlib)

# Reports in loadtest/reports/<run>/ (latest: the last one). LOADTEST_ARGS=--quick: about 2 minutes.
loadtest: venv loadtest-venv ## locust against a throwaway full stack, two baselines, report + plots (~7 min)
	PYTHONPATH=tests $(PY) -m perf.loadtest $(LOADTEST_ARGS)

loadtest-smoke: venv loadtest-venv ## The load test in seconds per stage; fails on any error (CI runs it in make test)
	PYTHONPATH=tests $(PY) -m perf.loadtest --smoke $(LOADTEST_ARGS)

sizing: venv loadtest-venv ## A full load test that also writes docs/sizing.md from its figures
	PYTHONPATH=tests $(PY) -m perf.loadtest --sizing docs/sizing.md $(LOADTEST_ARGS)

clean: ## Remove build output, caches and local stack state (not the venvs)
	-$(PY) -m devstack down 2>/dev/null
	rm -rf build .run .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache .hypothesis security/reports loadtest/reports
	find . -name __pycache__ -type d -prune -not -path './.venv*' -exec rm -rf {} +
