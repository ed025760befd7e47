# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled

.PHONY: install data demo test lint reproduce

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

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

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check sweep tests
	$(BIN)/ruff format --check sweep tests

# Re-run the paper's findings at small scale (results/reproduction/FINDINGS.md and "Reproducing the paper" in
# README.md): each sweep, then its report, one after another.
# About two hours on 2 CPUs; one finding alone: make reproduce PAPER=bn
PAPER ?= bn ewma activations egf_correlation snas
reproduce: install data
	for finding in $(PAPER); do \
	  $(BIN)/sweep run search_spaces/paper/$$finding.yaml && \
	  $(BIN)/sweep report paper-$$finding --out results/reproduction/$$finding || exit 1; \
	done
