"""The search driver shared by the dense (Faiss) and BM25 (Lucene) retrievers.

`search_pools` opens each candidate pool's index in turn (per language, then
the pooled `all`), ranks every query language's questions in it batch by batch
and writes, per (query language, pool), `out_trec_dir/{Q}-{C}.trec` and, with
qrels, `out_ranks_dir/{Q}-{C}.tsv` plus `out_ranks_dir/manifest.json` (see
`xlir.retrieval.ranks`); both folders appear atomically. The retriever only
supplies `open_pool`, which returns a `PoolSearcher`: its ranking depth `k` and
a `rank` method giving one `Ranking` per question."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from xlir.common.io import atomic_dir
from xlir.retrieval.ranks import open_run_outputs, ranks_from_hits, relevant_by_pool, write_ranks_manifest

if TYPE_CHECKING:
    from tqdm import tqdm

RankRow = tuple[str, int, int | None, float | None]  # (docid, rel, rank, score), as RanksWriter takes them


class Ranking(Protocol):
    """One question's ranking over one pool."""

    n_ranked: int  # the ranking's length (the ranks file's `n_ranked`)

    def top(self, n: int) -> Iterable[tuple[str, float]]:
        """The best `n` hits, `(docid, score)`, best first."""

    def relevant_ranks(self, graded: Mapping[str, int]) -> list[RankRow]:
        """`(docid, rel, rank, score)` of each document of `graded` (docid -> grade > 0),
        in docid order; rank and score None when the document is not in the ranking."""


class PoolSearcher(Protocol):
    """One opened index (a candidate pool)."""

    k: int  # the ranking depth in this pool

    def rank(self, qlang: str, qids: list[str], start: int) -> Sequence[Ranking]:
        """The rankings of the `qlang` questions `qids`, which start at position
        `start` of that language's questions, in the order of `qids`."""

    def close(self) -> None:
        """Release the index."""


class HitListRanking:
    """A ranking given as a list of `(docid, score)` hits, best first (e.g. Lucene's)."""

    def __init__(self, hits: list[tuple[str, float]]) -> None:
        self.hits = hits
        self.n_ranked = len(hits)

    def top(self, n: int) -> list[tuple[str, float]]:
        return self.hits[:n]

    def relevant_ranks(self, graded: Mapping[str, int]) -> list[RankRow]:
        return ranks_from_hits(self.hits, graded)


@dataclass(frozen=True)
class _RunWriter:
    """Writes the run files of one search: one TREC file (and ranks file) per run."""

    trec_dir: Path
    ranks_dir: Path | None
    tag: str
    batch_size: int
    trec_depth: int | None
    monolingual_only: bool
    log: logging.Logger
    lines_label: str

    def write_pool(
        self,
        pool: PoolSearcher,
        name: str,
        qids_by_lang: Mapping[str, list[str]],
        graded: Mapping[str, Mapping[str, int]],
        progress: tqdm,
    ) -> dict[str, dict]:
        """Write the runs of every query language (only `name` itself when
        monolingual) in the pool `name`; return their summary entries."""
        keep = pool.k if self.trec_depth is None else min(pool.k, int(self.trec_depth))
        runs = {}
        for qlang, qids in qids_by_lang.items():
            if self.monolingual_only and qlang != name:
                continue
            run_name = f"{qlang}-{name}"
            runs[run_name] = self.write_run(pool, run_name, qlang, qids, keep, graded)
            progress.update(1)
        return runs

    def write_run(
        self,
        pool: PoolSearcher,
        run_name: str,
        qlang: str,
        qids: list[str],
        keep: int,
        graded: Mapping[str, Mapping[str, int]],
    ) -> dict:
        """Rank `qids` in `pool`, write the run's files (TREC hits cut at `keep`)
        and return the run's summary entry."""
        tick = time.perf_counter()
        with open_run_outputs(self.trec_dir, self.ranks_dir, run_name, self.tag) as (writer, ranks):
            for start in range(0, len(qids), self.batch_size):
                chunk = qids[start : start + self.batch_size]
                for qid, ranking in zip(chunk, pool.rank(qlang, chunk, start)):
                    writer.write(qid, ranking.top(keep))
                    if ranks is not None:
                        ranks.write(qid, ranking.relevant_ranks(graded.get(qid, {})), n_ranked=ranking.n_ranked)
        seconds = time.perf_counter() - tick
        run = {
            "queries": writer.queries,
            "lines": writer.lines,
            "k": pool.k,
            "trec_depth": keep,
            "seconds": round(seconds, 3),
        }
        if ranks is not None:
            run["relevant_rows"] = ranks.rows
        self.log.info(
            "%s: %d queries, k=%d, %d %s in %.2fs",
            run_name,
            writer.queries,
            pool.k,
            writer.lines,
            self.lines_label,
            seconds,
        )
        return run


def search_pools(
    qids_by_lang: Mapping[str, list[str]],
    pools: Sequence[str],
    open_pool: Callable[[str], PoolSearcher],
    out_trec_dir: str | Path,
    *,
    retriever: str,
    log: logging.Logger,
    started: float,
    batch_size: int,
    tag: str,
    depth: int | None = None,
    trec_depth: int | None = None,
    qrels_path: str | Path | None = None,
    out_ranks_dir: str | Path | None = None,
    monolingual_only: bool = False,
    extra: Mapping | None = None,
    lines_label: str = "lines",
) -> dict:
    """Search every query language's questions (`qids_by_lang`, in that order) in
    every pool of `pools` (in that order; with `monolingual_only` only the pool
    of the query's own language), `batch_size` questions per `rank` call, and
    write the run files (see the module doc), tagged `tag`.

    `open_pool(name)` opens a pool's index; the TREC files keep the top
    `trec_depth` hits of its k-deep rankings (None: all). `depth` and `extra`
    (e.g. BM25's k1, b) are recorded in the ranks manifest and `extra` in the
    summary; `retriever` names the search in the manifest and the log, and
    `started` (a `time.perf_counter()` value) starts the summary's `seconds`.
    Returns `{runs: {name: {queries, lines, k, trec_depth, seconds[, relevant_rows]}},
    **extra, seconds}`."""
    from tqdm import tqdm

    extra = dict(extra or {})
    relevant = relevant_by_pool(qrels_path, list(pools))
    summary: dict = {"runs": {}, **extra}
    progress = tqdm(  # a bar on a terminal only: a rule's log would keep every frame
        total=len(pools) * len(qids_by_lang),
        desc=f"{retriever} search",
        unit="run",
        mininterval=5,
        disable=not sys.stderr.isatty(),
    )
    with contextlib.ExitStack() as stack:
        staging = stack.enter_context(atomic_dir(out_trec_dir))
        ranks_staging = stack.enter_context(atomic_dir(out_ranks_dir)) if out_ranks_dir else None
        outputs = _RunWriter(staging, ranks_staging, tag, batch_size, trec_depth, monolingual_only, log, lines_label)
        for name in pools:
            pool = open_pool(name)
            graded = relevant[name] if relevant is not None else {}
            summary["runs"].update(outputs.write_pool(pool, name, qids_by_lang, graded, progress))
            pool.close()
            del pool
        if ranks_staging is not None:
            write_ranks_manifest(ranks_staging, retriever, depth, trec_depth, summary["runs"], **extra)
    progress.close()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    log.info("%s search: %d runs in %.1fs", retriever, len(summary["runs"]), summary["seconds"])
    return summary
