# The two commands of the README. Both run the idempotent set-up first.
SHELL := /bin/bash
CORES ?= 2
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup study test

setup:
	bash scripts/setup.sh

study: setup
	snakemake --cores $(CORES) all

test: setup
	python -m pytest -q
