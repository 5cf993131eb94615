"""Training-data sources: SQuAD-format files (ReQA sentences), JSONL, `datasets` datasets,
and fetching the official SQuAD files from a mirror."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xlir.common.io import InputError, file_sha256, read_json
from xlir.data import fetch_qa as fetch_qa_module
from xlir.data.fetch_qa import SQUAD_FILES, fetch_squad
from xlir.data.sources.hf import load_hf
from xlir.data.sources.jsonl import load_jsonl
from xlir.data.sources.squad import load_squad

# ---------------------------------------------------------------- SQuAD

CONTEXT = (
    "The Normans were a people of the 10th and 11th centuries. Dr. Rollo, their first ruler, "
    "swore fealty to King Charles III of West Francia. The U.S. Army never met them."
)


def _squad(tmp_path: Path, qas: list[dict], context: str = CONTEXT, extra_paragraph: bool = True) -> Path:
    paragraphs = [{"context": context, "qas": qas}]
    if extra_paragraph:
        paragraphs.append(
            {
                "context": "Second paragraph. It answers.",
                "qas": [{"id": "p2", "question": "What?", "answers": [{"text": "It answers.", "answer_start": 18}]}],
            }  # fmt: skip
        )
    document = {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": paragraphs}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _qa(qa_id: str, question: str, answer: str, context: str = CONTEXT, **extra) -> dict:
    return {"id": qa_id, "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}],
            **extra}  # fmt: skip


def test_squad_sentences_hold_the_answer_and_unanswerable_are_skipped(tmp_path):
    path = _squad(
        tmp_path,
        [
            _qa("q1", "When  were the Normans?", "10th and 11th centuries"),
            _qa("q2", "Whom did Rollo swear fealty to?", "King Charles III"),
            {
                "id": "q3",
                "question": "Who ruled Mars?",
                "answers": [],
                "is_impossible": True,
                "plausible_answers": [{"text": "Rollo", "answer_start": 62}],
            },  # fmt: skip
            {"id": "q4", "question": "No answers at all?", "answers": []},
            _qa("q5", "Who never met them?", "U.S. Army"),
        ],
    )
    stats: dict = {}
    pairs = load_squad(path, stats=stats)
    by_id = {p["pair_id"]: p for p in pairs}
    assert list(by_id) == ["squad:q1", "squad:q2", "squad:q5", "squad:p2"]
    assert by_id["squad:q1"] == {
        "pair_id": "squad:q1",
        "group": "Normans#0",
        "title": "Normans",
        "texts": {"en": {"question": "When were the Normans?",
                         "answer": "The Normans were a people of the 10th and 11th centuries."}},
    }  # fmt: skip
    # a real segmenter: "Dr." and "U.S." do not end sentences
    assert by_id["squad:q2"]["texts"]["en"]["answer"] == (
        "Dr. Rollo, their first ruler, swore fealty to King Charles III of West Francia."
    )
    assert by_id["squad:q5"]["texts"]["en"]["answer"] == "The U.S. Army never met them."
    assert by_id["squad:p2"]["group"] == "Normans#1"
    assert by_id["squad:p2"]["texts"]["en"]["answer"] == "It answers."
    assert stats["questions"] == 6 and stats["unanswerable_skipped"] == 2 and stats["pairs"] == 4
    assert stats["paragraphs_segmented"] == 2  # once per paragraph, not per question


def test_squad_paragraph_passages_and_languages(tmp_path):
    path = _squad(tmp_path, [_qa("q1", "Wann?", "10th and 11th centuries")], extra_paragraph=False)
    pairs = load_squad(path, lang="de", passage="paragraph", segmenter_lang="en")
    assert pairs[0]["texts"] == {"de": {"question": "Wann?", "answer": CONTEXT}}
    with pytest.raises(InputError, match="qa.source.passage"):
        load_squad(path, passage="document")


def test_squad_segments_other_languages(tmp_path):
    context = "Die Normannen kamen im 10. Jh. nach Frankreich. Sie gründeten z. B. ein Herzogtum. Ende."
    answer = "ein Herzogtum"
    path = _squad(tmp_path, [_qa("de1", "Was gründeten sie?", answer, context)], context, extra_paragraph=False)
    pairs = load_squad(path, lang="de")
    assert pairs[0]["texts"]["de"]["answer"] == "Sie gründeten z. B. ein Herzogtum."
    # a language without rules of its own still segments (fallback rules)
    assert load_squad(path, lang="xx")[0]["texts"]["xx"]["answer"].endswith("Herzogtum.")


@pytest.mark.parametrize(
    ("qas", "message"),
    [
        ([_qa("q1", "A?", "Normans"), _qa("q1", "B?", "Rollo")],
         r"data\[0\]\.paragraphs\[0\]\.qas\[1\]\.id: 'q1' repeats the id of .*qas\[0\]"),
        ([{"id": "q1", "question": "A?", "answers": [{"text": "x", "answer_start": 9999}]}],
         r"qas\[0\]\.answers\[0\]\.answer_start: 9999 lies outside the paragraph"),
        ([{"id": "q1", "question": "A?", "answers": [{"text": "x"}]}],
         r"qas\[0\]\.answers\[0\]\.answer_start: expected an integer"),
        ([{"id": "q1", "question": "  ", "answers": []}], r"qas\[0\]\.question: expected a non-empty string"),
    ],
)  # fmt: skip
def test_squad_bad_records_are_named(tmp_path, qas, message):
    path = _squad(tmp_path, qas, extra_paragraph=False)
    with pytest.raises(InputError, match=message) as caught:
        load_squad(path)
    assert str(path) in str(caught.value)


def test_squad_answer_start_on_blanks(tmp_path):
    context = "First sentence here.    Second sentence.   "
    # an answer that starts with a blank belongs to the sentence of its first non-blank character
    qas = [{"id": "q1", "question": "A?", "answers": [{"text": " Second", "answer_start": 21}]}]
    path = _squad(tmp_path, qas, context, extra_paragraph=False)
    assert load_squad(path)[0]["texts"]["en"]["answer"] == "Second sentence."
    # one that starts in the blanks ending the paragraph lies in no sentence
    qas = [{"id": "q1", "question": "A?", "answers": [{"text": " ", "answer_start": 41}]}]
    path = _squad(tmp_path, qas, context, extra_paragraph=False)
    with pytest.raises(InputError, match=r"qas\[0\]\.answers\[0\]\.answer_start: offset 41 lies in no sentence"):
        load_squad(path)


def test_squad_not_squad_format(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}', encoding="utf-8")
    with pytest.raises(InputError, match=r"data\[0\]\.paragraphs\[0\]\.context: expected a non-empty string"):
        load_squad(path)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="'data' list"):
        load_squad(path)


# ---------------------------------------------------------------- JSONL


def _write_lines(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_flat_and_parallel_lines(tmp_path):
    path = _write_lines(
        tmp_path / "qa.jsonl",
        [
            {"id": "a1", "question": "What is  it?", "answer": "A thing.", "group": "things", "title": "Things"},
            "",
            {"id": 7, "texts": {"en": {"question": "Q?", "answer": "A."}, "de": {"question": "F?", "answer": "A."}}},
        ],
    )
    pairs = load_jsonl(path, lang="es")
    assert pairs == [
        {"pair_id": "jsonl:a1", "group": "things", "title": "Things",
         "texts": {"es": {"question": "What is it?", "answer": "A thing."}}},
        {"pair_id": "jsonl:7", "group": "7", "title": None,
         "texts": {"en": {"question": "Q?", "answer": "A."}, "de": {"question": "F?", "answer": "A."}}},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"id": "a", "question": "Q", "answer": "A"}, "{not json"], r"line 2: invalid JSON"),
        ([{"id": "a", "question": "Q", "answer": "A"}, {"id": "a", "question": "Q2", "answer": "A2"}],
         r"line 2: id 'a' repeats the id of line 1"),
        ([{"question": "Q", "answer": "A"}], r"line 1: 'id' must be"),
        ([{"id": "a", "question": "Q", "answer": ""}], r"line 1: 'question' and 'answer' must be non-empty"),
        ([{"id": "a", "texts": {"de": {"question": "F"}}}], r"line 1: texts\.de: 'question' and 'answer'"),
        ([{"id": "a", "question": "Q", "answer": "A", "texts": {}}], r"line 1: give either"),
        ([{"id": "a", "title": 3, "question": "Q", "answer": "A"}], r"line 1: 'title' must be"),
    ],
)  # fmt: skip
def test_jsonl_bad_lines_are_named(tmp_path, lines, message):
    path = _write_lines(tmp_path / "qa.jsonl", lines)
    with pytest.raises(InputError, match=message) as caught:
        load_jsonl(path)
    assert str(path) in str(caught.value)


def test_jsonl_empty_or_missing_file(tmp_path):
    with pytest.raises(InputError, match="no records"):
        load_jsonl(_write_lines(tmp_path / "e.jsonl", [""]))
    with pytest.raises(InputError, match="cannot be read"):
        load_jsonl(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------- datasets

ROWS = {
    "qid": ["r1", "r2", "r3"],
    "q": ["First  question?", "Second?", "Third?"],
    "a": ["First answer.", "Second answer.", "Third answer."],
    "article": ["Art A", "Art A", "Art B"],
}
COLUMNS = {"id": "qid", "question": "q", "answer": "a", "group": "article", "title": "article"}


@pytest.fixture
def offline_guard(monkeypatch):
    """Fail any attempt to open a network connection while the test runs."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_hf_save_to_disk_dataset_and_dataset_dict(tmp_path, offline_guard):
    import datasets

    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "single"))
    pairs = load_hf({"kind": "hf", "path": str(tmp_path / "single"), "lang": "fr", "columns": COLUMNS}, False)
    assert pairs[0] == {"pair_id": "hf:r1", "group": "Art A", "title": "Art A",
                        "texts": {"fr": {"question": "First question?", "answer": "First answer."}}}  # fmt: skip
    assert [p["group"] for p in pairs] == ["Art A", "Art A", "Art B"]
    assert "HF_DATASETS_OFFLINE" not in os.environ  # offline mode is undone after loading

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(ROWS), "validation": datasets.Dataset.from_dict(
        {k: v[:1] for k, v in ROWS.items()})})  # fmt: skip
    dd.save_to_disk(str(tmp_path / "dict"))
    spec = {
        "path": str(tmp_path / "dict"),
        "split": "validation",
        "columns": {"id": "qid", "question": "q", "answer": "a"},
    }
    assert [(p["pair_id"], p["group"], p["title"]) for p in load_hf(spec, False)] == [("hf:r1", "r1", None)]
    with pytest.raises(InputError, match=r"qa.source.split: .* has no split 'test'; it has \['train', 'validation'\]"):
        load_hf({**spec, "split": "test"}, False)


