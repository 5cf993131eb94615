"""Dense retrieval with Pyserini's Faiss tools over precomputed embeddings.

`build_faiss_indexes` writes one exact inner-product index (`IndexFlatIP`,
i.e. cosine on the L2-normalised embeddings) per candidate language,
`{out_dir}/{lang}/`, and one pooled index over all of them, `{out_dir}/all/`,
each built by `pyserini.index.faiss` in a child process, plus
`{out_dir}/manifest.json`. `dense_search` searches every query language in
every index with the precomputed question embeddings and writes
`{qlang}-{clang}.trec` and `{qlang}-all.trec`."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from xlir.common.io import InputError, atomic_dir, get_logger, read_json, write_json
from xlir.common.pyserini_run import run_pyserini_module
from xlir.retrieval.ranks import trec_order_ranks
from xlir.retrieval.search import RankRow, search_pools
from xlir.retrieval.trec import (
    candidates_by_language,
    questions_by_language,
    select_languages,
)

POOLED = "all"
MANIFEST = "manifest.json"
DEFAULT_TAG = "xlir-dense"
_NORM_TOLERANCE = 1e-3

log = get_logger(__name__)


def load_embeddings(embeddings_dir: str | Path, name: str) -> tuple[list[str], np.ndarray]:
    """Read `{name}.npy` and `{name}.ids` from an embeddings folder; check they agree."""
    folder = Path(embeddings_dir)
    ids_path, npy_path = folder / f"{name}.ids", folder / f"{name}.npy"
    for path in (ids_path, npy_path):
        if not path.is_file():
            raise InputError(f"{path}: missing (expected {name}.npy and {name}.ids in {folder})")
    with open(ids_path, encoding="utf-8") as handle:
        ids = [line.strip() for line in handle if line.strip()]
    matrix = np.load(npy_path, allow_pickle=False)
    if matrix.ndim != 2:
        raise InputError(f"{npy_path}: expected a 2-D matrix, got shape {matrix.shape}")
    if matrix.shape[0] != len(ids):
        raise InputError(f"{npy_path}: {matrix.shape[0]} rows but {ids_path} lists {len(ids)} ids")
    if len(set(ids)) != len(ids):
        raise InputError(f"{ids_path}: duplicate ids")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise InputError(f"{npy_path}: contains NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1)
    if matrix.shape[0] and np.abs(norms - 1.0).max() > _NORM_TOLERANCE:
        log.warning(
            "%s: rows are not L2-normalised (norms %.4f..%.4f); inner product is not cosine",
            npy_path,
            norms.min(),
            norms.max(),
        )
    return ids, matrix


def _rows_for(ids: list[str], wanted: list[str], where: str) -> np.ndarray:
    row_of = {item: row for row, item in enumerate(ids)}
    missing = [item for item in wanted if item not in row_of]
    if missing:
        raise InputError(f"{where}: no embedding for {len(missing)} id(s), e.g. {missing[:3]}")
    return np.fromiter((row_of[item] for item in wanted), dtype=np.int64, count=len(wanted))


def _write_vectors(path: Path, ids: list[str], matrix: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for docid, row in zip(ids, matrix):
            # float32 -> Python float is exact, and repr round-trips, so the
            # index holds exactly the embeddings' values.
            handle.write(json.dumps({"id": docid, "contents": "", "vector": row.tolist()}) + "\n")


def _faiss_plan(
    embeddings_dir: str | Path, candidates_jsonl: str | Path, languages: list[str] | None, pooled: bool
) -> tuple[list[str], np.ndarray, dict[str, list[str]], dict[str, np.ndarray]]:
    """The chosen languages, the candidate embeddings, the candidate ids of each
    index to build (per language, then the pooled one) and their embedding rows;
    checks that the embeddings cover exactly the candidates."""
    grouped = candidates_by_language(candidates_jsonl)
    chosen = select_languages(grouped, languages, candidates_jsonl)
    ids, matrix = load_embeddings(embeddings_dir, "candidates")
    all_cids = [str(record["cid"]) for records in grouped.values() for record in records]
    extra = set(ids) - set(all_cids)
    if extra:
        raise InputError(
            f"{Path(embeddings_dir) / 'candidates.ids'}: {len(extra)} id(s) not in {candidates_jsonl}, "
            f"e.g. {sorted(extra)[:3]}"
        )
    where = f"{Path(embeddings_dir) / 'candidates.ids'} vs {candidates_jsonl}"
    plan = {lang: [str(record["cid"]) for record in grouped[lang]] for lang in chosen}
    if pooled:  # the multilingual setting's index (MIRACL, monolingual only, has none)
        plan[POOLED] = [cid for lang in chosen for cid in plan[lang]]
    rows = {name: _rows_for(ids, cids, where) for name, cids in plan.items()}
    return chosen, matrix, plan, rows


def _build_faiss_index(
    name: str,
    cids: list[str],
    vectors: np.ndarray,
    vectors_root: Path,
    staging: Path,
    threads: int,
    log_path: str | Path | None,
) -> tuple[int, float]:
    """Build `staging/{name}/` over `vectors` (rows of `cids`) with `pyserini.index.faiss`,
    going through a vectors file under `vectors_root`; check it and return (vectors indexed, seconds)."""
    tick = time.perf_counter()
    vectors_dir = vectors_root / name
    _write_vectors(vectors_dir / "vectors.jsonl", cids, vectors)
    run_pyserini_module(
        "pyserini.index.faiss",
        [
            "--input",
            str(vectors_dir),
            "--output",
            str(staging / name),
            "--dim",
            str(int(vectors.shape[1])),
            "--threads",
            str(int(threads)),
        ],
        str(log_path) if log_path else None,
    )
    shutil.rmtree(vectors_dir)
    with open(staging / name / "docid", encoding="utf-8") as handle:
        indexed = sum(1 for line in handle if line.strip())
    if indexed != len(cids) or not (staging / name / "index").is_file():
        raise RuntimeError(f"Faiss index {name}: expected {len(cids)} vectors, found {indexed}")
    seconds = time.perf_counter() - tick
    log.info("index %s: %d vectors in %.1fs", name, indexed, seconds)
    return indexed, seconds


def build_faiss_indexes(
    embeddings_dir: str | Path,
    candidates_jsonl: str | Path,
    out_dir: str | Path,
    languages: list[str] | None = None,
    threads: int = 1,
    log_path: str | Path | None = None,
    pooled: bool = True,
) -> dict:
    """Build `out_dir/{lang}/` per candidate language and the pooled `out_dir/all/`
    (over the chosen languages; all candidate languages when `languages` is None)
    with `pyserini.index.faiss`; write `out_dir/manifest.json` and return it.

    The embeddings must cover exactly the candidates of `candidates_jsonl`. The
    whole `out_dir` appears atomically: on any failure nothing is left behind
    (an earlier `out_dir` stays as it was)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    chosen, matrix, plan, rows = _faiss_plan(embeddings_dir, candidates_jsonl, languages, pooled)
    dim = int(matrix.shape[1])
    log.info(
        "building %d Faiss indexes (dim %d, %d candidates) in %s",
        len(plan),
        dim,
        sum(len(plan[lang]) for lang in chosen),
        out_dir,
    )
    indexes = {}
    with (
        atomic_dir(out_dir) as staging,
        tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.vectors.", dir=out_dir.parent) as vectors_root,
    ):
        for name, cids in plan.items():
            indexed, seconds = _build_faiss_index(
                name, cids, matrix[rows[name]], Path(vectors_root), staging, threads, log_path
            )
            indexes[name] = {
                "languages": chosen if name == POOLED else [name],
                "count": indexed,
                "seconds": round(seconds, 3),
            }
        manifest = _faiss_manifest(dim, chosen, pooled, indexes, embeddings_dir, candidates_jsonl, started)
        write_json(staging / MANIFEST, manifest)
    log.info("built %d Faiss indexes in %.1fs", len(indexes), time.perf_counter() - started)
    return manifest


