"""Retrieval metrics (pure functions, no I/O).

The metric definitions follow trec_eval 9.x (the program behind Pyserini's
`pyserini.eval.trec_eval`), so our numbers and trec_eval's agree:

- `average_precision` is trec_eval's `map` for one query,
- `recall_at_k` is trec_eval's `recall.k` for one query,
- rankings are ordered the way trec_eval orders them before it computes
  anything (`xlir.retrieval.trec.read_trec_run`): score descending, ties by
  docid descending.

`rank_distance` is the language-bias measure of Huang et al. (2023): how far
apart a query's parallel relevant answers (one per language) are placed in a
ranking over the pooled candidates of all languages.

Every metric is computed over the whole ranked list it is given: the runs are
written at full pool depth unless the configuration truncates them
(`evaluation.depth`), in which case relevant documents below the cut count as
not retrieved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "average_precision",
    "recall_at_k",
    "rank_distance",
    "mean",
    "macro_average",
]


def _check_relevant(relevant: Iterable[str] | set[str]) -> set[str]:
    relevant = relevant if isinstance(relevant, (set, frozenset)) else set(relevant)
    if not relevant:
        raise ValueError("the query has no relevant document: the metric is undefined")
    return relevant


def average_precision(ranked_docids: Sequence[str], relevant: Iterable[str]) -> float:
    """Average precision of one ranking, exactly like trec_eval's `map` for one query.

    `sum(precision@r for each rank r holding a relevant document) / |relevant|`:
    relevant documents that are never retrieved contribute 0. Computed over the
    whole ranked list given (a truncated run counts the documents below the
    cut as not retrieved). A docid repeated in `ranked_docids` counts once, at
    its first rank. Raises `ValueError` when `relevant` is empty.

    >>> average_precision(["a", "x", "b"], {"a", "b"})  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    relevant = _check_relevant(relevant)
    found: set[str] = set()
    total = 0.0
    for rank, docid in enumerate(ranked_docids, start=1):
        if docid in relevant and docid not in found:
            found.add(docid)
            total += len(found) / rank
            if len(found) == len(relevant):
                break
    return total / len(relevant)


