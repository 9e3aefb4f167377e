# `make run` and `make test` set up .venv on first use, then do their job. `make run` installs
# what running needs (the project and its dependencies); `make test` adds the test tools
# (pytest, ruff, the trackers and exporters the tests drive), even after a `make run`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per set-up step: what running needs, then what testing adds.
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	@echo "== Setting up $(VENV) for 'make run': the project and what running needs (torch, SMP, timm, albumentations, ...)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@# Before 0.1.0 the distribution was named 'harness' (a name taken on the index): drop it.
	$(PIP) uninstall --quiet --yes harness 2>/dev/null || true
	$(PIP) install --progress-bar off -e .
	touch $(STAMP)
	@echo "== $(VENV) is ready to run ('make test' adds the test tools)"

$(TEST_STAMP): $(STAMP)
	@echo "== Adding the test tools to $(VENV): pytest, ruff, tensorboard, mlflow, wandb, onnx, selenium"
	$(PIP) install --progress-bar off -e '.[test]'
	touch $(TEST_STAMP)

run: $(STAMP)
	$(BIN)/harness run --model unetpp --loss dice

test: $(TEST_STAMP)
	$(BIN)/python -m pytest tests benchmarks --benchmark-disable
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Side-by-side speed measurements (harness vs the baselines each issue names).
bench: $(TEST_STAMP)
	$(PIP) install --quiet -e '.[test,bench]'
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-group-by=group \
		--benchmark-columns=min,median,mean,ops,rounds --benchmark-sort=mean

clean:
	rm -rf $(VENV) build *.egg-info
