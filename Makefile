# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create .venv when missing and install the project into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck bench chaos clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

lint: $(STAMP)
	$(VENV)/bin/ruff check runner adapters tests examples $(wildcard bench)
	$(VENV)/bin/ruff format --check runner adapters tests examples $(wildcard bench)
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# tests/cluster starts a multi-node Ray cluster of its own: a pytest process of its own, after
# the single-node suite (whose Ray instance is shared by its modules) has ended.
test: lint typecheck
	$(PY) -m pytest -q -m "not slow" --durations=12 --ignore=tests/cluster
	$(PY) -m pytest -q -m "not slow" --durations=5 tests/cluster

chaos: $(STAMP)
	$(PY) bench/chaos.py
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .runner .pytest_cache .mypy_cache .ruff_cache .hypothesis
