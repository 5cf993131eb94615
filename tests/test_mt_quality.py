"""Tests of xlir.data.mt_quality: sacrebleu scores with known answers, the round-trip
and the reference paths of score_translation_file (no network, fake translators)."""

from __future__ import annotations

import json

import pytest

from xlir.common.io import InputError, read_json
from xlir.data.mt_quality import (
    bleu_tokenizer,
    read_references,
    round_trip_scores,
    score_against_references,
    score_translation_file,
)


class TaggingTranslator:
    """en->xx adds '<xx> ', xx->en removes it again: a perfect round trip."""

    name = "tagging"

    def __init__(self):
        self.calls = []

    def translate(self, texts, src, tgt):
        self.calls.append((list(texts), src, tgt))
        if src == "en":
            return [f"<{tgt}> {text}" for text in texts]
        return [text.replace(f"<{src}> ", "", 1) for text in texts]


class LossyTranslator(TaggingTranslator):
    """Back-translation loses the last word of every segment."""

    name = "lossy"

    def translate(self, texts, src, tgt):
        out = super().translate(texts, src, tgt)
        if tgt == "en":
            out = [" ".join(text.split()[:-1]) for text in out]
        return out


class OneWayTranslator(TaggingTranslator):
    name = "one-way"

    def translate(self, texts, src, tgt):
        if tgt == "en":
            raise ValueError("no mode for es-en; add it to config key `translation.modes`")
        return super().translate(texts, src, tgt)


QA = [
    {
        "pair_id": "science-0000",
        "category": "science",
        "question": "What is the speed of light in a vacuum?",
        "answer": "It is about three hundred thousand kilometres per second.",
    },
    {
        "pair_id": "science-0001",
        "category": "science",
        "question": "What is the chemical symbol of gold?",
        "answer": "The chemical symbol of gold is Au.",
    },
    {
        "pair_id": "food-0000",
        "category": "food",
        "question": "Do you like to eat pasta with tomato sauce?",
        "answer": "I do not eat, but many people enjoy it very much.",
    },
]


@pytest.fixture()
def files(tmp_path):
    qa = tmp_path / "en.jsonl"
    qa.write_text("".join(json.dumps(pair) + "\n" for pair in QA), encoding="utf-8")
    mt = tmp_path / "es.jsonl"
    mt.write_text(
        "".join(
            json.dumps(
                {"pair_id": pair["pair_id"], "question": f"<es> {pair['question']}", "answer": f"<es> {pair['answer']}"}
            )
            + "\n"
            for pair in QA
        ),
        encoding="utf-8",
    )
    return qa, mt


def test_identical_texts_score_100():
    texts = ["The cat sat on the mat.", "A second, rather longer sentence about retrieval models."]
    scores = score_against_references(texts, texts)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)
    assert scores["n"] == 2 and scores["method"] == "reference"


def test_different_texts_score_lower_and_empty_input():
    hyps = ["The cat sat on a mat.", "Completely unrelated words here."]
    refs = ["The cat sat on the mat.", "A second sentence about retrieval."]
    scores = score_against_references(hyps, refs)
    assert 0 < scores["bleu"] < 100 and 0 < scores["chrf"] < 100
    assert score_against_references([], [])["bleu"] is None
    with pytest.raises(ValueError):
        score_against_references(["a"], ["a", "b"])


def test_round_trip_scores():
    sources = ["Where is the station?", "I like green apples very much."]
    perfect = round_trip_scores(sources, sources)
    assert perfect["method"] == "round-trip"
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    worse = round_trip_scores(sources, ["Where is station?", "I like apples."])
    assert worse["bleu"] < 100 and worse["chrf"] < 100


def test_offline_tokenizers():
    assert bleu_tokenizer("zh") == "zh" and bleu_tokenizer("ja") == "char" and bleu_tokenizer("es") == "13a"
    scores = score_against_references(["我喜欢吃苹果。"], ["我喜欢吃苹果。"], tokenize=bleu_tokenizer("zh"))
    assert scores["bleu"] == pytest.approx(100.0)


