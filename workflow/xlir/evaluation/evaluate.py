"""LAReQA-style evaluation of a directory of TREC runs: mAP, Recall@k, rank distance.

Input: the run directory `results/runs/{run}/{benchmark}/trec/` (see
docs/architecture.md) holding

- `{qlang}-{clang}.trec`: questions in `qlang` against the candidate pool of
  language `clang`. `qlang == clang` is the **monolingual** setting,
  `qlang != clang` the **cross-lingual** one;
- `{qlang}-all.trec`: questions in `qlang` against the pooled candidates of
  every language, the **multilingual** setting (LAReQA's "language-agnostic"
  retrieval).

and the prepared benchmark's `qrels.tsv`, which lists for every question
(`"{lang}:{id}"`) its relevant candidates (`"{lang}:{p}:{s}"`) in ALL
languages. For a `{qlang}-{clang}` file only the relevant candidates whose id
starts with `"{clang}:"` count; for a `{qlang}-all` file all of them do. The
queries of a file are the qrels questions whose id starts with `"{qlang}:"`:

- a question with no relevant candidate in the file's pool is skipped and
  counted (`skipped_no_relevant`);
- a question that has relevant candidates but is absent from the run gets
  AP 0 and Recall 0 (like `trec_eval -c`) and is counted (`missing_from_run`);
  its rank distance is left empty, as there is no ranking to measure;
- a run query absent from the qrels is ignored (as trec_eval does) and
  counted (`not_in_qrels`).

Every metric is computed over the whole ranked list of the run file: the runs
are written at full pool depth unless the configuration truncates them
(`evaluation.depth`), in which case relevant candidates below the cut count as
not retrieved (and get rank `depth + 1` for the rank distance).

Aggregation (LAReQA and the paper macro-average over language pairs): per
language pair, the mean over its queries; per setting, the unweighted mean
over its pairs. A pair left with no query contributes to no average.

Outputs (`write_evaluation`):

- `per_query.tsv`: `setting, query_lang, cand_lang, qid, ap, recall_{k}...,
  rank_distance` (`cand_lang` is `all` for multilingual rows; `rank_distance`
  only on multilingual rows, empty otherwise);
- `metrics.json`: `{"settings": {setting: {...}}, "counts": {...}}` where each
  setting holds `map`, `recall_{k}` (macro averages over pairs), `n_pairs`,
  `n_queries`, `per_pair` (`{"es-ca": {"map", "recall_{k}", "n_queries"}}`)
  and `per_query_language` (per query language, the mean over its pairs, i.e.
  over the candidate languages for cross-lingual); the multilingual setting
  also has `rank_distance` (mean over the queries of each query language,
  then the macro average over query languages), also per pair and per query
  language. Undefined values (a setting without files) are `null`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlir.benchmarks.qrels import read_qrels_graded
from xlir.common.io import InputError, get_logger, read_json, write_json, write_tsv
from xlir.evaluation.metrics import (
    average_precision_from_ranks,
    macro_average,
    mean,
    ndcg_from_ranks,
    rank_distance_from_ranks,
    recall_from_ranks,
    relevant_ranks,
)
from xlir.retrieval.trec import read_trec_run

log = get_logger(__name__)

MONOLINGUAL = "monolingual"
CROSS_LINGUAL = "cross-lingual"
MULTILINGUAL = "multilingual"
SETTINGS = (MONOLINGUAL, CROSS_LINGUAL, MULTILINGUAL)
ALL_LANGUAGES = "all"

_RUN_NAME = re.compile(r"^(?P<qlang>[A-Za-z0-9_]+)-(?P<clang>[A-Za-z0-9_]+)$")
_COUNT_KEYS = ("queries_evaluated", "skipped_no_relevant", "missing_from_run", "not_in_qrels")


@dataclass(frozen=True)
class QueryResult:
    """The metrics of one query in one run file."""

    setting: str
    query_lang: str
    cand_lang: str  # "all" for the multilingual setting
    qid: str
    ap: float
    recall: dict[int, float]  # k -> Recall@k
    rank_distance: float | None  # multilingual rows with a ranking only
    missing_from_run: bool = False
    ndcg: dict[int, float] = field(default_factory=dict)  # k -> nDCG@k (when asked for)

    @property
    def pair(self) -> str:
        return f"{self.query_lang}-{self.cand_lang}"


@dataclass
class EvaluationResult:
    """Per-query results, per-pair counts and the aggregated `metrics.json` content."""

    recall_ks: tuple[int, ...]
    queries: list[QueryResult]
    counts: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    ndcg_ks: tuple[int, ...] = ()

    def per_query_rows(self) -> list[dict[str, str]]:
        """The rows of per_query.tsv, ordered by setting, query language, candidate language, qid."""
        order = {setting: index for index, setting in enumerate(SETTINGS)}
        rows = []
        for query in sorted(self.queries, key=lambda q: (order[q.setting], q.query_lang, q.cand_lang, q.qid)):
            row = {
                "setting": query.setting,
                "query_lang": query.query_lang,
                "cand_lang": query.cand_lang,
                "qid": query.qid,
                "ap": repr(query.ap),
            }
            for k in self.recall_ks:
                row[f"recall_{k}"] = repr(query.recall[k])
            for k in self.ndcg_ks:
                row[f"ndcg_cut_{k}"] = repr(query.ndcg[k])
            row["rank_distance"] = "" if query.rank_distance is None else repr(query.rank_distance)
            rows.append(row)
        return rows

    def per_query_columns(self) -> list[str]:
        return [
            "setting",
            "query_lang",
            "cand_lang",
            "qid",
            "ap",
            *(f"recall_{k}" for k in self.recall_ks),
            *(f"ndcg_cut_{k}" for k in self.ndcg_ks),
            "rank_distance",
        ]


def setting_of(query_lang: str, cand_lang: str) -> str:
    """`multilingual` for the pooled `all` candidates, `monolingual` for the same
    language, `cross-lingual` otherwise."""
    if cand_lang == ALL_LANGUAGES:
        return MULTILINGUAL
    return MONOLINGUAL if query_lang == cand_lang else CROSS_LINGUAL


def parse_run_name(path: Path) -> tuple[str, str]:
    """`(qlang, clang)` from a run file named `{qlang}-{clang}.trec` (clang may be `all`)."""
    match = _RUN_NAME.match(path.stem)
    if not match or match["qlang"] == ALL_LANGUAGES:
        raise InputError(
            f"{path}: expected a run file named '{{qlang}}-{{clang}}.trec' or "
            "'{qlang}-all.trec' (language codes without '-')"
        )
    return match["qlang"], match["clang"]


def _lang_of(identifier: str) -> str:
    return identifier.split(":", 1)[0]


def query_result(
    setting: str,
    qlang: str,
    clang: str,
    qid: str,
    graded: dict[str, int],
    ranks: dict[str, int],
    n_ranked: int,
    recall_ks: Sequence[int],
    ndcg_ks: Sequence[int] = (),
) -> QueryResult:
    """The metrics of one query from the ranks of its relevant documents (`graded`:
    docid -> grade > 0 in this pool; `ranks`: docid -> 1-based rank of those in
    the ranking, in trec_eval's order; `n_ranked`: the ranking's length)."""
    rank_list = [ranks.get(d) for d in sorted(graded)]
    n_relevant = len(graded)
    return QueryResult(
        setting,
        qlang,
        clang,
        qid,
        ap=average_precision_from_ranks(rank_list, n_relevant),
        recall={k: recall_from_ranks(rank_list, n_relevant, k) for k in recall_ks},
        rank_distance=rank_distance_from_ranks(rank_list, n_ranked) if setting == MULTILINGUAL else None,
        ndcg={k: ndcg_from_ranks(rank_list, [graded[d] for d in sorted(graded)], k) for k in ndcg_ks},
    )


def _evaluate_rankings(
    path: Path,
    rankings: dict[str, tuple[dict[str, int], int]],
    qrels: dict[str, dict[str, int]],
    recall_ks: Sequence[int],
    ndcg_ks: Sequence[int],
) -> tuple[list[QueryResult], dict[str, int]]:
    """Shared by TREC and ranks files: `rankings` maps a run qid to (docid -> rank
    of its relevant documents, ranking length)."""
    qlang, clang = parse_run_name(path)
    setting = setting_of(qlang, clang)
    pool_prefix = "" if setting == MULTILINGUAL else f"{clang}:"
    counts = dict.fromkeys(_COUNT_KEYS, 0)
    not_in_qrels = [qid for qid in rankings if qid not in qrels]
    counts["not_in_qrels"] = len(not_in_qrels)
    if not_in_qrels:
        log.warning(
            "%s: %d run queries are not in the qrels and are ignored (e.g. %s)",
            path.name,
            len(not_in_qrels),
            not_in_qrels[0],
        )

    results: list[QueryResult] = []
    missing: list[str] = []
    for qid in sorted(q for q in qrels if _lang_of(q) == qlang):
        graded = {d: rel for d, rel in qrels[qid].items() if rel > 0 and d.startswith(pool_prefix)}
        if not graded:
            counts["skipped_no_relevant"] += 1
            continue
        counts["queries_evaluated"] += 1
        if qid not in rankings:
            missing.append(qid)
            results.append(
                QueryResult(
                    setting,
                    qlang,
                    clang,
                    qid,
                    0.0,
                    dict.fromkeys(recall_ks, 0.0),
                    None,
                    missing_from_run=True,
                    ndcg=dict.fromkeys(ndcg_ks, 0.0),
                )
            )
            continue
        ranks, n_ranked = rankings[qid]
        results.append(query_result(setting, qlang, clang, qid, graded, ranks, n_ranked, recall_ks, ndcg_ks))
    counts["missing_from_run"] = len(missing)
    if missing:
        log.warning(
            "%s: %d queries with relevant candidates are missing from the run; they get AP 0 (e.g. %s)",
            path.name,
            len(missing),
            missing[0],
        )
    if not results:
        log.warning(
            "%s: no query with a relevant candidate in this pool; the pair is left out of the averages", path.name
        )
    else:
        log.info(
            "%s: %d queries, MAP %.4f (%d skipped without a relevant candidate)",
            path.name,
            len(results),
            mean(r.ap for r in results),
            counts["skipped_no_relevant"],
        )
    return results, counts


def evaluate_run_file(
    path: str | Path,
    qrels: dict[str, dict[str, int]] | dict[str, set[str]],
    recall_ks: Sequence[int] = (1, 10),
    ndcg_ks: Sequence[int] = (),
) -> tuple[list[QueryResult], dict[str, int]]:
    """Evaluate one `{qlang}-{clang}.trec` / `{qlang}-all.trec` file against the
    all-language `qrels` (docid -> grade per query, or sets of relevant docids;
    see the module docstring for which queries and which relevant candidates
    count). Metrics use the whole ranked list of the file, in trec_eval's order.

    Returns the per-query results and the counts `queries_evaluated`,
    `skipped_no_relevant`, `missing_from_run`, `not_in_qrels`. Raises
    `InputError` when a run query is not a `qlang` question or, for a
    single-language pool, a retrieved candidate is not a `clang` candidate."""
    path = Path(path)
    qrels = _graded(qrels)
    qlang, clang = parse_run_name(path)
    pool_prefix = "" if setting_of(qlang, clang) == MULTILINGUAL else f"{clang}:"
    run = read_trec_run(path)
    rankings: dict[str, tuple[dict[str, int], int]] = {}
    for qid, ranking in run.items():
        if _lang_of(qid) != qlang:
            raise InputError(
                f"{path}: query {qid!r} is not a {qlang!r} question; expected ids "
                f"'{qlang}:<id>' in a {qlang}-{clang} run"
            )
        if pool_prefix:
            for docid, _score in ranking:
                if not docid.startswith(pool_prefix):
                    raise InputError(
                        f"{path}: query {qid!r} retrieved {docid!r}, which is not in the "
                        f"{clang!r} candidate pool; expected ids '{clang}:<p>:<s>'"
                    )
        relevant = {d for d, rel in qrels.get(qid, {}).items() if rel > 0}
        rankings[qid] = (relevant_ranks([d for d, _ in ranking], relevant), len(ranking))
    return _evaluate_rankings(path, rankings, qrels, recall_ks, ndcg_ks)


def evaluate_ranks_file(
    path: str | Path,
    qrels: dict[str, dict[str, int]] | dict[str, set[str]],
    recall_ks: Sequence[int] = (1, 10),
    ndcg_ks: Sequence[int] = (),
) -> tuple[list[QueryResult], dict[str, int]]:
    """Evaluate one relevant-ranks file `{qlang}-{clang}.tsv` (see
    `xlir.retrieval.ranks`) exactly as `evaluate_run_file` evaluates the ranking
    it was taken from. Raises `InputError` when a row's query is not a `qlang`
    question or its document is not relevant in the qrels."""
    from xlir.retrieval.ranks import read_ranks

    path = Path(path)
    qrels = _graded(qrels)
    qlang, clang = parse_run_name(path)
    rankings: dict[str, tuple[dict[str, int], int]] = {}
    for qid, entry in read_ranks(path).items():
        if _lang_of(qid) != qlang:
            raise InputError(f"{path}: query {qid!r} is not a {qlang!r} question")
        judged = qrels.get(qid, {})
        for docid in entry["docs"]:
            if judged.get(docid, 0) <= 0:
                raise InputError(
                    f"{path}: {docid!r} is listed for {qid!r} but is not relevant in the qrels; "
                    "the ranks file belongs to other qrels"
                )
        rankings[qid] = ({d: rank for d, (_rel, rank) in entry["docs"].items() if rank is not None}, entry["n_ranked"])
    return _evaluate_rankings(path, rankings, qrels, recall_ks, ndcg_ks)


def _graded(qrels: dict[str, dict[str, int]] | dict[str, set[str]]) -> dict[str, dict[str, int]]:
    return {qid: (dict(docs) if isinstance(docs, dict) else dict.fromkeys(docs, 1)) for qid, docs in qrels.items()}


def _mean_or_none(values: Iterable[float | None]) -> float | None:
    kept = [value for value in values if value is not None]
    return mean(kept) if kept else None


def _macro_or_none(per_group: dict[str, float | None]) -> float | None:
    kept = {key: value for key, value in per_group.items() if value is not None}
    return macro_average(kept) if kept else None


def summarise(
    queries: Sequence[QueryResult],
    pairs: Iterable[tuple[str, str]],
    recall_ks: Sequence[int],
    ndcg_ks: Sequence[int] = (),
) -> dict[str, dict[str, Any]]:
    """The `settings` part of metrics.json: per pair the mean over its queries,
    per setting the macro average over its pairs (pairs without queries are left
    out), per query language the mean over its pairs, and for the multilingual
    setting the rank distance (mean per query language, macro over languages)."""
    metric_names = ["map", *(f"recall_{k}" for k in recall_ks), *(f"ndcg_cut_{k}" for k in ndcg_ks)]
    by_pair: dict[tuple[str, str], list[QueryResult]] = {pair: [] for pair in pairs}
    for query in queries:
        by_pair.setdefault((query.query_lang, query.cand_lang), []).append(query)

    settings: dict[str, dict[str, Any]] = {}
    for setting in SETTINGS:
        multilingual = setting == MULTILINGUAL
        pair_keys = sorted(pair for pair in by_pair if setting_of(*pair) == setting)
        per_pair: dict[str, dict[str, Any]] = {}
        for qlang, clang in pair_keys:
            rows = by_pair[(qlang, clang)]
            entry: dict[str, Any] = {
                "map": _mean_or_none(r.ap for r in rows),
                **{f"recall_{k}": _mean_or_none(r.recall[k] for r in rows) for k in recall_ks},
                **{f"ndcg_cut_{k}": _mean_or_none(r.ndcg[k] for r in rows) for k in ndcg_ks},
            }
            if multilingual:
                entry["rank_distance"] = _mean_or_none(r.rank_distance for r in rows)
            entry["n_queries"] = len(rows)
            per_pair[f"{qlang}-{clang}"] = entry

        names = metric_names + (["rank_distance"] if multilingual else [])
        query_langs = sorted({qlang for qlang, _ in pair_keys})
        per_query_language: dict[str, dict[str, Any]] = {}
        for qlang in query_langs:
            entries = [per_pair[f"{q}-{c}"] for q, c in pair_keys if q == qlang]
            with_queries = [e for e in entries if e["n_queries"] > 0]
            per_query_language[qlang] = {
                **{name: _mean_or_none(e[name] for e in with_queries) for name in names},
                "n_pairs": len(with_queries),
                "n_queries": sum(e["n_queries"] for e in entries),
            }

        summary: dict[str, Any] = {
            name: _macro_or_none({key: entry[name] for key, entry in per_pair.items()}) for name in metric_names
        }
        if multilingual:
            # one pair per query language: mean over its queries, then macro over languages
            summary["rank_distance"] = _macro_or_none(
                {qlang: entry["rank_distance"] for qlang, entry in per_query_language.items()}
            )
        summary["n_pairs"] = sum(1 for entry in per_pair.values() if entry["n_queries"] > 0)
        summary["n_queries"] = sum(entry["n_queries"] for entry in per_pair.values())
        summary["per_pair"] = per_pair
        summary["per_query_language"] = per_query_language
        settings[setting] = summary
    return settings


def evaluate_run_dir(
    trec_dir: str | Path, qrels_path: str | Path, recall_ks: Sequence[int] = (1, 10), ndcg_ks: Sequence[int] = ()
) -> EvaluationResult:
    """Evaluate every `*.trec` file of `trec_dir` (named `{qlang}-{clang}.trec` or
    `{qlang}-all.trec`) against the all-language qrels: mAP, Recall@k (and
    nDCG@k when asked) per query over the whole ranked list of each file, rank
    distance for the multilingual files, macro-averaged over language pairs per
    setting.

    Raises `InputError` when the folder holds no run file or a file is
    misnamed or malformed."""
    return _evaluate_dir(Path(trec_dir), "*.trec", evaluate_run_file, qrels_path, recall_ks, ndcg_ks)


def evaluate_ranks_dir(
    ranks_dir: str | Path, qrels_path: str | Path, recall_ks: Sequence[int] = (1, 10), ndcg_ks: Sequence[int] = ()
) -> EvaluationResult:
    """As `evaluate_run_dir`, from the relevant-ranks files `{qlang}-{clang}.tsv`
    a search wrote beside its TREC files (full pool depth unless the
    configuration truncates the rankings; see `xlir.retrieval.ranks`)."""
    return _evaluate_dir(Path(ranks_dir), "*.tsv", evaluate_ranks_file, qrels_path, recall_ks, ndcg_ks)


def _evaluate_dir(
    folder: Path, pattern: str, evaluate_file, qrels_path: str | Path, recall_ks: Sequence[int], ndcg_ks: Sequence[int]
) -> EvaluationResult:
    recall_ks = tuple(sorted({int(k) for k in recall_ks}))
    ndcg_ks = tuple(sorted({int(k) for k in ndcg_ks}))
    if not recall_ks or min(recall_ks) < 1 or (ndcg_ks and min(ndcg_ks) < 1):
        raise ValueError(f"cutoffs must be >= 1, got recall {recall_ks}, nDCG {ndcg_ks}")
    paths = sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))
    if not paths:
        raise InputError(
            f"{folder}: expected files named '{{qlang}}-{{clang}}{pattern[1:]}' / "
            f"'{{qlang}}-all{pattern[1:]}', found none"
        )
    qrels = read_qrels_graded(qrels_path)
    log.info("evaluating %d files in %s against %s (%d questions)", len(paths), folder, qrels_path, len(qrels))

    queries: list[QueryResult] = []
    pairs: list[tuple[str, str]] = []
    per_pair_counts: dict[str, dict[str, int]] = {}
    per_setting_counts = {setting: dict.fromkeys(_COUNT_KEYS, 0) for setting in SETTINGS}
    for path in paths:
        qlang, clang = parse_run_name(path)
        results, counts = evaluate_file(path, qrels, recall_ks, ndcg_ks)
        queries.extend(results)
        pairs.append((qlang, clang))
        per_pair_counts[f"{qlang}-{clang}"] = counts
        for key, value in counts.items():
            per_setting_counts[setting_of(qlang, clang)][key] += value

    totals = {key: sum(c[key] for c in per_pair_counts.values()) for key in _COUNT_KEYS}
    counts_out: dict[str, Any] = {
        "run_files": len(paths),
        **totals,
        "per_setting": per_setting_counts,
        "per_pair": per_pair_counts,
    }
    settings = summarise(queries, pairs, recall_ks, ndcg_ks)
    for setting in SETTINGS:
        summary = settings[setting]
        if summary["n_pairs"]:
            log.info(
                "%s: MAP %.4f over %d pairs, %d queries",
                setting,
                summary["map"],
                summary["n_pairs"],
                summary["n_queries"],
            )
    return EvaluationResult(
        recall_ks=recall_ks,
        queries=queries,
        counts=counts_out,
        metrics={"settings": settings, "counts": counts_out},
        ndcg_ks=ndcg_ks,
    )


def write_evaluation(result: EvaluationResult, metrics_json: str | Path, per_query_tsv: str | Path) -> None:
    """Write metrics.json and per_query.tsv (atomically; formats in the module docstring)."""
    write_json(metrics_json, result.metrics)
    write_tsv(per_query_tsv, result.per_query_rows(), columns=result.per_query_columns())
    log.info("wrote %s and %s (%d query rows)", metrics_json, per_query_tsv, len(result.queries))


def evaluate_and_write(
    qrels_path: str | Path,
    metrics_json: str | Path,
    per_query_tsv: str | Path,
    *,
    ranks_dir: str | Path | None = None,
    trec_dir: str | Path | None = None,
    recall_ks: tuple[int, ...] = (1, 10),
    ndcg_ks: tuple[int, ...] = (),
) -> EvaluationResult:
    """Rule `evaluate`: score a run from its relevant-rank files (full depth) or, failing
    those, its TREC files, record where the ranking came from, and write both outputs."""
    if (ranks_dir is None) == (trec_dir is None):
        raise ValueError("give exactly one of ranks_dir and trec_dir")
    if ranks_dir is not None:
        result = evaluate_ranks_dir(ranks_dir, qrels_path, recall_ks=recall_ks, ndcg_ks=ndcg_ks)
        manifest = read_json(Path(ranks_dir) / "manifest.json")
        result.metrics["ranking"] = {
            "source": "relevant ranks",
            "retriever": manifest.get("retriever"),
            "depth": manifest.get("depth"),
            "full_pool": manifest.get("depth") is None,
        }
    else:
        result = evaluate_run_dir(trec_dir, qrels_path, recall_ks=recall_ks, ndcg_ks=ndcg_ks)
        result.metrics["ranking"] = {"source": "TREC run files", "depth": None, "full_pool": None}
    write_evaluation(result, metrics_json, per_query_tsv)
    return result
