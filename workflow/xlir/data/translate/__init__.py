"""Machine translation of the English QA pairs.

`make_translator(config["translation"])` builds a backend (Apertium or a
Hugging Face seq2seq model), `CachedTranslator` puts a sqlite cache in front of
it, and `translate_qa_file` turns `results/data/qa/en.jsonl` into
`results/data/mt/{lang}.jsonl` (`{pair_id, question, answer}` in `lang`)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from xlir.common.io import InputError, get_logger, iter_lines, write_jsonl
from xlir.data.translate.apertium import DEFAULT_MODES, ApertiumTranslator, normalise_text
from xlir.data.translate.base import Translator, cache_id, make_translator
from xlir.data.translate.cache import CachedTranslator
from xlir.data.translate.hf_seq2seq import HFSeq2SeqTranslator

__all__ = [
    "DEFAULT_MODES",
    "ApertiumTranslator",
    "CachedTranslator",
    "HFSeq2SeqTranslator",
    "Translator",
    "cache_id",
    "make_translator",
    "normalise_text",
    "read_qa_pairs",
    "translate_qa_file",
]


def read_qa_pairs(path: str | Path, fields: tuple[str, ...] = ("question", "answer")) -> list[dict]:
    """Read a QA JSONL file; every record needs a unique string `pair_id` and string `fields`."""
    path = Path(path)
    records: list[dict] = []
    seen: dict[str, int] = {}
    for line_number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}: line {line_number}: invalid JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise InputError(f"{path}: line {line_number}: expected a JSON object, got {type(record).__name__}")
        pair_id = record.get("pair_id")
        if not isinstance(pair_id, str) or not pair_id:
            raise InputError(f"{path}: line {line_number}: missing or non-string 'pair_id'")
        for field in fields:
            if not isinstance(record.get(field), str):
                raise InputError(f"{path}: line {line_number}: pair {pair_id}: missing or non-string {field!r}")
        if pair_id in seen:
            raise InputError(
                f"{path}: line {line_number}: duplicate pair_id {pair_id!r} (first on line {seen[pair_id]})"
            )
        seen[pair_id] = line_number
        records.append(record)
    return records


def translate_qa_file(
    qa_jsonl: str | Path,
    lang: str,
    out_jsonl: str | Path,
    translator: Translator,
    src: str = "en",
    log: logging.Logger | None = None,
) -> dict:
    """Translate the questions and answers of `qa_jsonl` from `src` into `lang`.

    Writes `{pair_id, question, answer}` per line (atomically, in input order)
    and returns statistics: pairs, segments, seconds, cache hits/misses (when
    the translator is a `CachedTranslator`) and empty translations of
    non-empty sources (each also logged as a warning)."""
    log = log or get_logger(__name__)
    pairs = read_qa_pairs(qa_jsonl)
    segments = [pair["question"] for pair in pairs] + [pair["answer"] for pair in pairs]
    stats_before = dict(getattr(translator, "stats", {}) or {})
    started = time.perf_counter()
    if lang == src:
        outputs = [normalise_text(text) for text in segments]
    else:
        outputs = list(translator.translate(segments, src, lang))
    seconds = time.perf_counter() - started
    if len(outputs) != len(segments):
        raise RuntimeError(f"{translator.name}: {len(outputs)} translations for {len(segments)} texts")
    n = len(pairs)
    empty = 0
    records = []
    for index, pair in enumerate(pairs):
        question, answer = outputs[index], outputs[n + index]
        for field, source, output in (("question", pair["question"], question), ("answer", pair["answer"], answer)):
            if source.strip() and not output.strip():
                empty += 1
                log.warning(
                    "%s: empty %s->%s translation of %s %s: %r",
                    translator.name,
                    src,
                    lang,
                    pair["pair_id"],
                    field,
                    source[:200],
                )
        records.append({"pair_id": pair["pair_id"], "question": question.strip(), "answer": answer.strip()})
    write_jsonl(out_jsonl, records)
    stats_after = dict(getattr(translator, "stats", {}) or {})
    stats = {
        "lang": lang,
        "src": src,
        "backend": translator.name,
        "n": n,
        "n_segments": len(segments),
        "seconds": round(seconds, 3),
        "segments_per_second": round(len(segments) / seconds, 1) if seconds > 0 else None,
        "cache_hits": stats_after.get("hits", 0) - stats_before.get("hits", 0) if stats_after else None,
        "cache_misses": stats_after.get("misses", 0) - stats_before.get("misses", 0) if stats_after else None,
        "empty_translations": empty,
    }
    log.info(
        "translated %d pairs (%d segments) %s->%s with %s in %.1f s (cache hits %s, misses %s, empty %d)",
        n,
        len(segments),
        src,
        lang,
        translator.name,
        seconds,
        stats["cache_hits"],
        stats["cache_misses"],
        empty,
    )
    return stats
