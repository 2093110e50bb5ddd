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
	$(BIN)/pip install -q -e ".[test,lint]"
	touch $@

install: $(BIN)/acewatchd

demo: install
	$(BIN)/acewatchd demo --home demo-home

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run_all.py

# ruff (style and bug patterns), mypy --strict (config in pyproject.toml), and the import
# contract: the package's layers only import downwards (see docs/ARCHITECTURE.md).
lint: install
	$(BIN)/ruff check acewatchd tests bench
	$(BIN)/mypy acewatchd
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo-home .pytest_cache
