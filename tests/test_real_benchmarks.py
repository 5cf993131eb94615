"""The real-benchmark path: fetching (mirror and download, checksums), the MIRACL
loader, full-depth metrics from relevant-rank files (equal to the TREC-file
metrics, which equal trec_eval's), nDCG against trec_eval, and the official
XQuAD-R / MLQA-R statistics when a local mirror is present."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import random
import threading
from pathlib import Path

import numpy as np
import pytest

from xlir.benchmarks import fetch_benchmark as fetch
from xlir.benchmarks.lareqa import load_lareqa
from xlir.benchmarks.miracl import prepare_miracl
from xlir.benchmarks.qrels import read_qrels_graded
from xlir.common.io import InputError, read_json, write_jsonl
from xlir.evaluation.evaluate import evaluate_ranks_dir, evaluate_run_dir, evaluate_run_file
from xlir.evaluation.metrics import ndcg_from_ranks

MIRROR = Path(os.environ.get("XLIR_LAREQA_MIRROR", Path(__file__).resolve().parents[2] / "shared" / "data"))

# ---------------------------------------------------------------- fixtures


def _lareqa_doc(lang: str) -> dict:
    return {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": f"{lang} one. {lang} two.",
                        "sentences": [f"{lang} one.", f"{lang} two."],
                        "sentence_breaks": [[0, 7], [8, 15]],
                        "qas": [
                            {"id": "q1", "question": f"{lang} q?", "answers": [{"text": "two", "answer_start": 9}]}
                        ],
                    }
                ],
            }
        ]
    }


def _write_lareqa_mirror(root: Path, dataset: str, langs: list[str]) -> None:
    folder = root / "lareqa" / dataset
    folder.mkdir(parents=True)
    for lang in langs:
        (folder / f"{lang}.json").write_text(json.dumps(_lareqa_doc(lang)), encoding="utf-8")


def _write_miracl(root: Path, lang: str = "sw", n_docs: int = 6) -> None:
    base = root / "miracl" / f"miracl-v1.0-{lang}"
    (base / "topics").mkdir(parents=True)
    (base / "qrels").mkdir(parents=True)
    (base / "topics" / f"topics.miracl-v1.0-{lang}-dev.tsv").write_text("1\tswali moja\n2\tswali mbili\n3\tbila jibu\n")
    (base / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv").write_text(
        "1\tQ0\td0#0\t1\n1\tQ0\td1#0\t0\n2\tQ0\td2#0\t1\n2\tQ0\td3#0\t1\n3\tQ0\td4#0\t0\n"
    )
    corpus = root / "miracl" / f"miracl-corpus-v1.0-{lang}"
    corpus.mkdir(parents=True)
    with gzip.open(corpus / "docs-0.jsonl.gz", "wt", encoding="utf-8") as handle:
        for i in range(n_docs):
            handle.write(json.dumps({"docid": f"d{i}#0", "title": f"T{i}", "text": f"maandishi {i}"}) + "\n")


@pytest.fixture()
def http_root(tmp_path):
    """A local HTTP server (no network) serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# ---------------------------------------------------------------- fetching


def test_fetch_lareqa_from_mirror_records_checksums(tmp_path, caplog):
    _write_lareqa_mirror(tmp_path / "mirror", "xquad-r", ["en", "es"])
    out = tmp_path / "resources" / "xquad-r"
    with caplog.at_level("WARNING"):
        records = fetch.fetch_lareqa("xquad-r", ["en", "es"], out, tmp_path / "mirror", verify=False)
    # accepted with verify_checksums false, never silently: a warning per file (the report lists them)
    mismatches = [r for r in caplog.records if "differs from the official xquad-r" in r.getMessage()]
    assert len(mismatches) == 2 and all(r.levelname == "WARNING" for r in mismatches)
    assert sorted(p.name for p in out.iterdir()) == ["checksums.json", "en.json", "es.json"]
    saved = read_json(out / "checksums.json")["files"]
    assert saved == records and saved["en.json"]["verified"] is False
    assert saved["en.json"]["sha256"] == fetch.file_sha256(out / "en.json")
    # the fixture is not the official file: with verification on, the SHA-256 mismatch is an error
    with pytest.raises(InputError, match="SHA-256 .* differs from the official xquad-r/en.json"):
        fetch.fetch_lareqa("xquad-r", ["en"], tmp_path / "other", tmp_path / "mirror", verify=True)
    assert not (tmp_path / "other").exists()  # nothing half-written


