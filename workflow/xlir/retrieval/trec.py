"""TREC run files (`qid Q0 docid rank score tag`) and the question grouping
shared by the dense and BM25 searches.

A run is written atomically; within a query the hits are ranked 1..n in
descending score order. Ties keep the order the searcher returned them in
(Faiss: index order; Lucene: internal doc order), which is deterministic for a
given index; scores are written with 9 significant digits, enough to
round-trip the float32 scores both searchers return."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter
from pathlib import Path

from xlir.io_utils import InputError, atomic_open, read_jsonl

Hit = tuple[str, float]
_score = itemgetter(1)


def _check_token(value: str, what: str) -> str:
    value = str(value)
    if value.split() != [value]:
        raise ValueError(f"TREC {what} must be non-empty and contain no whitespace: {value!r}")
    return value


class TrecWriter:
    """Stream a run query by query into an already opened text handle."""

    def __init__(self, handle, tag: str) -> None:
        self._handle = handle
        self._tag = _check_token(tag, "tag")
        self._checked: set[str] = set()  # document ids already known to be valid
        self.queries = 0
        self.lines = 0

    def write(self, qid: str, hits: Iterable[Hit]) -> int:
        """Write the hits of one query, `(docid, score)` pairs, ranked by
        descending score (a stable sort: ties keep their order); return how many."""
        qid = _check_token(qid, "query id")
        ranked = sorted(hits, key=_score, reverse=True)
        checked = self._checked
        for docid, _ in ranked:
            if docid not in checked:
                checked.add(_check_token(docid, "document id"))
        tag = self._tag
        self._handle.writelines([f"{qid} Q0 {docid} {rank} {float(score):.9g} {tag}\n"
                                 for rank, (docid, score) in enumerate(ranked, start=1)])
        self.queries += 1
        self.lines += len(ranked)
        return len(ranked)


@contextlib.contextmanager
def open_trec_run(path: str | Path, tag: str) -> Iterator[TrecWriter]:
    """Atomically write a TREC run file query by query (`writer.write(qid, hits)`)."""
    with atomic_open(path) as handle:
        yield TrecWriter(handle, tag)


def write_trec_run(path: str | Path, results: Mapping[str, Iterable[Hit]], tag: str) -> int:
    """Write `{qid: [(docid, score), ...]}` as a TREC run (atomic); return the line count.

    Queries are written in the mapping's order; a query with no hits writes no line."""
    with open_trec_run(path, tag) as writer:
        for qid, hits in results.items():
            writer.write(qid, hits)
    return writer.lines


def read_trec_run(path: str | Path) -> dict[str, list[Hit]]:
    """Read a TREC run into `{qid: [(docid, score), ...]}` in rank order."""
    path = Path(path)
    ranked: dict[str, list[tuple[int, str, float]]] = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise InputError(f"{path}: line {line_number}: expected 6 columns, got {len(parts)}")
            qid, _, docid, rank, score, _ = parts
            try:
                ranked.setdefault(qid, []).append((int(rank), docid, float(score)))
            except ValueError as error:
                raise InputError(f"{path}: line {line_number}: bad rank or score ({error})") from error
    return {qid: [(docid, score) for _, docid, score in sorted(hits)] for qid, hits in ranked.items()}


def _group_by_language(path: str | Path, id_key: str, what: str, *, no_whitespace: bool) -> dict[str, list[dict]]:
    """Group a prepared `{what}.jsonl` by `lang` (sorted by language, file order within
    one); check that `id_key` is present, unique (and free of whitespace when asked)."""
    path = Path(path)
    grouped: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for number, record in enumerate(read_jsonl(path), start=1):
        for key in (id_key, "lang", "text"):
            if key not in record:
                raise InputError(f"{path}: record {number}: missing field {key!r}")
        identifier = str(record[id_key])
        if identifier in seen:
            raise InputError(f"{path}: record {number}: duplicate {id_key} {identifier!r}")
        if no_whitespace and any(ch.isspace() for ch in identifier):
            raise InputError(f"{path}: record {number}: {id_key} {identifier!r} contains whitespace")
        seen.add(identifier)
        grouped.setdefault(str(record["lang"]), []).append(record)
    if not grouped:
        raise InputError(f"{path}: no {what}")
    return dict(sorted(grouped.items()))


def questions_by_language(questions_jsonl: str | Path) -> dict[str, list[dict]]:
    """`questions.jsonl` grouped by language; qids present and unique."""
    return _group_by_language(questions_jsonl, "qid", "questions", no_whitespace=False)


def candidates_by_language(candidates_jsonl: str | Path) -> dict[str, list[dict]]:
    """`candidates.jsonl` grouped by language; cids present, unique, without whitespace."""
    return _group_by_language(candidates_jsonl, "cid", "candidates", no_whitespace=True)


def select_languages(available: Iterable[str], languages: Iterable[str] | None, path: str | Path) -> list[str]:
    """The requested languages (all available ones when None), each checked to be present."""
    available = sorted(available)
    if languages is None:
        return available
    chosen = list(dict.fromkeys(languages))
    missing = [lang for lang in chosen if lang not in available]
    if missing:
        raise InputError(f"{path}: no candidates in language(s) {missing}; present: {available}")
    if not chosen:
        raise ValueError("languages is empty")
    return sorted(chosen)
