# The two commands of the README (and the lint check CI runs). Each runs the idempotent set-up first.
SHELL := /bin/bash
CORES ?= 2
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup study test lint

setup:
	bash scripts/setup.sh

study: setup
	snakemake --cores $(CORES) all

test: setup
	python -m pytest -q

# ruff (lint + format check, pyproject.toml) and Snakemake's own linter; any finding fails
lint: setup
	ruff check workflow tests scripts
	ruff format --check workflow tests scripts
	snakemake --lint
