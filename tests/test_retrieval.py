"""Tests for xlir.retrieval: TREC runs, Faiss dense indexes/search, BM25.

The Lucene tests start the JVM in this process (once per process), so they all
live in this module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import xlir.retrieval.dense as dense_module
from xlir.common.io import InputError, read_json
from xlir.retrieval.bm25 import bm25_search, build_bm25_indexes, neutral_tokenize, resolve_analyzer
from xlir.retrieval.dense import build_faiss_indexes, dense_search
from xlir.retrieval.trec import read_trec_run, write_trec_run

LANGS = ["ca", "en", "es"]
TOPICS = 4  # candidates per language: sentence p of paragraph 0 is about topic p
CANDIDATE_TEXTS = {
    "en": [
        "The cat sleeps on the warm sofa.",
        "Paris is the capital of France.",
        "Water boils at one hundred degrees.",
        "The library opens every morning.",
    ],
    "es": [
        "El gato duerme en el sofá caliente.",
        "París es la capital de Francia.",
        "El agua hierve a cien grados.",
        "La biblioteca abre cada mañana.",
    ],
    "ca": [
        "El gat dorm al sofà calent.",
        "París és la capital de França.",
        "L'aigua bull a cent graus.",
        "La biblioteca obre cada matí.",
    ],
}
QUESTION_TEXTS = {  # question p asks about topic p
    "en": ["Where do cats sleep?", "What is the capital of France?"],
    "es": ["¿Dónde duerme el gato?", "¿Cuál es la capital de Francia?"],
    "ca": ["On dormen els gats?", "Quina és la capital de França?"],
}
DIM = 8
LANG_AXIS = {"en": 4, "es": 5, "ca": 6}


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _candidate_vector(lang: str, topic: int) -> np.ndarray:
    vector = np.zeros(DIM)
    vector[topic] = 1.0
    vector[LANG_AXIS[lang]] = 0.3
    vector[7] = 0.01 * topic  # keeps scores distinct
    return _unit(vector)


def _question_vector(lang: str, topic: int) -> np.ndarray:
    vector = np.zeros(DIM)
    vector[topic] = 1.0
    vector[LANG_AXIS[lang]] = 0.2
    return _unit(vector)


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture()
def bench(tmp_path: Path) -> dict:
    """A tiny prepared benchmark plus embeddings whose nearest neighbours are known:
    question (lang L, topic p) is closest to candidate (L, p) in the pool and to
    (C, p) in language C's index."""
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    questions, candidates = [], []
    for lang in LANGS:
        for topic, text in enumerate(QUESTION_TEXTS[lang]):
            questions.append({"qid": f"{lang}:q{topic}", "lang": lang, "id": f"q{topic}", "text": text})
        for topic, text in enumerate(CANDIDATE_TEXTS[lang]):
            candidates.append({"cid": f"{lang}:0:{topic}", "lang": lang, "text": text, "context": text})
    _write_jsonl(prepared / "questions.jsonl", questions)
    _write_jsonl(prepared / "candidates.jsonl", candidates)

    embeddings = tmp_path / "embeddings"
    embeddings.mkdir()
    # rows deliberately in a different order from candidates.jsonl
    cand_rows = sorted(candidates, key=lambda r: r["cid"], reverse=True)
    np.save(
        embeddings / "candidates.npy",
        np.stack([_candidate_vector(r["lang"], int(r["cid"].rsplit(":", 1)[1])) for r in cand_rows]),
    )
    (embeddings / "candidates.ids").write_text("".join(r["cid"] + "\n" for r in cand_rows))
    np.save(embeddings / "questions.npy", np.stack([_question_vector(r["lang"], int(r["id"][1:])) for r in questions]))
    (embeddings / "questions.ids").write_text("".join(r["qid"] + "\n" for r in questions))
    return {
        "root": tmp_path,
        "questions": prepared / "questions.jsonl",
        "candidates": prepared / "candidates.jsonl",
        "embeddings": embeddings,
    }


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- TREC


def test_write_trec_run_ranks_by_score(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "en-es.trec"
    lines = write_trec_run(
        path, {"q1": [("d1", 0.2), ("d2", 0.9), ("d3", 0.5)], "q2": [], "q3": [("d9", -1.5)]}, tag="test"
    )
    assert lines == 4
    rows = [line.split() for line in path.read_text().splitlines()]
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in rows] == [
        ("q1", "Q0", "d2", "1", "test"),
        ("q1", "Q0", "d3", "2", "test"),
        ("q1", "Q0", "d1", "3", "test"),
        ("q3", "Q0", "d9", "1", "test"),
    ]
    assert read_trec_run(path) == {"q1": [("d2", 0.9), ("d3", 0.5), ("d1", 0.2)], "q3": [("d9", -1.5)]}
    assert _leftovers(path.parent) == []
    with pytest.raises(ValueError):
        write_trec_run(tmp_path / "bad.trec", {"q1": [("d1", 1.0)]}, tag="two words")
    assert not (tmp_path / "bad.trec").exists()


