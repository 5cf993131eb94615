"""Integration: Snakemake runs every rule on a tiny config with the real Apertium,
PyTorch, Pyserini (Lucene + Faiss) and Snakemake; then a config change reruns only
the changed variant's jobs, and an invalid config fails before any job runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]

CORPUS = {
    "science": [
        ("what is water made of", "water is hydrogen and oxygen"),
        ("what is the sun", "the sun is a star"),
        ("what do plants need", "plants need light and water"),
        ("what is a planet", "a planet orbits a star"),
    ],
    "food": [
        ("do you like bread", "bread is good food"),
        ("what is cheese", "cheese is made from milk"),
        ("is fruit healthy", "fruit is very healthy"),
        ("what is soup", "soup is a hot meal"),
        ("what do cows eat", "cows eat grass"),
        ("what is rice", "rice is a grain"),
    ],
    "sports": [
        ("who plays football", "many people play football"),
        ("what is tennis", "tennis uses a ball"),
        ("can you swim", "swimming is a sport"),
        ("what is a race", "a race is a contest of speed"),
        ("who won the game", "the home team won"),
        ("what is golf", "golf is played on grass"),
    ],
}


def write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True)
    for category, pairs in CORPUS.items():
        (folder / f"{category}.yml").write_text(
            yaml.safe_dump({"categories": [category], "conversations": [list(p) for p in pairs]}), encoding="utf-8"
        )


MIRACL = {  # a MIRACL-format fixture: topics, graded qrels (0/1) and a gzipped corpus per language
    "en": {
        "topics": [("101", "which river flows through paris"), ("102", "how tall is mount everest")],
        "docs": [
            ("1#0", "Paris", "the seine river flows through paris"),
            ("1#1", "Paris", "paris has many museums and old bridges"),
            ("2#0", "Everest", "mount everest is about 8849 metres tall"),
            ("2#1", "Everest", "climbers reach everest from nepal"),
            ("3#0", "Lyon", "lyon lies where the rhone meets the saone"),
        ],
        "qrels": [("101", "1#0", 1), ("101", "1#1", 0), ("101", "3#0", 0), ("102", "2#0", 1), ("102", "2#1", 1)],
    },
    "es": {
        "topics": [("201", "que rio pasa por madrid")],
        "docs": [
            ("7#0", "Madrid", "el rio manzanares pasa por madrid"),
            ("7#1", "Madrid", "madrid es la capital de espana"),
            ("8#0", "Sevilla", "el guadalquivir pasa por sevilla"),
        ],
        "qrels": [("201", "7#0", 1), ("201", "8#0", 0)],
    },
}


def write_miracl_mirror(root: Path) -> None:
    """{root}/miracl/ laid out like the Hugging Face datasets miracl/miracl and miracl/miracl-corpus."""
    import gzip

    for lang, data in MIRACL.items():
        base = root / "miracl" / f"miracl-v1.0-{lang}"
        (base / "topics").mkdir(parents=True)
        (base / "qrels").mkdir(parents=True)
        (base / "topics" / f"topics.miracl-v1.0-{lang}-dev.tsv").write_text(
            "".join(f"{qid}\t{text}\n" for qid, text in data["topics"]), encoding="utf-8"
        )
        (base / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv").write_text(
            "".join(f"{qid}\tQ0\t{docid}\t{rel}\n" for qid, docid, rel in data["qrels"]), encoding="utf-8"
        )
        corpus = root / "miracl" / f"miracl-corpus-v1.0-{lang}"
        corpus.mkdir(parents=True)
        with gzip.open(corpus / "docs-0.jsonl.gz", "wt", encoding="utf-8") as handle:
            for docid, title, text in data["docs"]:
                handle.write(json.dumps({"docid": docid, "title": title, "text": text}) + "\n")


def tiny_config(tmp: Path) -> dict:
    return {
        "models": {
            "tiny": {"source": "path", "path": str(tmp / "tiny_model"), "max_length": 24, "encode_batch_size": 16}
        },
        "qa": {
            "corpus_dir": str(tmp / "corpus"),
            "heldout_categories": ["science"],
            "exclude_categories": [],
            "max_pairs_per_category": None,
        },
        "translation": {"backend": "apertium", "languages": ["es", "ca", "gl"]},
        "training": {
            "languages": ["en", "es", "ca"],
            "steps": 3,
            "batch_size": 4,
            "lr": 1.0e-3,
            # the LoRA variant's lr is selected on the dev split with selection seed 2 (rule select_lr);
            # test seed 1 trains once at it (rule train_at_selected_lr)
            "lr_sweep": {"lora": [1.0e-3, 3.0e-3], "seeds": [2]},
        },
        "samplings": {"hybrid": {"alpha": 0.5}, "xx": {"alpha": 1.0}},
        "seeds": [1],
        "variants": {
            "uniform": {"kind": "uniform"},
            "decay-0.8": {"kind": "decay", "gamma": 0.8},
            "lora-linear": {"kind": "lora", "profile": "linear", "rank": 4, "min_rank": 2, "alpha": 8},
        },
        "benchmarks": {
            "demo": {"kind": "demo", "languages": ["en", "es", "gl"], "paragraph_size": 2},
            "miracl": {"kind": "miracl", "split": "dev", "languages": ["en", "es"]},
        },
        "data": {"mirror": str(tmp / "mirror"), "download": False},
    }


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*SNAKEMAKE, "-d", str(workdir), "--configfile", str(workdir / "config.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=1200,  # the whole tiny study; generous for a loaded CI machine
    )
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
    write_miracl_mirror(workdir / "mirror")
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
    # every model directory is a sentence-transformers one too; a LoRA run keeps its adapter; a card per run
    for model_dir in ("models/tiny/base", "runs/tiny/lora-linear/hybrid/seed1/model"):
        assert json.loads((results / model_dir / "sentence_bert_config.json").read_text())["max_seq_length"] == 24
        assert (results / model_dir / "modules.json").is_file() and (results / model_dir / "1_Pooling").is_dir()
    assert (results / "runs/tiny/lora-linear/hybrid/seed1/model/adapter/adapter_config.json").is_file()
    assert not (results / "runs/tiny/uniform/hybrid/seed1/model/adapter").exists()
    card = (results / "runs/tiny/lora-linear/hybrid/seed1/model/README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: sentence-transformers") and "hybrid (alpha 0.5" in card
    quality = json.loads((results / "data/mt/gl.quality.json").read_text())
    assert quality["method"] == "round-trip" and quality["chrf"] > 0
    assert json.loads((results / "checks/leakage_demo.json").read_text())["passed"] is True
    assert (results / "timing/train/tiny/uniform/xx/seed1.tsv").exists()
    # MIRACL: fetched from the mirror, monolingual only, nDCG@10 and R@100, checked against trec_eval
    assert json.loads((results / "../resources/benchmarks/miracl/checksums.json").read_text())["files"]
    miracl = json.loads((results / "runs/tiny/zeroshot/none/seed0/miracl/metrics.json").read_text())
    assert miracl["settings"]["monolingual"]["n_pairs"] == 2 and miracl["settings"]["cross-lingual"]["n_pairs"] == 0
    assert 0.0 < miracl["settings"]["monolingual"]["ndcg_cut_10"] <= 1.0
    assert miracl["settings"]["monolingual"]["recall_100"] == 1.0  # every passage is ranked
    assert sorted(p.name for p in (results / "runs/tiny/zeroshot/none/seed0/miracl/trec").glob("*.trec")) == [
        "en-en.trec",
        "es-es.trec",
    ]
    for run in ("tiny+zeroshot+none+seed0", "bm25+lexical+none+seed0"):
        for benchmark in ("demo", "miracl"):
            check = json.loads((results / f"checks/trec_eval/{benchmark}/{run}.json").read_text())
            assert check["passed"] and check["max_abs_diff_vs_trec_eval"] <= 1e-4, check
    csv = (results / "report/metrics.csv").read_text()
    assert "zeroshot" in csv and "lexical" in csv and "lora-linear" in csv
    # the lr sweep: both grid points scored on the dev split only; the selected one is the run
    selection = json.loads((results / "selection/tiny/lora-linear/hybrid.json").read_text())
    assert [point["lr"] for point in selection["grid"]] == [1.0e-3, 3.0e-3]
    for lr in ("0.001", "0.003"):
        sweep_run = results / f"runs/tiny/lora-linear.lr{lr}/hybrid/seed2"
        assert (sweep_run / "dev/metrics.json").is_file() and not (sweep_run / "demo").exists()
    summary = json.loads((results / "runs/tiny/lora-linear/hybrid/seed1/train_summary.json").read_text())
    assert summary["base_lr"] == selection["selected_lr"]
    report = (results / "report/index.md").read_text(encoding="utf-8")
    assert "## Learning rate" in report and "lr_sweep.png" in report


@pytest.mark.integration
def test_report_has_statistics_verdict_and_renders(finished_workdir, tmp_path):
    import pandas as pd

    from tests.chromium import assert_renders

    report = finished_workdir / "results" / "report"
    comparisons = pd.read_csv(report / "comparisons.csv")
    scaling = comparisons[(comparisons.family == "scaling") & (comparisons.subset == "all")]
    assert {"decay-0.8", "lora-linear"} <= set(scaling.treatment_variant)
    assert set(scaling.control_variant) == {"uniform"}
    demo = scaling[(scaling.benchmark == "demo") & (scaling.metric == "map")]
    assert set(demo.setting) == {"monolingual", "cross-lingual", "multilingual"}
    assert (demo.n_queries == 4).all() and demo.single_seed.all()  # 4 held-out question ids, seed 1
    assert set(scaling[scaling.benchmark == "miracl"].setting) == {"monolingual"}
    assert set(comparisons[(comparisons.benchmark == "miracl") & comparisons.headline].metric) == {"ndcg_cut_10"}
    assert (comparisons.p_holm >= comparisons.p_value - 1e-12).all()
    claims = pd.read_csv(report / "claims.csv")
    assert set(claims.claim) == {"C1", "C2", "C3", "C4", "C5"}  # one model size: no C5-largest
    assert set(claims.verdict) <= {
        "supported",
        "not supported",
        "contradicted",
        "mixed",
        "inconclusive",
        "not tested by this run",
    }
    miracl = claims[claims.benchmark == "miracl"]
    # monolingual only: the cross-lingual claims cannot be tested; the research question is judged per
    # setting, so MIRACL's C5 rows are its monolingual setting's
    assert (miracl[~miracl.claim.isin(["C5", "C5-largest"])].verdict == "not tested by this run").all()
    c5 = miracl[miracl.claim.isin(["C5", "C5-largest"])]
    assert (c5[c5.setting != "monolingual"].verdict == "not tested by this run").all()
    verdict = (report / "verdict.md").read_text(encoding="utf-8")
    assert "single seed (1)" in verdict and "**demo**" in verdict
    markdown = (report / "index.md").read_text(encoding="utf-8")
    assert "| seeds | [13] | [1] |" in markdown and "wall s" in markdown
    check = assert_renders(report / "index.html", tmp_path / "report.png", min_tables=10, min_images=6)
    assert "Verdict" in check["headings"]
    done = snakemake(finished_workdir, "--report", str(tmp_path / "snakemake_report.html"))
    assert (tmp_path / "snakemake_report.html").stat().st_size > 10_000, done.stdout[-2000:]


@pytest.mark.integration
def test_shards_merge_into_the_report_one_run_gives(finished_workdir, tmp_path):
    """The study's shards (the lr selection, the baselines, the test seed) exported from the finished
    run, merged by `xlir report --shards`: comparisons.csv and metrics.csv identical to the run's."""
    for target in ("shard_selection", "shard_baselines", "shard_seeds"):
        done = snakemake(finished_workdir, "--cores", "2", target)
        assert "rule train" not in done.stdout  # exporting retrains nothing
    shards = finished_workdir / "results" / "shards" / "study"
    assert sorted(p.name for p in shards.iterdir()) == ["baselines", "seeds-1", "selection"]
    manifests = {p.name: json.loads((p / "manifest.json").read_text()) for p in shards.iterdir()}
    assert len({m["design_hash"] for m in manifests.values()}) == 1
    seeds = manifests["seeds-1"]
    assert seeds["seeds"] == [1] and seeds["selection_seeds"] == [2] and not seeds["seed_overlap"]
    assert seeds["machine"]["cpu_flags"] and seeds["times"]["wall_s"] >= 0 and seeds["packages"]["torch"]
    paths = {f["path"] for f in seeds["files"]}
    assert "runs/tiny/uniform/hybrid/seed1/demo/per_query.tsv.gz" in paths
    assert "runs/tiny/uniform/hybrid/seed1/demo/analysis/layers.tsv" in paths
    assert not any("/model/" in p or p.endswith((".safetensors", ".bin")) for p in paths)  # no weights
    out = tmp_path / "merged"

    def merge(folders: list[Path], out_dir: Path) -> subprocess.CompletedProcess:
        command = [
            sys.executable,
            "-m",
            "xlir.cli",
            "report",
            "--shards",
            *map(str, folders),
            "--out-dir",
            str(out_dir),
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    done = merge(sorted(shards.iterdir()), out)
    assert done.returncode == 0, done.stderr[-4000:]
    report = finished_workdir / "results" / "report"
    for table in ("comparisons.csv", "metrics.csv", "claims.csv"):
        assert (out / table).read_text() == (report / table).read_text(), table
    assert (out / "index.html").stat().st_size > 10_000 and (out / "verdict.md").is_file()
    # the same (run, seed) twice is refused
    done = merge([*sorted(shards.iterdir()), shards / "seeds-1"], tmp_path / "twice")
    assert done.returncode != 0 and "two shards" in done.stderr
    # a shard of another design is refused, naming the keys that differ
    other = tmp_path / "other"
    shutil.copytree(shards / "baselines", other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["design"]["training"]["steps"] = 99
    manifest["design_hash"] = "0" * 16
    (other / "manifest.json").write_text(json.dumps(manifest))
    done = merge([shards / "seeds-1", other], tmp_path / "mixed")
    assert done.returncode != 0 and "training.steps" in done.stderr


@pytest.mark.integration
@pytest.mark.parametrize(
    "change",
    [
        {"training": {"checkpoint_every": 7}},
        {"translation": {"cache": "elsewhere/mt.sqlite"}},
        {"threads": {"train": 2, "encode": 2, "search": 2}},
    ],
    ids=["checkpoint_every", "mt-cache", "threads"],
)
def test_settings_that_change_no_result_retrain_nothing(finished_workdir, change):
    """Checkpoint frequency, the MT cache's location and thread counts are not params: with
    --rerun-triggers params input mtime a finished study plans no train (or translate) job."""
    path = finished_workdir / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    for section, values in change.items():
        config[section] = {**config.get(section, {}), **values}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    try:
        dry = snakemake(finished_workdir, "-n", "all", "--rerun-triggers", "params", "input", "mtime")
    finally:
        path.write_text(original, encoding="utf-8")
    counts = job_counts(dry.stdout)
    assert not {"train", "train_at_selected_lr", "translate", "encode"} & set(counts), dry.stdout[-3000:]


@pytest.mark.integration
def test_changing_one_variant_reruns_only_its_jobs(finished_workdir):
    config = yaml.safe_load((finished_workdir / "config.yaml").read_text())
    config["variants"]["decay-0.8"]["gamma"] = 0.7
    (finished_workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    dry = snakemake(finished_workdir, "-n", "all", "--rerun-triggers", "params", "input", "mtime")
    counts = job_counts(dry.stdout)
    per_benchmark = len(tiny_config(finished_workdir)["benchmarks"]) + 1  # and the dev split
    assert counts == {
        "train": 1,
        "analyze": 1,  # the layer analysis of the retrained run (demo; MIRACL has no parallel probe set)
        "encode": per_benchmark,
        "index_dense": per_benchmark,
        "search_dense": per_benchmark,
        "evaluate": per_benchmark,
        "aggregate": 1,
        "compare": 1,
        "report": 1,
        "all": 1,
    }, dry.stdout[-3000:]
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
