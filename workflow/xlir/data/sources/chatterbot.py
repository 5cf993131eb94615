"""Training source `chatterbot`: English question-answer pairs from chatterbot-corpus YAML.

A chatterbot conversation is a list of utterances; its first two are taken as
(question, answer). Conversations with fewer than two utterances, non-string
utterances or empty text are rejected with the file and record named. Each pair keeps
its `category` (the file's stem: the demo benchmark holds categories out); its dev-split
`group` is the normalised question, so repeated questions ("tell me a joke") never
straddle the split."""

from __future__ import annotations

import random
import re
from pathlib import Path

import yaml

from xlir.common.io import InputError, get_logger, read_text

log = get_logger(__name__)


def bundled_corpus_dir(language: str = "english") -> Path:
    """Folder of the chatterbot-corpus YAML files for `language` as installed from PyPI."""
    import chatterbot_corpus

    return Path(chatterbot_corpus.__file__).parent / "data" / language


def category_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def read_chatterbot_file(path: Path, skipped: list[str] | None = None) -> list[dict]:
    """QA pairs of one chatterbot YAML file; category = the file's stem.

    A malformed record raises InputError, unless `skipped` is a list: then the
    record's location and reason are appended to it and the record is left out."""
    path = Path(path)
    try:
        document = yaml.safe_load(read_text(path))
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(document, dict) or not isinstance(document.get("conversations"), list):
        raise InputError(f"{path}: expected a mapping with a 'conversations' list")
    category = category_slug(path.stem)
    pairs = []
    for index, conversation in enumerate(document["conversations"]):
        where = f"{path}: conversations[{index}]"
        problem = None
        if not isinstance(conversation, list) or len(conversation) < 2:
            problem = "expected a list of at least two utterances (question, answer)"
        elif not isinstance(conversation[0], str) or not isinstance(conversation[1], str):
            problem = (
                f"question and answer must be strings, got {type(conversation[0]).__name__} "
                f"and {type(conversation[1]).__name__}"
            )
        elif not conversation[0].strip() or not conversation[1].strip():
            problem = "empty question or answer"
        if problem:
            if skipped is None:
                raise InputError(f"{where}: {problem}")
            skipped.append(f"{where}: {problem}")
            log.warning("skipping malformed record %s: %s", where, problem)
            continue
        question, answer = " ".join(conversation[0].split()), " ".join(conversation[1].split())
        pairs.append(
            {"pair_id": f"{category}-{index:04d}", "category": category, "question": question, "answer": answer}
        )
    return pairs


def read_qa_pairs(
    corpus_dir: Path,
    exclude_categories: list[str] | None = None,
    max_pairs_per_category: int | None = None,
    seed: int = 0,
    skipped: list[str] | None = None,
) -> list[dict]:
    """All pairs of the folder's *.yml files, deduplicated by (question, answer) text.

    `max_pairs_per_category` caps large categories by a seeded sample so the
    demo stays small and the cap is reproducible."""
    corpus_dir = Path(corpus_dir)
    files = sorted(corpus_dir.glob("*.yml")) + sorted(corpus_dir.glob("*.yaml"))
    if not files:
        raise InputError(f"{corpus_dir}: no *.yml QA files found")
    excluded = {category_slug(c) for c in exclude_categories or []}
    pairs: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for path in files:
        category_pairs = [p for p in read_chatterbot_file(path, skipped) if p["category"] not in excluded]
        if max_pairs_per_category and len(category_pairs) > max_pairs_per_category:
            rng = random.Random(f"{seed}:{path.stem}")
            category_pairs = sorted(rng.sample(category_pairs, max_pairs_per_category), key=lambda p: p["pair_id"])
        for pair in category_pairs:
            key = (pair["question"].lower(), pair["answer"].lower())
            if key in seen:
                continue
            seen.add(key)
            pairs.append(pair)
    log.info("read %d QA pairs from %d files in %s", len(pairs), len(files), corpus_dir)
    return pairs


def as_source_pairs(pairs: list[dict]) -> list[dict]:
    """The chatterbot pairs as source pairs (English texts only; category kept)."""
    return [
        {
            "pair_id": p["pair_id"],
            "category": p["category"],
            "group": " ".join(p["question"].casefold().split()),
            "title": None,
            "texts": {"en": {"question": p["question"], "answer": p["answer"]}},
        }
        for p in pairs
    ]
