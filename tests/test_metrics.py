"""Known-answer tests for xlir.evaluation.metrics (values computed by hand in the comments)."""

from __future__ import annotations

import math

import pytest

from xlir.benchmarks.qrels import read_qrels
from xlir.common.io import InputError
from xlir.evaluation.metrics import (
    average_precision,
    macro_average,
    mean,
    rank_distance,
    recall_at_k,
)
from xlir.retrieval.trec import read_trec_run, sort_trec_ranking

# ---------------------------------------------------------------- average precision


def test_ap_rel_non_rel():
    # ranks: 1 rel (P@1 = 1/1), 2 non, 3 rel (P@3 = 2/3); |rel| = 2 -> (1 + 2/3) / 2
    assert average_precision(["a", "x", "b"], {"a", "b"}) == pytest.approx((1 + 2 / 3) / 2)


def test_ap_relevant_not_retrieved_contributes_zero():
    # "a" at rank 2 (P@2 = 1/2); "b" never retrieved -> 0; |rel| = 2 -> (1/2 + 0) / 2 = 0.25
    assert average_precision(["x", "a", "y"], {"a", "b"}) == pytest.approx(0.25)


def test_ap_nothing_relevant_retrieved_and_perfect():
    assert average_precision(["x", "y"], {"a"}) == 0.0
    # both relevant on top: (1/1 + 2/2) / 2 = 1
    assert average_precision(["b", "a", "x"], ["a", "b"]) == pytest.approx(1.0)
    assert average_precision([], {"a"}) == 0.0


def test_ap_single_relevant_is_reciprocal_rank():
    # one relevant at rank 4 -> P@4 = 1/4
    assert average_precision(["w", "x", "y", "a"], {"a"}) == pytest.approx(0.25)


def test_ap_repeated_docid_counts_once():
    # "a" at ranks 1 and 2: only rank 1 counts -> (1/1 + 0) / 2 = 0.5
    assert average_precision(["a", "a", "x"], {"a", "b"}) == pytest.approx(0.5)


def test_ap_no_relevant_raises():
    with pytest.raises(ValueError):
        average_precision(["a", "b"], set())


# ---------------------------------------------------------------- recall@k


def test_recall_at_k():
    ranked = ["a", "x", "b", "y"]
    relevant = {"a", "b", "c"}
    assert recall_at_k(ranked, relevant, 1) == pytest.approx(1 / 3)  # {a}
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)  # {a}
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(2 / 3)  # {a, b}
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(2 / 3)  # ranking shorter than k; c never retrieved


def test_recall_bad_arguments():
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a"}, 0)
    with pytest.raises(ValueError):
        recall_at_k(["a"], set(), 1)


# ---------------------------------------------------------------- rank distance


def test_rank_distance_three_parallel_answers():
    # parallel answers en / es / ca at ranks 1, 4, 2 -> max 4 - min 1 = 3
    ranked = ["en:0:0", "ca:0:0", "x", "es:0:0", "y"]
    assert rank_distance(ranked, {"en:0:0", "es:0:0", "ca:0:0"}) == 3.0


def test_rank_distance_single_relevant_is_zero():
    assert rank_distance(["x", "a", "y"], {"a"}) == 0.0


def test_rank_distance_absent_gets_rank_len_plus_one():
    # "a" at rank 2, "b" absent -> rank len(ranked) + 1 = 4 -> 4 - 2 = 2
    assert rank_distance(["x", "a", "y"], {"a", "b"}) == 2.0
    # both absent: both at rank 4 -> 0
    assert rank_distance(["x", "y", "z"], {"a", "b"}) == 0.0


def test_rank_distance_no_relevant_raises():
    with pytest.raises(ValueError):
        rank_distance(["a"], [])


# ---------------------------------------------------------------- aggregation


def test_mean_and_macro_average():
    assert mean([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    # macro: each group once, whatever its size
    assert macro_average({"en-es": 0.5, "es-en": 1.0}) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        mean([])
    with pytest.raises(ValueError):
        macro_average({})


# ---------------------------------------------------------------- readers


def test_read_trec_run_orders_like_trec_eval(tmp_path):
    # trec_eval sorts by score descending, ties by docid descending, and ignores the rank column
    # (checked against Pyserini's trec_eval: qrels {a}, run a/b/c all at score 1 -> map 1/3).
    run = tmp_path / "run.trec"
    run.write_text(
        "q1 Q0 a 1 1.0 t\nq1 Q0 b 2 1.0 t\nq1 Q0 c 3 1.0 t\nq1 Q0 z 4 2.5 t\n\nq2 Q0 d 9 -0.5 t\nq2 Q0 e 1 0.25 t\n"
    )
    ranking = read_trec_run(run)
    assert [d for d, _ in ranking["q1"]] == ["z", "c", "b", "a"]
    assert ranking["q1"][0] == ("z", 2.5)
    assert [d for d, _ in ranking["q2"]] == ["e", "d"]
    # hence AP for relevant {a} = 1/4 (a is last), not 1/2 as in file order
    assert average_precision([d for d, _ in ranking["q1"]], {"a"}) == pytest.approx(0.25)


def test_sort_trec_ranking_docid_descending_on_ties():
    assert sort_trec_ranking([("es:0:0", 0.5), ("es:0:1", 0.5), ("en:1:0", 0.9)]) == [
        ("en:1:0", 0.9),
        ("es:0:1", 0.5),
        ("es:0:0", 0.5),
    ]


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        ("q1 Q0 b 2 0.5\n", "expected 6"),
        ("q1 Q0 b 2 high t\n", "numeric score"),
        ("q1 Q0 b two 0.5 t\n", "integer rank"),
        ("q1 Q0 b 2 nan t\n", "finite score"),
        ("q1 Q0 a 2 0.5 t\n", "listed twice"),
    ],
)
def test_read_trec_run_malformed_names_file_and_line(tmp_path, bad_line, expected):
    run = tmp_path / "en-es.trec"
    run.write_text("q1 Q0 a 1 0.9 t\n\n" + bad_line)
    with pytest.raises(InputError) as error:
        read_trec_run(run)
    message = str(error.value)
    assert str(run) in message
    assert "line 3" in message
    assert expected in message


def test_read_qrels(tmp_path):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("en:1 0 en:0:0 1\nen:1 0 es:0:0 2\nen:1 0 en:0:1 0\nen:2 0 en:0:1 0\n")
    assert read_qrels(qrels) == {"en:1": {"en:0:0", "es:0:0"}, "en:2": set()}


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        ("en:2 0 en:0:1\n", "expected 4"),
        ("en:2 0 en:0:1 yes\n", "integer relevance"),
        ("en:1 0 en:0:0 1\n", "judged twice"),
    ],
)
def test_read_qrels_malformed_names_file_and_line(tmp_path, bad_line, expected):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("en:1 0 en:0:0 1\n" + bad_line)
    with pytest.raises(InputError) as error:
        read_qrels(qrels)
    message = str(error.value)
    assert str(qrels) in message and "line 2" in message and expected in message


def test_metrics_are_floats():
    assert isinstance(rank_distance(["a"], {"a"}), float)
    assert not math.isnan(average_precision(["a"], {"a"}))
