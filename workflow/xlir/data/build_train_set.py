"""Assemble multilingual training pairs from the English pairs and their translations.

Training pairs that duplicate a held-out (evaluation) pair's English question
or answer, exactly or nearly, are dropped here and counted; the leakage check
(xlir.benchmarks.leakage) then verifies the final training set against the benchmark."""

from __future__ import annotations

from pathlib import Path

from xlir.common.io import InputError, get_logger, read_json, read_jsonl, write_json, write_jsonl
from xlir.data.overlap import find_overlap

log = get_logger(__name__)


def build_training_pairs(
    qa_jsonl: Path,
    split_json: Path,
    mt_files: dict[str, Path],
    languages: list[str],
    out_jsonl: Path,
    out_stats: Path,
    ngram: int = 5,
    threshold: float = 0.8,
) -> dict:
    pairs = {p["pair_id"]: p for p in read_jsonl(qa_jsonl)}
    split = read_json(split_json)
    translations = {lang: {t["pair_id"]: t for t in read_jsonl(path)} for lang, path in mt_files.items()}
    for lang in languages:
        if lang != "en" and lang not in translations:
            raise InputError(f"config key training.languages: no translation file for '{lang}'")
    heldout = [(f"{i}/{f}", pairs[i][f]) for i in split["heldout_pair_ids"] for f in ("question", "answer")]
    train_texts = [(f"{i}/{f}", pairs[i][f]) for i in split["train_pair_ids"] for f in ("question", "answer")]
    overlap = find_overlap(heldout, train_texts, ngram, threshold)
    contaminated = {hit["eval"].split("/")[0] for hit in overlap["exact"] + overlap["near"]}
    records, missing = [], 0
    for pair_id in split["train_pair_ids"]:
        if pair_id in contaminated:
            continue
        texts = {}
        for lang in languages:
            source = pairs[pair_id] if lang == "en" else translations[lang].get(pair_id)
            if source and source["question"].strip() and source["answer"].strip():
                texts[lang] = {"question": source["question"], "answer": source["answer"]}
        if len(texts) < len(languages):
            missing += 1
            continue
        records.append({"pair_id": pair_id, "texts": texts})
    write_jsonl(out_jsonl, records)
    stats = {
        "languages": languages,
        "n_pairs": len(records),
        "dropped_overlapping_heldout": len(contaminated),
        "dropped_missing_translation": missing,
        "dropped_examples": sorted(contaminated)[:20],
    }
    write_json(out_stats, stats)
    log.info(
        "training pairs: %d (dropped %d overlapping held-out, %d with a missing translation)",
        len(records),
        len(contaminated),
        missing,
    )
    return stats