def _faiss_manifest(
    dim: int,
    chosen: list[str],
    pooled: bool,
    indexes: dict,
    embeddings_dir: str | Path,
    candidates_jsonl: str | Path,
    started: float,
) -> dict:
    """The manifest of a Faiss index folder (`seconds` counted from `started`)."""
    return {
        "kind": "faiss",
        "index_type": "IndexFlatIP",
        "metric": "inner_product",
        "dim": dim,
        "languages": chosen,
        "pooled": POOLED if pooled else None,
        "indexes": indexes,
        "embeddings_dir": str(embeddings_dir),
        "candidates": str(candidates_jsonl),
        "seconds": round(time.perf_counter() - started, 3),
    }


def read_index_manifest(index_dir: str | Path, kind: str) -> dict:
    path = Path(index_dir) / MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: missing; build the indexes first")
    manifest = read_json(path)
    if manifest.get("kind") != kind:
        raise InputError(f"{path}: expected {kind!r} indexes, found {manifest.get('kind')!r}")
    return manifest


def index_names(manifest: dict) -> list[str]:
    """The indexes of a manifest in search order: per language, then the pooled one (if any)."""
    return [*manifest["languages"], *([manifest["pooled"]] if manifest.get("pooled") else [])]


class _FaissRanking:
    """One question's Faiss ranking: the `scores` and index `rows` of its k hits, best first."""

    def __init__(self, scores: np.ndarray, rows: np.ndarray, docids: list[str], row_of: dict[str, int], k: int) -> None:
        self._scores, self._rows, self._docids, self._row_of = scores, rows, docids, row_of
        self.n_ranked = k

    def top(self, n: int) -> Iterable[tuple[str, float]]:
        docids = self._docids
        return ((docids[j], float(score)) for j, score in zip(self._rows[:n], self._scores[:n]))

    def relevant_ranks(self, graded: Mapping[str, int]) -> list[RankRow]:
        docids, row_ids, row_scores = self._docids, self._rows, self._scores
        position_of = {}
        if graded:
            wanted = np.fromiter((self._row_of[d] for d in graded if d in self._row_of), dtype=np.int64)
            for position in np.nonzero(np.isin(row_ids, wanted))[0]:
                position_of[docids[row_ids[position]]] = int(position)
        found = sorted(position_of.items())
        found_ranks = dict(
            zip(
                (d for d, _ in found),
                trec_order_ranks(row_scores, lambda p, r=row_ids: docids[r[p]], [p for _, p in found]),
            )
        )
        return [
            (d, rel, found_ranks.get(d), float(row_scores[position_of[d]]) if d in position_of else None)
            for d, rel in sorted(graded.items())
        ]


