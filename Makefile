# The two commands of the README's quick start, and the checks around them.
#   make demo  - install everything, then run the main job
#   make test  - install everything, then run the whole test suite
# Installs are idempotent: system packages only when missing, pip only when pyproject.toml changed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMPS := .make-stamps
# python3-venv: Debian's python3 cannot make a virtualenv without it (no ensurepip).
# chromium: the web view's browser tests (tests/ui) drive it with Playwright (no browser download).
SYSTEM_PACKAGES := python3-venv git gnupg openssh-server openssh-client golang-go chromium

# Go 1.26 lives in /usr/local/go on the project's machines; Debian's golang-go (installed below
# for the Sealed Secrets interop tests) is older and must not shadow it for the builds from source.
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: install system-deps demo test lint typecheck check clean fuzz

# Re-checked when this list changes (Makefile newer than the stamp); dpkg -s keeps it idempotent.
$(STAMPS)/system: Makefile
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y $$missing; \
	fi
	@touch $@

system-deps: $(STAMPS)/system

$(BIN)/python: | $(STAMPS)/system
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/pip: pyproject.toml $(BIN)/python
	@mkdir -p $(STAMPS)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(STAMPS)/system $(STAMPS)/pip

demo: install
	$(BIN)/sealed-gitops demo

# First the real control plane the API suites also run on (issue 13), built from its Go modules
# once per version and cached (~5 min cold on 2 cores, 0.3 s warm): before pytest, so that no
# test waits for a build inside its timeout. Without Go it says so and those tests skip.
# --durations: the slowest tests are named at the end of every run, so that a suite creeping
# towards CI's limit shows where its time went.
test: install
	$(BIN)/python -m sealed_gitops.testing build
	$(BIN)/python -m pytest -n auto -q -p no:cacheprovider --durations=25

# The fuzz harnesses of tests/security/test_fuzz.py, much longer than in `make test`: hypothesis
# with FUZZ_EXAMPLES inputs per parser, then (with the `fuzz` extra installed) atheris,
# coverage-guided, FUZZ_RUNS inputs per harness.
FUZZ_EXAMPLES ?= 20000
FUZZ_RUNS ?= 200000
FUZZ_HARNESSES = safe_yaml_loader sops_documents enc_values sealed_documents \
	sealed_document_trees sops_config sgignore
fuzz: install
	$(BIN)/pip install -q -e '.[fuzz]'
	SEALED_GITOPS_FUZZ=long SEALED_GITOPS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/security/test_fuzz.py
	@if $(BIN)/python -c "import atheris" 2>/dev/null; then \
	  for h in $(FUZZ_HARNESSES); do \
	    $(BIN)/python -m tests.security.test_fuzz $$h -runs=$(FUZZ_RUNS) || exit 1; \
	  done; \
	else echo "atheris is not installed (pip install -e '.[fuzz]'): hypothesis run only"; fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check sealed_gitops
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) $(STAMPS) .pytest_cache .mypy_cache .ruff_cache
