"""Integration: Snakemake runs every rule on a tiny config with the real Apertium,
PyTorch, Pyserini (Lucene + Faiss) and Snakemake; then a config change reruns only
the changed variant's jobs, and an invalid config fails before any job runs."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]

CORPUS = {
    "science": [("what is water made of", "water is hydrogen and oxygen"),
                ("what is the sun", "the sun is a star"),
                ("what do plants need", "plants need light and water"),
                ("what is a planet", "a planet orbits a star")],
    "food": [("do you like bread", "bread is good food"), ("what is cheese", "cheese is made from milk"),
             ("is fruit healthy", "fruit is very healthy"), ("what is soup", "soup is a hot meal"),
             ("what do cows eat", "cows eat grass"), ("what is rice", "rice is a grain")],
    "sports": [("who plays football", "many people play football"), ("what is tennis", "tennis uses a ball"),
               ("can you swim", "swimming is a sport"), ("what is a race", "a race is a contest of speed"),
               ("who won the game", "the home team won"), ("what is golf", "golf is played on grass")],
}


def write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True)
    for category, pairs in CORPUS.items():
        (folder / f"{category}.yml").write_text(
            yaml.safe_dump({"categories": [category], "conversations": [list(p) for p in pairs]}), encoding="utf-8")


def tiny_config(tmp: Path) -> dict:
    return {
        "models": {"tiny": {"source": "path", "path": str(tmp / "tiny_model"), "max_length": 24,
                            "encode_batch_size": 16}},
        "qa": {"corpus_dir": str(tmp / "corpus"), "heldout_categories": ["science"], "exclude_categories": [],
               "max_pairs_per_category": None},
        "translation": {"backend": "apertium", "languages": ["es", "ca", "gl"]},
        "training": {"languages": ["en", "es", "ca"], "steps": 3, "batch_size": 4, "lr": 1.0e-3},
        "samplings": {"hybrid": {"alpha": 0.5}, "xx": {"alpha": 1.0}},
        "seeds": [1],
        "variants": {"uniform": {"kind": "uniform"}, "decay-0.8": {"kind": "decay", "gamma": 0.8},
                     "lora-linear": {"kind": "lora", "profile": "linear", "rank": 4, "min_rank": 2, "alpha": 8}},
        "benchmarks": {"demo": {"kind": "demo", "languages": ["en", "es", "gl"], "paragraph_size": 2}},
    }


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*SNAKEMAKE, "-d", str(workdir), "--configfile", str(workdir / "config.yaml"), *args],
                          capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}")
    return done


def job_counts(output: str) -> dict[str, int]:
    counts = {}
    table = output.split("Job stats:")[-1]
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


@pytest.fixture(scope="module")
def finished_workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    build_tiny_model(workdir / "tiny_model")
    write_corpus(workdir / "corpus")
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(workdir)), encoding="utf-8")
    snakemake(workdir, "--cores", "2", "all")
    return workdir


@pytest.mark.integration
def test_every_stage_produced_its_outputs(finished_workdir):
    results = finished_workdir / "results"
    report = (results / "report" / "index.html").read_text(encoding="utf-8")
    assert "<table" in report and "data:image/png;base64" in report
    for setting in ("monolingual", "cross-lingual", "multilingual"):
        assert f"demo: {setting}" in report
    metrics = json.loads((results / "runs/tiny/decay-0.8/hybrid/seed1/demo/metrics.json").read_text())
    assert metrics["settings"]["cross-lingual"]["n_pairs"] == 6  # en/es/gl ordered pairs
    assert 0.0 < metrics["settings"]["monolingual"]["map"] <= 1.0
    bm25 = json.loads((results / "runs/bm25/lexical/none/seed0/demo/metrics.json").read_text())
    assert bm25["settings"]["monolingual"]["map"] > 0.2
    trec = (results / "runs/tiny/zeroshot/none/seed0/demo/trec/es-gl.trec").read_text().splitlines()
    assert len(trec) == 4 * 4  # 4 held-out questions x the whole gl pool of 4 candidates
    groups = (results / "runs/tiny/lora-linear/hybrid/seed1/param_groups.tsv").read_text()
    assert groups.startswith("layer\t")
    quality = json.loads((results / "data/mt/gl.quality.json").read_text())
    assert quality["method"] == "round-trip" and quality["chrf"] > 0
    assert json.loads((results / "checks/leakage_demo.json").read_text())["passed"] is True
    assert (results / "timing/train/tiny/uniform/xx/seed1.tsv").exists()
    csv = (results / "report/metrics.csv").read_text()
    assert "zeroshot" in csv and "lexical" in csv and "lora-linear" in csv


@pytest.mark.integration
def test_changing_one_variant_reruns_only_its_jobs(finished_workdir):
    config = yaml.safe_load((finished_workdir / "config.yaml").read_text())
    config["variants"]["decay-0.8"]["gamma"] = 0.7
    (finished_workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    dry = snakemake(finished_workdir, "-n", "all", "--rerun-triggers", "params", "input", "mtime")
    counts = job_counts(dry.stdout)
    assert counts == {"train": 1, "encode": 1, "index_dense": 1, "search_dense": 1, "evaluate": 1, "report": 1,
                      "all": 1}, dry.stdout[-3000:]
    assert "variant=decay-0.8" in dry.stdout


@pytest.mark.integration
def test_invalid_config_fails_before_any_job(tmp_path):
    config = tiny_config(tmp_path)
    config["training"]["steps"] = "many"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    done = snakemake(tmp_path, "-n", "all", check=False)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "steps" in message and "'many' is not of type 'integer'" in message
    assert not (tmp_path / "results").exists()