def test_hf_parquet_file_and_folder(tmp_path, offline_guard):
    import datasets

    (tmp_path / "pq").mkdir()
    datasets.Dataset.from_dict(
        {"id": [1, 2], "question": ["Q1?", "Q2?"], "answer": ["A1", "A2"], "x": [0, 0]}
    ).to_parquet(str(tmp_path / "pq" / "part-0.parquet"))
    for path in (tmp_path / "pq", tmp_path / "pq" / "part-0.parquet"):
        pairs = load_hf({"path": str(path)}, False)
        assert [p["pair_id"] for p in pairs] == ["hf:1", "hf:2"]
        assert pairs[1]["texts"] == {"en": {"question": "Q2?", "answer": "A2"}}
    # no id column: the row index is the id
    datasets.Dataset.from_dict({"question": ["Q?"], "answer": ["A"]}).to_parquet(str(tmp_path / "noid.parquet"))
    assert load_hf({"path": str(tmp_path / "noid.parquet")}, False)[0]["pair_id"] == "hf:0"


def test_hf_errors(tmp_path, offline_guard):
    import datasets

    with pytest.raises(InputError, match=r"set qa.source.path .* or allow data.download"):
        load_hf({"name": "rajpurkar/squad"}, allow_network=False)
    with pytest.raises(InputError, match="needs 'path'"):
        load_hf({}, allow_network=False)
    with pytest.raises(InputError, match="does not exist"):
        load_hf({"path": str(tmp_path / "nowhere")}, False)
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(InputError, match=r"no column\(s\) \['question', 'answer'\] .*the dataset has"):
        load_hf({"path": str(tmp_path / "d"), "columns": {"id": "qid"}}, False)
    with pytest.raises(InputError, match="unknown key"):
        load_hf({"path": str(tmp_path / "d"), "passage": "sentence"}, False)
    bad = {**ROWS, "q": ["Q?", "", "Q3?"]}
    datasets.Dataset.from_dict(bad).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(InputError, match=r"row 1: column 'q' \(qa.source.columns.question\) must be a non-empty"):
        load_hf({"path": str(tmp_path / "bad"), "columns": COLUMNS}, False)
    dup = {**ROWS, "qid": ["r1", "r2", "r1"]}
    datasets.Dataset.from_dict(dup).save_to_disk(str(tmp_path / "dup"))
    with pytest.raises(InputError, match=r"row 2: id 'r1' repeats the id of row 0"):
        load_hf({"path": str(tmp_path / "dup"), "columns": COLUMNS}, False)


