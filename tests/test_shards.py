"""Shards without Snakemake: the design hash, the export's files and manifest, importing a
selection, and the merge's refusals (the whole round trip on the tiny study: test_workflow.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from xlir.common.design import EXCLUDED_KEYS, design_config, design_hash, differing_keys
from xlir.common.io import InputError, write_json
from xlir.report.shards import materialise, read_shards, report_manifest
from xlir.shard.export_shard import belongs_to_shard, export_shard, run_fragments
from xlir.train.import_selection import import_selection

CONFIG = {
    "study": "s",
    "seeds": [13],
    "threads": {"train": 1},
    "training": {"steps": 100, "checkpoint_every": 10, "lr_sweep": {"full": [1e-5], "selection_from": "x"}},
    "translation": {"cache": "a.sqlite", "languages": ["es"]},
    "data": {"mirror": "/m", "download": False},
    "models": {"m": {}},
    "variants": {"uniform": {"kind": "uniform"}},
    "samplings": {"hybrid": {"alpha": 0.5}},
    "benchmarks": {"b": {"kind": "demo"}},
}


def test_the_design_leaves_out_what_changes_no_result():
    design = design_config(CONFIG)
    assert "seeds" not in design and "threads" not in design and "study" not in design
    assert "checkpoint_every" not in design["training"] and "selection_from" not in design["training"]["lr_sweep"]
    assert "cache" not in design["translation"] and "mirror" not in design["data"]
    assert CONFIG["training"]["checkpoint_every"] == 10  # the config itself is untouched
    moved = {**CONFIG, "seeds": [42], "threads": {"train": 8}, "data": {"mirror": "/other"}}
    assert design_hash(design_config(moved)) == design_hash(design)
    changed = {**CONFIG, "training": {**CONFIG["training"], "steps": 200}}
    assert design_hash(design_config(changed)) != design_hash(design)
    assert differing_keys(design, design_config(changed)) == ["training.steps"]
    assert "report" in EXCLUDED_KEYS and "training.lr_sweep.seeds" not in EXCLUDED_KEYS


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    run = results / "runs/m/uniform/hybrid/seed13"
    write_json(run / "train_summary.json", {"precision": "fp32"})
    write_json(run / "b/metrics.json", {"settings": {}})
    (run / "b/per_query.tsv").write_text("qid\tmap\nq1\t0.5\n")
    write_json(run / "b/embeddings/meta.json", {"precision": "fp32", "engine": "torch"})
    (run / "model").mkdir()
    (run / "model/model.safetensors").write_bytes(b"weights")
    write_json(results / "selection/m/uniform/hybrid.json", {"selected_lr": 1e-5, "variant": "uniform"})
    (results / "timing/train/m/uniform/hybrid").mkdir(parents=True)
    (results / "timing/train/m/uniform/hybrid/seed13.tsv").write_text("s\th:m:s\n12.5\t0:00:12\n")
    (results / "timing/train/m/uniform/hybrid/seed99.tsv").write_text("s\th:m:s\n99\t0:01:39\n")  # not ours
    return results


def _contents(files: list[str], kind: str = "seeds", seeds: list[int] | None = None) -> dict:
    return {
        "study": "s",
        "shard": "seeds-13" if kind == "seeds" else kind,
        "kind": kind,
        "design": design_config(CONFIG),
        "config": CONFIG,
        "seeds": seeds if seeds is not None else [13],
        "selection_seeds": [7],
        "runs": [{"model": "m", "variant": "uniform", "sampling": "hybrid", "seed": 13}],
        "files": files,
    }


FILES = [
    "runs/m/uniform/hybrid/seed13/train_summary.json",
    "runs/m/uniform/hybrid/seed13/b/metrics.json",
    "runs/m/uniform/hybrid/seed13/b/per_query.tsv",
    "runs/m/uniform/hybrid/seed13/b/embeddings/meta.json",
    "selection/m/uniform/hybrid.json",
]


def test_export_copies_the_listed_files_gzips_per_query_and_records_the_machine(tmp_path):
    results = _results(tmp_path)
    out = tmp_path / "shards/s/seeds-13"
    manifest = export_shard(_contents(FILES), results, out, tmp_path)
    paths = {f["path"] for f in manifest["files"]}
    assert "runs/m/uniform/hybrid/seed13/b/per_query.tsv.gz" in paths
    assert "timing/train/m/uniform/hybrid/seed13.tsv" in paths
    assert "timing/train/m/uniform/hybrid/seed99.tsv" not in paths  # another shard's run
    assert not any("model" in Path(p).parts for p in paths)  # no weights
    text = gzip.open(out / "files/runs/m/uniform/hybrid/seed13/b/per_query.tsv.gz", "rt").read()
    assert text == "qid\tmap\nq1\t0.5\n"
    assert manifest["design_hash"] == design_hash(design_config(CONFIG))
    assert manifest["precision"]["train"] == {"runs/m/uniform/hybrid/seed13": "fp32"}
    assert manifest["precision"]["encode"] == {"runs/m/uniform/hybrid/seed13/b": "fp32/torch"}
    assert set(manifest["machine"]["cpu_flags"]) >= {"avx2", "avx512_bf16"} and manifest["machine"]["cores"]
    assert manifest["times"]["jobs_s"] == 12.5 and manifest["packages"]["numpy"]
    assert json.loads((out / "manifest.json").read_text())["shard"] == "seeds-13"


def test_export_refuses_a_missing_file_and_leaves_nothing(tmp_path):
    results = _results(tmp_path)
    out = tmp_path / "shards/s/seeds-13"
    with pytest.raises(InputError, match="missing"):
        export_shard(_contents([*FILES, "runs/m/uniform/hybrid/seed13/b/absent.json"]), results, out, tmp_path)
    assert not out.exists() and not list(out.parent.glob(".*tmp"))


def test_import_selection_checks_the_design(tmp_path):
    results = _results(tmp_path)
    shard = tmp_path / "selection"
    export_shard(_contents(["selection/m/uniform/hybrid.json"], kind="selection", seeds=[]), results, shard, tmp_path)
    out = tmp_path / "imported.json"
    selection = import_selection(shard, design_config(CONFIG), "m", "uniform", "hybrid", out)
    assert selection["selected_lr"] == 1e-5 and selection["selection_seeds"] == [7]
    other = design_config({**CONFIG, "training": {**CONFIG["training"], "steps": 5}})
    with pytest.raises(InputError, match="training.steps"):
        import_selection(shard, other, "m", "uniform", "hybrid", out)
    with pytest.raises(InputError, match="no selection"):
        import_selection(shard, design_config(CONFIG), "m", "decay", "hybrid", out)


def test_the_merge_checks_files_and_refuses_a_run_twice(tmp_path):
    results = _results(tmp_path)
    first = tmp_path / "a"
    export_shard(_contents(FILES), results, first, tmp_path)
    manifests = read_shards([first])
    merged = tmp_path / "merged/results"
    materialise(manifests, merged)
    assert (merged / "runs/m/uniform/hybrid/seed13/b/per_query.tsv").read_text().startswith("qid")
    manifest = report_manifest(manifests, str(merged))
    assert [r["seed"] for r in manifest["runs"]] == [13] and manifest["config"]["seeds"] == [13]
    second = tmp_path / "b"
    export_shard(_contents(FILES), results, second, tmp_path)
    with pytest.raises(InputError, match="two shards"):
        read_shards([first, second])
    (first / "files/selection/m/uniform/hybrid.json").write_text("{}")
    with pytest.raises(InputError, match="SHA-256"):
        materialise(read_shards([first]), tmp_path / "again")


def test_a_shard_exports_only_its_own_timing_and_warnings_files():
    own = run_fragments([{"model": "m", "variant": "uniform", "sampling": "hybrid", "seed": 1}])
    ours = [
        "timing/train/m/uniform/hybrid/seed1.tsv",
        "timing/encode/m/uniform/hybrid/seed1/b.tsv",
        "logs/train/m/uniform/hybrid/seed1.warnings.json",
        "timing/plan_batches/hybrid_seed1.tsv",
        "timing/export_shard/seeds-1.tsv",
        "timing/build_train_set.tsv",  # a shared stage
        "timing/import_selection/m/uniform/hybrid.tsv",
    ]
    theirs = [
        "timing/train/m/uniform/hybrid/seed13.tsv",  # seed1 is not seed13
        "timing/encode/m/uniform.lr2e-05/hybrid/seed7/dev.tsv",  # a selection run
        "timing/encode/m/zeroshot/none/seed0/b.tsv",  # a baseline
        "timing/plan_batches/hybrid_seed13.tsv",
        "timing/verify_trec_eval/b/bm25+lexical+none+seed0.tsv",
        "timing/export_shard/seeds-13.tsv",
    ]
    assert [rel for rel in ours if not belongs_to_shard(rel, own, "seeds-1")] == []
    assert [rel for rel in theirs if belongs_to_shard(rel, own, "seeds-1")] == []
    assert belongs_to_shard("timing/train/m/uniform/hybrid/seed13.tsv", [], "any")  # no runs: everything