class _FaissPool:
    """One Faiss index, loaded with Pyserini's `FaissSearcher`, ranking the
    precomputed question embeddings `queries` (`{qlang: (qids, matrix)}`)."""

    def __init__(
        self, index_dir: Path, name: str, queries: dict[str, tuple[list[str], np.ndarray]], depth: int | None
    ) -> None:
        from pyserini.search.faiss import FaissSearcher

        tick = time.perf_counter()
        self._searcher = FaissSearcher(str(index_dir / name), None)
        self._docids = list(self._searcher.docids)
        self._row_of = {docid: row for row, docid in enumerate(self._docids)}
        size = self._searcher.num_docs
        log.info("index %s: %d vectors loaded in %.2fs", name, size, time.perf_counter() - tick)
        self.k = size if depth is None else min(int(depth), size)
        self._queries = queries

    def rank(self, qlang: str, qids: list[str], start: int) -> list[_FaissRanking]:
        qmatrix = self._queries[qlang][1][start : start + len(qids)]
        scores, rows = self._searcher.index.search(np.ascontiguousarray(qmatrix), self.k)
        return [
            _FaissRanking(scores[offset], rows[offset], self._docids, self._row_of, self.k)
            for offset in range(len(qids))
        ]

    def close(self) -> None:
        self._searcher = None


def _question_matrices(
    embeddings_dir: str | Path, questions_jsonl: str | Path, dim: int
) -> dict[str, tuple[list[str], np.ndarray]]:
    """`{qlang: (qids, embeddings)}` of the questions, checked against the index dimension `dim`."""
    questions = questions_by_language(questions_jsonl)
    ids, matrix = load_embeddings(embeddings_dir, "questions")
    where = f"{Path(embeddings_dir) / 'questions.ids'} vs {questions_jsonl}"
    queries = {}
    for qlang, records in questions.items():
        qids = [str(record["qid"]) for record in records]
        queries[qlang] = (qids, matrix[_rows_for(ids, qids, where)])
    if matrix.shape[1] != dim:
        raise InputError(f"{embeddings_dir}: question dim {matrix.shape[1]} != index dim {dim}")
    return queries


def dense_search(
    embeddings_dir: str | Path,
    questions_jsonl: str | Path,
    index_dir: str | Path,
    out_trec_dir: str | Path,
    depth: int | None = None,
    threads: int = 1,
    *,
    trec_depth: int | None = None,
    qrels_path: str | Path | None = None,
    out_ranks_dir: str | Path | None = None,
    monolingual_only: bool = False,
    batch_size: int = 256,
    tag: str = DEFAULT_TAG,
) -> dict:
    """Search every query language's questions in every index of `index_dir`
    (per language and pooled) with the Faiss index Pyserini's `FaissSearcher`
    loads, and write `out_trec_dir/{Q}-{C}.trec` and `{Q}-all.trec` (the folder
    appears atomically).

    `depth=None` ranks the whole index (k = its size); otherwise k = min(depth,
    size). The TREC files keep the top `trec_depth` hits of each ranking
    (None: all k). With `qrels_path` and `out_ranks_dir`, the ranks of every
    relevant candidate in the k-deep ranking are written to
    `out_ranks_dir/{Q}-{C}.tsv` (see `xlir.retrieval.ranks`), in trec_eval's
    order. Returns a summary `{runs: {name: {queries, lines, k, seconds}}, seconds}`."""
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be positive or None, got {depth}")
    if trec_depth is not None and trec_depth < 1:
        raise ValueError(f"trec_depth must be positive or None, got {trec_depth}")
    if (qrels_path is None) != (out_ranks_dir is None):
        raise ValueError("qrels_path and out_ranks_dir go together")
    started = time.perf_counter()
    index_dir = Path(index_dir)
    manifest = read_index_manifest(index_dir, "faiss")
    queries = _question_matrices(embeddings_dir, questions_jsonl, manifest["dim"])

    from xlir.common.java_env import configure_java

    configure_java()  # pyserini.search.faiss imports the Lucene searcher (starts the JVM)
    import faiss

    faiss.omp_set_num_threads(max(1, int(threads)))
    return search_pools(
        {qlang: qids for qlang, (qids, _) in queries.items()},
        index_names(manifest),
        lambda name: _FaissPool(index_dir, name, queries, depth),
        out_trec_dir,
        retriever="dense",
        log=log,
        started=started,
        batch_size=batch_size,
        tag=tag,
        depth=depth,
        trec_depth=trec_depth,
        qrels_path=qrels_path,
        out_ranks_dir=out_ranks_dir,
        monolingual_only=monolingual_only,
        lines_label="TREC lines",
    )
