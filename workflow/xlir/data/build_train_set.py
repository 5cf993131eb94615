"""Assemble the multilingual training and dev pairs from the source pairs and the machine
translations.

A pair's text in a training language is the source's human text where it has one, else
the machine translation (rule `translate`) where there is one; a language neither has is
left out of that pair (the batch planner draws only languages a pair has). Each record
says where each language came from (`origin`: human / mt), and the stats count human and
machine-translated texts per language, for the train and the dev split.

Repeated source pairs (the same normalised English question AND answer,
`xlir.data.overlap.source_text_key`; a pair without English: the same texts, up to case
and whitespace, in every language) are collapsed to their first occurrence, within train and within dev, before
anything else: SQuAD asks some questions twice on one paragraph, and a repeat would be
trained on twice as often (the batch planner keeps repeats out of one batch, but not out
of one epoch). The stats count them (`collapsed_repeated_pairs`, with examples). Pairs
sharing only a question or only an answer are kept: the planner keeps them apart.

Pairs that duplicate a held-out (demo benchmark) pair's text, exactly or nearly, are
dropped from train and dev; dev pairs that duplicate a training text are dropped from
dev. The leakage check (xlir.benchmarks.leakage) then verifies the training set against
every evaluation benchmark."""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

from xlir.common.io import InputError, get_logger, read_json, read_jsonl, write_json, write_jsonl
from xlir.data.overlap import find_overlap, source_text_key, training_texts

log = get_logger(__name__)


def _assemble(pair: dict, languages: list[str], translations: dict[str, dict]) -> dict | None:
    texts, origin = {}, {}
    for lang in languages:
        human = pair["texts"].get(lang)
        machine = translations.get(lang, {}).get(pair["pair_id"])
        if human and human["question"].strip() and human["answer"].strip():
            texts[lang], origin[lang] = {"question": human["question"], "answer": human["answer"]}, "human"
        elif machine and machine["question"].strip() and machine["answer"].strip():
            texts[lang], origin[lang] = {"question": machine["question"], "answer": machine["answer"]}, "mt"
    if not texts:
        return None
    record = {"pair_id": pair["pair_id"], "group": pair.get("group"), "title": pair.get("title")}
    return {**record, "texts": texts, "origin": origin}


def _repeat_key(record: dict) -> tuple:
    """What makes two source pairs the same pair: the English question and answer (up to case,
    whitespace and punctuation), else every text (up to case and whitespace only: `normalise`
    would also drop the vowel signs of Indic and Thai scripts)."""
    texts = record["texts"]
    if "en" in texts:
        return ("en", source_text_key(texts["en"]["question"]), source_text_key(texts["en"]["answer"]))
    light = lambda text: " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return tuple((lang, light(texts[lang]["question"]), light(texts[lang]["answer"])) for lang in sorted(texts))