def test_score_file_round_trip(files, tmp_path):
    qa, mt = files
    out = tmp_path / "es.quality.json"
    translator = TaggingTranslator()
    result = score_translation_file(qa, mt, "es", translator, out)
    written = read_json(out)
    assert written == result
    assert written["method"] == "round-trip" and written["lang"] == "es" and written["backend"] == "tagging"
    assert written["n_segments"] == 6 and written["n"] == 6
    assert written["bleu"] == pytest.approx(100.0) and written["chrf"] == pytest.approx(100.0)
    assert "round-trip" in written["note"].lower() and "not translation quality" in written["note"]
    assert "reference" not in written and written["round_trip"]["n"] == 6
    assert translator.calls[0][1:] == ("es", "en")  # back-translation direction

    lossy = score_translation_file(qa, mt, "es", LossyTranslator(), tmp_path / "lossy.json")
    assert lossy["bleu"] < 100 and lossy["chrf"] < 100


def _write_refs(path, rows):
    path.write_text(
        "pair_id\tfield\tlang\treference\n" + "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8"
    )


def test_score_file_with_references(files, tmp_path):
    qa, mt = files
    refs = tmp_path / "refs.tsv"
    _write_refs(
        refs,
        [
            ("science-0000", "question", "es", "<es> What is the speed of light in a vacuum?"),
            ("science-0001", "answer", "es", "<es> The chemical symbol of gold is Au."),
            ("food-0000", "question", "ca", "something in Catalan"),
            ("missing-0009", "answer", "es", "a pair that was not translated"),
        ],
    )
    out = tmp_path / "es.quality.json"
    result = score_translation_file(qa, mt, "es", TaggingTranslator(), out, references_tsv=refs)
    assert read_json(out) == result
    assert result["method"] == "reference"
    assert result["n_segments"] == 2 and result["bleu"] == pytest.approx(100.0)
    assert result["reference"]["references_unmatched"] == 1
    assert result["round_trip"]["method"] == "round-trip" and result["round_trip"]["n"] == 6
    assert "human" in result["note"] and "round_trip" in result["note"]

    # references for another language only: round-trip
    other = score_translation_file(
        qa, mt, "es", TaggingTranslator(), tmp_path / "x.json", references_tsv=_refs_for_ca(tmp_path)
    )
    assert other["method"] == "round-trip" and "reference" not in other

    # references but no way back: the reference block alone, the note says why
    one_way = score_translation_file(qa, mt, "es", OneWayTranslator(), tmp_path / "y.json", references_tsv=refs)
    assert one_way["method"] == "reference" and "round_trip" not in one_way
    assert "No round-trip score" in one_way["note"]
    # no references and no way back: an error
    with pytest.raises(ValueError, match="translation.modes"):
        score_translation_file(qa, mt, "es", OneWayTranslator(), tmp_path / "z.json")


def _refs_for_ca(tmp_path):
    path = tmp_path / "ca_refs.tsv"
    _write_refs(path, [("food-0000", "question", "ca", "something in Catalan")])
    return path


def test_bad_reference_files(tmp_path):
    bad_field = tmp_path / "bad.tsv"
    _write_refs(bad_field, [("science-0000", "title", "es", "x")])
    with pytest.raises(InputError, match=r"bad\.tsv: line 2: field 'title'"):
        read_references(bad_field, "es")
    duplicate = tmp_path / "dup.tsv"
    _write_refs(duplicate, [("a-0000", "question", "es", "x"), ("a-0000", "question", "es", "y")])
    with pytest.raises(InputError, match=r"line 3: second es reference"):
        read_references(duplicate, "es")
    columns = tmp_path / "columns.tsv"
    columns.write_text("id\ttext\nx\ty\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"missing column"):
        read_references(columns, "es")


def test_translation_file_with_unknown_pair(files, tmp_path):
    qa, mt = files
    with open(mt, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"pair_id": "ghost-0000", "question": "x", "answer": "y"}) + "\n")
    with pytest.raises(InputError, match="ghost-0000"):
        score_translation_file(qa, mt, "es", TaggingTranslator(), tmp_path / "q.json")
