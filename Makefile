# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The versions the suite passes on, for every optional extra: `make lock` refreshes them (README, "Versions").
LOCK := requirements.lock
EXTRAS := test,dashboard
LATEST := .venv-latest
FASHION_MNIST := /usr/share/datasets/fashion-mnist
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled

.PHONY: install data demo test test-fast test-latest lint lock reproduce

install: $(STAMP)

# uv installs the lock's versions (pip -c works as well, several times slower); wheels in pip's
# find-links folder (PIP_FIND_LINKS), where a machine keeps some, are used before the index. Bytecode is
# compiled at install, as pip does: with PYTHONDONTWRITEBYTECODE set, every process (each Ray worker too)
# would otherwise compile torch and Ray from source again.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(foreach links,$(PIP_FIND_LINKS),--find-links $(links)) \
	  -c $(LOCK) -e '.[$(EXTRAS)]'
	$(BIN)/python .ci/lock_matches.py $(LOCK)
	touch $(STAMP)

# The newest versions pyproject.toml admits, resolved for every Python it supports, into the lock.
lock: install
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --upgrade \
	  --no-annotate --custom-compile-command "make lock" -o $(LOCK)

# Fashion-MNIST from Debian's package; see README for other ways.
data:
	@if [ -f $(FASHION_MNIST)/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST: $(FASHION_MNIST)"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; }; \
	elif command -v sudo >/dev/null; then \
	  sudo apt-get install -y dataset-fashion-mnist; \
	else \
	  echo "Fashion-MNIST is missing: run 'apt-get install dataset-fashion-mnist' as root," \
	       "or set dataset.download: true in the spec (needs internet)." >&2; exit 1; \
	fi

demo: install data
	$(BIN)/sweep run search_spaces/quickstart.yaml
	$(BIN)/sweep report quickstart

# The suite runs on a pytest worker per core, four at most (pytest-xdist): its tests spend much of their time
# waiting on the Ray, drivers and servers they start, which other tests' work fills. A module's tests stay
# on one worker, so that its fixtures are made once.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
PARALLEL := -n $(TEST_WORKERS) --dist loadfile
PYTEST_ARGS ?=
test: install
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

# The edit-test loop: everything but the tests marked slow (real sweeps, clusters, faults).
test-fast: install
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow"

# The whole suite on the newest versions the ranges admit, in a venv of its own (the lock's stays as it is).
test-latest:
	test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[$(EXTRAS)]'
	$(LATEST)/bin/python -m pip list --format freeze | grep -iE '^(torch|ray|optuna|duckdb|pandas|pyarrow|numpy)=='
	$(LATEST)/bin/python -m pytest $(PARALLEL)

lint: install
	$(BIN)/ruff check sweep tests
	$(BIN)/ruff format --check sweep tests
	$(BIN)/python .ci/repeated_blocks.py sweep

# Re-run the paper's findings at small scale (results/reproduction/FINDINGS.md and "Reproducing the paper" in
# README.md): each sweep, then its report, one after another.
# About two hours on 2 CPUs; one finding alone: make reproduce PAPER=bn
PAPER ?= bn ewma activations egf_correlation snas
reproduce: install data
	for finding in $(PAPER); do \
	  $(BIN)/sweep run search_spaces/paper/$$finding.yaml && \
	  $(BIN)/sweep report paper-$$finding --out results/reproduction/$$finding || exit 1; \
	done