# ---------------------------------------------------------------- analyzers (no JVM)


def test_neutral_tokenize_and_analyzer_resolution() -> None:
    assert neutral_tokenize("L'home de la CIUTAT, Straße 3.") == ["l", "home", "de", "la", "ciutat", "strasse", "3"]
    assert neutral_tokenize("東京都") == ["東京", "京都"]
    assert neutral_tokenize("हिन्दी") == ["हिन्दी"]  # combining marks stay inside the word
    assert resolve_analyzer("en") == "anserini:en"
    assert resolve_analyzer("es") == "anserini:es"
    assert resolve_analyzer("ca") == "lucene:ca"
    assert resolve_analyzer("gl") == "lucene:gl"
    assert resolve_analyzer("eo") == "neutral"
    assert resolve_analyzer(None, "default") == "neutral"
    assert resolve_analyzer("es", "neutral") == "neutral"
    assert resolve_analyzer("en", "lucene:ca") == "lucene:ca"
    with pytest.raises(ValueError):
        resolve_analyzer("en", "anserini:ca")


# ---------------------------------------------------------------- dense


def test_dense_indexes_and_search(bench: dict) -> None:
    root = bench["root"]
    index_dir, trec_dir = root / "index", root / "trec"
    manifest = build_faiss_indexes(bench["embeddings"], bench["candidates"], index_dir, log_path=root / "faiss.log")
    assert manifest == read_json(index_dir / "manifest.json")
    assert manifest["dim"] == DIM
    assert {name: entry["count"] for name, entry in manifest["indexes"].items()} == {
        "ca": TOPICS,
        "en": TOPICS,
        "es": TOPICS,
        "all": 3 * TOPICS,
    }
    for name in [*LANGS, "all"]:
        assert (index_dir / name / "index").is_file() and (index_dir / name / "docid").is_file()
    assert _leftovers(root) == []

    summary = dense_search(bench["embeddings"], bench["questions"], index_dir, trec_dir)
    expected = {f"{q}-{c}.trec" for q in LANGS for c in [*LANGS, "all"]}
    assert {p.name for p in trec_dir.iterdir()} == expected
    assert summary["runs"]["en-all"]["k"] == 3 * TOPICS
    for qlang in LANGS:
        for clang in LANGS:
            run = read_trec_run(trec_dir / f"{qlang}-{clang}.trec")
            assert set(run) == {f"{qlang}:q0", f"{qlang}:q1"}
            for topic in range(2):
                hits = run[f"{qlang}:q{topic}"]
                assert len(hits) == TOPICS  # depth None: the whole pool
                assert hits[0][0] == f"{clang}:0:{topic}"
                expected_score = float(_question_vector(qlang, topic) @ _candidate_vector(clang, topic))
                assert hits[0][1] == pytest.approx(expected_score, abs=1e-6)
        pooled = read_trec_run(trec_dir / f"{qlang}-all.trec")
        for topic in range(2):
            hits = pooled[f"{qlang}:q{topic}"]
            assert len(hits) == 3 * TOPICS
            assert hits[0][0] == f"{qlang}:0:{topic}"  # same topic, same language
            assert {docid for docid, _ in hits[:3]} == {f"{lang}:0:{topic}" for lang in LANGS}
            assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)

    dense_search(bench["embeddings"], bench["questions"], index_dir, trec_dir, depth=2)
    assert all(len(hits) == 2 for hits in read_trec_run(trec_dir / "es-all.trec").values())

    ids_path = bench["embeddings"] / "questions.ids"  # a question without an embedding
    ids_path.write_text(ids_path.read_text().replace("en:q1", "en:zz"))
    with pytest.raises(InputError, match="no embedding"):
        dense_search(bench["embeddings"], bench["questions"], index_dir, root / "trec-new")
    assert not (root / "trec-new").exists()


def test_dense_build_fails_atomically_on_mismatched_ids(bench: dict) -> None:
    root = bench["root"]
    ids_path = bench["embeddings"] / "candidates.ids"
    ids = ids_path.read_text().splitlines()
    ids[0] = "xx:9:9"
    ids_path.write_text("\n".join(ids) + "\n")
    with pytest.raises(InputError, match="not in"):
        build_faiss_indexes(bench["embeddings"], bench["candidates"], root / "index")
    assert not (root / "index").exists()
    assert _leftovers(root) == []


