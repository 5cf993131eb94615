# The two commands of the README (and the lint check CI runs). Each runs the idempotent set-up first.
SHELL := /bin/bash
CORES ?= 2
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup study resume test test-fast lint bench published-report

setup:
	bash scripts/setup.sh

study: setup
	snakemake --cores $(CORES) all

# after Snakemake itself was killed (docs/resuming.md): drop its stale lock, rerun what it left incomplete
resume: setup
	snakemake --unlock
	snakemake --cores $(CORES) all --rerun-incomplete

# the published study's report, from its shards alone (no data, no models; docs/shards.md)
published-report: setup
	xlir report --shards studies/lareqa/shards/* --out-dir studies/lareqa/report

test: setup
	python -m pytest -q --durations=15

# the fast tier: no Snakemake, torchrun, Pyserini or browser start-up (tests/conftest.py marks the slow ones)
test-fast: setup
	python -m pytest -q -m "not slow"

# ruff (lint + format check, pyproject.toml) and Snakemake's own linter; any finding fails
lint: setup
	ruff check workflow tests scripts benchmarks
	ruff format --check workflow tests scripts benchmarks
	snakemake --lint

# Throughput against sentence-transformers and a bare PyTorch loop (README: Performance); builds the
# demo's model, batches and benchmark first. Not a test: run it alone on the machine.
BENCH_INPUTS = results/models/e5-small/base results/data/train/pairs.jsonl \
	results/batches/hybrid/seed13.jsonl results/benchmarks/demo/prepared/candidates.jsonl
bench: setup
	snakemake --cores $(CORES) $(BENCH_INPUTS)
	python benchmarks/throughput.py --out benchmarks/results/latest.json $(BENCH_ARGS)