# ---------------------------------------------------------------- fetching SQuAD


def _mirror(tmp_path: Path, name: str = "dev-v1.1.json") -> Path:
    mirror = tmp_path / "mirror"
    (mirror / "squad").mkdir(parents=True)
    (mirror / "squad" / name).write_text('{"version": "1.1", "data": []}', encoding="utf-8")
    return mirror


def test_fetch_qa_from_mirror_records_checksums(tmp_path, monkeypatch):
    mirror = _mirror(tmp_path)
    out = tmp_path / "resources" / "squad-v1.1-dev"
    record = fetch_squad("squad-v1.1-dev", out, mirror, allow_download=False, verify=False)
    digest = file_sha256(mirror / "squad" / "dev-v1.1.json")
    assert record["sha256"] == digest and record["verified"] is False
    assert sorted(p.name for p in out.iterdir()) == ["checksums.json", "dev-v1.1.json"]
    saved = read_json(out / "checksums.json")
    assert saved["dataset"] == "squad-v1.1-dev" and saved["files"]["dev-v1.1.json"]["sha256"] == digest
    # verification against the official checksum: a file that differs is refused ...
    with pytest.raises(InputError, match=r"SHA-256 .* differs from the official dev-v1.1.json"):
        fetch_squad("squad-v1.1-dev", tmp_path / "other", mirror, allow_download=False)
    assert not (tmp_path / "other").exists()
    # ... and the official one accepted
    monkeypatch.setitem(SQUAD_FILES, "squad-v1.1-dev", {**SQUAD_FILES["squad-v1.1-dev"], "sha256": digest})
    assert fetch_squad("squad-v1.1-dev", tmp_path / "ok", mirror, allow_download=False)["verified"] is True


