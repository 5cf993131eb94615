"""Hybrid batch plans and the zero-shot (leakage) check."""
from __future__ import annotations

import json

import pytest

from xlir.batching import plan_batches
from xlir.io_utils import InputError, write_jsonl
from xlir.leakage import LeakageError, check_leakage, find_overlap, normalise


def make_pairs(n: int, langs=("en", "es", "ca")) -> list[dict]:
    return [{"pair_id": f"c-{i:04d}", "texts": {l: {"question": f"{l} question {i}", "answer": f"{l} answer {i}"}
                                                  for l in langs}} for i in range(n)]


def test_alpha_extremes_and_languages():
    pairs = make_pairs(40)
    mono = plan_batches(pairs, ["en", "es", "ca"], 1.0, 8, 20, seed=1)
    assert all(b["kind"] == "mono" for b in mono)
    for batch in mono:
        assert len({(i["query_lang"], i["passage_lang"]) for i in batch["items"]}) == 1
        assert all(i["query_lang"] == i["passage_lang"] for i in batch["items"])
    cross = plan_batches(pairs, ["en", "es", "ca"], 0.0, 8, 20, seed=1)
    assert all(b["kind"] == "cross" for b in cross)
    assert all(i["query_lang"] != i["passage_lang"] for b in cross for i in b["items"])


def test_hybrid_ratio_and_determinism():
    pairs = make_pairs(50)
    plan = plan_batches(pairs, ["en", "es"], 0.5, 10, 400, seed=7)
    share = sum(b["kind"] == "mono" for b in plan) / len(plan)
    assert 0.42 < share < 0.58  # binomial(400, 0.5): 4 standard deviations
    assert plan == plan_batches(pairs, ["en", "es"], 0.5, 10, 400, seed=7)
    assert plan != plan_batches(pairs, ["en", "es"], 0.5, 10, 400, seed=8)


def test_no_duplicate_texts_in_a_batch_and_all_pairs_used():
    pairs = make_pairs(30)
    for i in range(0, 30, 3):  # every third pair shares its answer with the next one
        for lang in ("en", "es", "ca"):
            pairs[i + 1]["texts"][lang]["answer"] = pairs[i]["texts"][lang]["answer"].upper()
    plan = plan_batches(pairs, ["en", "es", "ca"], 0.5, 8, 30, seed=3)
    text = {p["pair_id"]: p["texts"] for p in pairs}
    for batch in plan:
        answers = [" ".join(text[i["pair_id"]][i["passage_lang"]]["answer"].lower().split()) for i in batch["items"]]
        assert len(answers) == len(set(answers)) == 8
        assert len({i["pair_id"] for i in batch["items"]}) == 8
    used = {i["pair_id"] for b in plan for i in b["items"]}
    assert used == {p["pair_id"] for p in pairs}


def test_bad_plans_are_rejected():
    with pytest.raises(InputError, match="alpha"):
        plan_batches(make_pairs(10), ["en", "es"], 1.5, 4, 2, 0)
    with pytest.raises(InputError, match="at least two languages"):
        plan_batches(make_pairs(10), ["en"], 0.5, 4, 2, 0)
    with pytest.raises(InputError, match="batch size"):
        plan_batches(make_pairs(3), ["en", "es"], 0.5, 4, 2, 0)


def test_normalise_and_overlap():
    assert normalise("  What's  H2O?! ") == "what s h2o"
    train = [("t1", "What is the capital of France?"), ("t2", "completely different sentence here")]
    evaluation = [("e1", "what is the capital of france"), ("e2", "What is the capital city of France?"),
                  ("e3", "an unrelated question about music"), ("e4", "ok")]
    result = find_overlap(train, evaluation, n=5, threshold=0.6)
    assert [hit["eval"] for hit in result["exact"]] == ["e1"]
    assert [hit["eval"] for hit in result["near"]] == ["e2"]
    assert result["near"][0]["jaccard"] >= 0.6


def test_check_leakage_fails_and_writes_nothing_final(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", make_pairs(3))
    prepared = tmp_path / "prep"
    write_jsonl(prepared / "questions.jsonl", [{"qid": "en:x", "lang": "en", "id": "x", "text": "en question 1"}])
    write_jsonl(prepared / "candidates.jsonl", [{"cid": "en:0:0", "lang": "en", "text": "novel text", "context": ""}])
    with pytest.raises(LeakageError, match="1 evaluation texts overlap"):
        check_leakage(tmp_path / "train.jsonl", prepared, tmp_path / "leak.json")
    assert not (tmp_path / "leak.json").exists()
    report = json.loads((tmp_path / "leak.json.failed.json").read_text())
    assert report["exact_question_overlap"] == 1
    passed = check_leakage(tmp_path / "train.jsonl", prepared, tmp_path / "leak.json", fail_on_overlap=False)
    assert passed["total_overlap"] == 1 and not passed["passed"]
