"""Read the training source (config key `qa.source`) into source pairs and split them.

Outputs (rule `prepare_qa`):
- `pairs.jsonl`: every source pair (`xlir.data.sources`): human texts only, by language;
- `en.jsonl`: `{pair_id, question, answer[, category]}` of every pair with English text,
  what machine translation (rule `translate`) fills the missing languages from;
- `references.tsv`: the human non-English texts (`pair_id, field, lang, reference`):
  where a pair has both, rule `mt_quality` scores machine translation against them;
- `split.json`: train, dev and held-out pair ids. The dev split is drawn by group
  (article, paragraph or repeated question; seeded), so near-duplicates never straddle
  it; it is what model selection uses and never touches the evaluation benchmarks. The
  held-out pairs (chatterbot's held-out categories) are the demo benchmark's.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from xlir.common.config_files import with_defaults
from xlir.common.io import InputError, atomic_open, get_logger, write_json, write_jsonl
from xlir.data.sources import SOURCE_KINDS

log = get_logger(__name__)


def load_source(qa: dict, source_path: Path | None, allow_network: bool = False) -> tuple[list[dict], list[str]]:
    """Source pairs of the configured source, and the malformed records skipped (chatterbot)."""
    source = qa.get("source") or {"kind": "chatterbot"}
    kind = source.get("kind", "chatterbot")
    skipped: list[str] = []
    if kind == "chatterbot":
        from xlir.data.sources.chatterbot import as_source_pairs, bundled_corpus_dir, read_qa_pairs

        corpus_dir = qa.get("corpus_dir") or bundled_corpus_dir()
        pairs = read_qa_pairs(
            corpus_dir,
            qa.get("exclude_categories"),
            qa.get("max_pairs_per_category"),
            with_defaults(qa, "qa")["seed"],
            skipped if qa.get("skip_malformed") else None,
        )
        return as_source_pairs(pairs), skipped
    if kind == "lareqa":
        from xlir.data.sources.lareqa import load_lareqa_source

        return load_lareqa_source(_required(source_path, kind), source["languages"], source["dataset"]), skipped
    if kind == "squad":
        from xlir.data.fetch_qa import squad_file
        from xlir.data.sources.squad import load_squad

        path = _required(source_path, kind)
        if path.is_dir():
            path = squad_file(path, source["dataset"])
        return load_squad(path, source.get("lang", "en"), source.get("passage", "sentence")), skipped
    if kind == "jsonl":
        from xlir.data.sources.jsonl import load_jsonl

        return load_jsonl(_required(source_path, kind), source.get("lang", "en")), skipped
    if kind == "hf":
        from xlir.data.sources.hf import load_hf

        return load_hf({k: v for k, v in source.items() if k != "max_pairs"}, allow_network), skipped
    raise InputError(f"config key qa.source.kind: {kind!r} is not one of {', '.join(SOURCE_KINDS)}")


def _required(path: Path | None, kind: str) -> Path:
    if path is None:
        raise InputError(f"config key qa.source: kind '{kind}' needs its file or folder (qa.source.path / fetched)")
    return Path(path)


def cap_pairs(pairs: list[dict], max_pairs: int | None, seed: int) -> list[dict]:
    """A seeded sample of whole groups holding at most `max_pairs` pairs (None: all)."""
    if not max_pairs or len(pairs) <= max_pairs:
        return pairs
    groups = _groups(pairs)
    order = sorted(groups)
    random.Random(f"{seed}:cap").shuffle(order)
    kept: set[str] = set()
    for group in order:
        if len(kept) + len(groups[group]) > max_pairs:
            continue
        kept.update(groups[group])
    return [p for p in pairs if p["pair_id"] in kept]


def _groups(pairs: list[dict]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for pair in pairs:
        groups.setdefault(str(pair.get("group") or pair["pair_id"]), []).append(pair["pair_id"])
    return groups


def split_pairs(
    pairs: list[dict],
    heldout_categories: list[str] | None,
    dev_fraction: float,
    dev_max_pairs: int | None,
    seed: int,
) -> dict:
    """Held-out (by category; chatterbot only), dev (whole groups, seeded) and train pair ids."""
    from xlir.data.sources.chatterbot import category_slug

    heldout_ids: set[str] = set()
    split: dict = {}
    if heldout_categories:
        heldout = {category_slug(c) for c in heldout_categories}
        present = {p.get("category") for p in pairs}
        missing = heldout - present
        if missing:
            raise InputError(
                f"config key qa.heldout_categories: {sorted(missing)} not among the corpus categories "
                f"{sorted(c for c in present if c)}"
            )
        heldout_ids = {p["pair_id"] for p in pairs if p.get("category") in heldout}
        split["heldout_categories"] = sorted(heldout)
        split["train_categories"] = sorted({p["category"] for p in pairs} - heldout)
    remaining = [p for p in pairs if p["pair_id"] not in heldout_ids]
    target = round(dev_fraction * len(remaining))
    if dev_max_pairs is not None:
        target = min(target, dev_max_pairs)
    groups = _groups(remaining)
    order = sorted(groups)
    random.Random(f"{seed}:dev").shuffle(order)
    dev_ids: set[str] = set()
    dev_groups = 0
    for group in order:
        if len(dev_ids) >= target:
            break
        dev_ids.update(groups[group])
        dev_groups += 1
    split.update(
        {
            "train_pair_ids": [p["pair_id"] for p in remaining if p["pair_id"] not in dev_ids],
            "dev_pair_ids": [p["pair_id"] for p in remaining if p["pair_id"] in dev_ids],
            "heldout_pair_ids": [p["pair_id"] for p in pairs if p["pair_id"] in heldout_ids],
            "dev_groups": dev_groups,
            "train_groups": len(groups) - dev_groups,
            "dev_fraction": dev_fraction,
            "seed": seed,
        }
    )
    return split


def write_references(path: Path, pairs: list[dict]) -> int:
    """The human non-English texts as an MT reference TSV; returns the rows written."""
    rows = 0
    with atomic_open(path) as handle:
        handle.write("pair_id\tfield\tlang\treference\n")
        for pair in pairs:
            for lang, texts in sorted(pair["texts"].items()):
                if lang == "en" or "en" not in pair["texts"]:
                    continue
                for field in ("question", "answer"):
                    text = " ".join(texts[field].split()).replace("\t", " ")
                    handle.write(f"{pair['pair_id']}\t{field}\t{lang}\t{text}\n")
                    rows += 1
    return rows


def prepare_qa(
    qa: dict,
    source_path: Path | None,
    out_pairs: Path,
    out_english: Path,
    out_references: Path,
    out_split: Path,
    allow_network: bool = False,
) -> dict:
    """Read, cap and split the source; write the four outputs (see the module docstring)."""
    source = qa.get("source") or {"kind": "chatterbot"}
    seed = int(with_defaults(qa, "qa")["seed"])
    pairs, skipped = load_source(qa, source_path, allow_network)
    if not pairs:
        raise InputError(f"config key qa.source: the {source.get('kind')} source gave no QA pairs")
    pairs = cap_pairs(pairs, source.get("max_pairs"), seed)
    dev = qa.get("dev") or {}
    heldout = qa.get("heldout_categories") if source.get("kind", "chatterbot") == "chatterbot" else None
    split = split_pairs(pairs, heldout, float(dev.get("fraction", 0.0)), dev.get("max_pairs"), seed)
    split["source"] = source
    split["skipped_malformed_records"] = skipped
    languages = Counter(lang for pair in pairs for lang in pair["texts"])
    split["human_texts_per_language"] = dict(sorted(languages.items()))
    english = []
    for pair in pairs:
        if "en" in pair["texts"]:
            record = {"pair_id": pair["pair_id"], **pair["texts"]["en"]}
            if pair.get("category"):
                record["category"] = pair["category"]
            english.append(record)
    write_jsonl(out_pairs, pairs)
    write_jsonl(out_english, english)
    references = write_references(out_references, pairs)
    write_json(out_split, split)
    log.info(
        "%s source: %d pairs (train %d, dev %d in %d groups, held-out %d); human texts per language %s; "
        "%d human reference segments",
        source.get("kind", "chatterbot"),
        len(pairs),
        len(split["train_pair_ids"]),
        len(split["dev_pair_ids"]),
        split["dev_groups"],
        len(split["heldout_pair_ids"]),
        split["human_texts_per_language"],
        references,
    )
    return split