def collapse_repeated_pairs(records: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """The records with each repeated source pair kept once (its first occurrence), and
    {dropped pair_id: the pair_id kept in its place}."""
    first: dict[tuple, str] = {}
    kept, dropped = [], {}
    for record in records:
        key = _repeat_key(record)
        if key in first:
            dropped[record["pair_id"]] = first[key]
        else:
            first[key] = record["pair_id"]
            kept.append(record)
    return kept, dropped


def _origin_counts(records: list[dict], languages: list[str]) -> dict:
    counts = {lang: Counter() for lang in languages}
    for record in records:
        for lang, origin in record["origin"].items():
            counts[lang][origin] += 1
    return {lang: {"human": c["human"], "mt": c["mt"]} for lang, c in counts.items()}


def _overlapping(reference: list[dict], candidates: list[dict], ngram: int, threshold: float) -> set[str]:
    """Pair ids of `candidates` with a text overlapping a text of `reference` (exact or near)."""
    if not reference or not candidates:
        return set()
    found = find_overlap(training_texts(reference), training_texts(candidates), ngram, threshold)
    return {hit["eval"].split("/", 1)[0] for hit in found["exact"] + found["near"]}


def build_training_pairs(
    pairs_jsonl: Path,
    split_json: Path,
    mt_files: dict[str, Path],
    languages: list[str],
    out_jsonl: Path,
    out_dev_jsonl: Path,
    out_stats: Path,
    ngram: int = 5,
    threshold: float = 0.8,
) -> dict:
    pairs = {p["pair_id"]: p for p in read_jsonl(pairs_jsonl)}
    split = read_json(split_json)
    translations = {lang: {t["pair_id"]: t for t in read_jsonl(path)} for lang, path in mt_files.items()}
    covered = {lang for pair in pairs.values() for lang in pair["texts"]} | set(translations)
    uncovered = [lang for lang in languages if lang not in covered]
    if uncovered:
        raise InputError(
            f"config key training.languages: {uncovered} are neither in the training source ({sorted(covered)}) "
            "nor in translation.languages"
        )
    unknown = [
        i for key in ("train_pair_ids", "dev_pair_ids", "heldout_pair_ids") for i in split[key] if i not in pairs
    ]
    if unknown:
        raise InputError(f"{split_json}: {len(unknown)} pair ids not in {pairs_jsonl}, e.g. {unknown[0]!r}")
    heldout = [_assemble(pairs[i], list(pairs[i]["texts"]), {}) for i in split["heldout_pair_ids"]]
    heldout = [h for h in heldout if h]
    assembled = {}
    for key in ("train_pair_ids", "dev_pair_ids"):
        records = [_assemble(pairs[i], languages, translations) for i in split[key]]
        assembled[key] = [r for r in records if r is not None]
    no_language = len(split["train_pair_ids"]) + len(split["dev_pair_ids"]) - sum(map(len, assembled.values()))
    collapsed = {}
    for key in ("train_pair_ids", "dev_pair_ids"):
        assembled[key], collapsed[key] = collapse_repeated_pairs(assembled[key])
    contaminated = _overlapping(heldout, assembled["train_pair_ids"] + assembled["dev_pair_ids"], ngram, threshold)
    train = [r for r in assembled["train_pair_ids"] if r["pair_id"] not in contaminated]
    dev = [r for r in assembled["dev_pair_ids"] if r["pair_id"] not in contaminated]
    dev_overlapping_train = _overlapping(train, dev, ngram, threshold)
    dev = [r for r in dev if r["pair_id"] not in dev_overlapping_train]
    write_jsonl(out_jsonl, train)
    write_jsonl(out_dev_jsonl, dev)
    languages_per_pair = Counter(len(r["texts"]) for r in train)
    stats = {
        "source": split.get("source", {"kind": "chatterbot"}),
        "languages": languages,
        "n_pairs": len(train),
        "n_dev_pairs": len(dev),
        "n_groups": len({r["group"] for r in train}),
        "n_titles": len({r["title"] for r in train if r["title"]}),
        "texts_per_language": _origin_counts(train, languages),
        "dev_texts_per_language": _origin_counts(dev, languages),
        "languages_per_pair": dict(sorted(languages_per_pair.items())),
        "collapsed_repeated_pairs": len(collapsed["train_pair_ids"]),
        "dev_collapsed_repeated_pairs": len(collapsed["dev_pair_ids"]),
        "collapsed_examples": dict(sorted(collapsed["train_pair_ids"].items())[:20]),
        "dropped_overlapping_heldout": len(contaminated),
        "dropped_no_training_language": no_language,
        "dropped_dev_overlapping_train": len(dev_overlapping_train),
        "dropped_examples": sorted(contaminated)[:20],
    }
    write_json(out_stats, stats)
    log.info(
        "training pairs: %d, dev pairs: %d (collapsed %d / %d repeated source pairs; dropped %d overlapping held-out, "
        "%d with no training language, %d dev pairs overlapping training); texts per language (human / mt): %s",
        len(train),
        len(dev),
        len(collapsed["train_pair_ids"]),
        len(collapsed["dev_pair_ids"]),
        len(contaminated),
        no_language,
        len(dev_overlapping_train),
        {lang: f"{c['human']}/{c['mt']}" for lang, c in stats["texts_per_language"].items()},
    )
    return stats
