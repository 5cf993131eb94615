"""The dev benchmark: the training source's held-out dev pairs (`data/dev/pairs.jsonl`, rule
`build_train_set`) written as LAReQA files (`{lang}.json`), so model selection is measured
by the same loader, retrieval and evaluator as the test benchmarks, on a small
LAReQA-style pool (every answer of every training language; a question's relevant
candidates are its own answer in every language).

The answers of one group (article, paragraph) form one paragraph, in chunks of
`paragraph_size`; within a paragraph a repeated answer sentence is written once and is
relevant to every question it answers (two copies would be each other's false
negatives). A pair without text in a language is absent from that language's file."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from xlir.common.io import InputError, get_logger, read_jsonl, write_json

log = get_logger(__name__)


def _paragraph(items: list[dict]) -> dict:
    """One LAReQA paragraph from {id, question, answer} items, repeated answers merged."""
    sentences: list[str] = []
    breaks: list[list[int]] = []
    start_of: dict[str, int] = {}
    cursor = 0
    for item in items:
        key = " ".join(item["answer"].casefold().split())
        if key not in start_of:
            if sentences:
                cursor += 1  # the joining space
            start_of[key] = cursor
            breaks.append([cursor, cursor + len(item["answer"])])
            sentences.append(item["answer"])
            cursor += len(item["answer"])
    qas = [
        {
            "id": item["id"],
            "question": item["question"],
            "answers": [
                {"text": item["answer"], "answer_start": start_of[" ".join(item["answer"].casefold().split())]}
            ],
        }
        for item in items
    ]
    return {"context": " ".join(sentences), "sentences": sentences, "sentence_breaks": breaks, "qas": qas}


def build_dev_benchmark(dev_pairs_jsonl: Path, languages: list[str], out_dir: Path, paragraph_size: int = 8) -> dict:
    """Write `{out_dir}/{lang}.json` for every language; returns questions per language."""
    pairs = read_jsonl(dev_pairs_jsonl)
    if not pairs:
        raise InputError(
            f"{dev_pairs_jsonl}: no dev pairs (raise qa.dev.fraction or set it to 0 to skip the dev split)"
        )
    by_group: dict[str, list[dict]] = defaultdict(list)
    for pair in sorted(pairs, key=lambda p: p["pair_id"]):
        by_group[str(pair.get("group") or pair["pair_id"])].append(pair)
    chunks = [
        members[i : i + paragraph_size]
        for group in sorted(by_group)
        for members in [by_group[group]]
        for i in range(0, len(members), paragraph_size)
    ]
    counts = {}
    for lang in languages:
        paragraphs = []
        for chunk in chunks:
            items = [
                {"id": p["pair_id"], "question": p["texts"][lang]["question"], "answer": p["texts"][lang]["answer"]}
                for p in chunk
                if lang in p["texts"]
            ]
            if items:
                paragraphs.append(_paragraph(items))
        counts[lang] = sum(len(p["qas"]) for p in paragraphs)
        if not counts[lang]:
            raise InputError(f"{dev_pairs_jsonl}: no dev pair has text in training language '{lang}'")
        document = {"version": "xlir-dev-1", "data": [{"title": f"xlir dev ({lang})", "paragraphs": paragraphs}]}
        write_json(Path(out_dir) / f"{lang}.json", document)
    log.info("dev benchmark: %d pairs in %d paragraphs; questions per language %s", len(pairs), len(chunks), counts)
    return counts
