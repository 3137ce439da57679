# Two commands for a new user:  make demo  and  make test
# Both create the virtual environment (.venv) and install rs-vit on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-heavy install clean-demo docs help

help:
	@echo "make demo   - set up, train on the sample scene, predict it, evaluate (CPU, a few minutes)"
	@echo "make test   - set up and run the test suite"
	@echo "make test-heavy - the minutes-long equality sweeps (ONNX export per family, ...); CI runs both"
	@echo "make docs   - regenerate docs/cli.md and docs/models.md from the code"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rs_vit.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not heavy"

test-heavy: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m heavy

docs: $(STAMP)
	$(BIN)/python docs/make_docs.py

clean-demo:
	rm -rf runs/demo
