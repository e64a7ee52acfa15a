# Two entry points: `make run` (set-up + the default scenario) and `make test` (set-up + tests).
# Set-up creates .venv, installs the package with its test extra, and the default data set.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sflsim-installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
ARGS   ?=

.PHONY: setup data run test bench clean

setup: $(STAMP) data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The default data set is Debian's dataset-fashion-mnist. Installed here when missing and we are
# root; otherwise we say how to get it (the test suite makes its own data and does not need it).
data:
	@if [ -n "$$SFLSIM_DATA" ] || [ -f "$(FMNIST)" ]; then \
	  true; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing the default data set (Debian package dataset-fashion-mnist)"; \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
	    echo "note: apt-get could not install dataset-fashion-mnist; set SFLSIM_DATA to a folder with the *-ubyte.gz files"; \
	else \
	  echo "note: Fashion-MNIST not found. Install it with 'sudo apt-get install dataset-fashion-mnist'"; \
	  echo "      or set SFLSIM_DATA to a folder holding the four *-ubyte.gz files."; \
	fi

run: setup
	$(BIN)/sflsim run $(ARGS)

test: setup
	$(BIN)/python -m pytest -q $(ARGS)

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