def test_dense_build_fails_atomically_midway(bench: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    root = bench["root"]
    index_dir = root / "index"
    index_dir.mkdir()
    (index_dir / "old.txt").write_text("previous build")
    calls = []
    real = dense_module.run_pyserini_module

    def flaky(module: str, args: list[str], log_path: str | None = None) -> None:
        calls.append(args[args.index("--output") + 1])
        if Path(calls[-1]).name == "all":
            raise RuntimeError("simulated indexing failure")
        real(module, args, log_path)

    monkeypatch.setattr(dense_module, "run_pyserini_module", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        build_faiss_indexes(bench["embeddings"], bench["candidates"], index_dir, languages=["en"])
    assert [Path(c).name for c in calls] == ["en", "all"]  # the per-language index was built first
    assert sorted(p.name for p in index_dir.iterdir()) == ["old.txt"]  # earlier output untouched
    assert _leftovers(root) == []


# ---------------------------------------------------------------- BM25 (starts the JVM)


def test_bm25_indexes_and_search(bench: dict) -> None:
    root = bench["root"]
    index_dir, trec_dir = root / "bm25", root / "trec"
    manifest = build_bm25_indexes(bench["candidates"], index_dir, LANGS, log_path=root / "bm25.log")
    saved = read_json(index_dir / "manifest.json")
    assert saved == manifest
    analyzers = {name: entry["analyzer"] for name, entry in saved["indexes"].items()}
    assert analyzers == {"ca": "lucene:ca", "en": "anserini:en", "es": "anserini:es", "all": "neutral"}
    assert saved["fallbacks"] == {"ca": "lucene:ca"}
    assert saved["indexes"]["es"]["java_class"].endswith("SpanishAnalyzer")
    assert saved["indexes"]["ca"]["text_analysis"].endswith("CatalanAnalyzer")
    assert saved["indexes"]["all"]["count"] == 3 * TOPICS
    assert "-pretokenized" in saved["indexes"]["all"]["index_args"]
    assert _leftovers(root) == []

    summary = bm25_search(bench["questions"], index_dir, trec_dir)
    assert {p.name for p in trec_dir.iterdir()} == {f"{q}-{c}.trec" for q in LANGS for c in [*LANGS, "all"]}
    assert summary["runs"]["es-all"]["k"] == 3 * TOPICS
    for lang in LANGS:
        run = read_trec_run(trec_dir / f"{lang}-{lang}.trec")
        for topic in range(2):  # en, ca rely on stemming (cats/cat, sleep/sleeps, gats/gat)
            hits = run[f"{lang}:q{topic}"]
            assert hits[0][0] == f"{lang}:0:{topic}", (lang, topic, hits)
            assert len(hits) <= TOPICS
        pooled = read_trec_run(trec_dir / f"{lang}-all.trec")
        assert pooled[f"{lang}:q1"][0][0] == f"{lang}:0:1"  # "capital" + the language's own name for France
        assert all(len(hits) <= 3 * TOPICS for hits in pooled.values())

    bm25_search(bench["questions"], index_dir, trec_dir, depth=1, k1=1.2, b=0.75)
    assert all(len(hits) == 1 for hits in read_trec_run(trec_dir / "en-en.trec").values())


def test_bm25_overrides_and_failure(bench: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import xlir.retrieval.bm25 as lexical

    root = bench["root"]
    manifest = build_bm25_indexes(
        bench["candidates"], root / "bm25", ["es"], analyzers={"es": "neutral"}, pooled_analyzer="anserini:en"
    )
    assert manifest["indexes"]["es"]["analyzer"] == "neutral"
    assert manifest["indexes"]["all"]["analyzer"] == "anserini:en"
    assert manifest["indexes"]["all"]["languages"] == ["es"]
    bm25_search(bench["questions"], root / "bm25", root / "trec")
    run = read_trec_run(root / "trec" / "es-es.trec")
    assert run["es:q1"][0][0] == "es:0:1"
    assert {p.name for p in (root / "trec").iterdir()} == {f"{q}-{c}.trec" for q in LANGS for c in ["es", "all"]}

    def failing(module: str, args: list[str], log_path: str | None = None) -> None:
        raise RuntimeError("simulated Lucene failure")

    monkeypatch.setattr(lexical, "run_pyserini_module", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        build_bm25_indexes(bench["candidates"], root / "bm25-new", ["en"])
    assert not (root / "bm25-new").exists()
    assert _leftovers(root) == []
    with pytest.raises(InputError):
        build_bm25_indexes(bench["candidates"], root / "bm25-new", ["gl"])
