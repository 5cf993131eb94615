"""The fixed probe set of the layer analysis: question ids of a prepared benchmark that are
present in every language (the parallel questions), drawn by a seed and recorded, so every
run of a benchmark is probed with the same texts.

`probe.json`: {benchmark_questions, seed, requested, n_eligible, languages, ids,
texts: {id: {lang: text}}}; ids in the questions file's order, languages sorted."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from xlir.common.io import InputError, get_logger, read_json, read_jsonl, write_json

log = get_logger(__name__)


@dataclass(frozen=True)
class Probe:
    ids: list[str]
    languages: list[str]
    seed: int
    texts: dict[str, dict[str, str]]
    requested: int
    n_eligible: int
    source: str = ""

    def flat_texts(self) -> list[str]:
        """Every text, id-major: text k is id k // len(languages), language k % len(languages)."""
        return [self.texts[i][lang] for i in self.ids for lang in self.languages]

    def to_dict(self) -> dict:
        return {
            "benchmark_questions": self.source,
            "seed": self.seed,
            "requested": self.requested,
            "n_eligible": self.n_eligible,
            "languages": self.languages,
            "ids": self.ids,
            "texts": {i: self.texts[i] for i in self.ids},
        }


def build_probe(
    questions_path: str | Path, size: int = 200, seed: int = 0, languages: list[str] | None = None
) -> Probe:
    """`size` ids (fewer, with a warning, when fewer are parallel) present in every language of
    `languages` (default: every language of the questions file), drawn with `seed`."""
    if size < 2:
        raise ValueError(f"the probe set needs at least 2 ids (alignment retrieves among them), got {size}")
    questions = read_jsonl(questions_path)
    texts: dict[str, dict[str, str]] = {}
    for number, question in enumerate(questions, 1):
        for key in ("id", "lang", "text"):
            if key not in question:
                raise InputError(f"{questions_path}: record {number}: missing '{key}' (prepared questions.jsonl)")
        texts.setdefault(str(question["id"]), {}).setdefault(question["lang"], question["text"])
    available = sorted({q["lang"] for q in questions})
    languages = sorted(languages) if languages else available
    missing = [lang for lang in languages if lang not in available]
    if missing:
        raise InputError(f"{questions_path}: no questions in {', '.join(missing)} (has {', '.join(available)})")
    if len(languages) < 2:
        raise InputError(f"{questions_path}: the probe set needs parallel questions in at least 2 languages")
    eligible = [i for i, by_lang in texts.items() if all(lang in by_lang for lang in languages)]
    if len(eligible) < 2:
        raise InputError(
            f"{questions_path}: {len(eligible)} question ids are present in every language of "
            f"{', '.join(languages)}; the layer analysis needs parallel questions (MIRACL's are monolingual)"
        )
    if len(eligible) < size:
        log.warning("only %d question ids are present in every language: the probe set holds them all", len(eligible))
    chosen = set(random.Random(seed).sample(sorted(eligible), min(size, len(eligible))))
    ids = [i for i in eligible if i in chosen]
    return Probe(
        ids=ids,
        languages=languages,
        seed=seed,
        texts={i: {lang: texts[i][lang] for lang in languages} for i in ids},
        requested=size,
        n_eligible=len(eligible),
        source=str(questions_path),
    )


def write_probe(path: str | Path, probe: Probe) -> None:
    write_json(path, probe.to_dict())


def read_probe(path: str | Path) -> Probe:
    data = read_json(path)
    for key in ("ids", "languages", "seed", "texts"):
        if key not in data:
            raise InputError(f"{path}: missing '{key}' (a probe.json of `xlir probe-set`)")
    for i in data["ids"]:
        absent = [lang for lang in data["languages"] if lang not in data["texts"].get(i, {})]
        if absent:
            raise InputError(f"{path}: probe id {i!r} has no text in {', '.join(absent)}")
    return Probe(
        ids=list(data["ids"]),
        languages=list(data["languages"]),
        seed=int(data["seed"]),
        texts=data["texts"],
        requested=int(data.get("requested", len(data["ids"]))),
        n_eligible=int(data.get("n_eligible", len(data["ids"]))),
        source=str(data.get("benchmark_questions", "")),
    )
