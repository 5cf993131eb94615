"""Data errors name the source file and the record (the benchmark's own file and `qas` id, not
a derived file) at the first rule that reads it: duplicated ids, empty sentences or questions,
bytes that are not UTF-8 (with the byte offset), invalid JSON (with the character offset where
lines mean nothing). Silent fallbacks are warnings in the job's log, in a warnings file beside
it, and in the report (issue 13, item 3). Every fixture is built here."""

from __future__ import annotations

import copy
import gzip
import json
import logging
from pathlib import Path

import pytest

from xlir import cli
from xlir.benchmarks.lareqa import load_lareqa
from xlir.benchmarks.miracl import prepare_miracl, read_judgements, read_topics
from xlir.common.io import InputError, read_json, read_jsonl, read_tsv, read_warnings, warnings_path
from xlir.data.sources.chatterbot import read_chatterbot_file
from xlir.data.sources.jsonl import load_jsonl
from xlir.data.sources.lareqa import load_lareqa_source

LAREQA = {
    "data": [
        {
            "title": "Rivers",
            "paragraphs": [
                {
                    "context": "The Seine flows through Paris. It is long.",
                    "sentences": ["The Seine flows through Paris.", " It is long."],
                    "sentence_breaks": [[0, 30], [30, 42]],
                    "qas": [
                        {"id": "q1", "question": "Which river?", "answers": [{"text": "Seine", "answer_start": 4}]}
                    ],
                },
                {
                    "context": "Everest is tall.",
                    "sentences": ["Everest is tall."],
                    "sentence_breaks": [[0, 16]],
                    "qas": [{"id": "q2", "question": "How tall?", "answers": [{"text": "tall", "answer_start": 11}]}],
                },
            ],
        }
    ]
}


def write_lareqa(folder: Path, document: dict, lang: str = "en", indent: int | None = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lang}.json"
    path.write_text(json.dumps(document, indent=indent, ensure_ascii=False), encoding="utf-8")
    return path


def lareqa_with(change) -> dict:
    document = copy.deepcopy(LAREQA)
    change(document["data"][0]["paragraphs"])
    return document


# ------------------------------------------------------------------ LAReQA benchmark files
def test_the_fixture_loads(tmp_path):
    write_lareqa(tmp_path, LAREQA)
    benchmark = load_lareqa(tmp_path, ["en"])
    assert len(benchmark.questions) == 2 and len(benchmark.candidates) == 3


def test_duplicated_question_id_names_the_file_and_both_records(tmp_path):
    path = write_lareqa(tmp_path, lareqa_with(lambda ps: ps[1]["qas"][0].update(id="q1")))
    with pytest.raises(InputError) as error:
        load_lareqa(tmp_path, ["en"])
    assert str(error.value) == (
        f"{path}: data[0].paragraphs[1].qas[0]: id 'q1' repeats the id of data[0].paragraphs[0].qas[0]"
    )


def test_empty_sentence_names_the_file_and_sentence(tmp_path):
    path = write_lareqa(tmp_path, lareqa_with(lambda ps: ps[0]["sentences"].__setitem__(1, "  ")))
    with pytest.raises(InputError, match=r"empty sentence") as error:
        load_lareqa(tmp_path, ["en"])
    assert str(error.value).startswith(f"{path}: data[0].paragraphs[0].sentences[1]: empty sentence '  '")


def test_empty_question_names_the_file_and_qas_id(tmp_path):
    path = write_lareqa(tmp_path, lareqa_with(lambda ps: ps[1]["qas"][0].update(question=" ")))
    with pytest.raises(InputError) as error:
        load_lareqa(tmp_path, ["en"])
    assert str(error.value) == f"{path}: data[0].paragraphs[1].qas[0] (id q2): empty question"


def test_bytes_that_are_not_utf8_give_the_byte_offset(tmp_path):
    path = write_lareqa(tmp_path, LAREQA)
    data = path.read_bytes()
    offset = data.index(b"Paris")
    path.write_bytes(data[:offset] + b"\xe9" + data[offset + 1 :])  # a Latin-1 byte inside a UTF-8 file
    with pytest.raises(InputError) as error:
        load_lareqa(tmp_path, ["en"])
    assert str(error.value).startswith(f"{path}: byte {offset}: not UTF-8 (invalid continuation byte")


def test_invalid_json_in_a_one_line_file_gives_the_character_offset(tmp_path):
    text = json.dumps(LAREQA)
    broken = text.replace('"q2"', '"q2" "x"')
    path = tmp_path / "en.json"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_lareqa(tmp_path, ["en"])
    position = broken.index('"q2" "x"') + len('"q2" ')
    message = str(error.value)
    assert message.startswith(f"{path}: character {position} (of a one-line file of {len(broken)} characters): ")
    assert "invalid JSON (Expecting ',' delimiter)" in message and "near '" in message
    assert "line 1" not in message


