"""The demo benchmark: held-out QA pairs and their translations written as LAReQA files
(`{lang}.json`, one paragraph per `paragraph_size` answers), so the demo runs through the
same loader as XQuAD-R and MLQA-R."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from xlir.common.io import InputError, get_logger, write_json

log = get_logger(__name__)


def lareqa_document(paragraphs: list[list[dict]], title: str) -> dict:
    """A LAReQA JSON document from paragraphs given as lists of {id, question, answer}.

    Each answer becomes one sentence of its paragraph's context."""
    out_paragraphs = []
    for items in paragraphs:
        sentences, breaks, qas, cursor, parts = [], [], [], 0, []
        for item in items:
            text = item["answer"]
            if parts:
                cursor += 1  # the joining space
            breaks.append([cursor, cursor + len(text)])
            sentences.append(text)
            qas.append(
                {"id": item["id"], "question": item["question"], "answers": [{"text": text, "answer_start": cursor}]}
            )
            parts.append(text)
            cursor += len(text)
        out_paragraphs.append(
            {"context": " ".join(parts), "sentences": sentences, "sentence_breaks": breaks, "qas": qas}
        )
    return {"version": "xlir-demo-1", "data": [{"title": title, "paragraphs": out_paragraphs}]}


def build_demo_benchmark(
    qa_pairs: list[dict],
    heldout_ids: list[str],
    translations: dict[str, list[dict]],
    languages: list[str],
    out_dir: Path,
    paragraph_size: int = 4,
) -> dict:
    """Write `{out_dir}/{lang}.json` for each language from the held-out pairs.

    English uses the original text; other languages their translations. Pairs
    are grouped (in pair-id order, within a category) into paragraphs of
    `paragraph_size` answers, identically in every language, so the files are
    parallel as XQuAD-R's are."""
    by_id = {p["pair_id"]: p for p in qa_pairs}
    heldout = [by_id[i] for i in heldout_ids]
    groups: list[list[dict]] = []
    by_category: dict[str, list[dict]] = defaultdict(list)
    for pair in sorted(heldout, key=lambda p: p["pair_id"]):
        by_category[pair["category"]].append(pair)
    for category in sorted(by_category):
        items = by_category[category]
        groups.extend(items[i : i + paragraph_size] for i in range(0, len(items), paragraph_size))
    counts = {}
    for lang in languages:
        if lang == "en":
            text_of = {p["pair_id"]: p for p in heldout}
        else:
            if lang not in translations:
                raise InputError(f"no translations for demo benchmark language '{lang}'")
            text_of = {t["pair_id"]: t for t in translations[lang]}
        paragraphs = []
        for group in groups:
            items = []
            for pair in group:
                if pair["pair_id"] not in text_of:
                    raise InputError(f"translation of pair {pair['pair_id']} into '{lang}' is missing")
                text = text_of[pair["pair_id"]]
                items.append({"id": pair["pair_id"], "question": text["question"], "answer": text["answer"]})
            paragraphs.append(items)
        write_json(Path(out_dir) / f"{lang}.json", lareqa_document(paragraphs, f"xlir demo ({lang})"))
        counts[lang] = sum(len(g) for g in groups)
    log.info("demo benchmark: %d questions in %d paragraphs, languages %s", len(heldout), len(groups), languages)
    return counts
