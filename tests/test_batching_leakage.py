"""Hybrid batch plans and the zero-shot (leakage) check."""

from __future__ import annotations

import json

import pytest

from xlir.benchmarks.leakage import LeakageError, check_leakage, drop_overlapping_pairs
from xlir.common.io import InputError, write_jsonl
from xlir.data.overlap import find_overlap, normalise
from xlir.train.plan_batches import plan_batches


def make_pairs(n: int, langs=("en", "es", "ca")) -> list[dict]:
    return [
        {
            "pair_id": f"c-{i:04d}",
            "texts": {lang: {"question": f"{lang} question {i}", "answer": f"{lang} answer {i}"} for lang in langs},
        }
        for i in range(n)
    ]


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
    evaluation = [
        ("e1", "what is the capital of france"),
        ("e2", "What is the capital city of France?"),
        ("e3", "an unrelated question about music"),
        ("e4", "ok"),
    ]
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
    assert not (tmp_path / "leak.json.failed.json").exists()  # the stale failure report is gone


def test_drop_overlapping_pairs_then_the_check_passes(tmp_path):
    pairs = make_pairs(6)
    pairs[4]["texts"]["es"]["answer"] = "El río más largo de Europa es el Volga, que desemboca en el mar Caspio."
    write_jsonl(tmp_path / "train.jsonl", pairs)
    first, second = tmp_path / "bench-a" / "prepared", tmp_path / "bench-b" / "prepared"
    # bench-a: an exact question overlap with pair 1 (case and punctuation differ)
    write_jsonl(
        first / "questions.jsonl", [{"qid": "en:x", "text": "EN question 1?"}, {"qid": "en:y", "text": "unseen"}]
    )
    write_jsonl(first / "candidates.jsonl", [{"cid": "en:0:0", "text": "novel text"}])
    # bench-b: pair 4's Spanish answer up to case and punctuation
    write_jsonl(second / "questions.jsonl", [{"qid": "de:z", "text": "neue Frage"}])
    write_jsonl(
        second / "candidates.jsonl",
        [
            {"cid": "es:3:1", "text": "El río más largo de Europa es el Volga, que desemboca en el Mar Caspio!"},
            {"cid": "es:3:2", "text": "Otra frase sin relación alguna con el entrenamiento."},
        ],
    )
    report = drop_overlapping_pairs(
        tmp_path / "train.jsonl", [first, second], tmp_path / "kept.jsonl", tmp_path / "dropped.json"
    )
    assert (report["n_pairs_in"], report["n_pairs_kept"], report["n_pairs_dropped"]) == (6, 4, 2)
    assert sorted(report["dropped"]) == ["c-0001", "c-0004"]
    assert report["overlaps_by_benchmark"] == {"bench-a": {"exact": 1, "near": 0}, "bench-b": {"exact": 1, "near": 0}}
    assert report["dropped"]["c-0001"][0]["eval"] == "bench-a question en:x"
    kept = [json.loads(line)["pair_id"] for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert kept == ["c-0000", "c-0002", "c-0003", "c-0005"]
    for prepared in (first, second):
        assert check_leakage(tmp_path / "kept.jsonl", prepared, tmp_path / f"{prepared.parent.name}.json")["passed"]


def test_drop_overlapping_pairs_catches_near_duplicates(tmp_path):
    pairs = make_pairs(2)
    pairs[1]["texts"]["en"]["answer"] = "The mitochondria is the powerhouse of the cell and makes most of its energy."
    write_jsonl(tmp_path / "train.jsonl", pairs)
    prepared = tmp_path / "bench" / "prepared"
    write_jsonl(prepared / "questions.jsonl", [{"qid": "en:q", "text": "unrelated question"}])
    write_jsonl(
        prepared / "candidates.jsonl",
        [{"cid": "en:1:0", "text": "The mitochondria is the powerhouse of the cell and makes most of the energy."}],
    )
    report = drop_overlapping_pairs(
        tmp_path / "train.jsonl", [prepared], tmp_path / "kept.jsonl", tmp_path / "dropped.json"
    )
    assert report["overlaps_by_benchmark"] == {"bench": {"exact": 0, "near": 1}}
    assert list(report["dropped"]) == ["c-0001"] and report["dropped"]["c-0001"][0]["jaccard"] >= 0.8


def test_drop_overlapping_pairs_filters_the_dev_split_too(tmp_path):
    """Model selection never sees an evaluation text: the dev pairs pass the same filter."""
    write_jsonl(tmp_path / "train.jsonl", make_pairs(2))
    dev = make_pairs(3)
    for pair in dev:
        pair["pair_id"] = "dev-" + pair["pair_id"]
    dev[2]["texts"]["en"]["question"] = "Which river flows through the old city of Prague?"
    write_jsonl(tmp_path / "dev.jsonl", dev)
    prepared = tmp_path / "bench" / "prepared"
    write_jsonl(
        prepared / "questions.jsonl", [{"qid": "en:q", "text": "which river flows through the old city of prague"}]
    )
    write_jsonl(prepared / "candidates.jsonl", [{"cid": "en:0:0", "text": "an unrelated sentence"}])
    report = drop_overlapping_pairs(
        tmp_path / "train.jsonl",
        [prepared],
        tmp_path / "kept.jsonl",
        tmp_path / "dropped.json",
        dev_pairs_jsonl=tmp_path / "dev.jsonl",
        out_dev_jsonl=tmp_path / "dev.kept.jsonl",
    )
    assert report["n_pairs_dropped"] == 0
    assert report["dev"]["n_pairs_dropped"] == 1 and list(report["dev"]["dropped"]) == ["dev-c-0002"]
    kept = [json.loads(line)["pair_id"] for line in (tmp_path / "dev.kept.jsonl").read_text().splitlines()]
    assert kept == ["dev-c-0000", "dev-c-0001"]
