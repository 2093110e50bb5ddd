# Two commands on a fresh machine:  `make demo`  and  `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch for CI and the demo (a bare `torch` pulls a multi-GB CUDA build).
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test bench lint clean

$(BIN)/acewatchd: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/acewatchd

demo: install
	$(BIN)/acewatchd demo --home demo-home

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run_all.py

lint: install
	$(BIN)/pip install -q ruff mypy
	$(BIN)/ruff check acewatchd tests bench
	$(BIN)/mypy acewatchd

clean:
	rm -rf $(VENV) demo-home .pytest_cache
