# Two commands that work on a fresh machine with only Python 3.11+:
#   make demo   – the whole pipeline on embedded SQS (moto) and the bundled Salesforce emulator
#   make test   – the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test venv bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[devkit,test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/connector demo

# PYTHONDONTWRITEBYTECODE is cleared for pytest alone: pytest caches the modules it rewrites for
# assertions (the hypothesis plugin's are 3-4 s of every start) only where it may write bytecode.
test: $(STAMP)
	$(BIN)/ruff check connector connector_devkit tests bench
	# Types of the service's code ([tool.mypy] in pyproject.toml): ~11 s cold, under 1 s from its cache.
	$(BIN)/python -m mypy connector
	# Three workers on the CI machine's two cores (pytest-xdist, work stealing): a fifth of the
	# suite waits on subprocesses, sockets and PostgreSQL, so a third worker fills the idle time
	# (measured idle: -n 2 80 s, -n 3 67 s, -n 4 70 s).
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n 3 --dist worksteal

bench: $(STAMP)
	$(BIN)/python bench/run_bench.py $(ARGS)   # every row of issue 18, then the summary (bench/README.md)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
