# Two commands work on a fresh machine (each sets up .venv first if needed):
#   make example   set up, then train on the bundled ttH example data and evaluate on fresh events
#   make test      set up, then run the test suite
# and for development: make readme-check (run the README's runnable blocks, small sizes; see
# .ci/readme_check.py; README_CHECK_FULL=1 runs them as printed), make lint.
# torch is pinned to 2.13.0 and installed before the package, so pip keeps that release instead
# of resolving another. An existing .venv is kept: one made first with PyTorch's CPU build
# (README) already satisfies the pin, and nothing here replaces it with PyPI's CUDA build.

VENV ?= .venv
PYTHON ?= python3
EXTRAS ?= dev,onnx,pythia,tune
TORCH_VERSION := 2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.spanet-lite-installed
REFERENCE := ../shared/reference/semi_leptonic_ttH

.PHONY: setup test example lint readme-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

example: $(STAMP)
	$(BIN)/spanet-train options_files/semi_leptonic_ttH/example.json --name example
	$(BIN)/spanet-generate ttH_semilep --events 5000 --seed 2 --output runs/example_test.h5 --overwrite --quiet
	run=$$(ls -d runs/example/version_* | sort -V | tail -n 1) && \
	$(BIN)/spanet-test "$$run" -tf runs/example_test.h5 --plots "$$run/plots" --json "$$run/test.json"

readme-check: $(STAMP)
	$(BIN)/python .ci/readme_check.py --venv $(VENV)

lint: $(STAMP)
	$(BIN)/ruff check spanet_lite tests bench docs
