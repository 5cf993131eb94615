"""MIRACL (Zhang et al., 2023) into the prepared benchmark format.

Per language `{raw_dir}/{lang}/`: `topics.tsv` (`qid<TAB>query`), `qrels.tsv`
(TREC: `qid Q0 docid rel`) and `corpus/*.jsonl[.gz]` (`{docid, title, text}`)
as fetched by `xlir.benchmarks.fetch_benchmark.fetch_miracl`. MIRACL is monolingual: queries of a
language are searched in that language's corpus only.

Prepared ids: question `"{lang}:{qid}"`, candidate `"{lang}:{docid}"`, the
candidate text `"{title} {text}"` (Pyserini's MIRACL indexes use title and text
too). `qrels.tsv` keeps every judgement with its grade (non-relevant included),
so trec_eval sees the official qrels. With `max_candidates_per_language`, each
corpus is cut to the judged passages plus a seeded random sample of the rest:
convenient on a laptop, but the numbers are then not comparable with the
official ones (stats.json says so).
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

from xlir.benchmarks.prepared import PreparedFiles, as_prepared_files
from xlir.common.io import InputError, atomic_open, get_logger, iter_lines, write_json, write_jsonl

log = get_logger(__name__)

#: MIRACL's 18 languages: 16 with training data, and the surprise languages de and yo
MIRACL_LANGUAGES = (
    "ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "yo", "zh",
)  # fmt: skip


def read_topics(path: Path) -> list[tuple[str, str]]:
    topics = []
    seen: dict[str, int] = {}
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise InputError(
                f"{path}: line {number}: expected 'qid<TAB>query' (a non-empty query), got {line.strip()[:80]!r}"
            )
        qid = fields[0].strip()
        if qid in seen:
            raise InputError(f"{path}: line {number}: query id {qid!r} repeats the id of line {seen[qid]}")
        seen[qid] = number
        topics.append((qid, fields[1].strip()))
    return topics


def read_judgements(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    lines: dict[tuple[str, str], int] = {}
    for number, line in iter_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise InputError(f"{path}: line {number}: expected 'qid Q0 docid rel', got {line.strip()[:80]!r}")
        try:
            grade = int(fields[3])
        except ValueError:
            raise InputError(f"{path}: line {number}: relevance {fields[3]!r} is not an integer") from None
        qid, docid = fields[0], fields[2]
        if docid in qrels[qid] and qrels[qid][docid] != grade:
            raise InputError(
                f"{path}: line {number}: query {qid!r} judges passage {docid!r} {grade}, and line "
                f"{lines[qid, docid]} judged it {qrels[qid][docid]}"
            )
        qrels[qid][docid] = grade
        lines.setdefault((qid, docid), number)
    return dict(qrels)


def iter_corpus(folder: Path):
    """(file, line number, record) of every passage of the corpus files in `folder`."""
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    if not files:
        raise InputError(f"{folder}: no corpus files (*.jsonl or *.jsonl.gz)")
    for path in files:
        opener = gzip.open if path.name.endswith(".gz") else open
        for number, line in iter_lines(path, opener):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}: line {number}: invalid JSON ({error.msg}, column {error.colno})") from None
            if not isinstance(record, dict) or "docid" not in record or "text" not in record:
                raise InputError(f"{path}: line {number}: expected an object with docid, title, text")
            yield path, number, record


def prepare_miracl(
    raw_dir: str | Path,
    languages: list[str],
    out: str | Path | PreparedFiles,
    max_candidates_per_language: int | None = None,
    seed: int = 0,
) -> dict:
    """Write questions.jsonl, candidates.jsonl, qrels.tsv and stats.json (`xlir.benchmarks.prepared`)."""
    raw_dir, files = Path(raw_dir), as_prepared_files(out)
    questions, candidates, judgements = [], [], []
    stats: dict = {
        "benchmark": "miracl",
        "languages": languages,
        "questions_per_language": {},
        "candidates_per_language": {},
        "corpus_per_language": {},
        "judged_per_language": {},
        "max_candidates_per_language": max_candidates_per_language,
    }
    for lang in languages:
        folder = raw_dir / lang
        for name in ("topics.tsv", "qrels.tsv", "corpus"):
            if not (folder / name).exists():
                raise InputError(f"{folder / name}: missing (expected topics.tsv, qrels.tsv and corpus/)")
        topics = read_topics(folder / "topics.tsv")
        qrels = read_judgements(folder / "qrels.tsv")
        topic_ids = {qid for qid, _ in topics}
        unknown = sorted(set(qrels) - topic_ids)
        if unknown:
            raise InputError(
                f"{folder / 'qrels.tsv'}: {len(unknown)} judged queries are not in topics.tsv, e.g. {unknown[:3]}"
            )
        judged = {docid for docs in qrels.values() for docid in docs}
        corpus = []
        seen: set[str] = set()  # a set, not a dict of locations: MIRACL corpora hold millions of passages
        empty: list[str] = []
        for path, number, record in iter_corpus(folder / "corpus"):
            docid = str(record["docid"])
            if not docid or any(ch.isspace() for ch in docid):
                raise InputError(f"{path}: line {number}: docid {docid!r} is empty or contains whitespace")
            if docid in seen:
                raise InputError(f"{path}: line {number}: docid {docid!r} occurs a second time in the corpus")
            seen.add(docid)
            if not str(record.get("title") or "").strip() and not str(record["text"]).strip():
                empty.append(f"{path.name} line {number} ({docid})")
            corpus.append(record)
        if empty:  # kept: the official pool is not changed, but an empty passage matches nothing
            log.warning(
                "MIRACL %s: %d passages with empty title and text (kept in the pool), e.g. %s",
                lang, len(empty), ", ".join(empty[:3]),
            )  # fmt: skip
        missing = sorted(judged - seen)
        if missing:
            raise InputError(
                f"{folder / 'qrels.tsv'}: {len(missing)} judged passages are not in the corpus, e.g. {missing[:3]}"
            )
        kept = corpus
        if max_candidates_per_language and len(corpus) > max_candidates_per_language:
            rest = [r for r in corpus if str(r["docid"]) not in judged]
            extra = max(0, max_candidates_per_language - len(judged))
            sample = set(id(r) for r in random.Random(seed).sample(rest, min(extra, len(rest))))
            kept = [r for r in corpus if str(r["docid"]) in judged or id(r) in sample]
        unjudged = 0
        for qid, text in topics:
            if any(rel > 0 for rel in qrels.get(qid, {}).values()):
                questions.append({"qid": f"{lang}:{qid}", "lang": lang, "id": qid, "text": text})
            else:
                unjudged += 1
        if unjudged:  # as the official evaluation: a topic without a relevant passage has no score
            log.info("MIRACL %s: %d topics of %s have no relevant passage and are left out", lang, unjudged,
                     folder / "topics.tsv")  # fmt: skip
        for record in kept:
            title = str(record.get("title") or "").strip()
            text = str(record["text"]).strip()
            candidates.append(
                {"cid": f"{lang}:{record['docid']}", "lang": lang, "text": f"{title} {text}".strip(), "context": title}
            )
        for qid, docs in sorted(qrels.items()):
            for docid, rel in sorted(docs.items()):
                judgements.append(f"{lang}:{qid} 0 {lang}:{docid} {rel}\n")
        stats["questions_per_language"][lang] = sum(1 for q in questions if q["lang"] == lang)
        stats["candidates_per_language"][lang] = len(kept)
        stats["corpus_per_language"][lang] = len(corpus)
        stats["judged_per_language"][lang] = len(judged)
        log.info(
            "MIRACL %s: %d topics with a relevant passage, %d of %d passages kept",
            lang,
            stats["questions_per_language"][lang],
            len(kept),
            len(corpus),
        )
    stats["n_questions"] = len(questions)
    stats["n_candidates"] = len(candidates)
    stats["subsampled"] = any(
        stats["candidates_per_language"][lang] < stats["corpus_per_language"][lang] for lang in languages
    )
    write_jsonl(files.candidates, candidates)
    with atomic_open(files.qrels) as handle:
        handle.writelines(judgements)
    write_json(files.stats, stats)
    write_jsonl(files.questions, questions)
    return stats