def test_fetch_fails_clearly_without_mirror_or_download(tmp_path):
    with pytest.raises(InputError, match=r"lareqa/mlqa-r/de.json is missing and data.download is false"):
        fetch.fetch_lareqa("mlqa-r", ["de"], tmp_path / "out", tmp_path)
    with pytest.raises(InputError, match="no language"):
        fetch.fetch_lareqa("mlqa-r", ["ru"], tmp_path / "out", tmp_path)
    assert not (tmp_path / "out").exists()


def test_fetch_downloads_lareqa_and_miracl_over_http(tmp_path, http_root, monkeypatch):
    www, base = http_root
    _write_lareqa_mirror(www / "lareqa-src", "mlqa-r", ["vi"])
    import xlir.common.lareqa_files as lareqa_files

    monkeypatch.setattr(lareqa_files, "LAREQA_URL", base + "/lareqa-src/lareqa/{dataset}/{lang}.json")
    records = fetch.fetch_lareqa("mlqa-r", ["vi"], tmp_path / "mlqa", None, allow_download=True, verify=False)
    assert records["vi.json"]["source"].startswith(base)
    assert json.loads((tmp_path / "mlqa" / "vi.json").read_text())["data"][0]["paragraphs"]

    # MIRACL through an HF_ENDPOINT-style server: resolve URLs and the tree API listing
    _write_miracl(tmp_path / "src")
    (www / "datasets/miracl/miracl/resolve").mkdir(parents=True)
    os.symlink(tmp_path / "src" / "miracl", www / "datasets/miracl/miracl/resolve/main")
    (www / "datasets/miracl/miracl-corpus/resolve").mkdir(parents=True)
    os.symlink(tmp_path / "src" / "miracl", www / "datasets/miracl/miracl-corpus/resolve/main")
    api = www / "api/datasets/miracl/miracl-corpus/tree/main"
    api.mkdir(parents=True)
    (api / "miracl-corpus-v1.0-sw").write_text(
        json.dumps([{"type": "file", "path": "miracl-corpus-v1.0-sw/docs-0.jsonl.gz"}])
    )
    monkeypatch.setenv("HF_ENDPOINT", base)
    records = fetch.fetch_miracl(["sw"], "dev", tmp_path / "miracl", None, allow_download=True)
    assert set(records) == {"sw/topics.tsv", "sw/qrels.tsv", "sw/corpus/docs-0.jsonl.gz"}
    stats = prepare_miracl(tmp_path / "miracl", ["sw"], tmp_path / "prepared")
    assert stats["questions_per_language"] == {"sw": 2}  # topic 3 has no relevant passage


# ---------------------------------------------------------------- MIRACL loader