def test_invalid_json_in_a_file_of_lines_gives_line_and_column(tmp_path):
    path = tmp_path / "en.json"
    path.write_text('{\n  "data": [\n    {"title": "x",}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"en.json: line 3, column 19 \(character 32\): invalid JSON"):
        read_json(path)


def test_prepare_benchmark_job_fails_naming_the_benchmark_file_not_a_derived_one(tmp_path):
    raw = tmp_path / "raw"
    path = write_lareqa(raw, lareqa_with(lambda ps: ps[1]["qas"][0].update(id="q1")))
    out = tmp_path / "prepared"
    log = tmp_path / "prepare_benchmark.log"
    code = cli.main(
        ["prepare-benchmark", "--kind", "lareqa", "--raw-dir", str(raw), "--languages", "en"]
        + ["--out-questions", str(out / "questions.jsonl"), "--out-candidates", str(out / "candidates.jsonl")]
        + ["--out-qrels", str(out / "qrels.tsv"), "--out-stats", str(out / "stats.json"), "--log", str(log)]
    )
    assert code == 2
    text = log.read_text(encoding="utf-8")
    assert f"bad input: {path}: data[0].paragraphs[1].qas[0]: id 'q1' repeats the id of" in text
    assert "questions.jsonl" not in text and not out.exists()


# ------------------------------------------------------------------ MIRACL files
def write_miracl(root: Path, topics: bytes, qrels: bytes, docs: list[bytes]) -> Path:
    folder = root / "en"
    (folder / "corpus").mkdir(parents=True)
    (folder / "topics.tsv").write_bytes(topics)
    (folder / "qrels.tsv").write_bytes(qrels)
    with gzip.open(folder / "corpus" / "docs-0.jsonl.gz", "wb") as handle:
        handle.write(b"".join(docs))
    return folder


GOOD_DOCS = [
    b'{"docid": "1#0", "title": "Paris", "text": "the seine flows through paris"}\n',
    b'{"docid": "2#0", "title": "Everest", "text": "everest is tall"}\n',
]


def test_miracl_duplicated_topic_id(tmp_path):
    path = tmp_path / "topics.tsv"
    path.write_bytes(b"101\twhich river\n102\thow tall\n101\tagain\n")
    with pytest.raises(InputError) as error:
        read_topics(path)
    assert str(error.value) == f"{path}: line 3: query id '101' repeats the id of line 1"


def test_miracl_empty_query(tmp_path):
    path = tmp_path / "topics.tsv"
    path.write_bytes(b"101\twhich river\n102\t \n")
    with pytest.raises(InputError, match=r"topics.tsv: line 2: expected 'qid<TAB>query' \(a non-empty query\)"):
        read_topics(path)


def test_miracl_topics_not_utf8(tmp_path):
    path = tmp_path / "topics.tsv"
    path.write_bytes(b"101\twhich river\n102\thow tall is \xff\n")
    with pytest.raises(InputError) as error:
        read_topics(path)
    assert str(error.value).startswith(f"{path}: byte 32 (line 2): not UTF-8 (invalid start byte, bytes b'\\xff")


def test_miracl_conflicting_judgements(tmp_path):
    path = tmp_path / "qrels.tsv"
    path.write_bytes(b"101 Q0 1#0 1\n101 Q0 1#0 0\n")
    with pytest.raises(InputError) as error:
        read_judgements(path)
    assert str(error.value) == f"{path}: line 2: query '101' judges passage '1#0' 0, and line 1 judged it 1"


def test_miracl_corpus_errors_name_the_shard_and_line(tmp_path):
    topics, qrels = b"101\twhich river\n", b"101 Q0 1#0 1\n"
    folder = write_miracl(tmp_path / "dup", topics, qrels, [*GOOD_DOCS, GOOD_DOCS[0]])
    with pytest.raises(InputError) as error:
        prepare_miracl(tmp_path / "dup", ["en"], tmp_path / "out1")
    shard = folder / "corpus" / "docs-0.jsonl.gz"
    assert str(error.value) == f"{shard}: line 3: docid '1#0' occurs a second time in the corpus"
    bad = [GOOD_DOCS[0], b'{"docid": "2#0", "title": "\xc3", "text": "x"}\n']
    folder = write_miracl(tmp_path / "bytes", topics, qrels, bad)
    with pytest.raises(InputError) as error:
        prepare_miracl(tmp_path / "bytes", ["en"], tmp_path / "out2")
    offset = len(GOOD_DOCS[0]) + bad[1].index(b"\xc3")
    assert str(error.value).startswith(f"{folder / 'corpus' / 'docs-0.jsonl.gz'}: byte {offset} (line 2): not UTF-8")


def test_miracl_empty_passage_is_a_warning(tmp_path, caplog):
    docs = [*GOOD_DOCS, b'{"docid": "3#0", "title": "", "text": " "}\n']
    write_miracl(tmp_path / "raw", b"101\twhich river\n", b"101 Q0 1#0 1\n", docs)
    with caplog.at_level(logging.WARNING, logger="xlir"):
        stats = prepare_miracl(tmp_path / "raw", ["en"], tmp_path / "out")
    assert stats["candidates_per_language"] == {"en": 3}
    assert "MIRACL en: 1 passages with empty title and text (kept in the pool), e.g. docs-0.jsonl.gz line 3 (3#0)" in (
        caplog.text
    )


# ------------------------------------------------------------------ training sources and QA files
def test_lareqa_training_source_empty_texts_are_errors_not_skipped(tmp_path):
    path = write_lareqa(tmp_path, lareqa_with(lambda ps: ps[0]["qas"][0].update(question="  ")))
    with pytest.raises(InputError) as error:
        load_lareqa_source(tmp_path, ["en"], "xquad-r")
    assert str(error.value) == f"{path}: data[0].paragraphs[0].qas[0] (id q1): empty question"
    path = write_lareqa(tmp_path, lareqa_with(lambda ps: ps[0]["sentences"].__setitem__(0, "")))
    with pytest.raises(InputError) as error:
        load_lareqa_source(tmp_path, ["en"], "xquad-r")
    assert str(error.value) == f"{path}: data[0].paragraphs[0].qas[0] (id q1): the answer's sentence (0) is empty"


@pytest.mark.parametrize(
    "reader",
    [
        lambda path: load_jsonl(path),
        lambda path: read_jsonl(path),
        lambda path: read_chatterbot_file(path),
        lambda path: read_tsv(path),
    ],
    ids=["jsonl-source", "read_jsonl", "chatterbot", "tsv"],
)
def test_every_text_reader_gives_the_byte_offset(tmp_path, reader):
    path = tmp_path / "data.yml"
    first, second = b'{"id": "a", "question": "Q?", "answer": "A."}\n', b'{"id": "b", "question": "caf\xe9?"}\n'
    path.write_bytes(first + second)
    with pytest.raises(InputError) as error:
        reader(path)
    offset = len(first) + second.index(b"\xe9")  # the Latin-1 byte on line 2
    assert str(error.value).startswith(f"{path}: byte {offset}"), error.value
    assert "not UTF-8" in str(error.value)


# ------------------------------------------------------------------ warnings: log, file, report
def test_job_warnings_file_beside_the_log_and_in_the_report(tmp_path):
    from xlir.report.provenance import warnings_table

    logs = tmp_path / "results" / "logs"
    log = logs / "mt_quality" / "es.log"
    qa, mt, refs = tmp_path / "en.jsonl", tmp_path / "es.jsonl", tmp_path / "refs.tsv"
    qa.write_text(json.dumps({"pair_id": "p1", "question": "What is water?", "answer": "Water."}) + "\n")
    mt.write_text(json.dumps({"pair_id": "p1", "question": "¿Qué es el agua?", "answer": "Agua."}) + "\n")
    refs.write_text("pair_id\tfield\tlang\treference\np1\tquestion\tde\tWas ist Wasser?\n", encoding="utf-8")
    backend = json.dumps({"backend": "apertium"})
    args = ["mt-quality", "--qa", str(qa), "--mt", str(mt), "--lang", "es", "--backend", backend]
    args += ["--cache", str(tmp_path / "cache.sqlite"), "--references", str(refs), "--out", str(tmp_path / "q.json")]
    assert cli.main([*args, "--log", str(log)]) == 0
    assert warnings_path(log) == logs / "mt_quality" / "es.warnings.json"
    [warning] = read_warnings(logs)
    assert warning["job"] == "mt_quality/es" and warning["command"] == "mt-quality"
    assert warning["message"] == f"{refs}: no es references (it has de); es is scored round-trip instead"
    assert "WARNING" in log.read_text(encoding="utf-8") and warning["message"] in log.read_text(encoding="utf-8")
    table = warnings_table(tmp_path / "results", ["config key translation.references: x"])
    assert table.to_dict("records") == [
        {"job": "config (workflow load)", "warning": "config key translation.references: x"},
        {"job": "mt_quality/es", "warning": warning["message"]},
    ]
    # a rerun without the warning removes the stale file (the log is appended to)
    refs.write_text("pair_id\tfield\tlang\treference\np1\tquestion\tes\t¿Qué es el agua?\n", encoding="utf-8")
    assert cli.main([*args, "--log", str(log)]) == 0
    assert read_warnings(logs) == [] and not warnings_path(log).exists()
