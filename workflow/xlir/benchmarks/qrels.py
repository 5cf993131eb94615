"""TREC qrels files (`qid 0 docid rel`): the relevance judgements a prepared benchmark writes."""

from __future__ import annotations

from pathlib import Path

from xlir.common.io import InputError


def read_qrels(path: str | Path) -> dict[str, set[str]]:
    """Per query id, the set of docids with `rel > 0` (see `read_qrels_graded`)."""
    return {qid: {d for d, rel in docs.items() if rel > 0} for qid, docs in read_qrels_graded(path).items()}


def read_qrels_graded(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a TREC qrels file (`qid 0 docid rel`, whitespace separated).

    Returns, per query id, every judged docid with its grade; relevant means
    `rel > 0` (trec_eval's default relevance level of 1). A query whose
    judgements are all `rel <= 0` has no relevant document. Blank lines are skipped.

    Raises `InputError` naming the file, the line number and what was expected
    for a line without exactly 4 fields, a non-integer relevance, or a
    (qid, docid) judged twice."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    judged: set[tuple[str, str]] = set()
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}: line {line_number}"
            if len(fields) != 4:
                raise InputError(
                    f"{where}: expected 4 whitespace-separated fields 'qid 0 docid rel', "
                    f"got {len(fields)}: {line.strip()!r}"
                )
            qid, _iteration, docid, rel_text = fields
            try:
                rel = int(rel_text)
            except ValueError:
                raise InputError(f"{where}: expected an integer relevance in field 4, got {rel_text!r}") from None
            if (qid, docid) in judged:
                raise InputError(
                    f"{where}: document {docid!r} judged twice for query {qid!r}; "
                    "expected one judgement per (query, document)"
                )
            judged.add((qid, docid))
            qrels.setdefault(qid, {})[docid] = rel
    return qrels