def test_prepare_miracl_counts_ids_and_qrels(tmp_path):
    _write_miracl(tmp_path / "mirror", n_docs=40)
    fetch.fetch_miracl(["sw"], "dev", tmp_path / "raw", tmp_path / "mirror")
    stats = prepare_miracl(tmp_path / "raw", ["sw"], tmp_path / "prepared")
    assert stats["n_questions"] == 2 and stats["n_candidates"] == 40 and not stats["subsampled"]
    questions = [json.loads(line) for line in (tmp_path / "prepared/questions.jsonl").read_text().splitlines()]
    assert [q["qid"] for q in questions] == ["sw:1", "sw:2"]
    candidates = [json.loads(line) for line in (tmp_path / "prepared/candidates.jsonl").read_text().splitlines()]
    assert candidates[0] == {"cid": "sw:d0#0", "lang": "sw", "text": "T0 maandishi 0", "context": "T0"}
    qrels = read_qrels_graded(tmp_path / "prepared/qrels.tsv")
    assert qrels["sw:1"] == {"sw:d0#0": 1, "sw:d1#0": 0}  # non-relevant judgements are kept
    small = prepare_miracl(tmp_path / "raw", ["sw"], tmp_path / "small", max_candidates_per_language=10)
    assert small["subsampled"] and small["candidates_per_language"] == {"sw": 10}
    kept = {json.loads(line)["cid"] for line in (tmp_path / "small/candidates.jsonl").read_text().splitlines()}
    assert {"sw:d0#0", "sw:d1#0", "sw:d2#0", "sw:d3#0", "sw:d4#0"} <= kept  # judged passages always stay


