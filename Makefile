# Two commands work on a fresh machine (each sets up .venv first if needed):
#   make example   set up, then run the main job on the bundled example data
#   make test      set up, then run the test suite
# torch is pinned to 2.13.0 and installed before the package, so pip takes that release
# (a CPU build where one is available) instead of resolving a newer CUDA build.

VENV ?= .venv
PYTHON ?= python3
EXTRAS ?= dev,onnx
TORCH_VERSION := 2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.spanet-lite-installed
REFERENCE := ../shared/reference/semi_leptonic_ttH

.PHONY: setup test example lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

example: $(STAMP)
	$(BIN)/spanet-inspect $(REFERENCE)/example.h5 --event-file $(REFERENCE)/semi_leptonic_ttH.yaml

lint: $(STAMP)
	$(BIN)/ruff check spanet_lite tests bench
