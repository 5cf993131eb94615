"""QA corpus reading, category split, LAReQA loading/writing and benchmark preparation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlir.benchmarks.build_demo_benchmark import build_demo_benchmark, lareqa_document
from xlir.benchmarks.lareqa import load_lareqa
from xlir.benchmarks.lareqa import prepare_lareqa as prepare_benchmark
from xlir.common.io import InputError
from xlir.data.prepare_qa import prepare_qa, split_pairs
from xlir.data.sources.chatterbot import as_source_pairs, bundled_corpus_dir, read_chatterbot_file, read_qa_pairs


def write_yaml(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_chatterbot_pairs_and_categories(tmp_path):
    write_yaml(
        tmp_path / "science.yml",
        "categories: [science]\nconversations:\n- - what is h2o\n  - water\n"
        "- - what is a cell\n  - the unit of life\n  - extra utterance ignored\n",
    )
    write_yaml(tmp_path / "food.yml", 'conversations:\n- - do you eat\n  - "no"\n- - what is water? \n  - water\n')
    pairs = read_qa_pairs(tmp_path)
    assert [p["pair_id"] for p in pairs] == ["food-0000", "food-0001", "science-0000", "science-0001"]
    assert pairs[3] == {
        "pair_id": "science-0001",
        "category": "science",
        "question": "what is a cell",
        "answer": "the unit of life",
    }
    split = split_pairs(as_source_pairs(pairs), ["food"], 0.0, None, 0)
    assert split["heldout_pair_ids"] == ["food-0000", "food-0001"]
    assert split["train_categories"] == ["science"]


def test_malformed_record_names_file_and_record(tmp_path):
    path = write_yaml(tmp_path / "trivia.yml", "conversations:\n- - q\n  - a\n- just a string\n")
    with pytest.raises(InputError, match=r"trivia.yml: conversations\[1\]: expected a list"):
        read_chatterbot_file(path)
    skipped: list[str] = []
    assert len(read_chatterbot_file(path, skipped)) == 1
    assert "conversations[1]" in skipped[0]


def test_unknown_heldout_category_names_config_key(tmp_path):
    write_yaml(tmp_path / "a.yml", "conversations:\n- - q\n  - a\n")
    with pytest.raises(InputError, match="qa.heldout_categories"):
        prepare_qa(
            {"corpus_dir": str(tmp_path), "heldout_categories": ["nope"]},
            None,
            *(tmp_path / name for name in ("o.jsonl", "en.jsonl", "r.tsv", "s.json")),
        )
    assert not (tmp_path / "o.jsonl").exists()


def test_bundled_corpus_reads():
    pairs = read_qa_pairs(bundled_corpus_dir(), skipped=[])
    assert len(pairs) > 800
    assert len({p["pair_id"] for p in pairs}) == len(pairs)


def test_lareqa_document_round_trip(tmp_path):
    paragraphs = [
        [
            {"id": "q1", "question": "who?", "answer": "Ann did it."},
            {"id": "q2", "question": "what?", "answer": "A cake."},
        ],
        [{"id": "q3", "question": "where?", "answer": "In Rome."}],
    ]
    doc = lareqa_document(paragraphs, "t")
    para = doc["data"][0]["paragraphs"][0]
    assert para["context"] == "Ann did it. A cake."
    assert para["sentence_breaks"] == [[0, 11], [12, 19]]
    assert para["context"][12:19] == "A cake."
    (tmp_path / "en.json").write_text(json.dumps(doc))
    es = lareqa_document(
        [
            [
                {"id": "q1", "question": "¿quién?", "answer": "Ana."},
                {"id": "q2", "question": "¿qué?", "answer": "Un pastel."},
            ]
        ],
        "t",
    )
    (tmp_path / "es.json").write_text(json.dumps(es))
    bench = load_lareqa(tmp_path, ["en", "es"])
    assert len(bench.candidates) == 5 and len(bench.questions) == 5
    assert bench.relevant("en:q2") == {"en:0:1", "es:0:1"}
    assert bench.relevant("en:q3") == {"en:1:0"}  # q3 exists in English only
    stats = prepare_benchmark(tmp_path, ["en", "es"], tmp_path / "prep")
    assert stats["n_candidates"] == 5 and stats["relevant_per_question_max"] == 2
    qrels = (tmp_path / "prep" / "qrels.tsv").read_text().split("\n")
    assert "es:q1 0 en:0:0 1" in qrels


def test_lareqa_malformed_answer_names_record(tmp_path):
    doc = lareqa_document([[{"id": "q1", "question": "who?", "answer": "Ann."}]], "t")
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 99
    (tmp_path / "en.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"en.json: data\[0\].paragraphs\[0\].qas\[0\] \(id q1\)"):
        load_lareqa(tmp_path, ["en"])
    (tmp_path / "de.json").write_text("{not json")
    with pytest.raises(InputError, match=r"de.json: character 1 \(of a one-line file"):
        load_lareqa(tmp_path, ["de"])


def test_demo_benchmark_is_parallel(tmp_path):
    qa = [{"pair_id": f"c-{i:04d}", "category": "c", "question": f"q{i}", "answer": f"a{i}"} for i in range(6)]
    mt = {
        "es": [{"pair_id": p["pair_id"], "question": "es " + p["question"], "answer": "es " + p["answer"]} for p in qa]
    }
    build_demo_benchmark(qa, [p["pair_id"] for p in qa[:5]], mt, ["en", "es"], tmp_path, paragraph_size=2)
    bench = load_lareqa(tmp_path, ["en", "es"])
    assert len(bench.questions) == 10 and len(bench.candidates) == 10
    assert bench.relevant("es:c-0003") == {"en:1:1", "es:1:1"}
    with pytest.raises(InputError, match="translations"):
        build_demo_benchmark(qa, ["c-0000"], mt, ["en", "ca"], tmp_path / "x")


LAREQA_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data" / "lareqa" / "xquad-r"


@pytest.mark.skipif(not LAREQA_MIRROR.exists(), reason="no local LAReQA mirror")
def test_real_xquad_r_counts():
    langs = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
    stats = load_lareqa(LAREQA_MIRROR, langs).stats()
    assert stats["n_candidates"] == 13014
    assert set(stats["questions_per_language"].values()) == {1190}
    assert stats["relevant_per_question_min"] == 11
