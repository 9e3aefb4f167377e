# `make run` and `make test` set up .venv on first use, then do their job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Before 0.1.0 the distribution was named 'harness' (a name taken on the index): drop it.
	$(BIN)/python -m pip uninstall --quiet --yes harness 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/harness run --model unetpp --loss dice

test: $(STAMP)
	$(BIN)/python -m pytest tests benchmarks --benchmark-disable
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Side-by-side speed measurements (harness vs the baselines each issue names).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-group-by=group \
		--benchmark-columns=min,median,mean,ops,rounds --benchmark-sort=mean

clean:
	rm -rf $(VENV) build *.egg-info
