# The two commands of the README: `make demo` and `make test`. Both do all set-up themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ganforge-installed

.PHONY: demo test bench setup clean

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

setup: $(STAMP)

demo: $(STAMP)
	VENV=$(VENV) bash scripts/demo.sh

test: $(STAMP)
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf runs .pytest_cache