def recall_at_k(ranked_docids: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Recall at cutoff k: `|relevant ∩ top-k| / |relevant|` (trec_eval's `recall.k`).

    A ranking shorter than k is used as is. Raises `ValueError` when `relevant`
    is empty or `k < 1`."""
    if k < 1:
        raise ValueError(f"recall cutoff k must be >= 1, got {k}")
    relevant = _check_relevant(relevant)
    hits = relevant.intersection(ranked_docids[:k])
    return len(hits) / len(relevant)


def rank_distance(ranked_docids: Sequence[str], relevant: Iterable[str]) -> float:
    """Language bias of one multilingual ranking (Huang et al., 2023).

    `max rank - min rank` over the relevant candidates (1-based ranks), i.e.
    how far apart the parallel answers of a question (one per language) are
    placed in the ranking over the pooled candidates of all languages; lower
    is less biased, and the minimum with n relevant candidates is n - 1 (all
    of them at consecutive ranks). One relevant candidate gives 0. A relevant candidate
    absent from the ranking (e.g. cut off by a truncated run) is given rank
    `len(ranked_docids) + 1`, just below the last retrieved document. Computed
    over the whole ranked list given. Raises `ValueError` when `relevant` is
    empty.

    >>> rank_distance(["en:0:0", "x", "y", "es:0:0", "ca:0:0"], {"en:0:0", "es:0:0", "ca:0:0"})
    4.0
    """
    relevant = _check_relevant(relevant)
    ranks = relevant_ranks(ranked_docids, relevant)
    if len(ranks) < len(relevant):
        ranks_list = list(ranks.values()) + [len(ranked_docids) + 1]
    else:
        ranks_list = list(ranks.values())
    return float(max(ranks_list) - min(ranks_list))


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; raises `ValueError` on no values."""
    values = list(values)
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def macro_average(per_group: Mapping[str, float]) -> float:
    """Unweighted mean over groups (e.g. language pairs), each group counting once
    whatever its number of queries. Raises `ValueError` on an empty mapping."""
    if not per_group:
        raise ValueError("macro average over no groups")
    return mean(per_group.values())


# ------------------------------------------------------- metrics from ranks
# A ranking is summarised by the ranks of its relevant documents (1-based, in
# trec_eval's order; None = not in the ranking). AP, Recall@k, nDCG@k and the
# rank distance depend on nothing else, so a full-depth ranking over a pool of
# 13k candidates never has to be written out (see xlir.retrieval.ranks).
def _check_ranks(ranks: Sequence[int | None], n_relevant: int) -> list[int]:
    if n_relevant < 1:
        raise ValueError("the query has no relevant document: the metric is undefined")
    found = sorted(r for r in ranks if r is not None)
    if len(ranks) > n_relevant:
        raise ValueError(f"{len(ranks)} ranks given for {n_relevant} relevant documents")
    if any(r < 1 for r in found) or len(set(found)) != len(found):
        raise ValueError(f"ranks must be distinct positive integers, got {found}")
    return found


def average_precision_from_ranks(ranks: Sequence[int | None], n_relevant: int) -> float:
    """trec_eval's `map` for one query from the ranks of its relevant documents
    (`None`: not retrieved, contributes 0). Equals `average_precision` on the
    ranking the ranks were taken from.

    >>> average_precision_from_ranks([1, 3], 2)
    0.8333333333333333
    """
    found = _check_ranks(ranks, n_relevant)
    return sum((i + 1) / rank for i, rank in enumerate(found)) / n_relevant


def recall_from_ranks(ranks: Sequence[int | None], n_relevant: int, k: int) -> float:
    """trec_eval's `recall.k` for one query from the ranks of its relevant documents."""
    if k < 1:
        raise ValueError(f"recall cutoff k must be >= 1, got {k}")
    found = _check_ranks(ranks, n_relevant)
    return sum(1 for rank in found if rank <= k) / n_relevant


def ndcg_from_ranks(ranks: Sequence[int | None], gains: Sequence[float], k: int) -> float:
    """trec_eval's `ndcg_cut.k` for one query: `gains[i]` is the relevance grade of
    the relevant document ranked `ranks[i]` (None = not retrieved); every judged
    relevant document of the query must be listed (the ideal ranking sorts all
    gains). DCG = sum gain / log2(rank + 1) over ranks <= k.

    >>> round(ndcg_from_ranks([1, 3], [1, 1], 10), 6)  # (1 + 1/2) / (1 + 1/log2(3))
    0.919721
    """
    if k < 1:
        raise ValueError(f"nDCG cutoff k must be >= 1, got {k}")
    if len(ranks) != len(gains):
        raise ValueError(f"{len(ranks)} ranks but {len(gains)} gains")
    _check_ranks(ranks, len(gains))
    dcg = math.fsum(g / math.log2(r + 1) for r, g in zip(ranks, gains) if r is not None and r <= k)
    ideal = sorted((g for g in gains if g > 0), reverse=True)[:k]
    idcg = math.fsum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def rank_distance_from_ranks(ranks: Sequence[int | None], n_ranked: int) -> float:
    """`rank_distance` from the ranks of the relevant documents; one that is not
    in the ranking gets rank `n_ranked + 1` (just below the last retrieved)."""
    found = _check_ranks(ranks, len(ranks))
    if len(found) < len(ranks):
        found.append(n_ranked + 1)
    return float(max(found) - min(found))


def relevant_ranks(ranked_docids: Sequence[str], relevant: Iterable[str]) -> dict[str, int]:
    """1-based rank of each relevant document found in `ranked_docids` (first occurrence)."""
    relevant = set(relevant)
    ranks: dict[str, int] = {}
    for rank, docid in enumerate(ranked_docids, start=1):
        if docid in relevant and docid not in ranks:
            ranks[docid] = rank
            if len(ranks) == len(relevant):
                break
    return ranks