def test_prepare_miracl_bad_input_names_file_and_line(tmp_path):
    _write_miracl(tmp_path / "m")
    fetch.fetch_miracl(["sw"], "dev", tmp_path / "raw", tmp_path / "m")
    qrels = tmp_path / "raw/sw/qrels.tsv"
    qrels.write_text(qrels.read_text() + "1 Q0 d9#0\n")
    with pytest.raises(InputError, match=r"qrels.tsv: line 6: expected 'qid Q0 docid rel'"):
        prepare_miracl(tmp_path / "raw", ["sw"], tmp_path / "prepared")
    qrels.write_text("1\tQ0\tmissing#0\t1\n")
    with pytest.raises(InputError, match="judged passages are not in the corpus"):
        prepare_miracl(tmp_path / "raw", ["sw"], tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()


# ---------------------------------------------------------------- full-depth metrics from ranks


def _tied_benchmark(root: Path, langs=("en", "de"), topics=12, dim=4, seed=7) -> dict:
    """Questions/candidates with coarse (tie-prone) embeddings and multilingual qrels."""
    rng = np.random.default_rng(seed)
    questions, candidates, qrels = [], [], []
    q_vectors, c_vectors = [], []
    for lang in langs:
        for t in range(topics):
            questions.append({"qid": f"{lang}:q{t}", "lang": lang, "id": f"q{t}", "text": f"q {t}"})
            q_vectors.append(rng.integers(-1, 2, dim))
            for s in range(3):
                candidates.append({"cid": f"{lang}:{t}:{s}", "lang": lang, "text": f"c {t} {s}"})
                c_vectors.append(rng.integers(-1, 2, dim))
    for q in questions:
        t = q["id"][1:]
        for lang in langs:
            qrels.append(f"{q['qid']} 0 {lang}:{t}:{int(t) % 3} 1\n")
            qrels.append(f"{q['qid']} 0 {lang}:{t}:{(int(t) + 1) % 3} 0\n")
    emb = root / "embeddings"
    emb.mkdir(parents=True)

    def unit(rows):
        matrix = np.array(rows, dtype=np.float32) + 0.5  # no zero rows; coarse values -> many ties
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    np.save(emb / "questions.npy", unit(q_vectors))
    np.save(emb / "candidates.npy", unit(c_vectors))
    (emb / "questions.ids").write_text("".join(q["qid"] + "\n" for q in questions))
    (emb / "candidates.ids").write_text("".join(c["cid"] + "\n" for c in candidates))
    write_jsonl(root / "questions.jsonl", questions)
    write_jsonl(root / "candidates.jsonl", candidates)
    (root / "qrels.tsv").write_text("".join(qrels))
    return {
        "embeddings": emb,
        "questions": root / "questions.jsonl",
        "candidates": root / "candidates.jsonl",
        "qrels": root / "qrels.tsv",
    }


def _assert_same_metrics(a: dict, b: dict) -> None:
    for setting, summary in a["settings"].items():
        for name, value in summary.items():
            if isinstance(value, float):
                assert value == pytest.approx(b["settings"][setting][name], abs=1e-12), (setting, name)


def test_dense_ranks_equal_full_depth_trec_metrics_with_ties(tmp_path):
    from xlir.retrieval.dense import build_faiss_indexes, dense_search

    bench = _tied_benchmark(tmp_path)
    build_faiss_indexes(bench["embeddings"], bench["candidates"], tmp_path / "index")
    dense_search(
        bench["embeddings"],
        bench["questions"],
        tmp_path / "index",
        tmp_path / "trec",
        qrels_path=bench["qrels"],
        out_ranks_dir=tmp_path / "ranks",
    )
    from_trec = evaluate_run_dir(tmp_path / "trec", bench["qrels"], (1, 10), (10,))
    from_ranks = evaluate_ranks_dir(tmp_path / "ranks", bench["qrels"], (1, 10), (10,))
    assert len(from_ranks.queries) == 2 * 12 * 3  # 2 query languages x 12 topics x (2 pools + pooled)
    _assert_same_metrics(from_trec.metrics, from_ranks.metrics)
    manifest = read_json(tmp_path / "ranks" / "manifest.json")
    assert manifest["depth"] is None and manifest["runs"]["en-all"]["k"] == 72

    # TREC files truncated at 5 while the ranks keep the full ranking: R@1 agrees, mAP is full-depth
    dense_search(
        bench["embeddings"],
        bench["questions"],
        tmp_path / "index",
        tmp_path / "trec5",
        trec_depth=5,
        qrels_path=bench["qrels"],
        out_ranks_dir=tmp_path / "ranks5",
    )
    truncated = evaluate_run_dir(tmp_path / "trec5", bench["qrels"], (1,))
    full = evaluate_ranks_dir(tmp_path / "ranks5", bench["qrels"], (1,))
    _assert_same_metrics(full.metrics, from_ranks.metrics)
    for setting in ("monolingual", "multilingual"):
        assert truncated.metrics["settings"][setting]["recall_1"] == pytest.approx(
            full.metrics["settings"][setting]["recall_1"], abs=1e-12
        )


def test_bm25_ranks_equal_trec_metrics(tmp_path):
    from xlir.retrieval.bm25 import bm25_search, build_bm25_indexes

    records = [
        {"cid": f"en:{t}:{s}", "lang": "en", "text": f"topic{t} word{s} shared"} for t in range(6) for s in range(3)
    ]
    questions = [{"qid": f"en:q{t}", "lang": "en", "id": f"q{t}", "text": f"topic{t} word{t % 3}"} for t in range(6)]
    write_jsonl(tmp_path / "candidates.jsonl", records)
    write_jsonl(tmp_path / "questions.jsonl", questions)
    (tmp_path / "qrels.tsv").write_text(
        "".join(f"en:q{t} 0 en:{t}:{t % 3} 1\nen:q{t} 0 en:{(t + 1) % 6}:0 1\n" for t in range(6))
    )
    build_bm25_indexes(tmp_path / "candidates.jsonl", tmp_path / "index", ["en"])
    bm25_search(
        tmp_path / "questions.jsonl",
        tmp_path / "index",
        tmp_path / "trec",
        depth=4,
        qrels_path=tmp_path / "qrels.tsv",
        out_ranks_dir=tmp_path / "ranks",
    )
    _assert_same_metrics(
        evaluate_run_dir(tmp_path / "trec", tmp_path / "qrels.tsv").metrics,
        evaluate_ranks_dir(tmp_path / "ranks", tmp_path / "qrels.tsv").metrics,
    )


def test_ranks_file_from_other_qrels_is_refused(tmp_path):
    folder = tmp_path / "ranks"
    folder.mkdir()
    (folder / "en-en.tsv").write_text("qid\tdocid\trel\trank\tscore\tn_ranked\nen:q1\ten:0:0\t1\t3\t0.5\t10\n")
    (tmp_path / "qrels.tsv").write_text("en:q1 0 en:0:1 1\n")
    with pytest.raises(InputError, match="not relevant in the qrels"):
        evaluate_ranks_dir(folder, tmp_path / "qrels.tsv")
    (folder / "en-en.tsv").write_text("qid\tdocid\trank\nx\ty\t1\n")
    with pytest.raises(InputError, match="line 1: expected the tab-separated header"):
        evaluate_ranks_dir(folder, tmp_path / "qrels.tsv")


# ---------------------------------------------------------------- nDCG vs trec_eval


def test_ndcg_known_answer_and_trec_eval_agreement(tmp_path):
    # graded: rel 2 at rank 2, rel 1 at rank 1, one rel-1 document unretrieved
    dcg = 1 / 1 + 2 / np.log2(3)
    idcg = 2 / 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_from_ranks([1, 2, None], [1, 2, 1], 10) == pytest.approx(dcg / idcg)
    assert ndcg_from_ranks([11], [1], 10) == 0.0

    pytest.importorskip("pyserini")
    from xlir.evaluation.verify_trec_eval import run_trec_eval

    rng = random.Random(3)
    docs = [f"en:{i:03d}" for i in range(80)]
    qrels_lines, run_lines = [], []
    for q in range(20):
        qid = f"en:q{q}"
        for docid in rng.sample(docs, rng.randint(1, 6)):
            qrels_lines.append(f"{qid} 0 {docid} {rng.choice([0, 1, 1, 2])}")
        for rank, docid in enumerate(rng.sample(docs, 60), start=1):
            run_lines.append(f"{qid} Q0 {docid} {rank} {rng.randint(0, 20) / 4} t")
    (tmp_path / "qrels.tsv").write_text("\n".join(qrels_lines) + "\n")
    (tmp_path / "en-en.trec").write_text("\n".join(run_lines) + "\n")
    graded = read_qrels_graded(tmp_path / "qrels.tsv")
    results, _ = evaluate_run_file(tmp_path / "en-en.trec", graded, (100,), (10,))
    reference = run_trec_eval(
        tmp_path / "qrels.tsv", tmp_path / "en-en.trec", ["-M", "100", "-m", "ndcg_cut.10", "-m", "recall.100"]
    )
    ours = {r.qid: r for r in results}
    # trec_eval also lists the queries judged without any relevant passage (value 0); we skip them
    without_relevant = {qid for qid, docs in graded.items() if not any(rel > 0 for rel in docs.values())}
    assert set(reference["ndcg_cut_10"]) == set(ours) | without_relevant
    assert all(reference["ndcg_cut_10"][qid] == 0.0 for qid in without_relevant)
    for qid, value in reference["ndcg_cut_10"].items():
        if qid in without_relevant:
            continue
        assert ours[qid].ndcg[10] == pytest.approx(value, abs=1e-4)
        assert ours[qid].recall[100] == pytest.approx(reference["recall_100"][qid], abs=1e-4)


# ---------------------------------------------------------------- official statistics (real files)


@pytest.mark.skipif(not (MIRROR / "lareqa" / "mlqa-r").exists(), reason="no local LAReQA mirror (XLIR_LAREQA_MIRROR)")
def test_mlqa_r_matches_the_official_statistics(tmp_path):
    langs = ["ar", "de", "en", "es", "hi", "vi", "zh"]
    fetch.fetch_lareqa("mlqa-r", langs, tmp_path / "mlqa-r", MIRROR, verify=True)
    stats = load_lareqa(tmp_path / "mlqa-r", langs).stats()
    assert stats["questions_per_language"] == {
        "ar": 517,
        "de": 512,
        "en": 1148,
        "es": 500,
        "hi": 507,
        "vi": 511,
        "zh": 504,
    }
    assert stats["n_candidates"] == 20534
    assert stats["relevant_per_question_min"] >= 2  # every question is answered in 2-4 languages