def test_fetch_qa_fails_clearly_without_mirror_or_download(tmp_path, monkeypatch):
    mirror = _mirror(tmp_path)
    with pytest.raises(InputError, match=r"squad/train-v2.0.json is missing and data.download is false"):
        fetch_squad("squad-v2.0-train", tmp_path / "out", mirror, allow_download=False)
    with pytest.raises(InputError, match=r"no mirror is configured \(data.mirror\)"):
        fetch_squad("squad-v2.0-train", tmp_path / "out", None, allow_download=False)
    with pytest.raises(InputError, match=r"'squad-v3' is not one of"):
        fetch_squad("squad-v3", tmp_path / "out", mirror, allow_download=False)
    assert not (tmp_path / "out").exists()
    # with download allowed the official URL is asked for (here: a local file URL)
    monkeypatch.setattr(fetch_qa_module, "SQUAD_URL", (mirror / "squad").as_uri() + "/{file}")
    record = fetch_squad("squad-v1.1-dev", tmp_path / "dl", None, allow_download=True, verify=False)
    assert record["source"].startswith("file:") and (tmp_path / "dl" / "dev-v1.1.json").is_file()


def test_squad_checksum_table_is_complete():
    assert sorted(SQUAD_FILES) == ["squad-v1.1-dev", "squad-v1.1-train", "squad-v2.0-dev", "squad-v2.0-train"]
    for source in SQUAD_FILES.values():
        assert len(source["sha256"]) == 64 and int(source["sha256"], 16) >= 0


def test_hf_loads_offline_when_the_network_is_not_allowed(tmp_path, offline_guard, monkeypatch):
    import datasets
    import datasets.config

    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "d"))
    seen = []
    real = datasets.load_from_disk

    def spy(*args, **kwargs):
        seen.append((os.environ.get("HF_DATASETS_OFFLINE"), datasets.config.HF_HUB_OFFLINE))
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_from_disk", spy)
    load_hf({"path": str(tmp_path / "d"), "columns": COLUMNS}, allow_network=False)
    assert seen == [("1", True)]
