"""TREC run files (`qid Q0 docid rank score tag`) and the question grouping
shared by the dense and BM25 searches.

A run is written atomically; within a query the hits are ranked 1..n in
descending score order. Ties keep the order the searcher returned them in
(Faiss: index order; Lucene: internal doc order), which is deterministic for a
given index; scores are written with 9 significant digits, enough to
round-trip the float32 scores both searchers return.

`read_trec_run` is the one reader of run files: it orders each query's documents
the way trec_eval does before it computes anything: by score descending, ties by
docid descending (trec_eval's `form_res_rels.c`, `comp_sim_docno`:
`strcmp(ptr2->docno, ptr1->docno)`). The rank column of the file is ignored, as
in trec_eval."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter
from pathlib import Path

from xlir.common.io import InputError, atomic_open, read_jsonl

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
        self._handle.writelines(
            [
                f"{qid} Q0 {docid} {rank} {float(score):.9g} {tag}\n"
                for rank, (docid, score) in enumerate(ranked, start=1)
            ]
        )
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


def sort_trec_ranking(scored: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Order `(docid, score)` pairs like trec_eval: score descending, ties by docid descending.

    Docids are compared as Python strings, i.e. by Unicode code point, which is
    the same order as C `strcmp` on their UTF-8 bytes."""
    return sorted(scored, key=lambda item: (item[1], item[0]), reverse=True)


def read_trec_run(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """Read a TREC run file (`qid Q0 docid rank score tag`, whitespace separated).

    Returns, per query id, the `(docid, score)` pairs in trec_eval's order:
    score descending, ties broken by docid descending (see `sort_trec_ranking`).
    The `Q0` and rank columns are not used for ordering (trec_eval ignores them
    too), but the rank must be an integer and the score a finite number.
    Blank lines are skipped.

    Raises `InputError` naming the file, the line number and what was expected
    for a line without exactly 6 fields, a non-integer rank, a non-numeric or
    non-finite score, or a docid listed twice for the same query (trec_eval
    refuses duplicates as well)."""
    path = Path(path)
    unsorted: dict[str, list[tuple[str, float]]] = {}
    seen: dict[str, set[str]] = {}
    docid_cache: dict[str, str] = {}  # share one string object per docid across queries
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}: line {line_number}"
            if len(fields) != 6:
                raise InputError(
                    f"{where}: expected 6 whitespace-separated fields "
                    f"'qid Q0 docid rank score tag', got {len(fields)}: {line.strip()!r}"
                )
            qid, _q0, docid, rank, score_text, _tag = fields
            try:
                int(rank)
            except ValueError:
                raise InputError(f"{where}: expected an integer rank in field 4, got {rank!r}") from None
            try:
                score = float(score_text)
            except ValueError:
                raise InputError(f"{where}: expected a numeric score in field 5, got {score_text!r}") from None
            if not math.isfinite(score):
                raise InputError(f"{where}: expected a finite score in field 5, got {score_text!r}")
            docid = docid_cache.setdefault(docid, docid)
            docs_seen = seen.setdefault(qid, set())
            if docid in docs_seen:
                raise InputError(
                    f"{where}: document {docid!r} listed twice for query {qid!r}; "
                    "expected each document at most once per query"
                )
            docs_seen.add(docid)
            unsorted.setdefault(qid, []).append((docid, score))
    return {qid: sort_trec_ranking(pairs) for qid, pairs in unsorted.items()}


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
