"""Relevant-rank files: the exact information every metric needs, at full pool depth.

AP, Recall@k, nDCG@k and the rank distance of a query depend only on the
ranks of its relevant documents. A full-depth TREC run over XQuAD-R (11 x 1190
questions against 11 pools of ~1.2k sentences and the pooled 13,014) would hold
about 340 million lines (~16 GB); the relevant ranks of the same rankings hold
about 170 thousand. So each search writes

- `trec/{qlang}-{clang}.trec`: the standard run, truncated at the TREC depth
  (`evaluation.trec_depth`), for inspection and for `trec_eval`;
- `ranks/{qlang}-{clang}.tsv`: one row per (query, relevant document of that
  pool) with columns `qid docid rel rank score n_ranked`: the document's rank
  (1-based) in the ranking over the whole pool (or the configured ranking depth),
  empty when it is not in the ranking; `n_ranked` is the ranking's length;
- `ranks/manifest.json`: per run file, the ranking depth, pool size and counts.

Ranks follow trec_eval's order (score descending, ties by docid descending),
so metrics computed from them equal trec_eval's on the full-depth run file
(tested on runs small enough to write out)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from xlir.common.io import InputError, atomic_open, write_json

COLUMNS = ("qid", "docid", "rel", "rank", "score", "n_ranked")
RANKS_MANIFEST = "manifest.json"


def trec_order_ranks(scores: np.ndarray, docid_at: Callable[[int], str], positions: Sequence[int]) -> list[int]:
    """1-based ranks, in trec_eval's order, of the entries `positions` of one
    ranking given as `scores` sorted in descending order (as Faiss returns them),
    `docid_at(position)` giving the docid at a position. Ties (equal scores) are
    ordered by docid descending, as trec_eval orders them."""
    negated = -scores
    ranks = []
    for position in positions:
        score = scores[position]
        first = int(np.searchsorted(negated, -score, side="left"))
        last = int(np.searchsorted(negated, -score, side="right"))
        docid = docid_at(position)
        ahead = sum(1 for other in range(first, last) if docid_at(other) > docid)
        ranks.append(first + ahead + 1)
    return ranks


def ranks_from_hits(
    hits: Sequence[tuple[str, float]], graded: Mapping[str, int]
) -> list[tuple[str, int, int | None, float | None]]:
    """`(docid, rel, rank, score)` of each relevant document of `graded`
    (docid -> grade > 0) in a ranking given as `(docid, score)` hits in any
    order; ranks in trec_eval's order."""
    ordered = sorted(hits, key=lambda item: (item[1], item[0]), reverse=True)
    found = {}
    for rank, (docid, score) in enumerate(ordered, start=1):
        if docid in graded and docid not in found:
            found[docid] = (rank, score)
    rows = []
    for docid in sorted(graded):
        rank, score = found.get(docid, (None, None))
        rows.append((docid, graded[docid], rank, score))
    return rows


class RanksWriter:
    """Stream the relevant ranks of one run file query by query."""

    def __init__(self, handle) -> None:
        self._handle = handle
        self.queries = 0
        self.rows = 0
        handle.write("\t".join(COLUMNS) + "\n")

    def write(self, qid: str, rows: Sequence[tuple[str, int, int | None, float | None]], n_ranked: int) -> None:
        for docid, rel, rank, score in rows:
            self._handle.write(
                f"{qid}\t{docid}\t{rel}\t{'' if rank is None else rank}\t"
                f"{'' if score is None else format(float(score), '.9g')}\t{n_ranked}\n"
            )
        self.queries += 1
        self.rows += len(rows)


@contextlib.contextmanager
def open_ranks(path: str | Path) -> Iterator[RanksWriter]:
    with atomic_open(path) as handle:
        yield RanksWriter(handle)


def read_ranks(path: str | Path) -> dict[str, dict]:
    """`{qid: {"n_ranked": n, "docs": {docid: (rel, rank|None)}}}` from a ranks file;
    errors name the file and line."""
    path = Path(path)
    out: dict[str, dict] = {}
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if tuple(header) != COLUMNS:
            raise InputError(f"{path}: line 1: expected the tab-separated header {COLUMNS}, got {header}")
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(COLUMNS):
                raise InputError(
                    f"{path}: line {number}: expected {len(COLUMNS)} tab-separated fields {COLUMNS}, got {len(fields)}"
                )
            qid, docid, rel, rank, _score, n_ranked = fields
            try:
                entry = out.setdefault(qid, {"n_ranked": int(n_ranked), "docs": {}})
                if docid in entry["docs"]:
                    raise InputError(f"{path}: line {number}: document {docid!r} listed twice for {qid!r}")
                entry["docs"][docid] = (int(rel), int(rank) if rank else None)
            except ValueError as error:
                raise InputError(f"{path}: line {number}: expected integer rel, rank and n_ranked ({error})") from None
    return out


def relevant_by_pool(qrels_path: str | Path | None, pools: list[str]) -> dict[str, dict[str, dict[str, int]]] | None:
    """Per pool (a language, or `all` for the pooled candidates), per qid, the
    graded relevant docids in that pool; None without qrels."""
    if qrels_path is None:
        return None
    from xlir.benchmarks.qrels import read_qrels_graded

    graded = read_qrels_graded(qrels_path)
    return {
        pool: {
            qid: {d: rel for d, rel in docs.items() if rel > 0 and (pool == "all" or d.startswith(f"{pool}:"))}
            for qid, docs in graded.items()
        }
        for pool in pools
    }


@contextlib.contextmanager
def open_run_outputs(trec_dir: Path, ranks_dir: Path | None, run_name: str, tag: str):
    """The TREC writer of one run file and, when `ranks_dir` is given, its ranks writer (else None)."""
    from xlir.retrieval.trec import open_trec_run

    with contextlib.ExitStack() as files:
        writer = files.enter_context(open_trec_run(trec_dir / f"{run_name}.trec", tag))
        ranks = files.enter_context(open_ranks(ranks_dir / f"{run_name}.tsv")) if ranks_dir else None
        yield writer, ranks


def write_ranks_manifest(
    ranks_dir: Path, retriever: str, depth: int | None, trec_depth: int | None, runs: dict, **extra
) -> None:
    write_json(
        ranks_dir / RANKS_MANIFEST,
        {"retriever": retriever, "depth": depth, "trec_depth": trec_depth, **extra, "runs": runs},
    )
