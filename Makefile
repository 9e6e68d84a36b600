# The everyday commands. `make dev` once, then `make check` and `make test-fast` before each commit;
# `.ci/run` is what CI runs (the same checks, then the whole suite).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev check test-fast test snap-update

# The README's second set-up command (torch first: the CPU wheel, not a CUDA build).
dev:
	python3 -m venv $(VENV) && . $(BIN)/activate && pip install torch==2.13.0 && pip install -e '.[test]'

# Lint, format, types (the engine and the sandbox strict; then the tests) and the import contracts.
check:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite without the slow tests (end-to-end fault and interrupt proofs, the real-Docker run).
test-fast:
	$(BIN)/pytest -m "not slow"

test:
	$(BIN)/pytest

# After an intended change to a screen: rewrite the SVG snapshots, then read snapshot_report.html.
snap-update:
	$(BIN)/pytest tests/tui/test_snapshots.py --snapshot-update
