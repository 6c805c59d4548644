# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create .venv when missing and install the project into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck bench chaos clean browser screenshots

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

# The browser tests drive Debian's chromium (no browser download): installed here when missing
# and this is root; otherwise they are skipped with a note saying how to install it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo -n apt-get install -y chromium >/dev/null; \
	  else echo "chromium missing and not root: the browser tests will be skipped (apt-get install -y chromium)"; fi; }

# Screenshots of the web view for docs/ui (README): the browser tests save them.
screenshots: $(STAMP) browser
	RUNNER_UI_SCREENSHOTS=docs/ui $(PY) -m pytest -q tests/ui

# The single-node suite runs in two pytest-xdist processes, a module each at a time (--dist
# loadfile; each process has its own Ray instance, shared by its modules): on 2 cores two take
# ~15% less time than one, three take more (the Ray tests are CPU-bound, mostly starting actor
# processes). tests/cluster starts a multi-node Ray cluster of its own: a pytest process of its
# own, after the rest has ended.
test: lint typecheck browser
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile --durations=12 --ignore=tests/cluster
	$(PY) -m pytest -q -m "not slow" --durations=5 tests/cluster

chaos: $(STAMP)
	$(PY) bench/chaos.py
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .runner .pytest_cache .mypy_cache .ruff_cache .hypothesis
